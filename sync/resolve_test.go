package sync_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// fixture: alice holds acme through two mapped groups and a manual role,
// and acme/api likewise; bob is only in the everyone group.
type fixture struct {
	*env
	acme       groupgate.Organization
	api        groupgate.Repository
	alice, bob groupgate.User
}

func newFixture(t *testing.T) *fixture {
	e := newEnv(t)
	f := &fixture{env: e, acme: e.org("acme")}
	f.api = e.repo(f.acme, "api")
	f.alice = e.user("alice", "eng-admins", "eng-all")
	f.bob = e.user("bob", "eng-all")
	_, err := e.s.AddOrgMapping(e.ctx, "test", f.acme.ID, "eng-admins", groupgate.OrgRoleAdmin)
	e.must(err)
	_, err = e.s.AddOrgMapping(e.ctx, "test", f.acme.ID, "eng-all", "")
	e.must(err)
	_, err = e.s.SetOrgMember(e.ctx, "test", f.acme.ID, f.alice.ID, groupgate.OrgRoleWriter)
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "test", f.api.ID, "eng-admins", groupgate.RepoRoleAdmin)
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "test", f.api.ID, "eng-all", "")
	e.must(err)
	_, err = e.s.SetRepoContributor(e.ctx, "test", f.api.ID, f.alice.ID, groupgate.RepoRoleLimitedWrite)
	e.must(err)
	e.rec.take()
	return f
}

func orgSources(a sync.Access, orgID string) []string {
	o, _ := a.Org(orgID)
	var out []string
	for _, s := range o.Sources {
		out = append(out, string(s.Kind)+":"+s.Group+":"+string(s.Role))
	}
	return out
}

func repoSources(a sync.Access, repoID string) []string {
	r, _ := a.Repo(repoID)
	var out []string
	for _, s := range r.Sources {
		out = append(out, string(s.Kind)+":"+s.Group+":"+string(s.Role))
	}
	return out
}

func TestAUserInTwoMappedGroupsWithAManualRoleHasTheHighest(t *testing.T) {
	f := newFixture(t)
	a := f.resolve(f.alice.ID)
	if got := a.OrgRole(f.acme.ID); got != groupgate.OrgRoleAdmin {
		t.Errorf("org role = %q, want ADMIN", got)
	}
	if got, want := orgSources(a, f.acme.ID), []string{"manual::WRITER", "group:eng-admins:ADMIN", "group:eng-all:MEMBER"}; !slices.Equal(got, want) {
		t.Errorf("org sources = %v, want %v", got, want)
	}
	r, _ := a.Repo(f.api.ID)
	if r.Role != groupgate.RepoRoleAdmin || r.FullName() != "acme/api" {
		t.Errorf("repo = %s %q, want acme/api ADMIN", r.FullName(), r.Role)
	}
	if got, want := repoSources(a, f.api.ID), []string{"manual::LIMITED_WRITE", "group:eng-admins:ADMIN", "group:eng-all:READ"}; !slices.Equal(got, want) {
		t.Errorf("repo sources = %v, want %v", got, want)
	}
	o, _ := a.Org(f.acme.ID)
	for _, s := range o.Sources {
		if s.Kind == sync.SourceGroup && s.MappingID == "" {
			t.Errorf("group source %s has no mapping ID", s.Group)
		}
	}
	want := snapshot([]string{"eng-admins", "eng-all"},
		map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin},
		map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleAdmin})
	if got := a.Memberships(); !reflect.DeepEqual(got, want) {
		t.Errorf("memberships = %+v, want %+v", got, want)
	}
}

