package store

import (
	"context"
	"time"

	"github.com/groupgate/groupgate"
)

// OutboxEntry records, in the transaction of an access change, whose live
// sessions must be rewritten once it commits: the users named, and every
// member of the groups named (resolved when the entry is processed). It
// stays until a push of the recomputed snapshots succeeds, so a crash
// between commit and push cannot leave sessions stale.
type OutboxEntry struct {
	ID      int64
	UserIDs []string
	Groups  []string
	// CreatedAt is set by the store.
	CreatedAt time.Time
	// Attempts counts claims: how many times a runner took the entry.
	Attempts int
	// ClaimedUntil is the end of the current claim's lease; zero when
	// never claimed.
	ClaimedUntil time.Time
}

// OutboxStore is the durable queue of pending session rewrites (table
// sync_outbox). Every method returns the codes listed at the top of this
// file.
type OutboxStore interface {
	// EnqueueOutbox stores e with a new increasing ID; call it on the Store
	// of the transaction that makes the change. Invalid when e names
	// neither users nor groups.
	EnqueueOutbox(ctx context.Context, e OutboxEntry) (OutboxEntry, error)
	// EnqueueOutboxAudited is EnqueueOutbox and AppendAudit of ev
	// together, in one round trip where the backend can (every access
	// change writes both last in its transaction; a login's latency is
	// its round trips, issue 15). It returns the entry; ev's ID is not
	// returned.
	EnqueueOutboxAudited(ctx context.Context, e OutboxEntry, ev groupgate.AuditEvent) (OutboxEntry, error)
	// ListOutbox returns up to limit (0: all) pending entries, oldest
	// first, claimed or not.
	ListOutbox(ctx context.Context, limit int) ([]OutboxEntry, error)
	// ClaimOutbox takes up to limit of the oldest entries created at or
	// before createdBefore whose lease has ended by now, sets their lease
	// to now+lease and counts an attempt, and returns them oldest first.
	// Runners on several replicas never get the same entry while its lease
	// runs (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer).
	ClaimOutbox(ctx context.Context, now, createdBefore time.Time, lease time.Duration, limit int) ([]OutboxEntry, error)
	// OutboxStats counts the pending entries and returns the creation time
	// of the oldest (zero when there is none), for the depth and age
	// metrics an operator alerts on.
	OutboxStats(ctx context.Context) (pending int, oldest time.Time, err error)
	// AckOutbox deletes the entry: its push succeeded. Acknowledging an
	// entry that is gone (acknowledged by another runner) is not an error.
	AckOutbox(ctx context.Context, id int64) error
}
