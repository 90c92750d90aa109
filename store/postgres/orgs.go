package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s *Store) CreateOrganization(ctx context.Context, o groupgate.Organization) (groupgate.Organization, error) {
	if o.Name == "" {
		return groupgate.Organization{}, invalid("organization name is required")
	}
	if err := store.CheckRepositoryBaseRole(o.RepositoryBaseRole); err != nil {
		return groupgate.Organization{}, err
	}
	if o.ID == "" {
		o.ID = store.NewID()
	}
	o.CreatedAt = s.stamp()
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO organizations (id, name, repository_base_role, created_at) VALUES ($1, $2, $3, $4)`, o.ID, o.Name, string(o.RepositoryBaseRole), o.CreatedAt)
		return err
	})
	if err != nil {
		return groupgate.Organization{}, dbError(err, "create organization %q", o.Name)
	}
	return o, nil
}

func scanOrganization(row pgx.Row) (groupgate.Organization, error) {
	var (
		o    groupgate.Organization
		base string
	)
	err := row.Scan(&o.ID, &o.Name, &base, &o.CreatedAt)
	o.RepositoryBaseRole = groupgate.RepoRole(base)
	o.CreatedAt = o.CreatedAt.UTC()
	return o, err
}

func (s *Store) getOrganization(ctx context.Context, what, where string, args ...any) (groupgate.Organization, error) {
	o, err := scanOrganization(s.q().QueryRow(ctx, `SELECT id, name, repository_base_role, created_at FROM organizations `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.Organization{}, notFound("organization %s not found", what)
	}
	if err != nil {
		return groupgate.Organization{}, dbError(err, "load organization %s", what)
	}
	return o, nil
}

func (s *Store) GetOrganization(ctx context.Context, id string) (groupgate.Organization, error) {
	return s.getOrganization(ctx, id, `WHERE id = $1`, id)
}

func (s *Store) GetOrganizationByName(ctx context.Context, name string) (groupgate.Organization, error) {
	return s.getOrganization(ctx, "named "+name, `WHERE lower(name) = lower($1)`, name)
}

func (s *Store) ListOrganizations(ctx context.Context, opts store.ListOptions) ([]groupgate.Organization, error) {
	limit, offset := page(opts)
	rows, err := s.q().Query(ctx, `SELECT id, name, repository_base_role, created_at FROM organizations ORDER BY name, id LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, dbError(err, "list organizations")
	}
	orgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.Organization, error) { return scanOrganization(r) })
	if err != nil {
		return nil, dbError(err, "list organizations")
	}
	return orgs, nil
}

// SetOrganizationRepositoryBaseRole changes the organization's repository
// base role.
func (s *Store) SetOrganizationRepositoryBaseRole(ctx context.Context, id string, role groupgate.RepoRole) error {
	if err := store.CheckRepositoryBaseRole(role); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE organizations SET repository_base_role = $1 WHERE id = $2`, string(role), id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return dbError(err, "set repository base role of organization %s", id)
	}
	if n == 0 {
		return notFound("organization %s not found", id)
	}
	return nil
}

// DeleteOrganization relies on ON DELETE CASCADE for repositories, their
// mappings and contributors, org mappings and org members.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "organizations", "organization", id)
}

func (s *Store) CreateRepository(ctx context.Context, r groupgate.Repository) (groupgate.Repository, error) {
	if r.Name == "" {
		return groupgate.Repository{}, invalid("repository name is required")
	}
	switch r.Visibility {
	case "":
		r.Visibility = groupgate.VisibilityPrivate
	case groupgate.VisibilityPrivate, groupgate.VisibilityPublic:
	default:
		return groupgate.Repository{}, invalid("repository visibility %q: want private or public", r.Visibility)
	}
	if r.ID == "" {
		r.ID = store.NewID()
	}
	r.CreatedAt = s.stamp()
	// INSERT ... SELECT from the organization both checks that it exists
	// and returns its name in one round trip.
	err := s.write(ctx, func(q querier) error {
		return q.QueryRow(ctx, `INSERT INTO repositories (id, organization_id, name, visibility, created_at)
			SELECT $1, o.id, $3, $4, $5 FROM organizations o WHERE o.id = $2
			RETURNING (SELECT name FROM organizations WHERE id = $2)`,
			r.ID, r.OrganizationID, r.Name, r.Visibility, r.CreatedAt).Scan(&r.OrganizationName)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.Repository{}, invalid("create repository %q: organization %s does not exist", r.Name, r.OrganizationID)
	}
	if err != nil {
		return groupgate.Repository{}, dbError(err, "create repository %q", r.Name)
	}
	return r, nil
}

const repoColumns = `r.id, r.organization_id, o.name, r.name, r.visibility, r.created_at`

func scanRepository(row pgx.Row) (groupgate.Repository, error) {
	var r groupgate.Repository
	err := row.Scan(&r.ID, &r.OrganizationID, &r.OrganizationName, &r.Name, &r.Visibility, &r.CreatedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

func (s *Store) getRepository(ctx context.Context, what, where string, args ...any) (groupgate.Repository, error) {
	r, err := scanRepository(s.q().QueryRow(ctx,
		`SELECT `+repoColumns+` FROM repositories r JOIN organizations o ON o.id = r.organization_id `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return groupgate.Repository{}, notFound("repository %s not found", what)
	}
	if err != nil {
		return groupgate.Repository{}, dbError(err, "load repository %s", what)
	}
	return r, nil
}

func (s *Store) GetRepository(ctx context.Context, id string) (groupgate.Repository, error) {
	return s.getRepository(ctx, id, `WHERE r.id = $1`, id)
}

func (s *Store) GetRepositoryByFullName(ctx context.Context, orgName, repoName string) (groupgate.Repository, error) {
	return s.getRepository(ctx, orgName+"/"+repoName,
		`WHERE lower(o.name) = lower($1) AND lower(r.name) = lower($2)`, orgName, repoName)
}

func (s *Store) ListRepositories(ctx context.Context, organizationID string, opts store.ListOptions) ([]groupgate.Repository, error) {
	limit, offset := page(opts)
	rows, err := s.q().Query(ctx, `SELECT `+repoColumns+` FROM repositories r JOIN organizations o ON o.id = r.organization_id
		WHERE r.organization_id = $1 ORDER BY r.name, r.id LIMIT $2 OFFSET $3`, organizationID, limit, offset)
	if err != nil {
		return nil, dbError(err, "list repositories of organization %s", organizationID)
	}
	repos, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (groupgate.Repository, error) { return scanRepository(r) })
	if err != nil {
		return nil, dbError(err, "list repositories of organization %s", organizationID)
	}
	return repos, nil
}

// DeleteRepository relies on ON DELETE CASCADE for mappings and
// contributors.
func (s *Store) DeleteRepository(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "repositories", "repository", id)
}