func TestRemovingOneSourceLeavesTheHighestOfTheRest(t *testing.T) {
	tests := []struct {
		name       string
		remove     func(f *fixture) error
		wantOrg    groupgate.OrgRole
		wantRepo   groupgate.RepoRole
		wantOrgSrc []string
		// wantBobPushed says whether bob, who is only in eng-all, is
		// affected.
		wantBobPushed bool
	}{
		{
			name: "removing the admins org mapping leaves the manual WRITER",
			remove: func(f *fixture) error {
				_, err := f.s.RemoveOrgMapping(f.ctx, "t", f.acme.ID, "eng-admins")
				return err
			},
			wantOrg:    groupgate.OrgRoleWriter,
			wantRepo:   groupgate.RepoRoleAdmin,
			wantOrgSrc: []string{"manual::WRITER", "group:eng-all:MEMBER"},
		},
		{
			name:       "removing the manual org role leaves ADMIN from the admins group",
			remove:     func(f *fixture) error { return f.s.RemoveOrgMember(f.ctx, "t", f.acme.ID, f.alice.ID) },
			wantOrg:    groupgate.OrgRoleAdmin,
			wantRepo:   groupgate.RepoRoleAdmin,
			wantOrgSrc: []string{"group:eng-admins:ADMIN", "group:eng-all:MEMBER"},
		},
		{
			name:          "removing the everyone org mapping keeps ADMIN and drops only that source",
			remove:        func(f *fixture) error { _, err := f.s.RemoveOrgMapping(f.ctx, "t", f.acme.ID, "eng-all"); return err },
			wantOrg:       groupgate.OrgRoleAdmin,
			wantRepo:      groupgate.RepoRoleAdmin,
			wantOrgSrc:    []string{"manual::WRITER", "group:eng-admins:ADMIN"},
			wantBobPushed: true,
		},
		{
			name: "leaving the admins group leaves WRITER on the org and LIMITED_WRITE on the repo",
			remove: func(f *fixture) error {
				_, err := f.s.SetUserGroups(f.ctx, "scim", f.alice.ID, groupgate.SourceSCIM, []string{"eng-all"})
				return err
			},
			wantOrg:    groupgate.OrgRoleWriter,
			wantRepo:   groupgate.RepoRoleLimitedWrite,
			wantOrgSrc: []string{"manual::WRITER", "group:eng-all:MEMBER"},
		},
		{
			name: "removing the admins repo mapping leaves the manual LIMITED_WRITE",
			remove: func(f *fixture) error {
				_, err := f.s.RemoveRepoMapping(f.ctx, "t", f.api.ID, "eng-admins")
				return err
			},
			wantOrg:    groupgate.OrgRoleAdmin,
			wantRepo:   groupgate.RepoRoleLimitedWrite,
			wantOrgSrc: []string{"manual::WRITER", "group:eng-admins:ADMIN", "group:eng-all:MEMBER"},
		},
		{
			name:       "removing the manual repo role leaves ADMIN from the admins group",
			remove:     func(f *fixture) error { return f.s.RemoveRepoContributor(f.ctx, "t", f.api.ID, f.alice.ID) },
			wantOrg:    groupgate.OrgRoleAdmin,
			wantRepo:   groupgate.RepoRoleAdmin,
			wantOrgSrc: []string{"manual::WRITER", "group:eng-admins:ADMIN", "group:eng-all:MEMBER"},
		},
		{
			name: "removing every source leaves no role at all",
			remove: func(f *fixture) error {
				for _, err := range []error{
					f.s.RemoveOrgMember(f.ctx, "t", f.acme.ID, f.alice.ID),
					f.s.RemoveRepoContributor(f.ctx, "t", f.api.ID, f.alice.ID),
				} {
					if err != nil {
						return err
					}
				}
				_, err := f.s.SetUserGroups(f.ctx, "scim", f.alice.ID, groupgate.SourceSCIM, nil)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if err := tt.remove(f); err != nil {
				t.Fatalf("remove: %v", err)
			}
			a := f.resolve(f.alice.ID)
			if got := a.OrgRole(f.acme.ID); got != tt.wantOrg {
				t.Errorf("org role = %q, want %q", got, tt.wantOrg)
			}
			if r, _ := a.Repo(f.api.ID); r.Role != tt.wantRepo {
				t.Errorf("repo role = %q, want %q", r.Role, tt.wantRepo)
			}
			if got := orgSources(a, f.acme.ID); !slices.Equal(got, tt.wantOrgSrc) {
				t.Errorf("org sources = %v, want %v", got, tt.wantOrgSrc)
			}
			pushed, _ := f.rec.take()
			if got, ok := pushed[f.alice.ID]; !ok || !reflect.DeepEqual(got, a.Memberships()) {
				t.Errorf("alice's pushed snapshot = %+v (pushed %v), want %+v", got, ok, a.Memberships())
			}
			if _, ok := pushed[f.bob.ID]; ok != tt.wantBobPushed {
				t.Errorf("bob pushed = %v, want %v", ok, tt.wantBobPushed)
			}
			if ok := pushed[f.bob.ID]; tt.wantBobPushed && !reflect.DeepEqual(ok, f.resolve(f.bob.ID).Memberships()) {
				t.Errorf("bob's pushed snapshot = %+v, want %+v", ok, f.resolve(f.bob.ID).Memberships())
			}
		})
	}
}

func TestMachineEqualsWriterAndDefaultsAreMemberAndRead(t *testing.T) {
	tests := []struct {
		name     string
		mappings map[string]groupgate.OrgRole // group → override
		manual   groupgate.OrgRole
		want     groupgate.OrgRole
	}{
		{"a mapping without override grants MEMBER", map[string]groupgate.OrgRole{"g1": ""}, "", groupgate.OrgRoleMember},
		{"MACHINE alone stays MACHINE", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleMachine}, "", groupgate.OrgRoleMachine},
		{"MACHINE beats MEMBER", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleMachine, "g2": ""}, "", groupgate.OrgRoleMachine},
		{"MACHINE and a manual WRITER give WRITER", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleMachine}, groupgate.OrgRoleWriter, groupgate.OrgRoleWriter},
		{"a WRITER group and a MACHINE group give WRITER", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleWriter, "g2": groupgate.OrgRoleMachine}, "", groupgate.OrgRoleWriter},
		{"ADMIN beats MACHINE", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleMachine, "g2": groupgate.OrgRoleAdmin}, "", groupgate.OrgRoleAdmin},
		{"a manual OWNER beats every group", map[string]groupgate.OrgRole{"g1": groupgate.OrgRoleAdmin}, groupgate.OrgRoleOwner, groupgate.OrgRoleOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.org("acme")
			r := e.repo(o, "api")
			u := e.user("u", "g1", "g2")
			for g, role := range tt.mappings {
				_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, g, role)
				e.must(err)
			}
			_, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "g1", "")
			e.must(err)
			if tt.manual != "" {
				_, err := e.s.SetOrgMember(e.ctx, "t", o.ID, u.ID, tt.manual)
				e.must(err)
			}
			a := e.resolve(u.ID)
			if got := a.OrgRole(o.ID); got != tt.want {
				t.Errorf("org role = %q, want %q", got, tt.want)
			}
			if got, _ := a.Repo(r.ID); got.Role != groupgate.RepoRoleRead {
				t.Errorf("repo role from a mapping without override = %q, want READ", got.Role)
			}
		})
	}
}

