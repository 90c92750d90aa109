package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// mapping is the row shape org and repo mappings share; mappingTable says
// where one kind lives, so that the two kinds share one implementation.
type mapping struct {
	ID, Owner, Group, Role string
	CreatedAt, UpdatedAt   int64 // microseconds, see micros
}

type mappingTable struct {
	table, ownerCol, ownerTable, noun, ownerNoun string
}

var (
	orgMappings  = mappingTable{"org_mappings", "organization_id", "organizations", "organization mapping", "organization"}
	repoMappings = mappingTable{"repo_mappings", "repository_id", "repositories", "repository mapping", "repository"}
)

func (t mappingTable) columns() string {
	return `id, ` + t.ownerCol + `, group_name, role_override, created_at, updated_at`
}

func scanMapping(row interface{ Scan(...any) error }) (mapping, error) {
	var m mapping
	err := row.Scan(&m.ID, &m.Owner, &m.Group, &m.Role, &m.CreatedAt, &m.UpdatedAt)
	return m, err
}

func scanMappingRows(rows *sql.Rows) (mapping, error) { return scanMapping(rows) }

func (s *Store) addMapping(ctx context.Context, t mappingTable, m mapping) (mapping, error) {
	if m.Group == "" {
		return mapping{}, groupgate.Errorf(groupgate.Invalid, "%s needs a group name", t.noun)
	}
	if m.ID == "" {
		m.ID = store.NewID()
	}
	now := micros(s.now())
	m.CreatedAt, m.UpdatedAt = now, now
	err := s.write(ctx, func(q queryer) error {
		var one int
		if err := q.QueryRowContext(ctx, `SELECT 1 FROM `+t.ownerTable+` WHERE id = ?`, m.Owner).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return groupgate.Errorf(groupgate.Invalid, "%s %s does not exist", t.ownerNoun, m.Owner)
			}
			return s.wrap(ctx, err, "load %s %s", t.ownerNoun, m.Owner)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO `+t.table+` (`+t.columns()+`) VALUES (?, ?, ?, ?, ?, ?)`,
			m.ID, m.Owner, m.Group, m.Role, m.CreatedAt, m.UpdatedAt); err != nil {
			return s.wrap(ctx, err, "add %s for group %q", t.noun, m.Group)
		}
		return nil
	})
	return m, err
}

func (s *Store) getMapping(ctx context.Context, q queryer, t mappingTable, owner, group string) (mapping, error) {
	m, err := scanMapping(q.QueryRowContext(ctx,
		`SELECT `+t.columns()+` FROM `+t.table+` WHERE `+t.ownerCol+` = ? AND group_name = ?`, owner, group))
	if err != nil {
		return mapping{}, s.notFound(ctx, err, "%s of group %q on %s", t.noun, group, owner)
	}
	return m, nil
}

// updateMapping keeps only the role fn sets: the rest of a mapping is its
// identity.
func (s *Store) updateMapping(ctx context.Context, t mappingTable, owner, group string, fn func(*mapping) error) (mapping, error) {
	var out mapping
	err := s.write(ctx, func(q queryer) error {
		cur, err := s.getMapping(ctx, q, t, owner, group)
		if err != nil {
			return err
		}
		m := cur
		if err := fn(&m); err != nil {
			return err
		}
		cur.Role, cur.UpdatedAt = m.Role, micros(s.now())
		if _, err := q.ExecContext(ctx, `UPDATE `+t.table+` SET role_override = ?, updated_at = ? WHERE id = ?`,
			cur.Role, cur.UpdatedAt, cur.ID); err != nil {
			return s.wrap(ctx, err, "update %s of group %q", t.noun, group)
		}
		out = cur
		return nil
	})
	return out, err
}

func (s *Store) removeMapping(ctx context.Context, t mappingTable, owner, group string) (mapping, error) {
	var out mapping
	err := s.write(ctx, func(q queryer) error {
		m, err := s.getMapping(ctx, q, t, owner, group)
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE id = ?`, m.ID); err != nil {
			return s.wrap(ctx, err, "remove %s of group %q", t.noun, group)
		}
		out = m
		return nil
	})
	return out, err
}

func (s *Store) listMappings(ctx context.Context, t mappingTable, owner string, opts store.ListOptions) ([]mapping, error) {
	limit, offset := page(opts)
	return query(ctx, s, scanMappingRows, t.noun+"s",
		`SELECT `+t.columns()+` FROM `+t.table+` WHERE `+t.ownerCol+` = ? ORDER BY group_name LIMIT ? OFFSET ?`,
		owner, limit, offset)
}

// mappingsOf passes groups as one JSON array to json_each, so any number
// of groups binds a single parameter.
func (s *Store) mappingsOf(ctx context.Context, t mappingTable, groups []byte) ([]mapping, error) {
	return query(ctx, s, scanMappingRows, t.noun+"s",
		`SELECT `+t.columns()+` FROM `+t.table+`
		WHERE group_name IN (SELECT value FROM json_each(?))
		ORDER BY `+t.ownerCol+`, group_name`, string(groups))
}

func toOrgMapping(m mapping) groupgate.OrgMapping {
	return groupgate.OrgMapping{ID: m.ID, OrganizationID: m.Owner, Group: m.Group, RoleOverride: groupgate.OrgRole(m.Role),
		CreatedAt: fromMicros(m.CreatedAt), UpdatedAt: fromMicros(m.UpdatedAt)}
}

func fromOrgMapping(m groupgate.OrgMapping) mapping {
	return mapping{ID: m.ID, Owner: m.OrganizationID, Group: m.Group, Role: string(m.RoleOverride)}
}

