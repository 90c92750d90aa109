package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/groupset"
)

const groupColumns = `id, name, external_id, scim, created_at, updated_at, version`

func scanGroup(row pgx.Row) (groupgate.Group, error) {
	var g groupgate.Group
	var scim []byte
	if err := row.Scan(&g.ID, &g.Name, &g.ExternalID, &scim, &g.CreatedAt, &g.UpdatedAt, &g.Version); err != nil {
		return groupgate.Group{}, err
	}
	if len(scim) > 0 {
		g.SCIM = scim
	}
	g.CreatedAt, g.UpdatedAt = g.CreatedAt.UTC(), g.UpdatedAt.UTC()
	return g, nil
}

func getGroup(ctx context.Context, q querier, what, where string, args ...any) (groupgate.Group, error) {
	g, err := scanGroup(q.QueryRow(ctx, `SELECT `+groupColumns+` FROM groups `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.Group{}, notFound("group %s not found", what)
	}
	if err != nil {
		return groupgate.Group{}, dbError(err, "load group %s", what)
	}
	return g, nil
}

func (s *Store) CreateGroup(ctx context.Context, g groupgate.Group) (groupgate.Group, error) {
	if g.Name == "" {
		return groupgate.Group{}, invalid("group name is required")
	}
	if g.ID == "" {
		g.ID = store.NewID()
	}
	now := s.stamp()
	g.CreatedAt, g.UpdatedAt, g.Version = now, now, 1
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO groups (id, name, external_id, scim, created_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			g.ID, g.Name, g.ExternalID, nullJSON(g.SCIM), g.CreatedAt, g.UpdatedAt, g.Version)
		return err
	})
	if err != nil {
		return groupgate.Group{}, dbError(err, "create group %q", g.Name)
	}
	if len(g.SCIM) == 0 {
		g.SCIM = nil
	}
	return g, nil
}

func (s *Store) GetGroup(ctx context.Context, id string) (groupgate.Group, error) {
	return getGroup(ctx, s.q(), id, `WHERE id = $1`, id)
}

func (s *Store) GetGroupByName(ctx context.Context, name string) (groupgate.Group, error) {
	return getGroup(ctx, s.q(), "named "+name, `WHERE name = $1`, name)
}

func (s *Store) GetGroupByExternalID(ctx context.Context, externalID string) (groupgate.Group, error) {
	if externalID == "" {
		return groupgate.Group{}, notFound("group with an empty external ID not found")
	}
	return getGroup(ctx, s.q(), "with external ID "+externalID, `WHERE external_id = $1`, externalID)
}

// UpdateGroup locks the row (FOR NO KEY UPDATE: see UpdateGroupSet) so
// that no concurrent update is lost.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(*groupgate.Group) error) (groupgate.Group, error) {
	var out groupgate.Group
	err := s.atomic(ctx, func(q querier) error {
		cur, err := getGroup(ctx, q, id, `WHERE id = $1 FOR NO KEY UPDATE`, id)
		if err != nil {
			return err
		}
		next := cur
		next.SCIM = append([]byte(nil), cur.SCIM...)
		if err := fn(&next); err != nil {
			return err
		}
		if next.Name == "" {
			return invalid("group name is required")
		}
		next.ID, next.CreatedAt = cur.ID, cur.CreatedAt
		next.UpdatedAt = s.stamp()
		next.Version = cur.Version + 1
		_, err = q.Exec(ctx, `UPDATE groups SET name = $2, external_id = $3, scim = $4, updated_at = $5, version = $6 WHERE id = $1`,
			next.ID, next.Name, next.ExternalID, nullJSON(next.SCIM), next.UpdatedAt, next.Version)
		if err != nil {
			return dbError(err, "update group %s", id)
		}
		if len(next.SCIM) == 0 {
			next.SCIM = nil
		}
		out = next
		return nil
	})
	if err != nil {
		return groupgate.Group{}, err
	}
	return out, nil
}

// DeleteGroup leaves group sets alone: they refer to groups by name.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "groups", "group", id)
}

