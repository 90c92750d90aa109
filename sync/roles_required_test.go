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

func TestParseRequirementDefaultsToTheLowestRoleAndRefusesWhatCannotMatch(t *testing.T) {
	req, err := sync.ParseRequirement("", "acme/api", "eng", "REPOSITORY_ROLE_LIMITED_WRITE")
	if err != nil || req.Repo != "acme/api" || req.RepoRole != groupgate.RepoRoleLimitedWrite || req.Group != "eng" {
		t.Fatalf("ParseRequirement = %+v, %v", req, err)
	}
	if req, _ := sync.ParseRequirement("acme", "", "", ""); req.OrgRole != groupgate.OrgRoleMember {
		t.Fatalf("org without min_role requires %q, want MEMBER", req.OrgRole)
	}
	if _, err := sync.ParseRequirement("acme", "", "", "OWNER"); err != nil {
		t.Fatalf("OWNER may be required: %v", err)
	}
	if _, err := sync.ParseRequirement("ac\nme", "", "", ""); !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("a control character: %v, want Invalid", err)
	}
}

func TestRequirementCheckSaysWhatIsMissing(t *testing.T) {
	m := groupgate.Memberships{
		Groups:    []string{"eng"},
		OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMachine},
		RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleRead},
	}
	for _, tt := range []struct {
		name string
		req  sync.Requirement
		ok   bool
		want sync.Shortfall
	}{
		{"MACHINE ranks as WRITER", sync.Requirement{Org: "acme", OrgRole: groupgate.OrgRoleWriter}, true, sync.Shortfall{}},
		{"ADMIN is above MACHINE", sync.Requirement{Org: "acme", OrgRole: groupgate.OrgRoleAdmin}, false,
			sync.Shortfall{Kind: sync.NeedOrgRole, Name: "acme", Need: "ADMIN", Has: "MACHINE"}},
		{"names compare without case", sync.Requirement{Org: "Acme", OrgRole: groupgate.OrgRoleMember}, true, sync.Shortfall{}},
		{"a repository role below the need", sync.Requirement{Repo: "acme/api", RepoRole: groupgate.RepoRoleWrite}, false,
			sync.Shortfall{Kind: sync.NeedRepoRole, Name: "acme/api", Need: "WRITE", Has: "READ"}},
		{"no role on the repository", sync.Requirement{Repo: "beta/x", RepoRole: groupgate.RepoRoleRead}, false,
			sync.Shortfall{Kind: sync.NeedRepoRole, Name: "beta/x", Need: "READ"}},
		{"a group held", sync.Requirement{Group: "eng"}, true, sync.Shortfall{}},
		{"group names are exact", sync.Requirement{Group: "ENG"}, false, sync.Shortfall{Kind: sync.NeedGroup, Name: "ENG"}},
		{"every part must hold", sync.Requirement{Group: "eng", Org: "acme", OrgRole: groupgate.OrgRoleOwner}, false,
			sync.Shortfall{Kind: sync.NeedOrgRole, Name: "acme", Need: "OWNER", Has: "MACHINE"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.req.Check(m)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Check = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