func toRepoMapping(m mapping) groupgate.RepoMapping {
	return groupgate.RepoMapping{ID: m.ID, RepositoryID: m.Owner, Group: m.Group, RoleOverride: groupgate.RepoRole(m.Role),
		CreatedAt: fromMicros(m.CreatedAt), UpdatedAt: fromMicros(m.UpdatedAt)}
}

func fromRepoMapping(m groupgate.RepoMapping) mapping {
	return mapping{ID: m.ID, Owner: m.RepositoryID, Group: m.Group, Role: string(m.RoleOverride)}
}

func convertAll[A, B any](in []A, err error, f func(A) B) ([]B, error) {
	if err != nil {
		return nil, err
	}
	out := make([]B, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out, nil
}

func convertOne[A, B any](in A, err error, f func(A) B) (B, error) {
	if err != nil {
		var zero B
		return zero, err
	}
	return f(in), nil
}

// AddOrgMapping maps m.Group on an organization: Invalid without a group
// or organization, Conflict when the organization maps the group already.
func (s *Store) AddOrgMapping(ctx context.Context, m groupgate.OrgMapping) (groupgate.OrgMapping, error) {
	got, err := s.addMapping(ctx, orgMappings, fromOrgMapping(m))
	return convertOne(got, err, toOrgMapping)
}

// GetOrgMapping finds the organization's mapping of group.
func (s *Store) GetOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error) {
	got, err := s.getMapping(ctx, s.reader(), orgMappings, organizationID, group)
	return convertOne(got, err, toOrgMapping)
}

// UpdateOrgMapping keeps only the RoleOverride that fn sets.
func (s *Store) UpdateOrgMapping(ctx context.Context, organizationID, group string, fn func(*groupgate.OrgMapping) error) (groupgate.OrgMapping, error) {
	got, err := s.updateMapping(ctx, orgMappings, organizationID, group, func(m *mapping) error {
		om := toOrgMapping(*m)
		if err := fn(&om); err != nil {
			return err
		}
		m.Role = string(om.RoleOverride)
		return nil
	})
	return convertOne(got, err, toOrgMapping)
}

// RemoveOrgMapping deletes the mapping and returns it.
func (s *Store) RemoveOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error) {
	got, err := s.removeMapping(ctx, orgMappings, organizationID, group)
	return convertOne(got, err, toOrgMapping)
}

// ListOrgMappings orders by group name.
func (s *Store) ListOrgMappings(ctx context.Context, organizationID string, opts store.ListOptions) ([]groupgate.OrgMapping, error) {
	got, err := s.listMappings(ctx, orgMappings, organizationID, opts)
	return convertAll(got, err, toOrgMapping)
}

// AddRepoMapping maps m.Group on a repository: Invalid without a group or
// repository, Conflict when the repository maps the group already.
func (s *Store) AddRepoMapping(ctx context.Context, m groupgate.RepoMapping) (groupgate.RepoMapping, error) {
	got, err := s.addMapping(ctx, repoMappings, fromRepoMapping(m))
	return convertOne(got, err, toRepoMapping)
}

// GetRepoMapping finds the repository's mapping of group.
func (s *Store) GetRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error) {
	got, err := s.getMapping(ctx, s.reader(), repoMappings, repositoryID, group)
	return convertOne(got, err, toRepoMapping)
}

// UpdateRepoMapping keeps only the RoleOverride that fn sets.
func (s *Store) UpdateRepoMapping(ctx context.Context, repositoryID, group string, fn func(*groupgate.RepoMapping) error) (groupgate.RepoMapping, error) {
	got, err := s.updateMapping(ctx, repoMappings, repositoryID, group, func(m *mapping) error {
		rm := toRepoMapping(*m)
		if err := fn(&rm); err != nil {
			return err
		}
		m.Role = string(rm.RoleOverride)
		return nil
	})
	return convertOne(got, err, toRepoMapping)
}

// RemoveRepoMapping deletes the mapping and returns it.
func (s *Store) RemoveRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error) {
	got, err := s.removeMapping(ctx, repoMappings, repositoryID, group)
	return convertOne(got, err, toRepoMapping)
}

// ListRepoMappings orders by group name.
func (s *Store) ListRepoMappings(ctx context.Context, repositoryID string, opts store.ListOptions) ([]groupgate.RepoMapping, error) {
	got, err := s.listMappings(ctx, repoMappings, repositoryID, opts)
	return convertAll(got, err, toRepoMapping)
}

// MappingsForGroups returns every mapping of any of groups, org mappings
// by (organization, group) and repo mappings by (repository, group).
func (s *Store) MappingsForGroups(ctx context.Context, groups []string) ([]groupgate.OrgMapping, []groupgate.RepoMapping, error) {
	if len(groups) == 0 {
		return []groupgate.OrgMapping{}, []groupgate.RepoMapping{}, nil
	}
	arg, err := json.Marshal(groups)
	if err != nil {
		return nil, nil, groupgate.WrapError(groupgate.Internal, err, "encode groups")
	}
	var orgs []groupgate.OrgMapping
	var repos []groupgate.RepoMapping
	// Both reads in one snapshot, so a concurrent change is seen whole or
	// not at all.
	err = s.snapshot(ctx, func(r *Store) error {
		var err error
		om, err := r.mappingsOf(ctx, orgMappings, arg)
		if orgs, err = convertAll(om, err, toOrgMapping); err != nil {
			return err
		}
		rm, err := r.mappingsOf(ctx, repoMappings, arg)
		repos, err = convertAll(rm, err, toRepoMapping)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return orgs, repos, nil
}
