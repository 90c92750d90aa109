package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

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
	return runQuery(ctx, s, q, groupScope, "groups", "groups g", "g.id", "g.created_at", groupColumns, scanGroup,
		func(g groupgate.Group) (time.Time, string) { return g.CreatedAt, g.ID })
}

// rowScanner is what scanUser and scanGroup read from.
type rowScanner = interface{ Scan(...any) error }

// withTotal scans one more column, the window count, into total.
type withTotal struct {
	rows  *sql.Rows
	total *int
}

func (w withTotal) Scan(dest ...any) error { return w.rows.Scan(append(dest, w.total)...) }

// runQuery counts and pages in one snapshot. A filtered query counts with
// a window over the same scan that finds the page, so that a filter no
// index serves reads every row once, not twice; an unfiltered one counts
// separately, which is cheap, so that the page can come from an index.
//
// A deep page in the default order (an IdP walking every user) is
// different (issue 15): the next page of a walk continues after the last
// row of the page before (keyset.Cursors), and any other skips its offset
// in a subquery that reads only IDs, from whichever end is nearer, which
// an index such as users_active_created serves alone, before reading the
// page's rows; the
// window count would read every matching row whole. Its count runs on
// its own.
func runQuery[T any](ctx context.Context, s *Store, q store.Query, sc scope, what, from, id, created, columns string,
	scan func(rowScanner) (T, error), sortKey func(T) (time.Time, string)) ([]T, int, error) {
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
	deep := offset > 0 && q.SortBy == ""
	window := q.Filter != nil && !deep
	cols := columns
	if window {
		cols += ", count(*) OVER ()"
	}
	// The cursors of a listing: the same resource, filter and arguments.
	var walk string
	if q.SortBy == "" && limit > 0 {
		walk = what + "\x00" + where + "\x00" + fmt.Sprintf("%#v", countArgs)
	}
	cur, resume := keyset.Cursor{}, false
	if walk != "" && offset > 0 {
		cur, resume = s.cursors.Take(keyset.Key(walk, offset), s.now())
	}
	var stmt, fromEnd string
	switch {
	case resume:
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + where + ` AND (` + created + `, ` + id + `) > (` +
			t.arg(micros(cur.Created)) + `, ` + t.arg(cur.ID) + `) ` + order + ` LIMIT ` + t.arg(limit)
	case deep:
		// The subquery's alias shadows the outer one; the default order
		// has no parameters, so its text may appear twice.
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + id + ` IN (SELECT ` + id + ` FROM ` + from +
			` WHERE ` + where + ` ` + order + ` LIMIT ` + t.arg(limit) + ` OFFSET ` + t.arg(offset) + `) ` + order
		if limit > 0 {
			// The same page counted from the end, for a page nearer the
			// end than the start: the same parameters, other values.
			n := len(t.args)
			fromEnd = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + id + ` IN (SELECT ` + id + ` FROM ` + from +
				` WHERE ` + where + ` ORDER BY ` + created + ` DESC, ` + id + ` DESC LIMIT ` + dialect{}.Placeholder(n-1) +
				` OFFSET ` + dialect{}.Placeholder(n) + `) ` + order
		}
	default:
		stmt = `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + where + ` ` + order +
			` LIMIT ` + t.arg(limit) + ` OFFSET ` + t.arg(offset)
	}
	count, countArgs, err := countQuery(sc, from, where, q.Filter, countArgs)
	if err != nil {
		return nil, 0, err
	}
	var (
		out   []T
		total int
	)
	err = s.snapshot(ctx, func(r *Store) error {
		if !window {
			if err := r.reader().QueryRowContext(ctx, count, countArgs...).Scan(&total); err != nil {
				return r.wrap(ctx, err, "count %s", what)
			}
			if offset >= total && !resume {
				out = []T{}
				return nil
			}
		}
		stmt, args := stmt, t.args
		if fromEnd != "" && !resume && offset > total-offset {
			// SQLite skips an offset by stepping through the index, so
			// the page at 90,001 of 100,000 steps through 9,900 entries
			// backwards instead of 90,000 forwards; exact, since the
			// count was taken in this snapshot.
			rows := min(limit, total-offset)
			stmt, args = fromEnd, slices.Clone(t.args)
			args[len(args)-2], args[len(args)-1] = rows, total-offset-rows
		}
		var err error
		out, err = query(ctx, r, func(rows *sql.Rows) (T, error) {
			if window {
				return scan(withTotal{rows, &total})
			}
			return scan(rows)
		}, what, stmt, args...)
		if err != nil || !window || len(out) > 0 || offset == 0 {
			return err
		}
		// The page is past the end: the window had no row to count on.
		if err := r.reader().QueryRowContext(ctx, count, countArgs...).Scan(&total); err != nil {
			return r.wrap(ctx, err, "count %s", what)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if walk != "" && len(out) == limit {
		created, id := sortKey(out[len(out)-1])
		s.cursors.Put(keyset.Key(walk, offset+len(out)), created, id, s.now())
	}
	return out, total, nil
}

// countQuery is the statement that counts the rows of from where selects
// (f translated, with args). `active eq true`, the filter of an IdP
// walking its active users, counts as every user less the inactive
// ones: SQLite counts a whole table from its pages' cell counts and the
// few inactive users from users_active_created, where counting the
// active ones steps through nearly all of that index (about 10 ms per
// 100,000 users, each page of a walk; issue 15). Exact, in the same
// snapshot: active is never NULL.
func countQuery(sc scope, from, where string, f store.Filter, args []any) (string, []any, error) {
	if c, ok := f.(store.Compare); ok && sc == userScope && c.Attr == "active" && c.Op == store.OpEq && c.Value == true {
		var t translator
		inactive, err := t.where(sc, store.Compare{Attr: "active", Op: store.OpEq, Value: false})
		if err != nil {
			return "", nil, err
		}
		return `SELECT (SELECT count(*) FROM users) - (SELECT count(*) FROM users u WHERE ` + inactive + `)`, t.args, nil
	}
	return `SELECT count(*) FROM ` + from + ` WHERE ` + where, args, nil
}

// ListGroupMembersBySource returns the sorted IDs of users with group in
// their set from source.
func (s *Store) ListGroupMembersBySource(ctx context.Context, group string, source groupgate.MembershipSource) ([]string, error) {
	return s.membersBySource(ctx, s.reader(), group, source)
}

func (s *Store) membersBySource(ctx context.Context, q queryer, group string, source groupgate.MembershipSource) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM group_memberships WHERE group_name = ? AND source = ? ORDER BY user_id`,
		group, string(source))
	if err != nil {
		return nil, s.wrap(ctx, err, "list %s members of group %q", source, group)
	}
	ids, err := scanAll(rows, func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	})
	if err != nil {
		return nil, s.wrap(ctx, err, "list %s members of group %q", source, group)
	}
	return ids, nil
}

