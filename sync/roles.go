package sync

import (
	"strings"

	"github.com/groupgate/groupgate"
)

// Prefixes of the Connect API's enum names; parsing accepts both
// "ORGANIZATION_ROLE_ADMIN" and "ADMIN" so that every edge can hand over
// what it received.
const (
	orgRolePrefix  = "ORGANIZATION_ROLE_"
	repoRolePrefix = "REPOSITORY_ROLE_"
)

// OrgRoleRank orders organization roles: OWNER > ADMIN > WRITER = MACHINE >
// MEMBER. Unknown and unspecified roles rank 0, below every real role.
func OrgRoleRank(r groupgate.OrgRole) int {
	switch r {
	case groupgate.OrgRoleOwner:
		return 4
	case groupgate.OrgRoleAdmin:
		return 3
	case groupgate.OrgRoleWriter, groupgate.OrgRoleMachine:
		return 2
	case groupgate.OrgRoleMember:
		return 1
	}
	return 0
}

// RepoRoleRank orders repository roles: OWNER > ADMIN > WRITE >
// LIMITED_WRITE > READ. Unknown and unspecified roles rank 0.
func RepoRoleRank(r groupgate.RepoRole) int {
	switch r {
	case groupgate.RepoRoleOwner:
		return 5
	case groupgate.RepoRoleAdmin:
		return 4
	case groupgate.RepoRoleWrite:
		return 3
	case groupgate.RepoRoleLimitedWrite:
		return 2
	case groupgate.RepoRoleRead:
		return 1
	}
	return 0
}

// HigherOrgRole returns the higher of a and b. WRITER and MACHINE rank
// equal; between them WRITER wins so that the result does not depend on the
// order sources are seen in.
func HigherOrgRole(a, b groupgate.OrgRole) groupgate.OrgRole {
	ra, rb := OrgRoleRank(a), OrgRoleRank(b)
	switch {
	case rb > ra:
		return b
	case rb == ra && b == groupgate.OrgRoleWriter:
		return b
	}
	return a
}

// HigherRepoRole returns the higher of a and b.
func HigherRepoRole(a, b groupgate.RepoRole) groupgate.RepoRole {
	if RepoRoleRank(b) > RepoRoleRank(a) {
		return b
	}
	return a
}

// ParseOrgRoleOverride parses an organization mapping's role override, in
// short ("ADMIN") or Connect enum ("ORGANIZATION_ROLE_ADMIN") form. ""
// and UNSPECIFIED mean the default (MEMBER) and return "". OWNER is not
// grantable through a group; anything else unknown is Invalid.
func ParseOrgRoleOverride(s string) (groupgate.OrgRole, error) {
	r := groupgate.OrgRole(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), orgRolePrefix))
	if r == "UNSPECIFIED" {
		r = groupgate.OrgRoleUnspecified
	}
	return r, ValidateOrgOverride(r)
}

// ValidateOrgOverride accepts "" (default) and the roles a group mapping may
// grant on an organization: ADMIN, WRITER, MACHINE, MEMBER.
func ValidateOrgOverride(r groupgate.OrgRole) error {
	switch r {
	case groupgate.OrgRoleUnspecified, groupgate.OrgRoleAdmin, groupgate.OrgRoleWriter,
		groupgate.OrgRoleMachine, groupgate.OrgRoleMember:
		return nil
	case groupgate.OrgRoleOwner:
		return groupgate.Errorf(groupgate.Invalid, "organization role OWNER cannot be granted through a group mapping")
	}
	return groupgate.Errorf(groupgate.Invalid, "unknown organization role %q", string(r))
}

// ParseRepoRoleOverride parses a repository mapping's role override, in
// short ("WRITE") or enum ("REPOSITORY_ROLE_WRITE") form. "" and
// UNSPECIFIED mean the default (READ) and return "".
func ParseRepoRoleOverride(s string) (groupgate.RepoRole, error) {
	r := groupgate.RepoRole(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), repoRolePrefix))
	if r == "UNSPECIFIED" {
		r = groupgate.RepoRoleUnspecified
	}
	return r, ValidateRepoOverride(r)
}

