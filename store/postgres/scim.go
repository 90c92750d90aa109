package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/keyset"
)

var _ store.SCIMStore = (*Store)(nil)

// QueryUsers returns the page of users q selects and how many users match
// its filter, both read from one snapshot.
func (s *Store) QueryUsers(ctx context.Context, q store.Query) ([]groupgate.User, int, error) {
	return runQuery(ctx, s, q, userScope, "users", "users u", "u.id", "u.created_at", userColumns, scanUser,
		func(u groupgate.User) (time.Time, string) { return u.CreatedAt, u.ID })
}

// QueryGroups returns the page of groups q selects and how many groups
// match its filter.
func (s *Store) QueryGroups(ctx context.Context, q store.Query) ([]groupgate.Group, int, error) {
	return runQuery(ctx, s, q, groupScope, "groups", "groups g", "g.id", "g.created_at", groupColumnsG, scanGroup,
		func(g groupgate.Group) (time.Time, string) { return g.CreatedAt, g.ID })
}

const groupColumnsG = `g.id, g.name, g.external_id, g.scim, g.created_at, g.updated_at, g.version`

// withTotal scans one more column, the window count, into total.
type withTotal struct {
	row   pgx.Row
	total *int64
}

func (w withTotal) Scan(dest ...any) error { return w.row.Scan(append(dest, w.total)...) }

// runQuery counts and pages in one snapshot. A filtered query counts with
// a window over the same scan that finds the page, so that a filter no
// index serves reads every row once, not twice; an unfiltered one counts
// separately, which is cheap, so that the page can come from an index.
func runQuery[T any](ctx context.Context, s *Store, q store.Query, sc scope, what, from, id, created, columns string,
	scan func(pgx.Row) (T, error), sortKey func(T) (time.Time, string)) ([]T, int, error) {
	var t translator
	where, err := t.where(sc, q.Filter)
	if err != nil {
		return nil, 0, err
	}
	// The count uses the filter's parameters only; the sort key's come
	// after them.
	countArgs := slices.Clone(t.args)
	order, err := t.orderBy(sc, q.SortBy, q.SortOrder, id, created)
	if err != nil {
		return nil, 0, err
	}
	limit, offset := page(store.ListOptions{Offset: q.Offset, Limit: q.Limit})
	// A deep page in the default order (an IdP walking every user) skips
	// its offset in a subquery that reads only IDs, which an index can
	// serve alone, and then reads the page's rows: the window count, which
	// read every matching row whole, made the page at 90,001 of 100,000
	// cost 0.2 s (issue 15). The count then runs on its own.
	deep := offset > 0 && q.SortBy == ""
	window := q.Filter != nil && !deep
	cols := columns
	if window {
		cols += ", count(*) OVER ()"
	}
	// The cursors of a listing: the same resource, filter and arguments,
	// keyed by the position where a page ended (store/internal/keyset).
	var walk string
	if q.SortBy == "" && limit != nil {
		walk = what + "\x00" + where + "\x00" + fmt.Sprintf("%#v", countArgs)
	}
	cur, byKeyset := keyset.Cursor{}, false
	if walk != "" && offset > 0 {
		cur, byKeyset = s.cursors.Take(keyset.Key(walk, offset), s.now())
	}
	// Every parameter bound must appear in the statement (PostgreSQL
	// cannot type an unused one), so each form binds its own.
	var stmt string
	switch {
	case byKeyset:
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + where + ` AND (` + created + `, ` + id + `) > (` +
			t.arg(cur.Created) + `::timestamptz, ` + t.arg(cur.ID) + `::text) ` + order + ` LIMIT ` + t.arg(limit) + `::bigint`
	case deep:
		bounds := ` LIMIT ` + t.arg(limit) + `::bigint OFFSET ` + t.arg(offset) + `::bigint`
		// The subquery's alias shadows the outer one; the default order
		// has no parameters of its own, so the text may appear twice.
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + id + ` IN (SELECT ` + id + ` FROM ` + from +
			` WHERE ` + where + ` ` + order + bounds + `) ` + order
	default:
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + where + ` ` + order +
			` LIMIT ` + t.arg(limit) + `::bigint OFFSET ` + t.arg(offset) + `::bigint`
	}
	count := `SELECT count(*) FROM ` + from + ` WHERE ` + where
	var (
		out   []T
		total int64
	)
	read := func(q querier) error {
		if !window {
			if err := q.QueryRow(ctx, count, countArgs...).Scan(&total); err != nil {
				return dbError(err, "count %s", what)
			}
			if offset >= int(total) && !byKeyset {
				out = []T{}
				return nil
			}
		}
		rows, err := q.Query(ctx, stmt, t.args...)
		if err != nil {
			return dbError(err, "query %s", what)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
			if window {
				return scan(withTotal{r, &total})
			}
			return scan(r)
		})
		if err != nil {
			return dbError(err, "query %s", what)
		}
		if !window || len(out) > 0 || offset == 0 {
			return nil
		}
		// The page is past the end: the window had no row to count on.
		if err := q.QueryRow(ctx, count, countArgs...).Scan(&total); err != nil {
			return dbError(err, "count %s", what)
		}
		return nil
	}
	if s.tx != nil {
		err = read(s.tx)
	} else {
		err = s.snapshot(ctx, read)
	}
	if err != nil {
		return nil, 0, err
	}
	if walk != "" && len(out) > 0 && len(out) == limit.(int) {
		created, id := sortKey(out[len(out)-1])
		s.cursors.Put(keyset.Key(walk, offset+len(out)), created, id, s.now())
	}
	return out, int(total), nil
}