func (s *Store) ListGroups(ctx context.Context, opts store.ListOptions) ([]groupgate.Group, error) {
	limit, offset := page(opts)
	rows, err := s.q().Query(ctx, `SELECT `+groupColumns+` FROM groups ORDER BY name, id LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, dbError(err, "list groups")
	}
	groups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, dbError(err, "list groups")
	}
	return groups, nil
}

// GetGroupSet returns the user's memberships by group then source.
func (s *Store) GetGroupSet(ctx context.Context, userID string) (groupgate.GroupSet, error) {
	var b pgx.Batch
	set := queueGroupSetRead(&b, userID, false)
	if err := s.sendBatch(ctx, s.q(), &b); err != nil {
		return nil, dbError(err, "load group set of user %s", userID)
	}
	return set()
}

// sendBatch sends b in one round trip and runs its callbacks. The
// statements run one after the other; in READ COMMITTED each takes its
// own snapshot, as separate statements would.
func (s *Store) sendBatch(ctx context.Context, q querier, b *pgx.Batch) error {
	return q.SendBatch(ctx, b).Close()
}

// queueGroupSetRead queues the check that the user exists (locking the
// row when lock is set) and the read of the set, for one round trip
// instead of two; the returned function gives the result after the batch
// ran. The set is read by a statement after the lock's, so it sees what
// the transaction that held the lock committed.
func queueGroupSetRead(b *pgx.Batch, userID string, lock bool) func() (groupgate.GroupSet, error) {
	check := `SELECT id FROM users WHERE id = $1`
	if lock {
		check += ` FOR NO KEY UPDATE`
	}
	var (
		found bool
		set   = groupgate.GroupSet{}
	)
	b.Queue(check, userID).QueryRow(func(row pgx.Row) error {
		var id string
		switch e := row.Scan(&id); {
		case errors.Is(e, pgx.ErrNoRows):
		case e != nil:
			return e
		default:
			found = true
		}
		return nil
	})
	b.Queue(`SELECT group_name, source, added_at FROM group_memberships
		WHERE user_id = $1 ORDER BY group_name, source`, userID).Query(func(rows pgx.Rows) error {
		var m groupgate.Membership
		_, e := pgx.ForEachRow(rows, []any{&m.Group, &m.Source, &m.AddedAt}, func() error {
			m.AddedAt = m.AddedAt.UTC()
			set = append(set, m)
			return nil
		})
		return e
	})
	return func() (groupgate.GroupSet, error) {
		if !found {
			return nil, notFound("user %s not found", userID)
		}
		return set, nil
	}
}

// UpdateGroupSet locks the user row (FOR NO KEY UPDATE), so calls for one
// user run one after the other and each sees the set the previous one
// stored. The NO KEY strength still serializes them but, unlike FOR UPDATE,
// does not block (or deadlock with) transactions that merely insert rows
// referencing the user, such as a manual role.
//
// Inside a transaction it works in a savepoint, as every write does, but
// sends the savepoint with the lock and the read, and its release with the
// writes: two round trips, where separate statements took four to six (a
// login of a user in 1,000 groups spent a third of its round trips here,
// issue 15).
func (s *Store) UpdateGroupSet(ctx context.Context, userID string, fn func(groupgate.GroupSet) (groupgate.GroupSet, error)) (groupgate.GroupSet, error) {
	if s.tx == nil {
		var out groupgate.GroupSet
		err := s.InTx(ctx, func(tx store.Store) error {
			var err error
			out, err = tx.UpdateGroupSet(ctx, userID, fn)
			return err
		})
		return out, err
	}
	const sp = "groupgate_group_set"
	var b pgx.Batch
	b.Queue(`SAVEPOINT ` + sp)
	read := queueGroupSetRead(&b, userID, true)
	if err := s.sendBatch(ctx, s.tx, &b); err != nil {
		return nil, s.rollbackTo(ctx, sp, dbError(err, "load group set of user %s", userID))
	}
	cur, err := read()
	if err != nil {
		return nil, s.rollbackTo(ctx, sp, err)
	}
	next, err := fn(cur)
	if err == nil {
		next, err = s.checkGroupSet(next)
	}
	if err != nil {
		return nil, s.rollbackTo(ctx, sp, err)
	}
	// Only what changed is written: every login rewrites the set,
	// usually to the same groups, and deleting and inserting a
	// thousand unchanged rows per login left as many dead rows and
	// index entries behind (issue 15).
	removed, added := groupset.Diff(cur, next)
	b = pgx.Batch{}
	if len(removed) > 0 {
		groups, sources, _ := columns(removed)
		// One statement for the whole change, whatever its size.
		b.Queue(`DELETE FROM group_memberships WHERE user_id = $1
			AND (group_name, source) IN (SELECT g, src FROM unnest($2::text[], $3::text[]) AS t(g, src))`,
			userID, groups, sources)
	}
	if len(added) > 0 {
		groups, sources, at := columns(added)
		b.Queue(`INSERT INTO group_memberships (user_id, group_name, source, added_at)
			SELECT $1, g, src, a FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS t(g, src, a)`,
			userID, groups, sources, at)
	}
	b.Queue(`RELEASE SAVEPOINT ` + sp)
	if err := s.sendBatch(ctx, s.tx, &b); err != nil {
		return nil, s.rollbackTo(ctx, sp, dbError(err, "replace group set of user %s", userID))
	}
	return next, nil
}

// rollbackTo undoes the work since savepoint sp and releases it, so that
// the caller's transaction stays usable after err, which it returns (or
// the rollback's failure with it).
func (s *Store) rollbackTo(ctx context.Context, sp string, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var b pgx.Batch
	b.Queue(`ROLLBACK TO SAVEPOINT ` + sp)
	b.Queue(`RELEASE SAVEPOINT ` + sp)
	if rerr := s.sendBatch(ctx, s.tx, &b); rerr != nil {
		return errors.Join(err, dbError(rerr, "roll back to savepoint"))
	}
	return err
}

// columns splits memberships into the arrays unnest reads.
func columns(set groupgate.GroupSet) (groups, sources []string, added []time.Time) {
	groups, sources, added = make([]string, len(set)), make([]string, len(set)), make([]time.Time, len(set))
	for i, m := range set {
		groups[i], sources[i], added[i] = m.Group, string(m.Source), m.AddedAt
	}
	return groups, sources, added
}

// checkGroupSet refuses what the schema would, with a clear message, stamps
// entries without AddedAt and sorts the set as it reads back.
func (s *Store) checkGroupSet(set groupgate.GroupSet) (groupgate.GroupSet, error) {
	now := s.stamp()
	out := make(groupgate.GroupSet, 0, len(set))
	type key struct {
		group  string
		source groupgate.MembershipSource
	}
	seen := make(map[key]bool, len(set))
	for _, m := range set {
		if m.Group == "" {
			return nil, invalid("group set entry without a group name")
		}
		if m.Source != groupgate.SourceLogin && m.Source != groupgate.SourceSCIM {
			return nil, invalid("group set entry %q: unknown source %q", m.Group, m.Source)
		}
		k := key{m.Group, m.Source}
		if seen[k] {
			return nil, invalid("group set lists %q from %s twice", m.Group, m.Source)
		}
		seen[k] = true
		if m.AddedAt.IsZero() {
			m.AddedAt = now
		} else {
			m.AddedAt = norm(m.AddedAt)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b groupgate.Membership) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(string(a.Source), string(b.Source))
	})
	return out, nil
}

func (s *Store) ListGroupMembers(ctx context.Context, group string) ([]string, error) {
	rows, err := s.q().Query(ctx, `SELECT DISTINCT user_id FROM group_memberships WHERE group_name = $1 ORDER BY user_id`, group)
	if err != nil {
		return nil, dbError(err, "list members of group %q", group)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbError(err, "list members of group %q", group)
	}
	return ids, nil
}