// ValidateRepoOverride accepts "" (default) and ADMIN, WRITE,
// LIMITED_WRITE, READ. OWNER is refused: a repository's owner is its parent
// organization.
func ValidateRepoOverride(r groupgate.RepoRole) error {
	switch r {
	case groupgate.RepoRoleUnspecified, groupgate.RepoRoleAdmin, groupgate.RepoRoleWrite,
		groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleRead:
		return nil
	case groupgate.RepoRoleOwner:
		return groupgate.Errorf(groupgate.Invalid, "repository role OWNER cannot be granted: the owner of a repository is its parent organization")
	}
	return groupgate.Errorf(groupgate.Invalid, "unknown repository role %q", string(r))
}

// validateManualOrgRole accepts every organization role, OWNER included:
// an organization's owners are given by hand, never through a group.
func validateManualOrgRole(r groupgate.OrgRole) error {
	if r == groupgate.OrgRoleUnspecified {
		return groupgate.Errorf(groupgate.Invalid, "organization role required")
	}
	if OrgRoleRank(r) == 0 {
		return groupgate.Errorf(groupgate.Invalid, "unknown organization role %q", string(r))
	}
	return nil
}

// validateManualRepoRole accepts the repository roles a person can hold;
// OWNER stays with the parent organization.
func validateManualRepoRole(r groupgate.RepoRole) error {
	if r == groupgate.RepoRoleUnspecified {
		return groupgate.Errorf(groupgate.Invalid, "repository role required")
	}
	return ValidateRepoOverride(r)
}

// OrgMappingRole is the role an organization mapping grants: its override,
// or MEMBER by default.
func OrgMappingRole(m groupgate.OrgMapping) groupgate.OrgRole {
	if m.RoleOverride == groupgate.OrgRoleUnspecified {
		return groupgate.OrgRoleMember
	}
	return m.RoleOverride
}

// RepoMappingRole is the role a repository mapping grants: its override, or
// READ by default.
func RepoMappingRole(m groupgate.RepoMapping) groupgate.RepoRole {
	if m.RoleOverride == groupgate.RepoRoleUnspecified {
		return groupgate.RepoRoleRead
	}
	return m.RoleOverride
}

// ParseOrgRole parses any organization role a requirement may name, OWNER
// included, in short ("WRITER") or Connect enum ("ORGANIZATION_ROLE_WRITER")
// form, case-insensitively. "" and UNSPECIFIED are Invalid: a requirement
// must name a role.
func ParseOrgRole(s string) (groupgate.OrgRole, error) {
	r := groupgate.OrgRole(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), orgRolePrefix))
	if OrgRoleRank(r) == 0 {
		return "", groupgate.Errorf(groupgate.Invalid, "unknown organization role %q (use OWNER, ADMIN, WRITER, MACHINE or MEMBER, or their ORGANIZATION_ROLE_ names)", s)
	}
	return r, nil
}

// ParseRepoRole parses any repository role a requirement may name, OWNER
// included, in short ("WRITE") or enum ("REPOSITORY_ROLE_WRITE") form,
// case-insensitively. "" and UNSPECIFIED are Invalid.
func ParseRepoRole(s string) (groupgate.RepoRole, error) {
	r := groupgate.RepoRole(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), repoRolePrefix))
	if RepoRoleRank(r) == 0 {
		return "", groupgate.Errorf(groupgate.Invalid, "unknown repository role %q (use OWNER, ADMIN, WRITE, LIMITED_WRITE or READ, or their REPOSITORY_ROLE_ names)", s)
	}
	return r, nil
}

// SnapshotRepoRole is the role on the repository fullName ("org/repo")
// that authorizes actions, read from a session's membership snapshot: the
// snapshot's role on the repository, raised to ADMIN when the snapshot
// holds ADMIN or OWNER on its organization (Access.RepoRole's rule, for
// callers that hold only the snapshot, such as forward-auth).
func SnapshotRepoRole(m groupgate.Memberships, fullName string) groupgate.RepoRole {
	r := m.RepoRoles[fullName]
	if org, _, ok := strings.Cut(fullName, "/"); ok && OrgRoleRank(m.OrgRoles[org]) >= OrgRoleRank(groupgate.OrgRoleAdmin) {
		return HigherRepoRole(r, groupgate.RepoRoleAdmin)
	}
	return r
}
