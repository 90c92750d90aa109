package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Store keeps the refresh state of sessions and their leases:
// NewRedisStore for replicas sharing Redis, NewMemoryStore for a single
// in-process replica.
type Store interface {
	// put writes st and schedules its next refresh at due; the state
	// expires at st.ExpiresAt. With onlyIfKept it writes only while a
	// state exists, so that a refresh finishing after a logout does not
	// bring it back; ok reports whether it wrote.
	put(ctx context.Context, id string, st state, due, now time.Time, onlyIfKept bool) (ok bool, err error)
	// get returns the state of session id; ok is false when there is none.
	get(ctx context.Context, id string) (st state, ok bool, err error)
	// forget deletes the state and its schedule.
	forget(ctx context.Context, id string) error
	// dueIDs returns up to n sessions whose refresh is due at now.
	dueIDs(ctx context.Context, now time.Time, n int64) ([]string, error)
	// acquire takes session id's lease for d unless another holds it.
	acquire(ctx context.Context, id string, d time.Duration) (lease, bool, error)
	// renew extends a held lease by d; false when it was lost.
	renew(ctx context.Context, l lease, d time.Duration) (bool, error)
	// release gives a held lease up.
	release(ctx context.Context, l lease) error
}

// redisStore is the Store of replicas that share Redis.
type redisStore struct {
	client           redis.UniversalClient
	prefix           string
	renewS, releaseS *redis.Script
}

// NewRedisStore keeps refresh state in client under prefix (the
// configuration's key_prefix, without braces: the keys carry their own
// Cluster hash tags).
func NewRedisStore(client redis.UniversalClient, prefix string) (Store, error) {
	if client == nil {
		return nil, errors.New("refresh store: no Redis client")
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("refresh store: key prefix %q must not contain braces", prefix)
	}
	return &redisStore{client: client, prefix: prefix,
		renewS: redis.NewScript(renewScript), releaseS: redis.NewScript(releaseScript)}, nil
}

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

func (r *redisStore) stateKey(id string) string {
	tag, random, _ := strings.Cut(id, ".")
	return r.prefix + "refresh:{u:" + tag + "}:" + random
}

func (r *redisStore) lockKey(id string) string {
	tag, random, _ := strings.Cut(id, ".")
	return r.prefix + "refresh:lock:{u:" + tag + "}:" + random
}

func (r *redisStore) dueKey() string { return r.prefix + "refresh:due" }

func unavailable(err error, op string) error {
	return groupgate.WrapError(groupgate.Unavailable, err, "refresh state unreachable (%s)", op)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (r *redisStore) put(ctx context.Context, id string, st state, due, now time.Time, onlyIfKept bool) (bool, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return false, groupgate.WrapError(groupgate.Internal, err, "encode refresh state")
	}
	ttl := st.ExpiresAt.Sub(now)
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

func (r *redisStore) get(ctx context.Context, id string) (st state, ok bool, err error) {
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

func (r *redisStore) forget(ctx context.Context, id string) error {
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

func (r *redisStore) dueIDs(ctx context.Context, now time.Time, n int64) ([]string, error) {
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

func (r *redisStore) acquire(ctx context.Context, id string, d time.Duration) (lease, bool, error) {
	l := lease{key: r.lockKey(id), token: randomToken()}
	ok, err := r.client.SetNX(ctx, l.key, l.token, d).Result()
	if err != nil {
		return lease{}, false, unavailable(err, "take lease")
	}
	return l, ok, nil
}

func (r *redisStore) renew(ctx context.Context, l lease, d time.Duration) (bool, error) {
	n, err := r.renewS.Run(ctx, r.client, []string{l.key}, l.token, d.Milliseconds()).Int()
	if err != nil {
		return false, unavailable(err, "renew lease")
	}
	return n == 1, nil
}

func (r *redisStore) release(ctx context.Context, l lease) error {
	if err := r.releaseS.Run(ctx, r.client, []string{l.key}, l.token).Err(); err != nil {
		return unavailable(err, "release lease")
	}
	return nil
}
