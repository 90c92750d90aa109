package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// AppendAudit takes the event's ID from the identity column, so IDs grow
// across replicas without coordination.
//
// Unlike other writes it runs without a savepoint inside InTx: the one
// audit writer (the syncer) gives its transaction up when an append
// fails, so a savepoint would only
// add two round trips to every audited change (issue 15: a SCIM create
// made ten). A failure here leaves the caller's transaction aborted.
func (s *Store) AppendAudit(ctx context.Context, ev groupgate.AuditEvent) (groupgate.AuditEvent, error) {
	if ev.At.IsZero() {
		ev.At = s.stamp()
	} else {
		ev.At = norm(ev.At)
	}
	err := func(q querier) error {
		return q.QueryRow(ctx, `INSERT INTO audit_events (actor, action, target_type, target_id, before, after, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			ev.Actor, ev.Action, ev.TargetType, ev.TargetID, nullJSON(ev.Before), nullJSON(ev.After), ev.At).Scan(&ev.ID)
	}(s.q())
	if err != nil {
		return groupgate.AuditEvent{}, dbError(err, "append audit event %q", ev.Action)
	}
	if len(ev.Before) == 0 {
		ev.Before = nil
	}
	if len(ev.After) == 0 {
		ev.After = nil
	}
	return ev, nil
}

func (s *Store) ListAudit(ctx context.Context, afterID int64, limit int) ([]groupgate.AuditEvent, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	rows, err := s.q().Query(ctx, `SELECT id, actor, action, target_type, target_id, before, after, at FROM audit_events
		WHERE id > $1 ORDER BY id LIMIT $2`, afterID, lim)
	if err != nil {
		return nil, dbError(err, "list audit events")
	}
	evs, err := pgx.CollectRows(rows, scanAuditEvent)
	if err != nil {
		return nil, dbError(err, "list audit events")
	}
	return evs, nil
}

// SearchAudit: see store.AuditStore.
func (s *Store) SearchAudit(ctx context.Context, f store.AuditFilter, limit int) ([]groupgate.AuditEvent, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	where, args := []string{"TRUE"}, []any{}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"target_id", f.TargetID}} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	if f.BeforeID > 0 {
		args = append(args, f.BeforeID)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	args = append(args, lim)
	rows, err := s.q().Query(ctx, `SELECT id, actor, action, target_type, target_id, before, after, at FROM audit_events
		WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, dbError(err, "search audit events")
	}
	evs, err := pgx.CollectRows(rows, scanAuditEvent)
	if err != nil {
		return nil, dbError(err, "search audit events")
	}
	return evs, nil
}

// scanAuditEvent reads one row of the audit_events columns ListAudit and
// SearchAudit select, in that order.
func scanAuditEvent(r pgx.CollectableRow) (groupgate.AuditEvent, error) {
	var ev groupgate.AuditEvent
	var before, after []byte
	if err := r.Scan(&ev.ID, &ev.Actor, &ev.Action, &ev.TargetType, &ev.TargetID, &before, &after, &ev.At); err != nil {
		return groupgate.AuditEvent{}, err
	}
	if len(before) > 0 {
		ev.Before = before
	}
	if len(after) > 0 {
		ev.After = after
	}
	ev.At = ev.At.UTC()
	return ev, nil
}
