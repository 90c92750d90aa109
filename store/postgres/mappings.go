package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Organization and repository mappings share one shape; mappingTable says
// which table and parent column a statement is about, so that the SQL is
// written once.
type mappingTable struct {
	table, parent, noun string
}

var (
	orgMappings  = mappingTable{table: "org_mappings", parent: "organization_id", noun: "organization"}
	repoMappings = mappingTable{table: "repo_mappings", parent: "repository_id", noun: "repository"}
)

// mappingRow is the columns of either mapping table.
type mappingRow struct {
	ID, ParentID, Group, Role string
	CreatedAt, UpdatedAt      time.Time
}

func scanMapping(row pgx.Row) (mappingRow, error) {
	var m mappingRow
	err := row.Scan(&m.ID, &m.ParentID, &m.Group, &m.Role, &m.CreatedAt, &m.UpdatedAt)
	return m, err
}

func (t mappingTable) columns() string {
	return `id, ` + t.parent + `, group_name, role_override, created_at, updated_at`
}

func (s *Store) addMapping(ctx context.Context, t mappingTable, m mappingRow) (mappingRow, error) {
	if m.Group == "" {
		return mappingRow{}, invalid("mapping group name is required")
	}
	if m.ID == "" {
		m.ID = store.NewID()
	}
	now := s.stamp()
	m.CreatedAt, m.UpdatedAt = now, now
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO `+t.table+` (`+t.columns()+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			m.ID, m.ParentID, m.Group, m.Role, now, now)
		return err
	})
	if hasCode(err, codeForeignKeyViolation) {
		return mappingRow{}, groupgate.WrapError(groupgate.Invalid, err, "map group %q: %s %s does not exist", m.Group, t.noun, m.ParentID)
	}
	if hasCode(err, codeUniqueViolation) {
		return mappingRow{}, groupgate.WrapError(groupgate.Conflict, err, "%s %s already maps group %q", t.noun, m.ParentID, m.Group)
	}
	if err != nil {
		return mappingRow{}, dbError(err, "map group %q on %s %s", m.Group, t.noun, m.ParentID)
	}
	return m, nil
}

func (s *Store) getMapping(ctx context.Context, q querier, t mappingTable, parentID, group string, lock bool) (mappingRow, error) {
	sql := `SELECT ` + t.columns() + ` FROM ` + t.table + ` WHERE ` + t.parent + ` = $1 AND group_name = $2`
	if lock {
		sql += ` FOR NO KEY UPDATE`
	}
	m, err := scanMapping(q.QueryRow(ctx, sql, parentID, group))
	if errors.Is(err, pgx.ErrNoRows) {
		return mappingRow{}, notFound("%s %s does not map group %q", t.noun, parentID, group)
	}
	if err != nil {
		return mappingRow{}, dbError(err, "load mapping of group %q on %s %s", group, t.noun, parentID)
	}
	return m, nil
}

// updateMapping locks the row and applies change; only the role override
// may change, the rest of the row is the store's.
func (s *Store) updateMapping(ctx context.Context, t mappingTable, parentID, group string, change func(*mappingRow) error) (mappingRow, error) {
	var out mappingRow
	err := s.atomic(ctx, func(q querier) error {
		cur, err := s.getMapping(ctx, q, t, parentID, group, true)
		if err != nil {
			return err
		}
		next := cur
		if err := change(&next); err != nil {
			return err
		}
		cur.Role = next.Role
		cur.UpdatedAt = s.stamp()
		if _, err := q.Exec(ctx, `UPDATE `+t.table+` SET role_override = $2, updated_at = $3 WHERE id = $1`,
			cur.ID, cur.Role, cur.UpdatedAt); err != nil {
			return dbError(err, "update mapping of group %q on %s %s", group, t.noun, parentID)
		}
		out = cur
		return nil
	})
	return out, err
}

func (s *Store) removeMapping(ctx context.Context, t mappingTable, parentID, group string) (mappingRow, error) {
	var m mappingRow
	err := s.write(ctx, func(q querier) error {
		var err error
		m, err = scanMapping(q.QueryRow(ctx, `DELETE FROM `+t.table+` WHERE `+t.parent+` = $1 AND group_name = $2
			RETURNING `+t.columns(), parentID, group))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return mappingRow{}, notFound("%s %s does not map group %q", t.noun, parentID, group)
	}
	if err != nil {
		return mappingRow{}, dbError(err, "remove mapping of group %q on %s %s", group, t.noun, parentID)
	}
	return m, nil
}

func (s *Store) listMappings(ctx context.Context, t mappingTable, parentID string, opts store.ListOptions) ([]mappingRow, error) {
	limit, offset := page(opts)
	rows, err := s.q().Query(ctx, `SELECT `+t.columns()+` FROM `+t.table+` WHERE `+t.parent+` = $1
		ORDER BY group_name LIMIT $2 OFFSET $3`, parentID, limit, offset)
	if err != nil {
		return nil, dbError(err, "list mappings of %s %s", t.noun, parentID)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mappingRow, error) { return scanMapping(r) })
	if err != nil {
		return nil, dbError(err, "list mappings of %s %s", t.noun, parentID)
	}
	return ms, nil
}

// mappingsFor passes the group names as one array parameter, so that any
// number of groups takes one statement; the group_name index serves it.
func (s *Store) mappingsFor(ctx context.Context, t mappingTable, groups []string) ([]mappingRow, error) {
	rows, err := s.q().Query(ctx, `SELECT `+t.columns()+` FROM `+t.table+` WHERE group_name = ANY($1::text[])
		ORDER BY `+t.parent+`, group_name`, groups)
	if err != nil {
		return nil, dbError(err, "load %s mappings of groups", t.noun)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mappingRow, error) { return scanMapping(r) })
	if err != nil {
		return nil, dbError(err, "load %s mappings of groups", t.noun)
	}
	return ms, nil
}

func orgMappingRow(m groupgate.OrgMapping) mappingRow {
	return mappingRow{ID: m.ID, ParentID: m.OrganizationID, Group: m.Group, Role: string(m.RoleOverride),
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (m mappingRow) org() groupgate.OrgMapping {
	return groupgate.OrgMapping{ID: m.ID, OrganizationID: m.ParentID, Group: m.Group, RoleOverride: groupgate.OrgRole(m.Role),
		CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC()}
}

func repoMappingRow(m groupgate.RepoMapping) mappingRow {
	return mappingRow{ID: m.ID, ParentID: m.RepositoryID, Group: m.Group, Role: string(m.RoleOverride),
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (m mappingRow) repo() groupgate.RepoMapping {
	return groupgate.RepoMapping{ID: m.ID, RepositoryID: m.ParentID, Group: m.Group, RoleOverride: groupgate.RepoRole(m.Role),
		CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC()}
}

func (s *Store) AddOrgMapping(ctx context.Context, m groupgate.OrgMapping) (groupgate.OrgMapping, error) {
	r, err := s.addMapping(ctx, orgMappings, orgMappingRow(m))
	return r.org(), err
}

func (s *Store) GetOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error) {
	r, err := s.getMapping(ctx, s.q(), orgMappings, organizationID, group, false)
	return r.org(), err
}

func (s *Store) UpdateOrgMapping(ctx context.Context, organizationID, group string, fn func(*groupgate.OrgMapping) error) (groupgate.OrgMapping, error) {
	r, err := s.updateMapping(ctx, orgMappings, organizationID, group, func(r *mappingRow) error {
		m := r.org()
		if err := fn(&m); err != nil {
			return err
		}
		r.Role = string(m.RoleOverride)
		return nil
	})
	return r.org(), err
}

func (s *Store) RemoveOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error) {
	r, err := s.removeMapping(ctx, orgMappings, organizationID, group)
	return r.org(), err
}

func (s *Store) ListOrgMappings(ctx context.Context, organizationID string, opts store.ListOptions) ([]groupgate.OrgMapping, error) {
	rs, err := s.listMappings(ctx, orgMappings, organizationID, opts)
	return convert(rs, mappingRow.org), err
}

func (s *Store) AddRepoMapping(ctx context.Context, m groupgate.RepoMapping) (groupgate.RepoMapping, error) {
	r, err := s.addMapping(ctx, repoMappings, repoMappingRow(m))
	return r.repo(), err
}

func (s *Store) GetRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error) {
	r, err := s.getMapping(ctx, s.q(), repoMappings, repositoryID, group, false)
	return r.repo(), err
}

func (s *Store) UpdateRepoMapping(ctx context.Context, repositoryID, group string, fn func(*groupgate.RepoMapping) error) (groupgate.RepoMapping, error) {
	r, err := s.updateMapping(ctx, repoMappings, repositoryID, group, func(r *mappingRow) error {
		m := r.repo()
		if err := fn(&m); err != nil {
			return err
		}
		r.Role = string(m.RoleOverride)
		return nil
	})
	return r.repo(), err
}

func (s *Store) RemoveRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error) {
	r, err := s.removeMapping(ctx, repoMappings, repositoryID, group)
	return r.repo(), err
}

func (s *Store) ListRepoMappings(ctx context.Context, repositoryID string, opts store.ListOptions) ([]groupgate.RepoMapping, error) {
	rs, err := s.listMappings(ctx, repoMappings, repositoryID, opts)
	return convert(rs, mappingRow.repo), err
}

func (s *Store) MappingsForGroups(ctx context.Context, groups []string) ([]groupgate.OrgMapping, []groupgate.RepoMapping, error) {
	if len(groups) == 0 {
		return []groupgate.OrgMapping{}, []groupgate.RepoMapping{}, nil
	}
	orgs, err := s.mappingsFor(ctx, orgMappings, groups)
	if err != nil {
		return nil, nil, err
	}
	repos, err := s.mappingsFor(ctx, repoMappings, groups)
	if err != nil {
		return nil, nil, err
	}
	return convert(orgs, mappingRow.org), convert(repos, mappingRow.repo), nil
}

func convert[A, B any](as []A, f func(A) B) []B {
	if as == nil {
		return nil
	}
	bs := make([]B, len(as))
	for i, a := range as {
		bs[i] = f(a)
	}
	return bs
}
