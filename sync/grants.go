package sync

import (
	"context"
	"errors"

	"github.com/groupgate/groupgate/store"
)

// errUnchanged, returned by a commitGrant change, says the change has
// already taken effect: the transaction, which wrote nothing, is rolled
// back, and there is no outbox entry, audit event or push. commitGrant
// then returns nil, so that an idempotent retry succeeds.
var errUnchanged = errors.New("sync: nothing to change")

// grantChange describes one change to who holds a role where: the audit
// event it writes and the users and groups whose access it changes.
type grantChange struct {
	actor, action, targetType, targetID string
	users, groups                       []string
}

// commitGrant runs change in one transaction with the outbox entry for the
// users and groups and the audit event of change's before/after views
// (nil: absent), then pushes the new access of the users and of the
// groups' members.
func (s *Syncer) commitGrant(ctx context.Context, g grantChange, change func(tx store.Store) (before, after any, err error)) error {
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		before, after, err := change(tx)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, &entry, g.users, g.groups); err != nil {
			return err
		}
		return s.audit(ctx, tx, g.actor, g.action, g.targetType, g.targetID, before, after)
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	s.settle(ctx, entry, func() bool { return s.syncGroupMembers(ctx, g.groups, g.users...) })
	return nil
}
