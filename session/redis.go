package session

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
)

// Redis is the production Backend, shared by every replica. It works on a
// standalone server, behind Sentinel and on a Cluster: see the package
// documentation for the key layout that keeps one user's keys in one slot.
type Redis struct {
	client   redis.UniversalClient
	prefix   string
	now      func() time.Time
	logger   *slog.Logger
	remember *redis.Script
	rewrite  *redis.Script
	announce *redis.Script
	// guard, set by GuardFailovers behind Sentinel, confirms revoking
	// writes (failover.go).
	guard *failoverGuard
	// jsonRecords writes records as JSON, which versions before the
	// binary layout read (WithJSONRecords).
	jsonRecords bool
}

// WithJSONRecords makes r write session records as JSON, as versions
// before the binary layout (codec.go) did, for the first step of a rolling
// upgrade from one: replicas of both versions then read every record.
// Records of either layout are read either way.
func (r *Redis) WithJSONRecords() { r.jsonRecords = true }

// encode writes rec in the layout r is configured for.
func (r *Redis) encode(rec *Record) ([]byte, error) {
	if r.jsonRecords {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, groupgate.WrapError(groupgate.Internal, err, "encode session")
		}
		return b, nil
	}
	return encodeRecord(rec)
}

var _ Backend = (*Redis)(nil)

// watchRetries bounds optimistic-transaction retries of whole-user
// operations; contention on one user's index is rare and short.
const watchRetries = 16

// rememberScript sets KEYS[1] to the replay deadline ARGV[2] unless it
// holds a deadline after now (ARGV[1]); the deadline is compared, not only
// the key's existence, so that the injected clock governs as elsewhere.
const rememberScript = `
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(seen) > tonumber(ARGV[1]) then
	return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`

// NewRedis returns a backend that keeps its keys under prefix (the
// configuration's key_prefix). The prefix must not contain '{' or '}':
// groupgate places its own Cluster hash tags. It honours WithNow and
// WithLogger.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) (*Redis, error) {
	if client == nil {
		return nil, groupgate.Errorf(groupgate.Invalid, "redis session backend needs a client")
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, groupgate.Errorf(groupgate.Invalid, "redis key_prefix %q must not contain braces (they would change Cluster hash slots)", prefix)
	}
	o := buildOptions(opts)
	return &Redis{
		client:   client,
		prefix:   prefix,
		now:      o.now,
		logger:   o.logger,
		remember: redis.NewScript(rememberScript),
		rewrite:  redis.NewScript(rewriteScript),
		announce: redis.NewScript(announceScript),
	}, nil
}

// invalidationChannel is the pub/sub channel of the local caches
// (cache.go). The invalidation counter is a key of the same name: on a
// Cluster both then hash to one slot, so the counter lives on the node the
// subscribers listen on (go-redis subscribes on the master of the channel's
// slot), and a failover of that node also breaks their subscriptions.
func (r *Redis) invalidationChannel() string { return r.prefix + "invalidate" }

// announceScript takes the next invalidation sequence number from the
// counter KEYS[1] and publishes "<seq>:<tags>" on channel ARGV[1] (ARGV[2]
// is the users' tags joined by ","), in one atomic step: every number the
// counter hands out is published, in the counter's order, so a subscriber
// that finds a number missing knows a message was lost. PUBLISH takes no
// key, so the script runs on the counter's node of a Cluster and the
// cluster bus carries the message to the other nodes.
//
// The counter expires a week after the last write (ARGV[3], ms), so that a
// key prefix given up leaves nothing behind; a counter that expired reads
// as gone back, which subscribers treat as a loss: they empty their caches
// once, after a week without a single session write.
const announceScript = `
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[1], string.format('%d:%s', seq, ARGV[2]))
return seq
`

// announceCounterTTL is how long the invalidation counter outlives the
// last write.
const announceCounterTTL = 7 * 24 * time.Hour

