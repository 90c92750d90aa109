package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
)

// Cache is an in-process cache of session records in front of the Redis
// backend, for the forward-auth hot path. Every replica runs one; they
// keep each other current through Redis pub/sub: each write through any
// Cache (Save, Delete, SetMemberships[If], DeleteUserSessions) publishes the
// user's tag, and every subscriber drops that user's entries.
//
// A replica must never serve a revoked role from memory, so the cache is
// used only while its subscription is confirmed: until the first
// subscribe confirmation, and from any pub/sub error or missed ping until
// the next confirmation, Load goes to Redis and the cache is emptied. A
// write whose publish fails returns Unavailable, so that the syncer retries
// it (and its outbox keeps it) rather than leave other replicas stale.
//
// A message lost in a way no error reveals is detected, not waited out:
// each announcement carries a sequence number taken from a Redis counter
// in the same script that publishes it (announceScript), and one Redis
// executes that script for every replica, so a subscription receives the
// numbers in strictly increasing order. The subscriber (seqCheck) treats
// as lost, and empties the cache and subscribes anew, when a number skips
// one, when a number repeats or goes back (the counter was reset: a Redis
// restart, an eviction, a failover to a replica that lagged), and when the
// counter, read every ping interval, held a number one interval ago that
// never arrived. Staleness after a silent loss is thus bounded by about
// two ping intervals, so entries live until invalidated, evicted by size
// or a long TTL (the backstop for what no number can show: writers that do
// not announce, such as a replica with the cache off or of a version
// before the numbers).
type Cache struct {
	*Redis
	client  redis.UniversalClient
	channel string // also the counter's key (Redis.invalidationChannel)
	ttl     time.Duration
	max     int
	ping    time.Duration
	retry   time.Duration
	logger  *slog.Logger

	ready atomic.Bool
	// invals counts invalidations received; a Load inserts what it read
	// only if none arrived meanwhile, so a record read before a change
	// cannot be cached after the change's message was handled.
	invals       atomic.Uint64
	hits, misses atomic.Uint64
	// losses counts invalidations found lost (the cache emptied).
	losses atomic.Uint64

	// mu is read-locked by the hits of every forward-auth request, which
	// then run in parallel; only inserts and invalidations write.
	mu      sync.RWMutex
	entries map[string]cacheEntry          // by session ID
	byTag   map[string]map[string]struct{} // user tag -> session IDs

	// noCopies: announce writes, keep nothing (WithoutLocalCopies).
	noCopies bool

	cancel context.CancelFunc
	done   chan struct{}
}

type cacheEntry struct {
	// view's record is the cache's own copy, shared by every hit through
	// loadView; Load hands out clones of it.
	view    *View
	tag     string
	expires time.Time
}

var _ Backend = (*Cache)(nil)

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// Cache defaults: a long TTL (a backstop for writers that announce
// nothing; lost messages are detected), room for 200,000 sessions, twice
// the 100,000 of issue 15's target (1.3–4.7 KiB each, 260–930 MiB when
// full: BenchmarkCacheMemoryPerSession, docs/configuration.md), and a ping
// interval that notices a dead subscription or a lost message within a
// few seconds.
const (
	DefaultCacheTTL   = time.Minute
	DefaultCacheSize  = 200_000
	DefaultCachePing  = time.Second
	MaxCacheTTL       = 5 * time.Minute
	defaultCacheRetry = 250 * time.Millisecond
)

// WithCacheTTL sets how long an entry may be served (at most MaxCacheTTL).
func WithCacheTTL(d time.Duration) CacheOption {
	return func(c *Cache) { c.ttl = min(max(d, time.Millisecond), MaxCacheTTL) }
}

// WithCacheSize bounds the number of cached sessions.
func WithCacheSize(n int) CacheOption { return func(c *Cache) { c.max = max(n, 1) } }

// WithCachePing sets how often the subscription is pinged and the
// invalidation counter read; a ping unanswered by the next one turns the
// cache off until resubscribed, and a message lost is noticed within about
// two intervals.
func WithCachePing(d time.Duration) CacheOption {
	return func(c *Cache) { c.ping = max(d, 10*time.Millisecond) }
}

// WithoutLocalCopies makes a Cache that keeps and serves nothing from
// memory but still announces every write, for a replica configured
// without the local cache: the replicas that keep copies must hear of its
// writes too, or they would serve what it revoked until their TTL.
func WithoutLocalCopies() CacheOption { return func(c *Cache) { c.noCopies = true } }