// UpdateGroupMembers changes a group and its SCIM members in one write
// transaction; the single write connection serializes concurrent calls.
func (s *Store) UpdateGroupMembers(ctx context.Context, groupID string,
	fn func(g *groupgate.Group, members []string) ([]string, error)) (groupgate.Group, []string, error) {
	return s.updateGroupMembers(ctx, groupID, fn, false)
}

// CreateGroupWithMembers creates g and sets its first SCIM members in one
// write transaction, leaving the group at its first version.
func (s *Store) CreateGroupWithMembers(ctx context.Context, g groupgate.Group, members []string) (groupgate.Group, []string, error) {
	var (
		out      groupgate.Group
		affected []string
	)
	err := s.InTx(ctx, func(tx store.Store) error {
		created, err := tx.CreateGroup(ctx, g)
		if err != nil {
			return err
		}
		out, affected, err = tx.(*Store).updateGroupMembers(ctx, created.ID, func(*groupgate.Group, []string) ([]string, error) {
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
	err := s.write(ctx, func(q queryer) error {
		cur, err := s.getGroup(ctx, q, groupID, `id = ?`, groupID)
		if err != nil {
			return err
		}
		members, err := s.membersBySource(ctx, q, cur.Name, groupgate.SourceSCIM)
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
			return groupgate.Errorf(groupgate.Invalid, "group name is required")
		}
		scim, err := jsonText("SCIM attributes", g.SCIM)
		if err != nil {
			return err
		}
		next, err = memberSet(next)
		if err != nil {
			return err
		}
		nextJSON, err := json.Marshal(next)
		if err != nil {
			return groupgate.WrapError(groupgate.Internal, err, "encode members of group %s", groupID)
		}
		var missing string
		err = q.QueryRowContext(ctx, `SELECT value FROM json_each(?) WHERE value NOT IN (SELECT id FROM users) LIMIT 1`,
			string(nextJSON)).Scan(&missing)
		if err == nil {
			return groupgate.Errorf(groupgate.Invalid, "member %s of group %s is not a user", missing, groupID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return s.wrap(ctx, err, "check members of group %s", groupID)
		}

		now := s.stamp()
		g.ID, g.CreatedAt = cur.ID, cur.CreatedAt
		g.UpdatedAt, g.Version = now, cur.Version+1
		if first {
			g.UpdatedAt, g.Version = cur.UpdatedAt, cur.Version
		}
		g.SCIM = fromJSONText(scim)
		affected = symmetricDifference(members, next)
		renamed := g.Name != cur.Name
		if renamed {
			moved, err := s.renameGroup(ctx, q, cur.Name, g.Name, now)
			if err != nil {
				return err
			}
			affected = append(affected, moved...)
		}
		if _, err := q.ExecContext(ctx, `UPDATE groups SET name = ?, external_id = ?, scim = ?, updated_at = ?, version = ? WHERE id = ?`,
			g.Name, g.ExternalID, scim, micros(g.UpdatedAt), g.Version, g.ID); err != nil {
			return s.wrap(ctx, err, "update group %s", groupID)
		}
		// Replace the SCIM members of the (new) name: rows kept keep
		// their AddedAt.
		if _, err := q.ExecContext(ctx, `DELETE FROM group_memberships WHERE group_name = ? AND source = 'scim'
			AND user_id NOT IN (SELECT value FROM json_each(?))`, g.Name, string(nextJSON)); err != nil {
			return s.wrap(ctx, err, "remove members of group %s", groupID)
		}
		if _, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO group_memberships (user_id, group_name, source, added_at)
			SELECT value, ?, 'scim', ? FROM json_each(?)`, g.Name, micros(now), string(nextJSON)); err != nil {
			return s.wrap(ctx, err, "add members of group %s", groupID)
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

// renameGroup moves every membership and mapping of group old to name
// new and returns the users who were in either name: the roles the moved
// mappings grant change for all of them. Conflict when a resource maps
// both names.
func (s *Store) renameGroup(ctx context.Context, q queryer, old, new string, now time.Time) ([]string, error) {
	for _, t := range []mappingTable{orgMappings, repoMappings} {
		var owner string
		err := q.QueryRowContext(ctx, `SELECT a.`+t.ownerCol+` FROM `+t.table+` a JOIN `+t.table+` b
			ON b.`+t.ownerCol+` = a.`+t.ownerCol+` AND b.group_name = ? WHERE a.group_name = ? LIMIT 1`, new, old).Scan(&owner)
		if err == nil {
			return nil, groupgate.Errorf(groupgate.Conflict, "%s %s maps both %q and %q", t.ownerNoun, owner, old, new)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, s.wrap(ctx, err, "check %ss of group %q", t.noun, new)
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT user_id FROM group_memberships WHERE group_name IN (?, ?)`, old, new)
	if err != nil {
		return nil, s.wrap(ctx, err, "list members of group %q", old)
	}
	users, err := scanAll(rows, func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	})
	if err != nil {
		return nil, s.wrap(ctx, err, "list members of group %q", old)
	}
	// A user already in the new name from the same source keeps that
	// row; the old one goes.
	if _, err := q.ExecContext(ctx, `UPDATE OR IGNORE group_memberships SET group_name = ? WHERE group_name = ?`, new, old); err != nil {
		return nil, s.wrap(ctx, err, "move memberships of group %q", old)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM group_memberships WHERE group_name = ?`, old); err != nil {
		return nil, s.wrap(ctx, err, "move memberships of group %q", old)
	}
	for _, t := range []mappingTable{orgMappings, repoMappings} {
		if _, err := q.ExecContext(ctx, `UPDATE `+t.table+` SET group_name = ?, updated_at = ? WHERE group_name = ?`,
			new, micros(now), old); err != nil {
			return nil, s.wrap(ctx, err, "move %ss of group %q", t.noun, old)
		}
	}
	return users, nil
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
		return nil, groupgate.Errorf(groupgate.Invalid, "group member without a user ID")
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
