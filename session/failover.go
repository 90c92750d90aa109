package session

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
)

// A Sentinel failover promotes the replica first and announces the new
// master about a second later. Meanwhile the old master still accepts
// writes and clients still send them there; once clients switch, those
// writes are not on the new master, and the old master drops them when
// it rejoins as a replica. For a sign-out that means a cookie signed out,
// acknowledged, and valid again a second later; for a role rewrite, a
// snapshot whose outbox entry is acknowledged but that is gone (both seen
// in TestServeSurvivesARedisFailoverUnderAuthLoad).
//
// So behind Sentinel a revoking write (ending sessions, rewriting
// snapshots, taking generations) is reported done only when it is known
// to survive: WAIT 1 on the write's own connection confirms that the
// replica has it (then a later promotion carries it), which is the
// common case and costs one round trip to the replica. When no replica
// confirms (the replica is down, or was just promoted away), the write
// is refused (Unavailable: the caller retries, the outbox replays) only
// when a failover is under way: the sentinels name another master than
// the one written to, or one of the master's replicas already acts as a
// master promoted from it (its master_replid2 is ours). A master that
// merely lacks its replica (a replica down, a new master whose old one
// has not rejoined) keeps accepting, as Redis does.

// failoverWait bounds the WAIT for the replica's confirmation.
const failoverWait = 100 * time.Millisecond

// failoverGuard knows the sentinels, to tell a failover under way from a
// master without a replica.
type failoverGuard struct {
	sentinels  []string
	masterName string
	username   string
	password   string
}

// GuardFailovers makes r, whose client is a Sentinel failover client for
// masterName with these sentinels, confirm every revoking write as
// described above. Call it before r is used. username and password are
// those of the data nodes and sentinels (redis.username, redis.password).
func (r *Redis) GuardFailovers(sentinels []string, masterName, username, password string) {
	r.guard = &failoverGuard{sentinels: sentinels, masterName: masterName, username: username, password: password}
}

// durabilityCmds are queued after a revoking write on its connection.
type durabilityCmds struct {
	wait *redis.Cmd
	info *redis.StringCmd
}

// queueDurability queues WAIT and INFO after the writes in p (nil without
// a guard).
func (r *Redis) queueDurability(ctx context.Context, p redis.Pipeliner) *durabilityCmds {
	if r.guard == nil {
		return nil
	}
	return &durabilityCmds{
		wait: p.Do(ctx, "WAIT", 1, failoverWait.Milliseconds()),
		info: p.Info(ctx, "server", "replication"),
	}
}

// checkDurability judges the answers of queueDurability: nil when the
// writes before them will survive a failover.
func (r *Redis) checkDurability(ctx context.Context, d *durabilityCmds) error {
	if d == nil {
		return nil
	}
	n, err := d.wait.Int64()
	if err == nil && n >= 1 {
		return nil
	}
	info, ierr := d.info.Result()
	if err != nil || ierr != nil {
		return unavailable(firstErr(err, ierr), "confirm a write")
	}
	if under, err := r.guard.failoverUnderWay(ctx, infoField(info, "run_id"), infoField(info, "master_replid")); err != nil || under {
		if err == nil {
			err = groupgate.Errorf(groupgate.Unavailable, "session store failover under way: write not kept, try again")
		}
		r.logger.WarnContext(ctx, "session write refused during a Redis failover", "err", err)
		return err
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// infoField returns the value of name in an INFO answer.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// failoverUnderWay asks the sentinels whether the master with runID and
// replication ID replID is being replaced: they name another master (or
// one that does not answer), or one of its replicas acts as a master
// promoted from it (its previous replication ID is replID).
func (g *failoverGuard) failoverUnderWay(ctx context.Context, runID, replID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var lastErr error
	for _, addr := range g.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, Username: g.username, Password: g.password, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		master, err := sc.Master(ctx, g.masterName).Result()
		var replicas []map[string]string
		if err == nil {
			replicas, err = sc.Replicas(ctx, g.masterName).Result()
		}
		_ = sc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		// The sentinels' own record of the master's run ID lags a
		// switch, so the named master is asked.
		named, err := g.info(ctx, net.JoinHostPort(master["ip"], master["port"]), "server")
		if err != nil || infoField(named, "run_id") != runID {
			return true, nil
		}
		for _, rep := range replicas {
			info, err := g.info(ctx, net.JoinHostPort(rep["ip"], rep["port"]), "replication")
			if err == nil && infoField(info, "role") == "master" && infoField(info, "master_replid2") == replID {
				return true, nil
			}
		}
		return false, nil
	}
	return false, groupgate.WrapError(groupgate.Unavailable, lastErr, "no sentinel answered")
}

// info returns the INFO section of the server at addr.
func (g *failoverGuard) info(ctx context.Context, addr, section string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, Username: g.username, Password: g.password, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	return c.Info(ctx, section).Result()
}
