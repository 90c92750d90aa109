package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func scanOrg(row interface{ Scan(...any) error }) (groupgate.Organization, error) {
	var (
		o       groupgate.Organization
		created int64
	)
	if err := row.Scan(&o.ID, &o.Name, &o.RepositoryBaseRole, &created); err != nil {
		return groupgate.Organization{}, err
	}
	o.CreatedAt = fromMicros(created)
	return o, nil
}

func scanOrgRows(rows *sql.Rows) (groupgate.Organization, error) { return scanOrg(rows) }

// CreateOrganization stores o; Invalid without a name, Conflict when the
// name is taken case-insensitively.
func (s *Store) CreateOrganization(ctx context.Context, o groupgate.Organization) (groupgate.Organization, error) {
	if o.Name == "" {
		return groupgate.Organization{}, groupgate.Errorf(groupgate.Invalid, "organization name is required")
	}
	if err := store.CheckRepositoryBaseRole(o.RepositoryBaseRole); err != nil {
		return groupgate.Organization{}, err
	}
	if o.ID == "" {
		o.ID = store.NewID()
	}
	o.CreatedAt = s.stamp()
	err := s.write(ctx, func(q queryer) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO organizations (id, name, repository_base_role, created_at) VALUES (?, ?, ?, ?)`,
			o.ID, o.Name, o.RepositoryBaseRole, micros(o.CreatedAt)); err != nil {
			return s.wrap(ctx, err, "create organization %q", o.Name)
		}
		return nil
	})
	if err != nil {
		return groupgate.Organization{}, err
	}
	return o, nil
}

// GetOrganization finds an organization by ID.
func (s *Store) GetOrganization(ctx context.Context, id string) (groupgate.Organization, error) {
	o, err := scanOrg(s.reader().QueryRowContext(ctx, `SELECT id, name, repository_base_role, created_at FROM organizations WHERE id = ?`, id))
	if err != nil {
		return groupgate.Organization{}, s.notFound(ctx, err, "organization %s", id)
	}
	return o, nil
}

// GetOrganizationByName finds an organization by name, case-insensitively.
func (s *Store) GetOrganizationByName(ctx context.Context, name string) (groupgate.Organization, error) {
	o, err := scanOrg(s.reader().QueryRowContext(ctx,
		`SELECT id, name, repository_base_role, created_at FROM organizations WHERE name = ? COLLATE NOCASE`, name))
	if err != nil {
		return groupgate.Organization{}, s.notFound(ctx, err, "organization %q", name)
	}
	return o, nil
}

// ListOrganizations orders by name.
func (s *Store) ListOrganizations(ctx context.Context, opts store.ListOptions) ([]groupgate.Organization, error) {
	limit, offset := page(opts)
	return query(ctx, s, scanOrgRows, "organizations",
		`SELECT id, name, repository_base_role, created_at FROM organizations ORDER BY name, id LIMIT ? OFFSET ?`, limit, offset)
}

// SetOrganizationRepositoryBaseRole changes the organization's repository
// base role.
func (s *Store) SetOrganizationRepositoryBaseRole(ctx context.Context, id string, role groupgate.RepoRole) error {
	if err := store.CheckRepositoryBaseRole(role); err != nil {
		return err
	}
	return s.write(ctx, func(q queryer) error {
		res, err := q.ExecContext(ctx, `UPDATE organizations SET repository_base_role = ? WHERE id = ?`, role, id)
		if err != nil {
			return s.wrap(ctx, err, "set repository base role of organization %s", id)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.wrap(ctx, err, "set repository base role of organization %s", id)
		}
		if n == 0 {
			return groupgate.Errorf(groupgate.NotFound, "organization %s not found", id)
		}
		return nil
	})
}

// DeleteOrganization removes the organization; the schema cascades to its
// repositories, their mappings and contributors, its mappings and members.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, "organization", id, `DELETE FROM organizations WHERE id = ?`, id)
	})
}

const repoSelect = `SELECT r.id, r.organization_id, o.name, r.name, r.visibility, r.created_at
	FROM repositories r JOIN organizations o ON o.id = r.organization_id`

func scanRepo(row interface{ Scan(...any) error }) (groupgate.Repository, error) {
	var (
		r       groupgate.Repository
		created int64
	)
	if err := row.Scan(&r.ID, &r.OrganizationID, &r.OrganizationName, &r.Name, &r.Visibility, &created); err != nil {
		return groupgate.Repository{}, err
	}
	r.CreatedAt = fromMicros(created)
	return r, nil
}

func scanRepoRows(rows *sql.Rows) (groupgate.Repository, error) { return scanRepo(rows) }

// CreateRepository stores r; Invalid without a name, with an unknown
// visibility or organization, Conflict when the organization already has
// the name (case-insensitively).
func (s *Store) CreateRepository(ctx context.Context, r groupgate.Repository) (groupgate.Repository, error) {
	if r.Name == "" {
		return groupgate.Repository{}, groupgate.Errorf(groupgate.Invalid, "repository name is required")
	}
	switch r.Visibility {
	case "":
		r.Visibility = groupgate.VisibilityPrivate
	case groupgate.VisibilityPrivate, groupgate.VisibilityPublic:
	default:
		return groupgate.Repository{}, groupgate.Errorf(groupgate.Invalid, "unknown repository visibility %q", r.Visibility)
	}
	if r.ID == "" {
		r.ID = store.NewID()
	}
	r.CreatedAt = s.stamp()
	err := s.write(ctx, func(q queryer) error {
		if err := q.QueryRowContext(ctx, `SELECT name FROM organizations WHERE id = ?`, r.OrganizationID).Scan(&r.OrganizationName); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return groupgate.Errorf(groupgate.Invalid, "organization %s does not exist", r.OrganizationID)
			}
			return s.wrap(ctx, err, "load organization %s", r.OrganizationID)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO repositories (id, organization_id, name, visibility, created_at) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.OrganizationID, r.Name, string(r.Visibility), micros(r.CreatedAt)); err != nil {
			return s.wrap(ctx, err, "create repository %q", r.Name)
		}
		return nil
	})
	if err != nil {
		return groupgate.Repository{}, err
	}
	return r, nil
}

// GetRepository finds a repository by ID.
func (s *Store) GetRepository(ctx context.Context, id string) (groupgate.Repository, error) {
	r, err := scanRepo(s.reader().QueryRowContext(ctx, repoSelect+` WHERE r.id = ?`, id))
	if err != nil {
		return groupgate.Repository{}, s.notFound(ctx, err, "repository %s", id)
	}
	return r, nil
}

// GetRepositoryByFullName finds orgName/repoName, both case-insensitively.
func (s *Store) GetRepositoryByFullName(ctx context.Context, orgName, repoName string) (groupgate.Repository, error) {
	r, err := scanRepo(s.reader().QueryRowContext(ctx,
		repoSelect+` WHERE o.name = ? COLLATE NOCASE AND r.name = ? COLLATE NOCASE`, orgName, repoName))
	if err != nil {
		return groupgate.Repository{}, s.notFound(ctx, err, "repository %s/%s", orgName, repoName)
	}
	return r, nil
}

// ListRepositories lists an organization's repositories by name.
func (s *Store) ListRepositories(ctx context.Context, organizationID string, opts store.ListOptions) ([]groupgate.Repository, error) {
	limit, offset := page(opts)
	return query(ctx, s, scanRepoRows, "repositories",
		repoSelect+` WHERE r.organization_id = ? ORDER BY r.name, r.id LIMIT ? OFFSET ?`, organizationID, limit, offset)
}

// DeleteRepository removes the repository; the schema cascades to its
// mappings and contributors.
func (s *Store) DeleteRepository(ctx context.Context, id string) error {
	return s.write(ctx, func(q queryer) error {
		return s.deleteOne(ctx, q, "repository", id, `DELETE FROM repositories WHERE id = ?`, id)
	})
}
