package sync

// WithCrashAfterCommit makes the Syncer stop after each commit, before any
// session rewrite, as if the process died there: the outbox entries stay.
func WithCrashAfterCommit() Option { return func(s *Syncer) { s.crashAfterCommit = true } }
