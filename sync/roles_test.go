package sync_test

import (
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

func TestOrgRolesAreOrderedOwnerAdminWriterMachineMember(t *testing.T) {
	tests := []struct {
		name string
		a, b groupgate.OrgRole
		want groupgate.OrgRole
	}{
		{"owner beats admin", groupgate.OrgRoleAdmin, groupgate.OrgRoleOwner, groupgate.OrgRoleOwner},
		{"admin beats writer", groupgate.OrgRoleWriter, groupgate.OrgRoleAdmin, groupgate.OrgRoleAdmin},
		{"writer beats member", groupgate.OrgRoleMember, groupgate.OrgRoleWriter, groupgate.OrgRoleWriter},
		{"machine beats member", groupgate.OrgRoleMachine, groupgate.OrgRoleMember, groupgate.OrgRoleMachine},
		{"machine and writer give writer whatever the order", groupgate.OrgRoleMachine, groupgate.OrgRoleWriter, groupgate.OrgRoleWriter},
		{"writer and machine give writer whatever the order", groupgate.OrgRoleWriter, groupgate.OrgRoleMachine, groupgate.OrgRoleWriter},
		{"any role beats none", "", groupgate.OrgRoleMember, groupgate.OrgRoleMember},
		{"an unknown role is below member", "BOSS", groupgate.OrgRoleMember, groupgate.OrgRoleMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sync.HigherOrgRole(tt.a, tt.b); got != tt.want {
				t.Errorf("HigherOrgRole(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
			}
		})
	}
	if sync.OrgRoleRank(groupgate.OrgRoleMachine) != sync.OrgRoleRank(groupgate.OrgRoleWriter) {
		t.Error("MACHINE and WRITER rank differently")
	}
}

func TestRepoRolesAreOrderedOwnerAdminWriteLimitedWriteRead(t *testing.T) {
	order := []groupgate.RepoRole{groupgate.RepoRoleOwner, groupgate.RepoRoleAdmin, groupgate.RepoRoleWrite, groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleRead, ""}
	for i := 0; i+1 < len(order); i++ {
		hi, lo := order[i], order[i+1]
		if sync.RepoRoleRank(hi) <= sync.RepoRoleRank(lo) {
			t.Errorf("%q does not rank above %q", hi, lo)
		}
		if got := sync.HigherRepoRole(lo, hi); got != hi {
			t.Errorf("HigherRepoRole(%q, %q) = %q", lo, hi, got)
		}
	}
}

func TestParseOrgRoleOverride(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    groupgate.OrgRole
		wantErr string
	}{
		{"empty means the default", "", "", ""},
		{"UNSPECIFIED clears the override", "ORGANIZATION_ROLE_UNSPECIFIED", "", ""},
		{"the enum form of ADMIN", "ORGANIZATION_ROLE_ADMIN", groupgate.OrgRoleAdmin, ""},
		{"the short form of WRITER", "WRITER", groupgate.OrgRoleWriter, ""},
		{"MACHINE is accepted", "ORGANIZATION_ROLE_MACHINE", groupgate.OrgRoleMachine, ""},
		{"MEMBER is accepted", "member", groupgate.OrgRoleMember, ""},
		{"OWNER cannot come from a group", "ORGANIZATION_ROLE_OWNER", "", "OWNER cannot be granted"},
		{"an unknown role is refused", "ORGANIZATION_ROLE_SUPERUSER", "", "unknown organization role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sync.ParseOrgRoleOverride(tt.in)
			checkParse(t, string(got), err, string(tt.want), tt.wantErr)
		})
	}
}

func TestParseRepoRoleOverride(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    groupgate.RepoRole
		wantErr string
	}{
		{"empty means the default", "", "", ""},
		{"UNSPECIFIED clears the override", "REPOSITORY_ROLE_UNSPECIFIED", "", ""},
		{"ADMIN", "REPOSITORY_ROLE_ADMIN", groupgate.RepoRoleAdmin, ""},
		{"WRITE", "REPOSITORY_ROLE_WRITE", groupgate.RepoRoleWrite, ""},
		{"LIMITED_WRITE", "REPOSITORY_ROLE_LIMITED_WRITE", groupgate.RepoRoleLimitedWrite, ""},
		{"READ in short form", "READ", groupgate.RepoRoleRead, ""},
		{"OWNER is refused because the owner is the parent organization", "REPOSITORY_ROLE_OWNER", "", "parent organization"},
		{"an unknown role is refused", "REPOSITORY_ROLE_MAINTAIN", "", "unknown repository role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sync.ParseRepoRoleOverride(tt.in)
			checkParse(t, string(got), err, string(tt.want), tt.wantErr)
		})
	}
}

func checkParse(t *testing.T, got string, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if !groupgate.IsCode(err, groupgate.Invalid) || !strings.Contains(groupgate.ErrorMessageOf(err), wantErr) {
			t.Fatalf("err = %v, want Invalid containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMappingsGrantTheirOverrideOrTheDefault(t *testing.T) {
	if got := sync.OrgMappingRole(groupgate.OrgMapping{}); got != groupgate.OrgRoleMember {
		t.Errorf("default org mapping role = %q, want MEMBER", got)
	}
	if got := sync.OrgMappingRole(groupgate.OrgMapping{RoleOverride: groupgate.OrgRoleMachine}); got != groupgate.OrgRoleMachine {
		t.Errorf("org mapping role = %q, want MACHINE", got)
	}
	if got := sync.RepoMappingRole(groupgate.RepoMapping{}); got != groupgate.RepoRoleRead {
		t.Errorf("default repo mapping role = %q, want READ", got)
	}
	if got := sync.RepoMappingRole(groupgate.RepoMapping{RoleOverride: groupgate.RepoRoleWrite}); got != groupgate.RepoRoleWrite {
		t.Errorf("repo mapping role = %q, want WRITE", got)
	}
}
