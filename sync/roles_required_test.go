package sync_test

import (
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

func TestParseOrgRoleAcceptsEveryRoleInBothSpellings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    groupgate.OrgRole
		wantErr string
	}{
		{"the short form", "WRITER", groupgate.OrgRoleWriter, ""},
		{"the enum form", "ORGANIZATION_ROLE_ADMIN", groupgate.OrgRoleAdmin, ""},
		{"lower case", "member", groupgate.OrgRoleMember, ""},
		{"OWNER may be required", "OWNER", groupgate.OrgRoleOwner, ""},
		{"MACHINE is a role", "ORGANIZATION_ROLE_MACHINE", groupgate.OrgRoleMachine, ""},
		{"empty names no role", "", "", "unknown organization role"},
		{"UNSPECIFIED names no role", "ORGANIZATION_ROLE_UNSPECIFIED", "", "unknown organization role"},
		{"a repository role is not an organization role", "WRITE", "", "unknown organization role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sync.ParseOrgRole(tt.in)
			checkParse(t, string(got), err, string(tt.want), tt.wantErr)
		})
	}
}

func TestParseRepoRoleAcceptsEveryRoleInBothSpellings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    groupgate.RepoRole
		wantErr string
	}{
		{"the short form", "READ", groupgate.RepoRoleRead, ""},
		{"the enum form", "REPOSITORY_ROLE_LIMITED_WRITE", groupgate.RepoRoleLimitedWrite, ""},
		{"OWNER may be required", "repository_role_owner", groupgate.RepoRoleOwner, ""},
		{"UNSPECIFIED names no role", "REPOSITORY_ROLE_UNSPECIFIED", "", "unknown repository role"},
		{"an organization role is not a repository role", "WRITER", "", "unknown repository role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sync.ParseRepoRole(tt.in)
			checkParse(t, string(got), err, string(tt.want), tt.wantErr)
		})
	}
}

func TestSnapshotRepoRoleRaisesOrganizationAdminsToRepositoryAdmin(t *testing.T) {
	m := groupgate.Memberships{
		OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin, "beta": groupgate.OrgRoleWriter},
		RepoRoles: map[string]groupgate.RepoRole{"beta/api": groupgate.RepoRoleRead, "acme/api": groupgate.RepoRoleRead},
	}
	for _, tt := range []struct {
		repo string
		want groupgate.RepoRole
	}{
		{"acme/api", groupgate.RepoRoleAdmin},
		{"acme/unlisted", groupgate.RepoRoleAdmin},
		{"beta/api", groupgate.RepoRoleRead},
		{"beta/other", ""},
		{"gamma/x", ""},
	} {
		if got := sync.SnapshotRepoRole(m, tt.repo); got != tt.want {
			t.Errorf("SnapshotRepoRole(%s) = %q, want %q", tt.repo, got, tt.want)
		}
	}
}