// KeepsCopies reports whether the cache keeps records in memory (false
// with WithoutLocalCopies).
func (c *Cache) KeepsCopies() bool { return !c.noCopies }

// NewCache wraps r, whose client it also subscribes with, and starts the
// subscriber. Close stops it (it does not close the client).
func NewCache(r *Redis, opts ...CacheOption) *Cache {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		Redis:   r,
		client:  r.client,
		channel: r.invalidationChannel(),
		ttl:     DefaultCacheTTL,
		max:     DefaultCacheSize,
		ping:    DefaultCachePing,
		retry:   defaultCacheRetry,
		logger:  r.logger,
		entries: map[string]cacheEntry{},
		byTag:   map[string]map[string]struct{}{},
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	if c.noCopies {
		// Never subscribed, so never ready: every Load reads Redis.
		close(c.done)
		return c
	}
	go c.subscribe(ctx)
	return c
}

// Close stops the subscriber; the cache is bypassed from then on.
func (c *Cache) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Ready reports whether the subscription is confirmed, so that Load may
// answer from memory.
func (c *Cache) Ready() bool { return c.ready.Load() }

// WaitReady waits until the subscription is confirmed or ctx ends.
func (c *Cache) WaitReady(ctx context.Context) error {
	for !c.ready.Load() {
		select {
		case <-ctx.Done():
			return groupgate.WrapError(groupgate.Unavailable, ctx.Err(), "session cache not subscribed")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Stats returns how many Loads were answered from memory and from Redis.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Losses returns how many times an invalidation was found lost (or the
// counter reset) and the cache emptied.
func (c *Cache) Losses() uint64 { return c.losses.Load() }

// subscribe keeps one subscription alive until ctx ends, turning the
// cache on only between a confirmed subscribe (and its baseline) and the
// first sign of trouble.
func (c *Cache) subscribe(ctx context.Context) {
	defer close(c.done)
	defer c.disable()
	for ctx.Err() == nil {
		err := c.listen(ctx)
		c.disable()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errInvalidationLost) {
			// Redis answers: subscribe again at once, from a new baseline.
			c.losses.Add(1)
			c.logger.WarnContext(ctx, "session cache emptied: an invalidation was lost", "error", err)
			continue
		}
		c.logger.WarnContext(ctx, "session cache off: invalidation channel lost, reading Redis until resubscribed", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(c.retry):
		}
	}
}

// listen runs one subscription until it fails or a loss is detected.
func (c *Cache) listen(ctx context.Context) error {
	ps := c.client.Subscribe(ctx, c.channel)
	defer ps.Close()
	var seq seqCheck
	awaitingPong := false
	// Ticks come every ping interval whatever the traffic: a steady flow
	// of messages must not put off the counter check.
	tick := time.Now().Add(c.ping)
	for {
		if wait := time.Until(tick); wait > 0 {
			msg, err := ps.ReceiveTimeout(ctx, wait)
			var ne net.Error
			switch {
			case err != nil && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
				continue
			case err != nil:
				return err
			}
			if err := c.handle(ctx, msg, &seq, &awaitingPong); err != nil {
				return err
			}
			continue
		}
		if awaitingPong || !c.ready.Load() {
			return errors.New("no answer from Redis on the invalidation channel")
		}
		if err := ps.Ping(ctx); err != nil {
			return err
		}
		awaitingPong = true
		n, err := c.readCounter(ctx)
		if err != nil {
			return err
		}
		if err := seq.counter(n); err != nil {
			return err
		}
		tick = time.Now().Add(c.ping)
	}
}

// handle acts on one message of the subscription.
func (c *Cache) handle(ctx context.Context, msg any, seq *seqCheck, awaitingPong *bool) error {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" && m.Channel == c.channel {
			return c.baseline(ctx, seq)
		}
	case *redis.Message:
		n, tags, numbered, err := parseInvalidation(m.Payload)
		if err != nil {
			return err
		}
		c.invalidateAll(tags)
		if numbered {
			return seq.received(n)
		}
	case *redis.Pong:
		*awaitingPong = false
	}
	return nil
}

// baseline starts the cache, empty, once the subscription is confirmed.
// The counter is read before the cache is emptied: every Load that may
// insert started after the emptying (the others see invals move), so any
// write that makes its entry stale announces after the read, with a
// number above the baseline, which the subscription will receive or miss
// visibly.
func (c *Cache) baseline(ctx context.Context, seq *seqCheck) error {
	c.ready.Store(false)
	n, err := c.readCounter(ctx)
	if err != nil {
		return err
	}
	*seq = seqCheck{base: n, prev: n}
	c.clear()
	c.ready.Store(true)
	return nil
}

// readCounter reads the invalidation counter (0 when missing).
func (c *Cache) readCounter(ctx context.Context) (int64, error) {
	n, err := c.client.Get(ctx, c.channel).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the invalidation counter: %w", err)
	}
	return n, nil
}

