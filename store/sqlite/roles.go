package sqlite

import (
	"context"
	"database/sql"

	"github.com/groupgate/groupgate"
)

// grant is the row shape org members and repo contributors share;
// grantTable says where one kind lives.
type grant struct {
	Resource, UserID, Role string
	CreatedAt, UpdatedAt   int64 // microseconds, see micros
}

type grantTable struct {
	table, resourceCol, noun, resourceNoun string
}

var (
	orgMembers       = grantTable{"org_members", "organization_id", "organization member", "organization"}
	repoContributors = grantTable{"repo_contributors", "repository_id", "repository contributor", "repository"}
)

func (t grantTable) columns() string {
	return t.resourceCol + `, user_id, role, created_at, updated_at`
}

func scanGrant(row interface{ Scan(...any) error }) (grant, error) {
	var g grant
	err := row.Scan(&g.Resource, &g.UserID, &g.Role, &g.CreatedAt, &g.UpdatedAt)
	return g, err
}

func scanGrantRows(rows *sql.Rows) (grant, error) { return scanGrant(rows) }

// setGrant upserts: a replaced grant keeps its CreatedAt. A missing user or
// resource fails the foreign key, which wrap reports as Invalid.
func (s *Store) setGrant(ctx context.Context, t grantTable, g grant) (grant, error) {
	if g.Role == "" {
		return grant{}, groupgate.Errorf(groupgate.Invalid, "%s needs a role", t.noun)
	}
	if g.Resource == "" || g.UserID == "" {
		return grant{}, groupgate.Errorf(groupgate.Invalid, "%s needs a %s and a user", t.noun, t.resourceNoun)
	}
	now := micros(s.now())
	err := s.write(ctx, func(q queryer) error {
		row := q.QueryRowContext(ctx, `INSERT INTO `+t.table+` (`+t.columns()+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (`+t.resourceCol+`, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at
			RETURNING `+t.columns(), g.Resource, g.UserID, g.Role, now, now)
		var err error
		if g, err = scanGrant(row); err != nil {
			return s.wrap(ctx, err, "set %s %s on %s", t.noun, g.UserID, g.Resource)
		}
		return nil
	})
	return g, err
}

func (s *Store) getGrant(ctx context.Context, t grantTable, resource, userID string) (grant, error) {
	g, err := scanGrant(s.reader().QueryRowContext(ctx,
		`SELECT `+t.columns()+` FROM `+t.table+` WHERE `+t.resourceCol+` = ? AND user_id = ?`, resource, userID))
	if err != nil {
		return grant{}, s.notFound(ctx, err, "%s %s on %s", t.noun, userID, resource)
	}
	return g, nil
}

func (s *Store) removeGrant(ctx context.Context, t grantTable, resource, userID string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, t.noun, userID+" on "+resource,
			`DELETE FROM `+t.table+` WHERE `+t.resourceCol+` = ? AND user_id = ?`, resource, userID)
	})
}

func (s *Store) listGrants(ctx context.Context, t grantTable, byUser bool, id string) ([]grant, error) {
	where, order := t.resourceCol, "user_id"
	if byUser {
		where, order = "user_id", t.resourceCol
	}
	return query(ctx, s, scanGrantRows, t.noun+"s",
		`SELECT `+t.columns()+` FROM `+t.table+` WHERE `+where+` = ? ORDER BY `+order, id)
}

func toOrgMember(g grant) groupgate.OrgMember {
	return groupgate.OrgMember{OrganizationID: g.Resource, UserID: g.UserID, Role: groupgate.OrgRole(g.Role),
		CreatedAt: fromMicros(g.CreatedAt), UpdatedAt: fromMicros(g.UpdatedAt)}
}

func toRepoContributor(g grant) groupgate.RepoContributor {
	return groupgate.RepoContributor{RepositoryID: g.Resource, UserID: g.UserID, Role: groupgate.RepoRole(g.Role),
		CreatedAt: fromMicros(g.CreatedAt), UpdatedAt: fromMicros(g.UpdatedAt)}
}

// SetOrgMember creates or replaces a user's manual organization role;
// Invalid when the organization or user is missing or the role empty.
func (s *Store) SetOrgMember(ctx context.Context, m groupgate.OrgMember) (groupgate.OrgMember, error) {
	got, err := s.setGrant(ctx, orgMembers, grant{Resource: m.OrganizationID, UserID: m.UserID, Role: string(m.Role)})
	return convertOne(got, err, toOrgMember)
}

// GetOrgMember finds a user's manual organization role.
func (s *Store) GetOrgMember(ctx context.Context, organizationID, userID string) (groupgate.OrgMember, error) {
	got, err := s.getGrant(ctx, orgMembers, organizationID, userID)
	return convertOne(got, err, toOrgMember)
}

// RemoveOrgMember removes a user's manual organization role.
func (s *Store) RemoveOrgMember(ctx context.Context, organizationID, userID string) error {
	return s.removeGrant(ctx, orgMembers, organizationID, userID)
}

// ListOrgMembers orders by user ID.
func (s *Store) ListOrgMembers(ctx context.Context, organizationID string) ([]groupgate.OrgMember, error) {
	got, err := s.listGrants(ctx, orgMembers, false, organizationID)
	return convertAll(got, err, toOrgMember)
}

// ListUserOrgMembers orders by organization ID.
func (s *Store) ListUserOrgMembers(ctx context.Context, userID string) ([]groupgate.OrgMember, error) {
	got, err := s.listGrants(ctx, orgMembers, true, userID)
	return convertAll(got, err, toOrgMember)
}

// SetRepoContributor creates or replaces a user's manual repository role;
// Invalid when the repository or user is missing or the role empty.
func (s *Store) SetRepoContributor(ctx context.Context, c groupgate.RepoContributor) (groupgate.RepoContributor, error) {
	got, err := s.setGrant(ctx, repoContributors, grant{Resource: c.RepositoryID, UserID: c.UserID, Role: string(c.Role)})
	return convertOne(got, err, toRepoContributor)
}

// GetRepoContributor finds a user's manual repository role.
func (s *Store) GetRepoContributor(ctx context.Context, repositoryID, userID string) (groupgate.RepoContributor, error) {
	got, err := s.getGrant(ctx, repoContributors, repositoryID, userID)
	return convertOne(got, err, toRepoContributor)
}

// RemoveRepoContributor removes a user's manual repository role.
func (s *Store) RemoveRepoContributor(ctx context.Context, repositoryID, userID string) error {
	return s.removeGrant(ctx, repoContributors, repositoryID, userID)
}

// ListRepoContributors orders by user ID.
func (s *Store) ListRepoContributors(ctx context.Context, repositoryID string) ([]groupgate.RepoContributor, error) {
	got, err := s.listGrants(ctx, repoContributors, false, repositoryID)
	return convertAll(got, err, toRepoContributor)
}

// ListUserRepoContributors orders by repository ID.
func (s *Store) ListUserRepoContributors(ctx context.Context, userID string) ([]groupgate.RepoContributor, error) {
	got, err := s.listGrants(ctx, repoContributors, true, userID)
	return convertAll(got, err, toRepoContributor)
}
