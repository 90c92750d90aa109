package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
)

// Redis keys, with P the configured key_prefix and a session ID
// "<userTag>.<random>" (package session):
//
//	P refresh:{u:<userTag>}:<random>        the session's state (JSON), TTL = the session's expiry
//	P refresh:lock:{u:<userTag>}:<random>   the refresh lease: a random token, PX = the lease
//	P refresh:due                           sorted set: session ID scored by when its refresh is due (ms)
//
// The state keys share the user's Cluster hash slot with the session's
// own keys. The due set is one key for every replica to scan.

// state is what refresh keeps per session.
type state struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	UserID   string `json:"user_id"`
	// Token is the refresh token, sealed (crypto.go); never logged.
	Token string `json:"token"`
	// FetchedAt is when the groups were last read from the IdP (the
	// login, then each successful refresh).
	FetchedAt time.Time `json:"fetched_at"`
	// ExpiresAt is the session's expiry; the state key dies with it.
	ExpiresAt time.Time `json:"expires_at"`
}

func (r *Refresher) stateKey(id string) string {
	tag, random, _ := strings.Cut(id, ".")
	return r.prefix + "refresh:{u:" + tag + "}:" + random
}

func (r *Refresher) lockKey(id string) string {
	tag, random, _ := strings.Cut(id, ".")
	return r.prefix + "refresh:lock:{u:" + tag + "}:" + random
}

func (r *Refresher) dueKey() string { return r.prefix + "refresh:due" }

func unavailable(err error, op string) error {
	return groupgate.WrapError(groupgate.Unavailable, err, "refresh state unreachable (%s)", op)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// put writes st and schedules its next refresh at due. With onlyIfKept,
// the state is written only while it still exists, so that a refresh
// finishing after a logout does not bring the state back.
func (r *Refresher) put(ctx context.Context, id string, st state, due time.Time, onlyIfKept bool) (bool, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return false, groupgate.WrapError(groupgate.Internal, err, "encode refresh state")
	}
	ttl := st.ExpiresAt.Sub(r.now())
	if ttl <= 0 {
		return false, nil
	}
	args := redis.SetArgs{TTL: ttl}
	if onlyIfKept {
		args.Mode = "XX"
	}
	err = r.client.SetArgs(ctx, r.stateKey(id), b, args).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err, "save")
	}
	if err := r.client.ZAdd(ctx, r.dueKey(), redis.Z{Score: float64(due.UnixMilli()), Member: id}).Err(); err != nil {
		return false, unavailable(err, "schedule")
	}
	return true, nil
}

// get returns the state of session id; ok is false when there is none.
func (r *Refresher) get(ctx context.Context, id string) (st state, ok bool, err error) {
	b, err := r.client.Get(ctx, r.stateKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, unavailable(err, "load")
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, false, groupgate.WrapError(groupgate.Internal, err, "decode refresh state")
	}
	return st, true, nil
}

// forget deletes session id's state and its place in the due set.
func (r *Refresher) forget(ctx context.Context, id string) error {
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.stateKey(id))
		p.ZRem(ctx, r.dueKey(), id)
		return nil
	})
	if err != nil {
		return unavailable(err, "delete")
	}
	return nil
}

// due returns up to n session IDs whose refresh is due at now.
func (r *Refresher) dueIDs(ctx context.Context, now time.Time, n int64) ([]string, error) {
	ids, err := r.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: r.dueKey(), Start: "-inf", Stop: ms(now), ByScore: true, Count: n,
	}).Result()
	if err != nil {
		return nil, unavailable(err, "list due")
	}
	return ids, nil
}

// The lease: SET NX PX takes it with a random token; renew and release
// act only while the key still holds that token (the Redlock pattern for
// one instance), so a replica whose lease lapsed can neither extend nor
// delete the lease another replica took since.
const (
	renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`
	releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`
)

// lease is a held refresh lock.
type lease struct {
	key, token string
}

// acquire takes session id's lease for r.lease; ok is false when another
// refresher holds it.
func (r *Refresher) acquire(ctx context.Context, id string) (lease, bool, error) {
	l := lease{key: r.lockKey(id), token: randomToken()}
	ok, err := r.client.SetNX(ctx, l.key, l.token, r.lease).Result()
	if err != nil {
		return lease{}, false, unavailable(err, "take lease")
	}
	return l, ok, nil
}

// renew extends the lease; false when it was lost.
func (r *Refresher) renew(ctx context.Context, l lease) (bool, error) {
	n, err := r.renewS.Run(ctx, r.client, []string{l.key}, l.token, r.lease.Milliseconds()).Int()
	if err != nil {
		return false, unavailable(err, "renew lease")
	}
	return n == 1, nil
}

func (r *Refresher) release(ctx context.Context, l lease) error {
	if err := r.releaseS.Run(ctx, r.client, []string{l.key}, l.token).Err(); err != nil {
		return unavailable(err, "release lease")
	}
	return nil
}
