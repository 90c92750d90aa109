package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
)

// Manual org members and repo contributors share one shape; roleTable names
// the table and the resource column.
type roleTable struct {
	table, parent, noun string
}

var (
	orgMembers       = roleTable{table: "org_members", parent: "organization_id", noun: "organization"}
	repoContributors = roleTable{table: "repo_contributors", parent: "repository_id", noun: "repository"}
)

type roleRow struct {
	ParentID, UserID, Role string
	CreatedAt, UpdatedAt   time.Time
}

func (t roleTable) columns() string {
	return t.parent + `, user_id, role, created_at, updated_at`
}

func scanRole(row pgx.Row) (roleRow, error) {
	var r roleRow
	err := row.Scan(&r.ParentID, &r.UserID, &r.Role, &r.CreatedAt, &r.UpdatedAt)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, err
}

// setRole upserts the row: a replaced role keeps its CreatedAt.
func (s *Store) setRole(ctx context.Context, t roleTable, r roleRow) (roleRow, error) {
	if r.Role == "" {
		return roleRow{}, invalid("manual role on %s %s: role is required", t.noun, r.ParentID)
	}
	now := s.stamp()
	var out roleRow
	err := s.write(ctx, func(q querier) error {
		var err error
		out, err = scanRole(q.QueryRow(ctx, `INSERT INTO `+t.table+` (`+t.columns()+`) VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (`+t.parent+`, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at
			RETURNING `+t.columns(), r.ParentID, r.UserID, r.Role, now))
		return err
	})
	if hasCode(err, codeForeignKeyViolation) {
		return roleRow{}, groupgate.WrapError(groupgate.Invalid, err, "manual role: %s %s or user %s does not exist", t.noun, r.ParentID, r.UserID)
	}
	if err != nil {
		return roleRow{}, dbError(err, "set role of user %s on %s %s", r.UserID, t.noun, r.ParentID)
	}
	return out, nil
}

func (s *Store) getRole(ctx context.Context, t roleTable, parentID, userID string) (roleRow, error) {
	r, err := scanRole(s.q().QueryRow(ctx, `SELECT `+t.columns()+` FROM `+t.table+` WHERE `+t.parent+` = $1 AND user_id = $2`, parentID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return roleRow{}, notFound("user %s has no manual role on %s %s", userID, t.noun, parentID)
	}
	if err != nil {
		return roleRow{}, dbError(err, "load role of user %s on %s %s", userID, t.noun, parentID)
	}
	return r, nil
}

func (s *Store) removeRole(ctx context.Context, t roleTable, parentID, userID string) error {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM `+t.table+` WHERE `+t.parent+` = $1 AND user_id = $2`, parentID, userID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return dbError(err, "remove role of user %s on %s %s", userID, t.noun, parentID)
	}
	if n == 0 {
		return notFound("user %s has no manual role on %s %s", userID, t.noun, parentID)
	}
	return nil
}

// listRoles lists rows where column equals value, ordered by orderBy.
func (s *Store) listRoles(ctx context.Context, t roleTable, column, value, orderBy string) ([]roleRow, error) {
	rows, err := s.q().Query(ctx, `SELECT `+t.columns()+` FROM `+t.table+` WHERE `+column+` = $1 ORDER BY `+orderBy, value)
	if err != nil {
		return nil, dbError(err, "list manual %s roles", t.noun)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (roleRow, error) { return scanRole(r) })
	if err != nil {
		return nil, dbError(err, "list manual %s roles", t.noun)
	}
	return rs, nil
}

func (r roleRow) orgMember() groupgate.OrgMember {
	return groupgate.OrgMember{OrganizationID: r.ParentID, UserID: r.UserID, Role: groupgate.OrgRole(r.Role), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func (r roleRow) repoContributor() groupgate.RepoContributor {
	return groupgate.RepoContributor{RepositoryID: r.ParentID, UserID: r.UserID, Role: groupgate.RepoRole(r.Role), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func (s *Store) SetOrgMember(ctx context.Context, m groupgate.OrgMember) (groupgate.OrgMember, error) {
	r, err := s.setRole(ctx, orgMembers, roleRow{ParentID: m.OrganizationID, UserID: m.UserID, Role: string(m.Role)})
	return r.orgMember(), err
}

func (s *Store) GetOrgMember(ctx context.Context, organizationID, userID string) (groupgate.OrgMember, error) {
	r, err := s.getRole(ctx, orgMembers, organizationID, userID)
	return r.orgMember(), err
}

func (s *Store) RemoveOrgMember(ctx context.Context, organizationID, userID string) error {
	return s.removeRole(ctx, orgMembers, organizationID, userID)
}

func (s *Store) ListOrgMembers(ctx context.Context, organizationID string) ([]groupgate.OrgMember, error) {
	rs, err := s.listRoles(ctx, orgMembers, "organization_id", organizationID, "user_id")
	return convert(rs, roleRow.orgMember), err
}

func (s *Store) ListUserOrgMembers(ctx context.Context, userID string) ([]groupgate.OrgMember, error) {
	rs, err := s.listRoles(ctx, orgMembers, "user_id", userID, "organization_id")
	return convert(rs, roleRow.orgMember), err
}

func (s *Store) SetRepoContributor(ctx context.Context, c groupgate.RepoContributor) (groupgate.RepoContributor, error) {
	r, err := s.setRole(ctx, repoContributors, roleRow{ParentID: c.RepositoryID, UserID: c.UserID, Role: string(c.Role)})
	return r.repoContributor(), err
}

func (s *Store) GetRepoContributor(ctx context.Context, repositoryID, userID string) (groupgate.RepoContributor, error) {
	r, err := s.getRole(ctx, repoContributors, repositoryID, userID)
	return r.repoContributor(), err
}

func (s *Store) RemoveRepoContributor(ctx context.Context, repositoryID, userID string) error {
	return s.removeRole(ctx, repoContributors, repositoryID, userID)
}

func (s *Store) ListRepoContributors(ctx context.Context, repositoryID string) ([]groupgate.RepoContributor, error) {
	rs, err := s.listRoles(ctx, repoContributors, "repository_id", repositoryID, "user_id")
	return convert(rs, roleRow.repoContributor), err
}

func (s *Store) ListUserRepoContributors(ctx context.Context, userID string) ([]groupgate.RepoContributor, error) {
	rs, err := s.listRoles(ctx, repoContributors, "user_id", userID, "repository_id")
	return convert(rs, roleRow.repoContributor), err
}