// announceChange tells every local cache to drop the entries of the users
// with these tags, under the next invalidation sequence number.
func (r *Redis) announceChange(ctx context.Context, tags []string) error {
	ch := r.invalidationChannel()
	return r.announce.Run(ctx, r.client, []string{ch}, ch, strings.Join(tags, ","), announceCounterTTL.Milliseconds()).Err()
}

// NewUniversalClient builds a client for the configured servers with the
// same rule as go-redis: a master_name selects Sentinel (addrs are the
// sentinels), otherwise several addrs select Cluster (where db must be 0),
// otherwise one addr is a standalone server.
func NewUniversalClient(addrs []string, masterName, username, password string, db int) redis.UniversalClient {
	return NewClient(&redis.UniversalOptions{
		Addrs:      addrs,
		MasterName: masterName,
		Username:   username,
		Password:   password,
		DB:         db,
	})
}

// ClusterStateReload is how often a Cluster client re-reads the slot map
// while it has traffic.
//
// go-redis re-reads it on MOVED and ASK redirects only, else every 60 s.
// When a master dies, nothing redirects: its address refuses connections
// until the client re-reads the map, so every user whose keys hash to its
// slots would be refused for up to a minute after the replica took over
// (seen in TestServeSurvivesARedisFailoverUnderAuthLoad). A re-read is one
// CLUSTER SLOTS per interval per process; with this interval a replica is
// found within a second of its promotion.
const ClusterStateReload = time.Second

// NewClient is redis.NewUniversalClient (the same choice of Sentinel,
// Cluster or standalone server) with a Cluster client that re-reads the
// slot map every ClusterStateReload, so that it follows a failover.
func NewClient(o *redis.UniversalOptions) redis.UniversalClient {
	if o.MasterName == "" && len(o.Addrs) > 1 {
		co := o.Cluster()
		co.ClusterStateReloadInterval = ClusterStateReload
		return redis.NewClusterClient(co)
	}
	return redis.NewUniversalClient(o)
}

func (r *Redis) sessionKey(tag, random string) string {
	return r.prefix + "sess:{u:" + tag + "}:" + random
}

func (r *Redis) indexKey(tag string) string {
	return r.prefix + "user:{u:" + tag + "}:sessions"
}

// genKey is the user's generation counter (NextGenerations), in the
// same slot as the user's sessions and index.
func (r *Redis) genKey(tag string) string {
	return r.prefix + "gen:{u:" + tag + "}"
}

func (r *Redis) keyOf(id string) (string, bool) {
	tag, random, ok := splitID(id)
	if !ok {
		return "", false
	}
	return r.sessionKey(tag, random), true
}

func unavailable(err error, op string) error {
	return groupgate.WrapError(groupgate.Unavailable, err, "session store unreachable (%s)", op)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (r *Redis) Save(ctx context.Context, rec *Record) error {
	now := r.now()
	if err := checkRecord(rec, now); err != nil {
		return err
	}
	data, err := r.encode(rec)
	if err != nil {
		return err
	}
	tag, random, _ := splitID(rec.ID)
	key, idx := r.sessionKey(tag, random), r.indexKey(tag)
	ttl := rec.ExpiresAt.Sub(now)
	ttlMS := max(ttl.Milliseconds(), 1)
	// One MULTI: the record and its index entry appear together, and
	// DeleteUserSessions (which WATCHes the index) sees either both or
	// neither.
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, data, ttl)
		p.ZAdd(ctx, idx, redis.Z{Score: float64(rec.ExpiresAt.UnixMilli()), Member: rec.ID})
		p.ZRemRangeByScore(ctx, idx, "-inf", ms(now))
		// The index lives as long as its longest session: NX gives a new
		// index a TTL, GT only ever extends it (Redis >= 7.0).
		p.Do(ctx, "PEXPIRE", idx, ttlMS, "NX")
		p.Do(ctx, "PEXPIRE", idx, ttlMS, "GT")
		return nil
	})
	if err != nil {
		return unavailable(err, "save session")
	}
	return nil
}