// snapshot runs fn in a read-only REPEATABLE READ transaction, so that its
// statements see one state of the database.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbError(err, "begin read transaction")
	}
	defer rollback(ctx, tx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err, "commit read transaction")
	}
	return nil
}

// ListGroupMembersBySource returns the sorted IDs of users with group in
// their set from source.
func (s *Store) ListGroupMembersBySource(ctx context.Context, group string, source groupgate.MembershipSource) ([]string, error) {
	return membersBySource(ctx, s.q(), group, source)
}

func membersBySource(ctx context.Context, q querier, group string, source groupgate.MembershipSource) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT user_id FROM group_memberships WHERE group_name = $1 AND source = $2 ORDER BY user_id`,
		group, string(source))
	if err != nil {
		return nil, dbError(err, "list %s members of group %q", source, group)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbError(err, "list %s members of group %q", source, group)
	}
	return ids, nil
}

// UpdateGroupMembers locks the group row, so concurrent calls for one group
// run one after the other, each reading the members the previous one
// stored. It then locks the rows of every user whose memberships it
// changes, in ID order: UpdateGroupSet holds a user's lock while it
// rewrites that user's memberships, so the two never interleave on one
// user's rows and cannot deadlock.
func (s *Store) UpdateGroupMembers(ctx context.Context, groupID string,
	fn func(g *groupgate.Group, members []string) ([]string, error)) (groupgate.Group, []string, error) {
	return s.updateGroupMembers(ctx, groupID, fn, false)
}

// CreateGroupWithMembers creates g and sets its first SCIM members in one
// transaction, leaving the group at its first version.
func (s *Store) CreateGroupWithMembers(ctx context.Context, g groupgate.Group, members []string) (groupgate.Group, []string, error) {
	var (
		out      groupgate.Group
		affected []string
	)
	// A transaction of its own, or a savepoint in the caller's: a refused
	// create leaves the caller's transaction usable.
	err := s.atomic(ctx, func(q querier) error {
		txs := &Store{pool: s.pool, tx: q.(pgx.Tx), now: s.now, log: s.log}
		created, err := txs.CreateGroup(ctx, g)
		if err != nil {
			return err
		}
		out, affected, err = txs.updateGroupMembers(ctx, created.ID, func(*groupgate.Group, []string) ([]string, error) {
			return members, nil
		}, true)
		return err
	})
	if err != nil {
		return groupgate.Group{}, nil, err
	}
	return out, affected, nil
}

// updateGroupMembers is UpdateGroupMembers; first keeps the stored version
// and UpdatedAt, for the members of a group created in this transaction.
func (s *Store) updateGroupMembers(ctx context.Context, groupID string,
	fn func(g *groupgate.Group, members []string) ([]string, error), first bool) (groupgate.Group, []string, error) {
	var (
		out      groupgate.Group
		affected []string
	)
	err := s.atomic(ctx, func(q querier) error {
		cur, err := getGroup(ctx, q, groupID, `WHERE id = $1 FOR NO KEY UPDATE`, groupID)
		if err != nil {
			return err
		}
		members, err := membersBySource(ctx, q, cur.Name, groupgate.SourceSCIM)
		if err != nil {
			return err
		}
		g := cur
		g.SCIM = slices.Clone(cur.SCIM)
		next, err := fn(&g, slices.Clone(members))
		if err != nil {
			return err
		}
		if g.Name == "" {
			return invalid("group name is required")
		}
		next, err = memberSet(next)
		if err != nil {
			return err
		}
		now := s.stamp()
		affected = symmetricDifference(members, next)
		renamed := g.Name != cur.Name
		if renamed {
			if err := checkRename(ctx, q, cur.Name, g.Name); err != nil {
				return err
			}
			rows, err := q.Query(ctx, `SELECT DISTINCT user_id FROM group_memberships WHERE group_name = ANY($1::text[])`,
				[]string{cur.Name, g.Name})
			if err != nil {
				return dbError(err, "list members of group %q", cur.Name)
			}
			others, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return dbError(err, "list members of group %q", cur.Name)
			}
			affected = append(affected, others...)
		}
		// Lock (and so check) every user concerned, in ID order.
		lock := append(slices.Clone(next), affected...)
		slices.Sort(lock)
		lock = slices.Compact(lock)
		rows, err := q.Query(ctx, `SELECT id FROM users WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`, lock)
		if err != nil {
			return dbError(err, "lock members of group %s", groupID)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return dbError(err, "lock members of group %s", groupID)
		}
		if len(found) != len(lock) {
			for _, id := range next {
				if _, ok := slices.BinarySearch(found, id); !ok {
					return invalid("member %s of group %s is not a user", id, groupID)
				}
			}
		}

		g.ID, g.CreatedAt = cur.ID, cur.CreatedAt
		g.UpdatedAt, g.Version = now, cur.Version+1
		if first {
			g.UpdatedAt, g.Version = cur.UpdatedAt, cur.Version
		}
		if _, err := q.Exec(ctx, `UPDATE groups SET name = $2, external_id = $3, scim = $4, updated_at = $5, version = $6 WHERE id = $1`,
			g.ID, g.Name, g.ExternalID, nullJSON(g.SCIM), g.UpdatedAt, g.Version); err != nil {
			return dbError(err, "update group %s", groupID)
		}
		if renamed {
			if err := moveGroup(ctx, q, cur.Name, g.Name, now); err != nil {
				return err
			}
		}
		// Replace the SCIM members of the (new) name: rows kept keep
		// their AddedAt.
		if _, err := q.Exec(ctx, `DELETE FROM group_memberships WHERE group_name = $1 AND source = 'scim'
			AND NOT (user_id = ANY($2::text[]))`, g.Name, next); err != nil {
			return dbError(err, "remove members of group %s", groupID)
		}
		if _, err := q.Exec(ctx, `INSERT INTO group_memberships (user_id, group_name, source, added_at)
			SELECT id, $1, 'scim', $3 FROM unnest($2::text[]) AS t(id) ON CONFLICT DO NOTHING`, g.Name, next, now); err != nil {
			return dbError(err, "add members of group %s", groupID)
		}
		if len(g.SCIM) == 0 {
			g.SCIM = nil
		}
		out = g
		return nil
	})
	if err != nil {
		return groupgate.Group{}, nil, err
	}
	slices.Sort(affected)
	return out, slices.Compact(affected), nil
}

// checkRename refuses a rename when a resource maps both names: the moved
// mapping would collide.
func checkRename(ctx context.Context, q querier, old, new string) error {
	for _, t := range []mappingTable{orgMappings, repoMappings} {
		var parent string
		err := q.QueryRow(ctx, `SELECT a.`+t.parent+` FROM `+t.table+` a JOIN `+t.table+` b
			ON b.`+t.parent+` = a.`+t.parent+` AND b.group_name = $1 WHERE a.group_name = $2 LIMIT 1`, new, old).Scan(&parent)
		if err == nil {
			return groupgate.Errorf(groupgate.Conflict, "%s %s maps both %q and %q", t.noun, parent, old, new)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return dbError(err, "check %s mappings of group %q", t.noun, new)
		}
	}
	return nil
}

// moveGroup moves every membership and mapping of group old to new. A
// user already in new from the same source keeps that row.
func moveGroup(ctx context.Context, q querier, old, new string, now time.Time) error {
	if _, err := q.Exec(ctx, `DELETE FROM group_memberships o WHERE o.group_name = $1 AND EXISTS (
		SELECT 1 FROM group_memberships n WHERE n.user_id = o.user_id AND n.source = o.source AND n.group_name = $2)`, old, new); err != nil {
		return dbError(err, "move memberships of group %q", old)
	}
	if _, err := q.Exec(ctx, `UPDATE group_memberships SET group_name = $2 WHERE group_name = $1`, old, new); err != nil {
		return dbError(err, "move memberships of group %q", old)
	}
	for _, t := range []mappingTable{orgMappings, repoMappings} {
		if _, err := q.Exec(ctx, `UPDATE `+t.table+` SET group_name = $2, updated_at = $3 WHERE group_name = $1`, old, new, now); err != nil {
			return dbError(err, "move %s mappings of group %q", t.noun, old)
		}
	}
	return nil
}

// memberSet sorts and de-duplicates member IDs; an empty ID is Invalid.
func memberSet(ids []string) ([]string, error) {
	out := slices.Clone(ids)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] == "" {
		return nil, invalid("group member without a user ID")
	}
	return out, nil
}

// symmetricDifference returns the IDs in exactly one of the sorted sets a
// and b.
func symmetricDifference(a, b []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return out
}
