package session

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupgate/groupgate"
)

// Memory is the in-process Backend for a single replica (groupgate dev and
// tests without services). A record is passed through its JSON encoding
// once, when written, so Load returns exactly what Redis would; it is then
// kept decoded and every Load hands out a deep copy, so the hot path pays
// no decoding and a caller can never mutate a stored session through a
// shared pointer.
//
// Expired entries are invisible at once and dropped by a sweep that runs
// during writes at most every sweep interval, so no goroutine is needed.
type Memory struct {
	now        func() time.Time
	sweepEvery time.Duration

	mu       sync.RWMutex
	sessions map[string]memSession
	byUser   map[string]map[string]struct{}
	attempts map[string]memAttempt
	replay   map[string]time.Time
	// gens are the users' generation counters (NextGenerations). They are
	// kept for the life of the process: one integer per user ever synced.
	gens      map[string]int64
	lastSweep time.Time
}

type memSession struct {
	userID    string
	expiresAt time.Time
	// rec is never handed out or changed in place: readers get a copy and
	// writers replace it.
	rec *Record
}

type memAttempt struct {
	value     []byte
	expiresAt time.Time
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-process backend. It honours WithNow and
// WithSweepInterval.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{
		now:        o.now,
		sweepEvery: o.sweepEvery,
		sessions:   make(map[string]memSession),
		byUser:     make(map[string]map[string]struct{}),
		attempts:   make(map[string]memAttempt),
		replay:     make(map[string]time.Time),
		gens:       make(map[string]int64),
		lastSweep:  o.now(),
	}
}

func (m *Memory) Save(ctx context.Context, rec *Record) error {
	now := m.now()
	if err := checkRecord(rec, now); err != nil {
		return err
	}
	stored, err := roundTrip(rec)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if old, ok := m.sessions[rec.ID]; ok && old.userID != rec.UserID {
		// Only possible on a tag collision; keep the index exact anyway.
		m.unindexLocked(old.userID, rec.ID)
	}
	m.sessions[rec.ID] = memSession{userID: rec.UserID, expiresAt: rec.ExpiresAt, rec: stored}
	ids := m.byUser[rec.UserID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.byUser[rec.UserID] = ids
	}
	ids[rec.ID] = struct{}{}
	return nil
}

func (m *Memory) Load(ctx context.Context, id string) (*Record, error) {
	now := m.now()
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	if !ok || !s.expiresAt.After(now) {
		return nil, notFound(id)
	}
	return cloneRecord(s.rec), nil
}

func (m *Memory) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok {
		delete(m.sessions, id)
		m.unindexLocked(s.userID, id)
	}
	return nil
}

func (m *Memory) ListUserSessions(ctx context.Context, userID string) ([]*Record, error) {
	now := m.now()
	m.mu.RLock()
	recs := make([]*Record, 0, len(m.byUser[userID]))
	for id := range m.byUser[userID] {
		if s := m.sessions[id]; s.expiresAt.After(now) {
			recs = append(recs, cloneRecord(s.rec))
		}
	}
	m.mu.RUnlock()
	sortRecords(recs)
	return recs, nil
}

func (m *Memory) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.byUser[userID] {
		if m.sessions[id].expiresAt.After(now) {
			n++
		}
		delete(m.sessions, id)
	}
	delete(m.byUser, userID)
	return n, nil
}

func (m *Memory) SetMemberships(ctx context.Context, userID string, ms groupgate.Memberships) (int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setMembershipsLocked(userID, ms, now)
}

// NextGenerations increments each user's counter. A new counter starts
// from the clock in microseconds, as in Redis, so values keep growing even
// if counters were ever forgotten.
func (m *Memory) NextGenerations(ctx context.Context, userIDs []string) (map[string]int64, error) {
	seed := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(userIDs))
	for _, id := range userIDs {
		g, ok := m.gens[id]
		if !ok {
			g = seed
		}
		g++
		m.gens[id] = g
		out[id] = g
	}
	return out, nil
}

// Generation reads the user's counter.
func (m *Memory) Generation(ctx context.Context, userID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gens[userID], nil
}

// SetMembershipsIf checks the generation and rewrites under one lock, so
// no NextGenerations can come between.
func (m *Memory) SetMembershipsIf(ctx context.Context, userID string, gen int64, ms groupgate.Memberships) (bool, int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gens[userID] != gen {
		return false, 0, nil
	}
	n, err := m.setMembershipsLocked(userID, ms, now)
	return err == nil, n, err
}

// SetMembershipsIfBatch runs every write under one lock hold.
func (m *Memory) SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SnapshotResult, len(writes))
	for i, w := range writes {
		if m.gens[w.UserID] != w.Gen {
			continue
		}
		n, err := m.setMembershipsLocked(w.UserID, w.Memberships, now)
		out[i] = SnapshotResult{Applied: err == nil, Sessions: n, Err: err}
	}
	return out, nil
}

func (m *Memory) setMembershipsLocked(userID string, ms groupgate.Memberships, now time.Time) (int, error) {
	// Normalise ms through JSON once, as Save does for the whole record,
	// then give each session its own copy.
	ms, err := roundTripMemberships(ms)
	if err != nil {
		return 0, err
	}
	n := 0
	for id := range m.byUser[userID] {
		s := m.sessions[id]
		if !s.expiresAt.After(now) {
			continue
		}
		rec := cloneRecord(s.rec)
		rec.Memberships = cloneMemberships(ms)
		s.rec = rec
		m.sessions[id] = s
		n++
	}
	return n, nil
}

func (m *Memory) PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return groupgate.Errorf(groupgate.Invalid, "login attempt needs a positive lifetime")
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	m.attempts[key] = memAttempt{value: slices.Clone(value), expiresAt: now.Add(ttl)}
	return nil
}

func (m *Memory) TakeAttempt(ctx context.Context, key string) ([]byte, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.attempts[key]
	delete(m.attempts, key)
	if !ok || !a.expiresAt.After(now) {
		return nil, groupgate.Errorf(groupgate.NotFound, "no login attempt")
	}
	return a.value, nil
}

func (m *Memory) Remember(ctx context.Context, key string, until time.Time) (bool, error) {
	now := m.now()
	if !until.After(now) {
		return false, groupgate.Errorf(groupgate.Invalid, "replay window already over")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if seen, ok := m.replay[key]; ok && seen.After(now) {
		return false, nil
	}
	m.replay[key] = until
	return true, nil
}

// Ping always succeeds: the backend lives in this process.
func (m *Memory) Ping(ctx context.Context) error { return nil }

// sweepLocked drops expired entries, at most once per sweep interval, so
// memory stays bounded without a background goroutine to stop.
func (m *Memory) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < m.sweepEvery {
		return
	}
	m.lastSweep = now
	for id, s := range m.sessions {
		if !s.expiresAt.After(now) {
			delete(m.sessions, id)
			m.unindexLocked(s.userID, id)
		}
	}
	for k, a := range m.attempts {
		if !a.expiresAt.After(now) {
			delete(m.attempts, k)
		}
	}
	for k, until := range m.replay {
		if !until.After(now) {
			delete(m.replay, k)
		}
	}
}

func (m *Memory) unindexLocked(userID, id string) {
	ids := m.byUser[userID]
	delete(ids, id)
	if len(ids) == 0 {
		delete(m.byUser, userID)
	}
}

// sortRecords orders sessions oldest first, by ID on ties, so listings are
// stable across backends.
func sortRecords(recs []*Record) {
	slices.SortFunc(recs, func(a, b *Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
