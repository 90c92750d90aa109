package refresh

// MemoryLen is how many states and leases a memory store holds, for
// tests that check nothing is left behind.
func MemoryLen(s Store) int {
	m := s.(*memoryStore)
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.states) + len(m.leases)
}
