package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/groupset"
)

const groupColumns = `id, name, external_id, scim, created_at, updated_at, version`

func scanGroup(row interface{ Scan(...any) error }) (groupgate.Group, error) {
	var (
		g                groupgate.Group
		scim             sql.NullString
		created, updated int64
	)
	if err := row.Scan(&g.ID, &g.Name, &g.ExternalID, &scim, &created, &updated, &g.Version); err != nil {
		return groupgate.Group{}, err
	}
	g.SCIM = fromJSONText(scim)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	return g, nil
}

func scanGroupRows(rows *sql.Rows) (groupgate.Group, error) { return scanGroup(rows) }

// CreateGroup stores g; Invalid without a name, Conflict when the name
// (case-sensitive) or external ID is taken.
func (s *Store) CreateGroup(ctx context.Context, g groupgate.Group) (groupgate.Group, error) {
	if g.Name == "" {
		return groupgate.Group{}, groupgate.Errorf(groupgate.Invalid, "group name is required")
	}
	scim, err := jsonText("SCIM attributes", g.SCIM)
	if err != nil {
		return groupgate.Group{}, err
	}
	if g.ID == "" {
		g.ID = store.NewID()
	}
	now := s.stamp()
	g.CreatedAt, g.UpdatedAt, g.Version = now, now, 1
	g.SCIM = fromJSONText(scim)
	err = s.write(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, `INSERT INTO groups (`+groupColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.Name, g.ExternalID, scim, micros(g.CreatedAt), micros(g.UpdatedAt), g.Version)
		if err != nil {
			return s.wrap(ctx, err, "create group %q", g.Name)
		}
		return nil
	})
	if err != nil {
		return groupgate.Group{}, err
	}
	return g, nil
}