// errInvalidationLost marks what seqCheck finds: the cache is emptied and
// the subscription started again.
var errInvalidationLost = errors.New("invalidation lost")

// seqCheck follows the sequence numbers of one subscription from its
// baseline. Numbers up to base were announced before the cache was
// emptied: they need not arrive (some still may, late). Every number after
// it must, in order.
type seqCheck struct {
	base int64 // the counter when the cache was emptied
	hi   int64 // the last number received (0: none yet)
	prev int64 // the counter at the previous tick
}

// received judges the number of an arriving message.
func (s *seqCheck) received(n int64) error {
	switch {
	case n <= s.hi:
		return fmt.Errorf("%w: number %d after %d (the counter was reset)", errInvalidationLost, n, s.hi)
	case n > max(s.hi, s.base)+1:
		return fmt.Errorf("%w: number %d after %d", errInvalidationLost, n, max(s.hi, s.base))
	}
	s.hi = n
	return nil
}

// counter judges the counter n read at a tick. A number handed out by the
// previous tick had a whole interval to arrive (a false alarm only empties
// the cache; a miss would serve a revoked role until the TTL).
func (s *seqCheck) counter(n int64) error {
	switch {
	case max(s.hi, s.base) < s.prev:
		return fmt.Errorf("%w: the counter held %d a ping interval ago, the last number received is %d", errInvalidationLost, s.prev, max(s.hi, s.base))
	case n < s.prev || n < s.hi:
		return fmt.Errorf("%w: the counter went back to %d from %d (received %d)", errInvalidationLost, n, s.prev, s.hi)
	}
	s.prev = n
	return nil
}

// parseInvalidation splits a message into its sequence number and tags.
// A message without a number (a replica of a version before them)
// carries one tag.
func parseInvalidation(payload string) (n int64, tags []string, numbered bool, err error) {
	num, list, ok := strings.Cut(payload, ":")
	if !ok {
		return 0, []string{payload}, false, nil
	}
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return 0, nil, false, fmt.Errorf("%w: malformed message %.40q", errInvalidationLost, payload)
	}
	return n, strings.Split(list, ","), true, nil
}

// disable turns the cache off and empties it.
func (c *Cache) disable() {
	c.ready.Store(false)
	c.clear()
}

func (c *Cache) clear() {
	c.invals.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	clear(c.byTag)
}

// publish tells every replica, this one included, to drop the users'
// entries.
func (c *Cache) publish(ctx context.Context, op string, tags ...string) error {
	c.invalidateAll(tags)
	if err := c.Redis.announceChange(ctx, tags); err != nil {
		return groupgate.WrapError(groupgate.Unavailable, err, "session change not announced to other replicas (%s)", op)
	}
	return nil
}

// Load answers from memory while the subscription is confirmed, else
// from Redis. The record is the caller's to change: a copy on a hit.
func (c *Cache) Load(ctx context.Context, id string) (*Record, error) {
	if c.ready.Load() {
		c.mu.RLock()
		e, ok := c.entries[id]
		c.mu.RUnlock()
		if c.fresh(e, ok) {
			return cloneRecord(e.view.rec), nil
		}
	}
	rec, _, err := c.miss(ctx, id)
	return rec, err
}

// loadView is Load for readers that change nothing (Store.CurrentView):
// a hit returns the entry's View itself, copying and allocating nothing,
// the ID included (a map index by string(id) does not allocate).
func (c *Cache) loadView(ctx context.Context, id []byte) (*View, error) {
	if c.ready.Load() {
		c.mu.RLock()
		e, ok := c.entries[string(id)]
		c.mu.RUnlock()
		if c.fresh(e, ok) {
			return e.view, nil
		}
	}
	rec, v, err := c.miss(ctx, string(id))
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = &View{rec: rec}
	}
	return v, nil
}