func (r *Redis) Load(ctx context.Context, id string) (*Record, error) {
	key, ok := r.keyOf(id)
	if !ok {
		return nil, notFound(id)
	}
	b, err := r.client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, unavailable(err, "load session")
	}
	rec, err := decodeRecordString(b)
	if err != nil {
		return nil, err
	}
	// The Redis TTL is only a backstop: expiry is the injected clock's call,
	// so every replica and every test agrees on it.
	if rec.ID != id || !rec.ExpiresAt.After(r.now()) {
		return nil, notFound(id)
	}
	return rec, nil
}

func (r *Redis) Delete(ctx context.Context, id string) error {
	tag, random, ok := splitID(id)
	if !ok {
		return nil
	}
	del := func(p redis.Pipeliner) error {
		p.Del(ctx, r.sessionKey(tag, random))
		p.ZRem(ctx, r.indexKey(tag), id)
		return nil
	}
	if r.guard != nil {
		// One connection for the write and its confirmation.
		return r.client.Watch(ctx, func(tx *redis.Tx) error {
			if _, err := tx.TxPipelined(ctx, del); err != nil {
				return unavailable(err, "delete session")
			}
			var d *durabilityCmds
			_, _ = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
				d = r.queueDurability(ctx, p)
				return nil
			})
			return r.checkDurability(ctx, d)
		})
	}
	if _, err := r.client.TxPipelined(ctx, del); err != nil {
		return unavailable(err, "delete session")
	}
	return nil
}

// liveRange selects the members of index idx whose expiry is after now.
func liveRange(idx string, now time.Time) redis.ZRangeArgs {
	return redis.ZRangeArgs{Key: idx, Start: "(" + ms(now), Stop: "+inf", ByScore: true}
}

func (r *Redis) sessionKeys(ids []string) []string {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if key, ok := r.keyOf(id); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// decodeLive turns MGET results into the live records of userID. A nil
// value is an index entry whose record is gone (evicted under maxmemory);
// it is skipped and pruned once its score passes.
func decodeLive(vals []any, userID string, now time.Time) ([]*Record, error) {
	recs := make([]*Record, 0, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		rec, err := decodeRecordString(s)
		if err != nil {
			return nil, err
		}
		// The user check guards against a (2^-128) user-tag collision.
		if rec.UserID == userID && rec.ExpiresAt.After(now) {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

func (r *Redis) ListUserSessions(ctx context.Context, userID string) ([]*Record, error) {
	now := r.now()
	idx := r.indexKey(userTag(userID))
	var ids *redis.StringSliceCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, idx, "-inf", ms(now))
		ids = p.ZRangeArgs(ctx, liveRange(idx, now))
		return nil
	})
	if err != nil {
		return nil, unavailable(err, "list sessions")
	}
	keys := r.sessionKeys(ids.Val())
	if len(keys) == 0 {
		return []*Record{}, nil
	}
	vals, err := r.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable(err, "list sessions")
	}
	recs, err := decodeLive(vals, userID, now)
	if err != nil {
		return nil, err
	}
	sortRecords(recs)
	return recs, nil
}

// watch runs fn as an optimistic transaction on keys, retrying when another
// writer changed a watched key before EXEC.
func (r *Redis) watch(ctx context.Context, op string, fn func(*redis.Tx) error, keys ...string) error {
	for range watchRetries {
		err := r.client.Watch(ctx, fn, keys...)
		if err == nil {
			return nil
		}
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		var ge *groupgate.Error
		if errors.As(err, &ge) {
			return err
		}
		return unavailable(err, op)
	}
	r.logger.WarnContext(ctx, "session index busy", slog.String("op", op))
	return groupgate.Errorf(groupgate.Unavailable, "session store busy (%s), try again", op)
}

