package refresh

import (
	"context"
	"slices"
	stdsync "sync"
	"time"
)

// memoryStore is the Store of a single replica without Redis, the
// counterpart of session.Memory: the same rules, in one process.
type memoryStore struct {
	now func() time.Time

	mu     stdsync.Mutex
	states map[string]memoryEntry
	leases map[string]memoryLease
}

type memoryEntry struct {
	st  state
	due time.Time
}

type memoryLease struct {
	token string
	until time.Time // wall clock, as Redis judges PX
}

// NewMemoryStore keeps refresh state in this process, judging the
// sessions' expiry by now (the session backend's clock). Only for a
// single replica: another process sees none of it.
func NewMemoryStore(now func() time.Time) Store {
	if now == nil {
		now = time.Now
	}
	return &memoryStore{now: now, states: map[string]memoryEntry{}, leases: map[string]memoryLease{}}
}

func (m *memoryStore) put(_ context.Context, id string, st state, due, now time.Time, onlyIfKept bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked()
	if !st.ExpiresAt.After(now) {
		return false, nil
	}
	if _, ok := m.states[id]; onlyIfKept && !ok {
		return false, nil
	}
	m.states[id] = memoryEntry{st: st, due: due}
	return true, nil
}

func (m *memoryStore) get(_ context.Context, id string) (state, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.states[id]
	if !ok || !e.st.ExpiresAt.After(m.now()) {
		return state{}, false, nil
	}
	return e.st, true, nil
}

func (m *memoryStore) forget(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.states, id)
	return nil
}

func (m *memoryStore) dueIDs(_ context.Context, now time.Time, n int64) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked()
	var ids []string
	for id, e := range m.states {
		if !e.due.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return m.states[a].due.Compare(m.states[b].due) })
	if int64(len(ids)) > n {
		ids = ids[:n]
	}
	return ids, nil
}

// sweepLocked drops states whose session expired, as Redis TTLs do.
func (m *memoryStore) sweepLocked() {
	now := m.now()
	for id, e := range m.states {
		if !e.st.ExpiresAt.After(now) {
			delete(m.states, id)
		}
	}
}

func (m *memoryStore) acquire(_ context.Context, id string, d time.Duration) (lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases[id]; ok && time.Now().Before(l.until) {
		return lease{}, false, nil
	}
	l := lease{key: id, token: randomToken()}
	m.leases[id] = memoryLease{token: l.token, until: time.Now().Add(d)}
	return l, true, nil
}

func (m *memoryStore) renew(_ context.Context, l lease, d time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held, ok := m.leases[l.key]
	if !ok || held.token != l.token || !time.Now().Before(held.until) {
		return false, nil
	}
	m.leases[l.key] = memoryLease{token: l.token, until: time.Now().Add(d)}
	return true, nil
}

func (m *memoryStore) release(_ context.Context, l lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.leases[l.key]; ok && held.token == l.token {
		delete(m.leases, l.key)
	}
	return nil
}
