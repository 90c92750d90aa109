package session

import (
	"context"
	"errors"
	"log/slog"
	"net"
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
// Entries also expire after a short TTL, a backstop should a message be
// lost in a way no error reveals.
type Cache struct {
	*Redis
	client  redis.UniversalClient
	channel string
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

	// mu is read-locked by the hits of every forward-auth request, which
	// then run in parallel; only inserts and invalidations write.
	mu      sync.RWMutex
	entries map[string]cacheEntry          // by session ID
	byTag   map[string]map[string]struct{} // user tag -> session IDs

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

// Cache defaults: a short TTL (a backstop, not the means of
// invalidation), a bound that keeps memory small, and a ping interval that
// notices a silently dead subscription within a few seconds.
const (
	DefaultCacheTTL     = 2 * time.Second
	DefaultCacheSize    = 100_000
	DefaultCachePing    = time.Second
	maxCacheTTL         = 10 * time.Second
	defaultCacheRetry   = 250 * time.Millisecond
	invalidationChannel = "invalidate"
)

// WithCacheTTL sets how long an entry may be served (at most 10s).
func WithCacheTTL(d time.Duration) CacheOption {
	return func(c *Cache) { c.ttl = min(max(d, time.Millisecond), maxCacheTTL) }
}

// WithCacheSize bounds the number of cached sessions.
func WithCacheSize(n int) CacheOption { return func(c *Cache) { c.max = max(n, 1) } }

// WithCachePing sets how often the subscription is pinged; a ping
// unanswered by the next one turns the cache off until resubscribed.
func WithCachePing(d time.Duration) CacheOption {
	return func(c *Cache) { c.ping = max(d, 10*time.Millisecond) }
}

// NewCache wraps r, whose client it also subscribes with, and starts the
// subscriber. Close stops it (it does not close the client).
func NewCache(r *Redis, opts ...CacheOption) *Cache {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		Redis:   r,
		client:  r.client,
		channel: r.prefix + invalidationChannel,
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

// subscribe keeps one subscription alive until ctx ends, turning the
// cache on only between a confirmed subscribe and the first sign of
// trouble.
func (c *Cache) subscribe(ctx context.Context) {
	defer close(c.done)
	defer c.disable()
	for ctx.Err() == nil {
		err := c.listen(ctx)
		c.disable()
		if ctx.Err() != nil {
			return
		}
		c.logger.WarnContext(ctx, "session cache off: invalidation channel lost, reading Redis until resubscribed", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(c.retry):
		}
	}
}

// listen runs one subscription until it fails.
func (c *Cache) listen(ctx context.Context) error {
	ps := c.client.Subscribe(ctx, c.channel)
	defer ps.Close()
	awaitingPong := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, c.ping)
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
			if awaitingPong || !c.ready.Load() {
				return errors.New("no answer from Redis on the invalidation channel")
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			awaitingPong = true
			continue
		case err != nil:
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == c.channel {
				// Whatever was published before this point may have been
				// missed: start empty.
				c.clear()
				c.ready.Store(true)
			}
		case *redis.Message:
			c.invalidate(m.Payload)
		case *redis.Pong:
			awaitingPong = false
		}
	}
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

// invalidate drops every cached session of the user with tag.
func (c *Cache) invalidate(tag string) {
	c.invals.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.byTag[tag] {
		delete(c.entries, id)
	}
	delete(c.byTag, tag)
}

// publish tells every replica, this one included, to drop the user's
// entries.
func (c *Cache) publish(ctx context.Context, tag, op string) error {
	c.invalidate(tag)
	if err := c.client.Publish(ctx, c.channel, tag).Err(); err != nil {
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
	return c.publish(ctx, userTag(rec.UserID), "save session")
}

func (c *Cache) Delete(ctx context.Context, id string) error {
	if err := c.Redis.Delete(ctx, id); err != nil {
		return err
	}
	tag, _, ok := splitID(id)
	if !ok {
		return nil
	}
	return c.publish(ctx, tag, "delete session")
}

func (c *Cache) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n, err := c.Redis.DeleteUserSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	return n, c.publish(ctx, userTag(userID), "end user sessions")
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
	return n, c.publish(ctx, userTag(userID), "set memberships")
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
	return true, n, c.publish(ctx, userTag(userID), "set memberships")
}

// SetMembershipsIfBatch writes through Redis, then drops the rewritten
// users' entries here and announces them to every replica in one
// pipeline. A user whose announcement fails gets Unavailable in its
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
	c.invalidateAll(tags)
	pubs := make([]*redis.IntCmd, len(tags))
	_, _ = c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tag := range tags {
			pubs[i] = p.Publish(ctx, c.channel, tag)
		}
		return nil
	})
	for k, i := range changed {
		if err := pubs[k].Err(); err != nil {
			out[i].Err = groupgate.WrapError(groupgate.Unavailable, err, "session change not announced to other replicas (set memberships)")
		}
	}
	return out, nil
}

// invalidateAll is invalidate for many users under one lock hold.
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