func (r *Redis) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	now := r.now()
	idx := r.indexKey(userTag(userID))
	var n int
	err := r.watch(ctx, "end user sessions", func(tx *redis.Tx) error {
		members, err := tx.ZRangeWithScores(ctx, idx, 0, -1).Result()
		if err != nil {
			return err
		}
		n = 0
		ids := make([]string, 0, len(members))
		for _, z := range members {
			id, _ := z.Member.(string)
			ids = append(ids, id)
			if int64(z.Score) > now.UnixMilli() {
				n++
			}
		}
		keys := r.sessionKeys(ids)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(keys) > 0 {
				p.Del(ctx, keys...)
			}
			p.Del(ctx, idx)
			return nil
		})
		if err != nil || r.guard == nil {
			return err
		}
		var d *durabilityCmds
		_, _ = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			d = r.queueDurability(ctx, p)
			return nil
		})
		return r.checkDurability(ctx, d)
	}, idx)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (r *Redis) SetMemberships(ctx context.Context, userID string, m groupgate.Memberships) (int, error) {
	_, n, err := r.setMemberships(ctx, userID, nil, m)
	return n, err
}

// genTTL is how long a user's generation counter outlives the last value
// taken from it. A writer holds a value for seconds (its store read and a
// few bounded attempts), far less than this; and a counter created again
// after expiry starts from the clock, above any value handed out before.
const genTTL = time.Hour

// NextGenerations runs, in one pipeline, SET NX (seeding a missing counter
// with the clock in microseconds), INCR and PEXPIRE on each user's
// counter. On a Cluster, go-redis splits the pipeline by slot; each
// counter lives in its user's slot, next to the sessions it guards.
func (r *Redis) NextGenerations(ctx context.Context, userIDs []string) (map[string]int64, error) {
	if len(userIDs) == 0 {
		return map[string]int64{}, nil
	}
	seed := r.now().UnixMicro()
	incrs := make([]*redis.IntCmd, len(userIDs))
	var d *durabilityCmds
	// Per-command errors are read below.
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range userIDs {
			key := r.genKey(userTag(id))
			p.SetNX(ctx, key, seed, genTTL)
			incrs[i] = p.Incr(ctx, key)
			p.PExpire(ctx, key, genTTL)
		}
		// A generation handed out and then lost in a failover would be
		// handed out again, and an older push holding it could overwrite
		// a newer snapshot.
		d = r.queueDurability(ctx, p)
		return nil
	})
	for _, c := range incrs {
		if err := c.Err(); err != nil {
			return nil, unavailable(err, "take generations")
		}
	}
	if err := r.checkDurability(ctx, d); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(userIDs))
	for i, id := range userIDs {
		out[id] = incrs[i].Val()
	}
	return out, nil
}

// Generation reads the user's counter (0 when missing).
func (r *Redis) Generation(ctx context.Context, userID string) (int64, error) {
	g, err := r.client.Get(ctx, r.genKey(userTag(userID))).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err, "read generation")
	}
	return g, nil
}

// SetMembershipsIf checks the user's counter in the same script that
// writes (rewriteScript): the rewrite is skipped when the counter no
// longer holds gen, even if a NextGenerations lands between the first
// read and the write. All these keys share the user's hash slot.
func (r *Redis) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	return r.setMemberships(ctx, userID, &gen, m)
}

// rewriteScript replaces session records by compare-and-set, in one
// atomic step. KEYS: the user's generation counter, index, then the n
// records. ARGV: the generation the caller holds ("" for none), the
// index's lower score bound and its live members as the caller read them
// (joined by ","), then the n records as read, then their n new values.
// It returns -1 when the generation is no longer the latest, -2 when the
// index or a record changed since they were read (a login, a logout: the
// caller reads again), else how many records it wrote. All keys share the
// user's hash slot.
const rewriteScript = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return -1
end
local live = redis.call('ZRANGE', KEYS[2], ARGV[2], '+inf', 'BYSCORE')
if table.concat(live, ',') ~= ARGV[3] then
	return -2