func (s *Store) getGroup(ctx context.Context, q queryer, what, where string, args ...any) (groupgate.Group, error) {
	g, err := scanGroup(q.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups WHERE `+where, args...))
	if err != nil {
		return groupgate.Group{}, s.notFound(ctx, err, "group %s", what)
	}
	return g, nil
}

// GetGroup finds a group by ID.
func (s *Store) GetGroup(ctx context.Context, id string) (groupgate.Group, error) {
	return s.getGroup(ctx, s.reader(), id, `id = ?`, id)
}

// GetGroupByName finds a group by its exact name.
func (s *Store) GetGroupByName(ctx context.Context, name string) (groupgate.Group, error) {
	return s.getGroup(ctx, s.reader(), name, `name = ?`, name)
}

// GetGroupByExternalID finds a group by the IdP's SCIM externalId.
func (s *Store) GetGroupByExternalID(ctx context.Context, externalID string) (groupgate.Group, error) {
	if externalID == "" {
		return groupgate.Group{}, groupgate.Errorf(groupgate.NotFound, "group with empty external ID not found")
	}
	return s.getGroup(ctx, s.reader(), externalID, `external_id = ? AND external_id <> ''`, externalID)
}

// UpdateGroup runs fn on the current row and stores the result; fn's error
// is returned unchanged.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(*groupgate.Group) error) (groupgate.Group, error) {
	var out groupgate.Group
	err := s.write(ctx, func(q queryer) error {
		cur, err := s.getGroup(ctx, q, id, `id = ?`, id)
		if err != nil {
			return err
		}
		g := cur
		if err := fn(&g); err != nil {
			return err
		}
		if g.Name == "" {
			return groupgate.Errorf(groupgate.Invalid, "group name is required")
		}
		scim, err := jsonText("SCIM attributes", g.SCIM)
		if err != nil {
			return err
		}
		g.ID, g.CreatedAt = cur.ID, cur.CreatedAt
		g.UpdatedAt, g.Version = s.stamp(), cur.Version+1
		g.SCIM = fromJSONText(scim)
		_, err = q.ExecContext(ctx, `UPDATE groups SET name = ?, external_id = ?, scim = ?, updated_at = ?, version = ? WHERE id = ?`,
			g.Name, g.ExternalID, scim, micros(g.UpdatedAt), g.Version, g.ID)
		if err != nil {
			return s.wrap(ctx, err, "update group %s", id)
		}
		out = g
		return nil
	})
	if err != nil {
		return groupgate.Group{}, err
	}
	return out, nil
}

// DeleteGroup removes the group; group sets refer to names and stay.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, "group", id, `DELETE FROM groups WHERE id = ?`, id)
	})
}

// ListGroups orders by name then ID.
func (s *Store) ListGroups(ctx context.Context, opts store.ListOptions) ([]groupgate.Group, error) {
	limit, offset := page(opts)
	return query(ctx, s, scanGroupRows, "groups",
		`SELECT `+groupColumns+` FROM groups ORDER BY name, id LIMIT ? OFFSET ?`, limit, offset)
}

func scanMembership(rows *sql.Rows) (groupgate.Membership, error) {
	var (
		m     groupgate.Membership
		added int64
	)
	err := rows.Scan(&m.Group, &m.Source, &added)
	m.AddedAt = fromMicros(added)
	return m, err
}

func (s *Store) groupSet(ctx context.Context, q queryer, userID string) (groupgate.GroupSet, error) {
	var one int
	if err := q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one); err != nil {
		return nil, s.notFound(ctx, err, "user %s", userID)
	}
	rows, err := q.QueryContext(ctx,
		`SELECT group_name, source, added_at FROM group_memberships WHERE user_id = ? ORDER BY group_name, source`, userID)
	if err != nil {
		return nil, s.wrap(ctx, err, "load group set of user %s", userID)
	}
	set, err := scanAll(rows, scanMembership)
	if err != nil {
		return nil, s.wrap(ctx, err, "load group set of user %s", userID)
	}
	return set, nil
}

// GetGroupSet returns the user's memberships ordered by group then source;
// NotFound when the user does not exist.
func (s *Store) GetGroupSet(ctx context.Context, userID string) (groupgate.GroupSet, error) {
	return s.groupSet(ctx, s.reader(), userID)
}

// UpdateGroupSet replaces the user's set by fn's result inside one write
// transaction; the single write connection and BEGIN IMMEDIATE serialize
// concurrent calls, so none is lost.
func (s *Store) UpdateGroupSet(ctx context.Context, userID string, fn func(groupgate.GroupSet) (groupgate.GroupSet, error)) (groupgate.GroupSet, error) {
	var out groupgate.GroupSet
	err := s.write(ctx, func(q queryer) error {
		cur, err := s.groupSet(ctx, q, userID)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		set, err := s.normalizeGroupSet(next)
		if err != nil {
			return err
		}
		// Only what changed is written (a login rewrites the set, usually
		// to the same groups).
		removed, added := groupset.Diff(cur, set)
		for _, m := range removed {
			if _, err := q.ExecContext(ctx, `DELETE FROM group_memberships WHERE user_id = ? AND group_name = ? AND source = ?`,
				userID, m.Group, string(m.Source)); err != nil {
				return s.wrap(ctx, err, "remove group %q of user %s", m.Group, userID)
			}
		}
		for _, m := range added {
			if _, err := q.ExecContext(ctx, `INSERT INTO group_memberships (user_id, group_name, source, added_at) VALUES (?, ?, ?, ?)`,
				userID, m.Group, string(m.Source), micros(m.AddedAt)); err != nil {
				return s.wrap(ctx, err, "store group %q of user %s", m.Group, userID)
			}
		}
		out = set
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// normalizeGroupSet checks a new set, stamps missing AddedAt and sorts it
// the way GetGroupSet returns it.
func (s *Store) normalizeGroupSet(in groupgate.GroupSet) (groupgate.GroupSet, error) {
	now := s.stamp()
	set := make(groupgate.GroupSet, 0, len(in))
	type key struct {
		group  string
		source groupgate.MembershipSource
	}
	seen := make(map[key]struct{}, len(in))
	for _, m := range in {
		if m.Group == "" {
			return nil, groupgate.Errorf(groupgate.Invalid, "group set entry without a group name")
		}
		if m.Source != groupgate.SourceLogin && m.Source != groupgate.SourceSCIM {
			return nil, groupgate.Errorf(groupgate.Invalid, "group %q has unknown source %q", m.Group, m.Source)
		}
		k := key{m.Group, m.Source}
		if _, dup := seen[k]; dup {
			return nil, groupgate.Errorf(groupgate.Invalid, "group %q appears twice with source %q", m.Group, m.Source)
		}
		seen[k] = struct{}{}
		if m.AddedAt.IsZero() {
			m.AddedAt = now
		} else {
			m.AddedAt = fromMicros(micros(m.AddedAt))
		}
		set = append(set, m)
	}
	slices.SortFunc(set, func(a, b groupgate.Membership) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(string(a.Source), string(b.Source))
	})
	return set, nil
}

// ListGroupMembers returns the sorted, distinct IDs of users with group in
// their set from any source.
func (s *Store) ListGroupMembers(ctx context.Context, group string) ([]string, error) {
	return query(ctx, s, func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	}, "members of group "+group,
		`SELECT DISTINCT user_id FROM group_memberships WHERE group_name = ? ORDER BY user_id`, group)
}