// fresh reports whether a found entry may answer now, and counts the hit.
func (c *Cache) fresh(e cacheEntry, found bool) bool {
	if !found {
		return false
	}
	now := c.now()
	if !now.Before(e.expires) || !e.view.rec.ExpiresAt.After(now) {
		return false
	}
	c.hits.Add(1)
	return true
}

// miss reads Redis and caches what it read unless an invalidation arrived
// meanwhile: rec is the caller's own, view the entry inserted (nil when
// none was).
func (c *Cache) miss(ctx context.Context, id string) (*Record, *View, error) {
	c.misses.Add(1)
	if !c.ready.Load() {
		rec, err := c.Redis.Load(ctx, id)
		return rec, nil, err
	}
	now := c.now()
	seen := c.invals.Load()
	rec, err := c.Redis.Load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	tag, _, _ := splitID(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready.Load() || c.invals.Load() != seen {
		return rec, nil, nil
	}
	v := &View{rec: cloneRecord(rec)}
	c.put(id, tag, cacheEntry{view: v, tag: tag, expires: now.Add(c.ttl)})
	return rec, v, nil
}

// put inserts under c.mu, evicting arbitrary entries when full.
func (c *Cache) put(id, tag string, e cacheEntry) {
	if _, ok := c.entries[id]; !ok {
		for old, oe := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, old)
			if ids := c.byTag[oe.tag]; ids != nil {
				delete(ids, old)
				if len(ids) == 0 {
					delete(c.byTag, oe.tag)
				}
			}
		}
	}
	c.entries[id] = e
	if c.byTag[tag] == nil {
		c.byTag[tag] = map[string]struct{}{}
	}
	c.byTag[tag][id] = struct{}{}
}

// Len is the number of cached sessions.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func (c *Cache) Save(ctx context.Context, rec *Record) error {
	if err := c.Redis.Save(ctx, rec); err != nil {
		return err
	}
	return c.publish(ctx, "save session", userTag(rec.UserID))
}

func (c *Cache) Delete(ctx context.Context, id string) error {
	if err := c.Redis.Delete(ctx, id); err != nil {
		return err
	}
	tag, _, ok := splitID(id)
	if !ok {
		return nil
	}
	return c.publish(ctx, "delete session", tag)
}

func (c *Cache) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n, err := c.Redis.DeleteUserSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	return n, c.publish(ctx, "end user sessions", userTag(userID))
}

func (c *Cache) SetMemberships(ctx context.Context, userID string, m groupgate.Memberships) (int, error) {
	n, err := c.Redis.SetMemberships(ctx, userID, m)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		// No live session: nothing anyone could have cached.
		return 0, nil
	}
	return n, c.publish(ctx, "set memberships", userTag(userID))
}

// SetMembershipsIf announces an applied rewrite like SetMemberships; a
// skipped one changed nothing, so there is nothing to announce.
func (c *Cache) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	applied, n, err := c.Redis.SetMembershipsIf(ctx, userID, gen, m)
	if err != nil {
		return false, 0, err
	}
	if !applied || n == 0 {
		return applied, n, nil
	}
	return true, n, c.publish(ctx, "set memberships", userTag(userID))
}

// SetMembershipsIfBatch writes through Redis, then drops the rewritten
// users' entries here and announces them to every replica in one message.
// When the announcement fails every rewritten user gets Unavailable in its
// result (its rewrite stands): the caller retries it, as after a failed
// SetMembershipsIf.
func (c *Cache) SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error) {
	out, err := c.Redis.SetMembershipsIfBatch(ctx, writes)
	if err != nil {
		return nil, err
	}
	var (
		changed []int
		tags    []string
	)
	for i, r := range out {
		if r.Err == nil && r.Applied && r.Sessions > 0 {
			changed = append(changed, i)
			tags = append(tags, userTag(writes[i].UserID))
		}
	}
	if len(changed) == 0 {
		return out, nil
	}
	if err := c.publish(ctx, "set memberships", tags...); err != nil {
		for _, i := range changed {
			out[i].Err = err
		}
	}
	return out, nil
}

// invalidateAll drops every cached session of the users with tags.
func (c *Cache) invalidateAll(tags []string) {
	c.invals.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tag := range tags {
		for id := range c.byTag[tag] {
			delete(c.entries, id)
		}
		delete(c.byTag, tag)
	}
}