end
local n = #KEYS - 2
for i = 1, n do
	if redis.call('GET', KEYS[i + 2]) ~= ARGV[i + 3] then
		return -2
	end
end
for i = 1, n do
	redis.call('SET', KEYS[i + 2], ARGV[n + i + 3], 'XX', 'KEEPTTL')
end
return n
`

// setMemberships rewrites the user's live sessions (with gen set, only
// while the counter holds *gen): it reads the index and records in two
// round trips and writes them with rewriteScript, which refuses if any
// record changed meanwhile, so a logout or re-login is never undone.
func (r *Redis) setMemberships(ctx context.Context, userID string, gen *int64, m groupgate.Memberships) (applied bool, n int, err error) {
	tag := userTag(userID)
	idx, gk := r.indexKey(tag), r.genKey(tag)
	want := ""
	if gen != nil {
		want = strconv.FormatInt(*gen, 10)
	}
	for range watchRetries {
		now := r.now()
		var (
			cur *redis.StringCmd
			ids *redis.StringSliceCmd
		)
		if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			cur = p.Get(ctx, gk)
			ids = p.ZRangeArgs(ctx, liveRange(idx, now))
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return false, 0, unavailable(err, "set memberships")
		}
		if gen != nil && cur.Val() != want {
			// A later generation was taken (or the counter is gone,
			// which only happens long after any writer gave up).
			return false, 0, nil
		}
		keys := r.sessionKeys(ids.Val())
		if len(keys) == 0 {
			return true, 0, nil
		}
		vals, err := r.client.MGet(ctx, keys...).Result()
		if err != nil {
			return false, 0, unavailable(err, "set memberships")
		}
		recs, err := decodeLive(vals, userID, now)
		if err != nil {
			return false, 0, err
		}
		if len(recs) == 0 {
			return true, 0, nil
		}
		scriptKeys, args, err := r.rewriteCall(gk, idx, want, now, ids.Val(), keys, vals, recs, m)
		if err != nil {
			return false, 0, err
		}
		res, err := r.runRewrite(ctx, scriptKeys, args)
		if err != nil {
			return false, 0, err
		}
		switch res {
		case -1:
			return false, 0, nil
		case -2:
			continue
		}
		return true, res, nil
	}
	r.logger.WarnContext(ctx, "session records busy", slog.String("op", "set memberships"))
	return false, 0, groupgate.Errorf(groupgate.Unavailable, "session store busy (set memberships), try again")
}

// runRewrite runs rewriteScript; behind a failover guard, with the
// confirmation on the same connection.
func (r *Redis) runRewrite(ctx context.Context, keys []string, args []any) (int, error) {
	if r.guard == nil {
		res, err := r.rewrite.Run(ctx, r.client, keys, args...).Int()
		if err != nil {
			return 0, unavailable(err, "set memberships")
		}
		return res, nil
	}
	var (
		run *redis.Cmd
		d   *durabilityCmds
	)
	// Per-command errors are read below.
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		run = r.rewrite.Eval(ctx, p, keys, args...)
		d = r.queueDurability(ctx, p)
		return nil
	})
	res, err := run.Int()
	if err != nil {
		return 0, unavailable(err, "set memberships")
	}
	if res >= 0 {
		if err := r.checkDurability(ctx, d); err != nil {
			return 0, err
		}
	}
	return res, nil
}

// rewriteCall builds rewriteScript's keys and arguments for writing m to
// recs, the live records of a user read at now as vals under keys, from
// the index's live members ids.
func (r *Redis) rewriteCall(gk, idx, want string, now time.Time, ids, keys []string, vals []any, recs []*Record, m groupgate.Memberships) ([]string, []any, error) {
	scriptKeys := make([]string, 0, len(recs)+2)
	args := make([]any, 0, 2*len(recs)+3)
	scriptKeys = append(scriptKeys, gk, idx)
	args = append(args, want, "("+ms(now), strings.Join(ids, ","))
	news := make([]any, 0, len(recs))
	for _, rec := range recs {
		key, _ := r.keyOf(rec.ID)
		scriptKeys = append(scriptKeys, key)
		old, _ := findValue(keys, vals, key)
		args = append(args, old)
		rec.Memberships = m
		data, err := r.encode(rec)
		if err != nil {
			return nil, nil, err
		}
		news = append(news, data)
	}
	return scriptKeys, append(args, news...), nil
}

// batchWrite is one user's progress through a round of
// SetMembershipsIfBatch.
type batchWrite struct {
	i         int // index into the caller's writes
	idx, gk   string
	want      string
	cur       *redis.StringCmd
	ids       *redis.StringSliceCmd
	keys      []string
	vals      *redis.SliceCmd
	rewrite   *redis.Cmd
	scriptKey []string
	args      []any
}

// SetMembershipsIfBatch does for every write what SetMembershipsIf does,
// with the same script and the same checks, but in three pipelines per
// round for the whole batch (read counters and indexes, read records, run
// the scripts) instead of three round trips per user. Each script's keys
// stay in one user's slot, so on a Cluster go-redis splits each pipeline by
// node and every check-and-write is still atomic on its node. Users whose
// records changed under them (a login or logout) go around again, up to
// watchRetries rounds, as in SetMembershipsIf.
func (r *Redis) SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error) {
	out := make([]SnapshotResult, len(writes))
	pending := make([]*batchWrite, len(writes))
	for i, w := range writes {
		tag := userTag(w.UserID)
		pending[i] = &batchWrite{i: i, idx: r.indexKey(tag), gk: r.genKey(tag), want: strconv.FormatInt(w.Gen, 10)}
	}
	reload := false
	for range watchRetries {
		if len(pending) == 0 {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, unavailable(err, "set memberships")
		}
		pending, reload = r.rewriteRound(ctx, writes, pending, out, reload)
	}
	if len(pending) > 0 {
		r.logger.WarnContext(ctx, "session records busy", slog.String("op", "set memberships"), slog.Int("users", len(pending)))
	}
	for _, b := range pending {
		out[b.i] = SnapshotResult{Err: groupgate.Errorf(groupgate.Unavailable, "session store busy (set memberships), try again")}
	}
	return out, nil
}

// rewriteRound runs one round of SetMembershipsIfBatch over pending,
// filling out for every user it decides, and returns those to try again
// and whether the script must be loaded first (a NOSCRIPT answer).
func (r *Redis) rewriteRound(ctx context.Context, writes []SnapshotWrite, pending []*batchWrite, out []SnapshotResult, load bool) (again []*batchWrite, reload bool) {
	fail := func(b *batchWrite, err error) { out[b.i] = SnapshotResult{Err: unavailable(err, "set memberships")} }
	now := r.now()
	// Per-command errors are read below, so the pipeline's own (the
	// first of them, redis.Nil for a missing counter included) is not.
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range pending {
			b.cur = p.Get(ctx, b.gk)
			b.ids = p.ZRangeArgs(ctx, liveRange(b.idx, now))
		}
		return nil
	})
	read := pending[:0:0]
	for _, b := range pending {
		if err := b.cur.Err(); err != nil && !errors.Is(err, redis.Nil) {
			fail(b, err)
			continue
		}
		if err := b.ids.Err(); err != nil {
			fail(b, err)
			continue
		}
		if b.cur.Val() != b.want {
			out[b.i] = SnapshotResult{} // a later generation was taken
			continue
		}
		if b.keys = r.sessionKeys(b.ids.Val()); len(b.keys) == 0 {
			out[b.i] = SnapshotResult{Applied: true}
			continue
		}
		read = append(read, b)
	}
	if len(read) == 0 {
		return nil, load
	}
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range read {
			b.vals = p.MGet(ctx, b.keys...)
		}
		return nil
	})
	write := read[:0:0]
	for _, b := range read {
		vals, err := b.vals.Result()
		if err != nil {
			fail(b, err)
			continue
		}
		w := writes[b.i]
		recs, err := decodeLive(vals, w.UserID, now)
		if err != nil {
			out[b.i] = SnapshotResult{Err: err}
			continue
		}
		if len(recs) == 0 {
			out[b.i] = SnapshotResult{Applied: true}
			continue
		}
		b.scriptKey, b.args, err = r.rewriteCall(b.gk, b.idx, b.want, now, b.ids.Val(), b.keys, vals, recs, w.Memberships)
		if err != nil {
			out[b.i] = SnapshotResult{Err: err}
			continue
		}
		write = append(write, b)
	}
	if len(write) == 0 {
		return nil, load
	}
	if load {
		// The script cache was flushed (a restart, a failover): load the
		// script (on every node of a Cluster) before pipelining EVALSHA.
		if err := r.rewrite.Load(ctx, r.client).Err(); err != nil {
			for _, b := range write {
				fail(b, err)
			}
			return nil, true
		}
	}
	var d *durabilityCmds
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range write {
			b.rewrite = r.rewrite.EvalSha(ctx, p, b.scriptKey, b.args...)
		}
		d = r.queueDurability(ctx, p)
		return nil
	})
	lost := r.checkDurability(ctx, d)
	reload = false
	for _, b := range write {
		res, err := b.rewrite.Int()
		switch {
		case err == nil && res >= 0 && lost != nil:
			out[b.i] = SnapshotResult{Err: lost}
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			reload = true
			again = append(again, b)
		case err != nil:
			fail(b, err)
		case res == -1:
			out[b.i] = SnapshotResult{}
		case res == -2:
			again = append(again, b) // a login or logout: read again
		default:
			out[b.i] = SnapshotResult{Applied: true, Sessions: res}
		}
	}
	return again, reload
}

// findValue returns the MGET value read for key.
func findValue(keys []string, vals []any, key string) (string, bool) {
	for i, k := range keys {
		if k == key {
			s, ok := vals[i].(string)
			return s, ok
		}
	}
	return "", false
}

func (r *Redis) attemptKey(key string) string { return r.prefix + "attempt:" + key }

// PutAttempt stores the deadline (by the injected clock) in front of the
// value, so TakeAttempt judges expiry by the same clock as sessions; the
// Redis TTL frees the key.
func (r *Redis) PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return groupgate.Errorf(groupgate.Invalid, "login attempt needs a positive lifetime")
	}
	buf := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(buf, uint64(r.now().Add(ttl).UnixMilli()))
	buf = append(buf, value...)
	if err := r.client.Set(ctx, r.attemptKey(key), buf, ttl).Err(); err != nil {
		return unavailable(err, "store login attempt")
	}
	return nil
}

func (r *Redis) TakeAttempt(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.GetDel(ctx, r.attemptKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, groupgate.Errorf(groupgate.NotFound, "no login attempt")
	}
	if err != nil {
		return nil, unavailable(err, "take login attempt")
	}
	if len(b) < 8 || int64(binary.BigEndian.Uint64(b[:8])) <= r.now().UnixMilli() {
		return nil, groupgate.Errorf(groupgate.NotFound, "no login attempt")
	}
	return b[8:], nil
}

func (r *Redis) Remember(ctx context.Context, key string, until time.Time) (bool, error) {
	now := r.now()
	ttl := until.Sub(now)
	if ttl <= 0 {
		return false, groupgate.Errorf(groupgate.Invalid, "replay window already over")
	}
	fresh, err := r.remember.Run(ctx, r.client, []string{r.prefix + "replay:" + key},
		now.UnixMilli(), until.UnixMilli(), max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, unavailable(err, "check replay")
	}
	return fresh == 1, nil
}

func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return unavailable(err, "ping")
	}
	return nil
}
