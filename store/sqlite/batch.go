package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

var _ store.BatchReader = (*Store)(nil)

// idList encodes IDs as one JSON array for json_each, so that any number
// of them binds a single parameter (SQLite caps bound parameters).
func idList(ids []string) (string, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return "", groupgate.WrapError(groupgate.Internal, err, "encode %d IDs", len(ids))
	}
	return string(b), nil
}

// GetGroupSets reads every user's set in one statement; the LEFT JOIN
// keeps users without groups so that they are told apart from unknown IDs.
func (s *Store) GetGroupSets(ctx context.Context, userIDs []string) (map[string]groupgate.GroupSet, error) {
	out := make(map[string]groupgate.GroupSet, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	arg, err := idList(userIDs)
	if err != nil {
		return nil, err
	}
	rows, err := s.reader().QueryContext(ctx, `SELECT u.id, m.group_name, m.source, m.added_at
		FROM users u LEFT JOIN group_memberships m ON m.user_id = u.id
		WHERE u.id IN (SELECT value FROM json_each(?))
		ORDER BY u.id, m.group_name, m.source`, arg)
	if err != nil {
		return nil, s.wrap(ctx, err, "load group sets of %d users", len(userIDs))
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			userID     string
			group, src sql.NullString // NULL for a user without groups
			added      sql.NullInt64
		)
		if err := rows.Scan(&userID, &group, &src, &added); err != nil {
			return nil, s.wrap(ctx, err, "load group sets of %d users", len(userIDs))
		}
		set, ok := out[userID]
		if !ok {
			set = groupgate.GroupSet{}
		}
		if group.Valid {
			set = append(set, groupgate.Membership{Group: group.String, Source: groupgate.MembershipSource(src.String), AddedAt: fromMicros(added.Int64)})
		}
		out[userID] = set
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(ctx, err, "load group sets of %d users", len(userIDs))
	}
	return out, nil
}

// ListOrgMembersOfUsers orders by user ID then organization ID.
func (s *Store) ListOrgMembersOfUsers(ctx context.Context, userIDs []string) ([]groupgate.OrgMember, error) {
	got, err := s.grantsOfUsers(ctx, orgMembers, userIDs)
	return convertAll(got, err, toOrgMember)
}

// ListRepoContributorsOfUsers orders by user ID then repository ID.
func (s *Store) ListRepoContributorsOfUsers(ctx context.Context, userIDs []string) ([]groupgate.RepoContributor, error) {
	got, err := s.grantsOfUsers(ctx, repoContributors, userIDs)
	return convertAll(got, err, toRepoContributor)
}

// grantsOfUsers lists the grants of users in one statement; the
// (user_id, resource) index serves both the filter and the order.
func (s *Store) grantsOfUsers(ctx context.Context, t grantTable, userIDs []string) ([]grant, error) {
	if len(userIDs) == 0 {
		return []grant{}, nil
	}
	arg, err := idList(userIDs)
	if err != nil {
		return nil, err
	}
	return query(ctx, s, scanGrantRows, t.noun+"s",
		`SELECT `+t.columns()+` FROM `+t.table+`
		WHERE user_id IN (SELECT value FROM json_each(?))
		ORDER BY user_id, `+t.resourceCol, arg)
}

// ListBaseRoleRepositories reads the repositories of the organizations of
// orgIDs that have a base role in one statement.
func (s *Store) ListBaseRoleRepositories(ctx context.Context, orgIDs []string) ([]store.BaseRoleRepository, error) {
	if len(orgIDs) == 0 {
		return []store.BaseRoleRepository{}, nil
	}
	arg, err := idList(orgIDs)
	if err != nil {
		return nil, err
	}
	return s.baseRoleRepositories(ctx, `SELECT value FROM json_each(?)`, arg)
}

// baseRoleRepositories lists the repositories under a base role of the
// organizations orgIDs (a query over args) selects.
func (s *Store) baseRoleRepositories(ctx context.Context, orgIDs string, args ...any) ([]store.BaseRoleRepository, error) {
	return query(ctx, s, func(rows *sql.Rows) (store.BaseRoleRepository, error) {
		var (
			b       store.BaseRoleRepository
			created int64
		)
		if err := rows.Scan(&b.Repository.ID, &b.Repository.OrganizationID, &b.Repository.OrganizationName, &b.Repository.Name,
			&b.Repository.Visibility, &created, &b.BaseRole); err != nil {
			return store.BaseRoleRepository{}, err
		}
		b.Repository.CreatedAt = fromMicros(created)
		return b, nil
	}, "repositories under a base role",
		`SELECT r.id, r.organization_id, o.name, r.name, r.visibility, r.created_at, o.repository_base_role
		FROM repositories r JOIN organizations o ON o.id = r.organization_id
		WHERE o.repository_base_role <> '' AND o.id IN (`+orgIDs+`)
		ORDER BY r.organization_id, r.name, r.id`, args...)
}

// GetUserGrants makes the calls it stands for in one read snapshot: the
// database is in process, so there are no round trips to save, but a
// concurrent change is then seen whole or not at all.
func (s *Store) GetUserGrants(ctx context.Context, userID string) (store.UserGrants, error) {
	var g store.UserGrants
	err := s.snapshot(ctx, func(r *Store) error {
		var err error
		if g.Groups, err = r.GetGroupSet(ctx, userID); err != nil {
			return err
		}
		if g.OrgMappings, g.RepoMappings, err = r.MappingsForGroups(ctx, g.Groups.Names()); err != nil {
			return err
		}
		if g.OrgMembers, err = r.ListUserOrgMembers(ctx, userID); err != nil {
			return err
		}
		if g.RepoContributors, err = r.ListUserRepoContributors(ctx, userID); err != nil {
			return err
		}
		g.BaseRoleRepositories, err = r.baseRoleRepositories(ctx, `
			SELECT m.organization_id FROM org_mappings m
			WHERE m.group_name IN (SELECT group_name FROM group_memberships WHERE user_id = ?1)
			UNION SELECT mr.organization_id FROM repo_mappings m JOIN repositories mr ON mr.id = m.repository_id
			WHERE m.group_name IN (SELECT group_name FROM group_memberships WHERE user_id = ?1)
			UNION SELECT organization_id FROM org_members WHERE user_id = ?1
			UNION SELECT cr.organization_id FROM repo_contributors c JOIN repositories cr ON cr.id = c.repository_id
			WHERE c.user_id = ?1`, userID)
		return err
	})
	if err != nil {
		return store.UserGrants{}, err
	}
	return g, nil
}
