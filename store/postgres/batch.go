package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

var _ store.BatchReader = (*Store)(nil)

// GetGroupSets reads every user's set in one statement: the IDs travel as
// one array parameter, and the LEFT JOIN keeps users without groups so
// that they are told apart from unknown IDs.
func (s *Store) GetGroupSets(ctx context.Context, userIDs []string) (map[string]groupgate.GroupSet, error) {
	out := make(map[string]groupgate.GroupSet, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	rows, err := s.q().Query(ctx, `SELECT u.id, m.group_name, m.source, m.added_at
		FROM users u LEFT JOIN group_memberships m ON m.user_id = u.id
		WHERE u.id = ANY($1::text[])
		ORDER BY u.id, m.group_name, m.source`, userIDs)
	if err != nil {
		return nil, dbError(err, "load group sets of %d users", len(userIDs))
	}
	var (
		userID     string
		group, src *string // NULL for a user without groups
		added      *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&userID, &group, &src, &added}, func() error {
		set, ok := out[userID]
		if !ok {
			set = groupgate.GroupSet{}
		}
		if group != nil {
			set = append(set, groupgate.Membership{Group: *group, Source: groupgate.MembershipSource(*src), AddedAt: added.UTC()})
		}
		out[userID] = set
		return nil
	})
	if err != nil {
		return nil, dbError(err, "load group sets of %d users", len(userIDs))
	}
	return out, nil
}

func (s *Store) ListOrgMembersOfUsers(ctx context.Context, userIDs []string) ([]groupgate.OrgMember, error) {
	rs, err := s.rolesOfUsers(ctx, orgMembers, userIDs)
	return convert(rs, roleRow.orgMember), err
}

func (s *Store) ListRepoContributorsOfUsers(ctx context.Context, userIDs []string) ([]groupgate.RepoContributor, error) {
	rs, err := s.rolesOfUsers(ctx, repoContributors, userIDs)
	return convert(rs, roleRow.repoContributor), err
}

// rolesOfUsers lists the manual roles of users in one statement; the
// (user_id, resource) index serves both the filter and the order.
func (s *Store) rolesOfUsers(ctx context.Context, t roleTable, userIDs []string) ([]roleRow, error) {
	if len(userIDs) == 0 {
		return []roleRow{}, nil
	}
	rows, err := s.q().Query(ctx, `SELECT `+t.columns()+` FROM `+t.table+`
		WHERE user_id = ANY($1::text[]) ORDER BY user_id, `+t.parent, userIDs)
	if err != nil {
		return nil, dbError(err, "list manual %s roles of %d users", t.noun, len(userIDs))
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (roleRow, error) { return scanRole(r) })
	if err != nil {
		return nil, dbError(err, "list manual %s roles of %d users", t.noun, len(userIDs))
	}
	return rs, nil
}

// ListBaseRoleRepositories reads the repositories of the organizations of
// orgIDs that have a base role in one statement.
func (s *Store) ListBaseRoleRepositories(ctx context.Context, orgIDs []string) ([]store.BaseRoleRepository, error) {
	if len(orgIDs) == 0 {
		return []store.BaseRoleRepository{}, nil
	}
	rows, err := s.q().Query(ctx, `SELECT `+repoColumns+`, o.repository_base_role
		FROM repositories r JOIN organizations o ON o.id = r.organization_id
		WHERE o.repository_base_role <> '' AND o.id = ANY($1::text[])
		ORDER BY r.organization_id, r.name, r.id`, orgIDs)
	if err != nil {
		return nil, dbError(err, "list repositories of %d organizations under a base role", len(orgIDs))
	}
	out, err := pgx.CollectRows(rows, scanBaseRoleRepository)
	if err != nil {
		return nil, dbError(err, "list repositories of %d organizations under a base role", len(orgIDs))
	}
	return out, nil
}