func TestOrgAdminsAdministerEveryRepositoryWithoutPerRepoEntries(t *testing.T) {
	e := newEnv(t)
	acme, beta := e.org("acme"), e.org("beta")
	api, web, other := e.repo(acme, "api"), e.repo(acme, "web"), e.repo(beta, "other")
	admin := e.user("admin", "acme-admins")
	_, err := e.s.AddOrgMapping(e.ctx, "t", acme.ID, "acme-admins", groupgate.OrgRoleAdmin)
	e.must(err)
	reader := e.user("reader", "readers")
	_, err = e.s.AddRepoMapping(e.ctx, "t", web.ID, "readers", "")
	e.must(err)
	repoAdmin := e.user("repoadmin")
	_, err = e.s.SetRepoContributor(e.ctx, "t", other.ID, repoAdmin.ID, groupgate.RepoRoleAdmin)
	e.must(err)

	a := e.resolve(admin.ID)
	if len(a.Repos) != 0 {
		t.Errorf("org admin has %d repository entries, want none (authority is implied, not expanded)", len(a.Repos))
	}
	tests := []struct {
		name string
		who  groupgate.User
		repo groupgate.Repository
		want bool
	}{
		{"an org admin administers a repository of the org", admin, api, true},
		{"an org admin administers another repository of the org", admin, web, true},
		{"an org admin does not administer another org's repository", admin, other, false},
		{"a reader does not administer the repository", reader, web, false},
		{"a repository admin administers that repository", repoAdmin, other, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sync.CanAdminRepo(e.resolve(tt.who.ID), tt.repo); got != tt.want {
				t.Errorf("CanAdminRepo = %v, want %v", got, tt.want)
			}
		})
	}
	if !sync.CanAdminOrg(a, acme.ID) || sync.CanAdminOrg(a, beta.ID) {
		t.Error("CanAdminOrg: want true for acme and false for beta")
	}
	ex, err := e.s.Explain(e.ctx, admin.ID, sync.ResourceRepo, api.ID)
	e.must(err)
	if ex.RepoRole != "" || ex.AuthorizedRepoRole != groupgate.RepoRoleAdmin || ex.OrgRole != groupgate.OrgRoleAdmin || len(ex.OrgSources) != 1 || ex.OrgSources[0].Group != "acme-admins" {
		t.Errorf("explanation = %+v, want no direct role, ADMIN through acme-admins", ex)
	}
	if ex.ResourceName != "acme/api" {
		t.Errorf("resource name = %q", ex.ResourceName)
	}
}

func TestExplainRefusesUnknownResources(t *testing.T) {
	e := newEnv(t)
	u := e.user("u")
	tests := []struct {
		name string
		kind sync.ResourceKind
		id   string
		code groupgate.ErrorCode
	}{
		{"an unknown organization is not found", sync.ResourceOrg, "nope", groupgate.NotFound},
		{"an unknown repository is not found", sync.ResourceRepo, "nope", groupgate.NotFound},
		{"an unknown kind is invalid", "team", "x", groupgate.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.s.Explain(e.ctx, u.ID, tt.kind, tt.id); !groupgate.IsCode(err, tt.code) {
				t.Errorf("err = %v, want %s", err, tt.code)
			}
		})
	}
}

func TestResolveOfAnUnknownUserIsNotFound(t *testing.T) {
	e := newEnv(t)
	if _, err := e.s.Resolve(e.ctx, "nobody"); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Errorf("err = %v, want NotFound", err)
	}
}

func TestAGroupHiddenByTheFilterGrantsNothing(t *testing.T) {
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return g != "hidden" }))
	o := e.org("acme")
	// The mapping is made directly in the store, as if before the filter
	// was configured.
	_, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: o.ID, Group: "hidden", RoleOverride: groupgate.OrgRoleAdmin})
	e.must(err)
	u := e.user("u", "hidden", "visible")
	a := e.resolve(u.ID)
	if len(a.Orgs) != 0 || !slices.Equal(a.Groups, []string{"visible"}) {
		t.Errorf("access = %+v, want only the visible group and no role", a)
	}
}