func scanBaseRoleRepository(row pgx.CollectableRow) (store.BaseRoleRepository, error) {
	var (
		b    store.BaseRoleRepository
		base string
	)
	r := &b.Repository
	err := row.Scan(&r.ID, &r.OrganizationID, &r.OrganizationName, &r.Name, &r.Visibility, &r.CreatedAt, &base)
	r.CreatedAt = r.CreatedAt.UTC()
	b.BaseRole = groupgate.RepoRole(base)
	return b, err
}

// GetUserGrants sends its six reads in one batch: one round trip instead
// of seven. The mappings are found from the user's memberships by the
// group_name index, so a user in 1,000 groups of which 20 are mapped
// reads those 20 groups' mappings and sends no list of names. Each
// statement takes its own snapshot (READ COMMITTED), as the separate
// calls did.
func (s *Store) GetUserGrants(ctx context.Context, userID string) (store.UserGrants, error) {
	var (
		b            pgx.Batch
		orgs, repos  []mappingRow
		members      []roleRow
		contributors []roleRow
	)
	set := queueGroupSetRead(&b, userID, false)
	queueRows := func(sql string, out *[]mappingRow) {
		b.Queue(sql, userID).Query(func(rows pgx.Rows) error {
			var err error
			*out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (mappingRow, error) { return scanMapping(r) })
			return err
		})
	}
	for _, t := range []struct {
		t   mappingTable
		out *[]mappingRow
	}{{orgMappings, &orgs}, {repoMappings, &repos}} {
		queueRows(`SELECT `+t.t.columns()+` FROM `+t.t.table+`
			WHERE group_name IN (SELECT group_name FROM group_memberships WHERE user_id = $1)
			ORDER BY `+t.t.parent+`, group_name`, t.out)
	}
	for _, t := range []struct {
		t   roleTable
		out *[]roleRow
	}{{orgMembers, &members}, {repoContributors, &contributors}} {
		b.Queue(`SELECT `+t.t.columns()+` FROM `+t.t.table+` WHERE user_id = $1 ORDER BY `+t.t.parent, userID).Query(func(rows pgx.Rows) error {
			var err error
			*t.out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (roleRow, error) { return scanRole(r) })
			return err
		})
	}
	var bases []store.BaseRoleRepository
	b.Queue(`SELECT `+repoColumns+`, o.repository_base_role
		FROM repositories r JOIN organizations o ON o.id = r.organization_id
		WHERE o.repository_base_role <> '' AND o.id IN (
			SELECT m.organization_id FROM org_mappings m
			WHERE m.group_name IN (SELECT group_name FROM group_memberships WHERE user_id = $1)
			UNION SELECT mr.organization_id FROM repo_mappings m JOIN repositories mr ON mr.id = m.repository_id
			WHERE m.group_name IN (SELECT group_name FROM group_memberships WHERE user_id = $1)
			UNION SELECT organization_id FROM org_members WHERE user_id = $1
			UNION SELECT cr.organization_id FROM repo_contributors c JOIN repositories cr ON cr.id = c.repository_id
			WHERE c.user_id = $1)
		ORDER BY r.organization_id, r.name, r.id`, userID).Query(func(rows pgx.Rows) error {
		var err error
		bases, err = pgx.CollectRows(rows, scanBaseRoleRepository)
		return err
	})
	if err := s.sendBatch(ctx, s.q(), &b); err != nil {
		return store.UserGrants{}, dbError(err, "load grants of user %s", userID)
	}
	groups, err := set()
	if err != nil {
		return store.UserGrants{}, err
	}
	return store.UserGrants{
		Groups:           groups,
		OrgMappings:      convert(orgs, mappingRow.org),
		RepoMappings:     convert(repos, mappingRow.repo),
		OrgMembers:       convert(members, roleRow.orgMember),
		RepoContributors: convert(contributors, roleRow.repoContributor),

		BaseRoleRepositories: bases,
	}, nil
}
