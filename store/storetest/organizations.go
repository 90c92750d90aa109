package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func (s suite) organizations(t *testing.T) {
	t.Run("a created organization round-trips by ID and by name in any case", func(t *testing.T) {
		ctx, st := s.fresh(t)
		o := must[groupgate.Organization](t, "create organization")(st.CreateOrganization(ctx, groupgate.Organization{Name: "Acme-Corp", CreatedAt: fixedTime(1)}))
		if o.ID == "" || o.Name != "Acme-Corp" {
			t.Fatalf("created organization = %+v", o)
		}
		checkTime(t, "CreatedAt", o.CreatedAt)
		wantEqual(t, "organization by ID", must[groupgate.Organization](t, "get")(st.GetOrganization(ctx, o.ID)), o)
		for _, name := range []string{"Acme-Corp", "acme-corp", "ACME-CORP"} {
			wantEqual(t, "organization by name "+name, must[groupgate.Organization](t, "get by name")(st.GetOrganizationByName(ctx, name)), o)
		}
		chosen := must[groupgate.Organization](t, "create with ID")(st.CreateOrganization(ctx, groupgate.Organization{ID: "org-chosen", Name: "beta"}))
		if chosen.ID != "org-chosen" {
			t.Errorf("ID = %q, want the caller's org-chosen", chosen.ID)
		}
	})

	t.Run("creating an organization checks its name", func(t *testing.T) {
		cases := []struct {
			name string
			org  string
			want groupgate.ErrorCode
		}{
			{"an empty name is refused", "", groupgate.Invalid},
			{"a taken name is a conflict", "acme", groupgate.Conflict},
			{"a name taken in another case is a conflict", "ACME", groupgate.Conflict},
			{"a new name is accepted", "beta", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				mkOrg(t, ctx, st, "acme")
				_, err := st.CreateOrganization(ctx, groupgate.Organization{Name: tc.org})
				n := len(must[[]groupgate.Organization](t, "list")(st.ListOrganizations(ctx, store.ListOptions{})))
				if tc.want == "" {
					noErr(t, err, "create organization")
					if n != 2 {
						t.Fatalf("%d organizations, want 2", n)
					}
					return
				}
				wantCode(t, err, tc.want, "create organization")
				if n != 1 {
					t.Fatalf("%d organizations after a refused create, want 1", n)
				}
			})
		}
	})

	t.Run("an organization's repository base role starts unset, round-trips and is checked", func(t *testing.T) {
		ctx, st := s.fresh(t)
		o := mkOrg(t, ctx, st, "acme")
		if o.RepositoryBaseRole != groupgate.RepoRoleUnspecified {
			t.Fatalf("new organization has base role %q, want none", o.RepositoryBaseRole)
		}
		withBase := must[groupgate.Organization](t, "create with base role")(st.CreateOrganization(ctx, groupgate.Organization{Name: "beta", RepositoryBaseRole: groupgate.RepoRoleWrite}))
		wantEqual(t, "created with base role", must[groupgate.Organization](t, "get")(st.GetOrganization(ctx, withBase.ID)).RepositoryBaseRole, groupgate.RepoRoleWrite)
		for _, r := range []groupgate.RepoRole{groupgate.RepoRoleRead, groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleWrite, groupgate.RepoRoleAdmin, groupgate.RepoRoleUnspecified} {
			noErr(t, st.SetOrganizationRepositoryBaseRole(ctx, o.ID, r), "set base role "+string(r))
			wantEqual(t, "base role by ID", must[groupgate.Organization](t, "get")(st.GetOrganization(ctx, o.ID)).RepositoryBaseRole, r)
			wantEqual(t, "base role by name", must[groupgate.Organization](t, "get by name")(st.GetOrganizationByName(ctx, "ACME")).RepositoryBaseRole, r)
		}
		noErr(t, st.SetOrganizationRepositoryBaseRole(ctx, o.ID, groupgate.RepoRoleRead), "set READ")
		for _, bad := range []groupgate.RepoRole{groupgate.RepoRoleOwner, "SUPERUSER"} {
			wantCode(t, st.SetOrganizationRepositoryBaseRole(ctx, o.ID, bad), groupgate.Invalid, "set base role "+string(bad))
			_, err := st.CreateOrganization(ctx, groupgate.Organization{Name: "bad-" + strings.ToLower(string(bad)), RepositoryBaseRole: bad})
			wantCode(t, err, groupgate.Invalid, "create with base role "+string(bad))
		}
		wantEqual(t, "base role after refused sets", must[groupgate.Organization](t, "get")(st.GetOrganization(ctx, o.ID)).RepositoryBaseRole, groupgate.RepoRoleRead)
		wantCode(t, st.SetOrganizationRepositoryBaseRole(ctx, store.NewID(), groupgate.RepoRoleRead), groupgate.NotFound, "set base role of a missing organization")
		listed := must[[]groupgate.Organization](t, "list")(st.ListOrganizations(ctx, store.ListOptions{}))
		wantEqual(t, "listed base roles", []groupgate.RepoRole{listed[0].RepositoryBaseRole, listed[1].RepositoryBaseRole}, []groupgate.RepoRole{groupgate.RepoRoleRead, groupgate.RepoRoleWrite})
	})

	t.Run("a missing organization is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		_, err := st.GetOrganization(ctx, store.NewID())
		wantCode(t, err, groupgate.NotFound, "GetOrganization")
		_, err = st.GetOrganizationByName(ctx, "absent")
		wantCode(t, err, groupgate.NotFound, "GetOrganizationByName")
		wantCode(t, st.DeleteOrganization(ctx, store.NewID()), groupgate.NotFound, "DeleteOrganization")
	})

	t.Run("organizations are listed by name and paged", func(t *testing.T) {
		ctx, st := s.fresh(t)
		if got := must[[]groupgate.Organization](t, "list")(st.ListOrganizations(ctx, store.ListOptions{})); len(got) != 0 {
			t.Fatalf("empty store lists %+v", got)
		}
		var want []groupgate.Organization
		for _, name := range []string{"delta", "alpha", "echo", "charlie", "bravo"} {
			want = append(want, mkOrg(t, ctx, st, name))
		}
		slices.SortFunc(want, func(a, b groupgate.Organization) int { return strings.Compare(a.Name, b.Name) })
		for _, o := range pages(len(want)) {
			got := must[[]groupgate.Organization](t, "list "+pageName(o))(st.ListOrganizations(ctx, o))
			wantEqual(t, "organizations "+pageName(o), got, window(want, o))
		}
	})

	t.Run("deleting an organization removes its repositories, mappings and manual roles", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		type world struct {
			org   groupgate.Organization
			repo  groupgate.Repository
			om    groupgate.OrgMapping
			rm    groupgate.RepoMapping
			mem   groupgate.OrgMember
			contr groupgate.RepoContributor
		}
		build := func(name string) world {
			var w world
			w.org = mkOrg(t, ctx, st, name)
			w.repo = mkRepo(t, ctx, st, w.org, "api")
			w.om = mkOrgMapping(t, ctx, st, w.org.ID, "eng", groupgate.OrgRoleAdmin)
			w.rm = mkRepoMapping(t, ctx, st, w.repo.ID, "eng", groupgate.RepoRoleWrite)
			w.mem = must[groupgate.OrgMember](t, "set member")(st.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: w.org.ID, UserID: u.ID, Role: groupgate.OrgRoleWriter}))
			w.contr = must[groupgate.RepoContributor](t, "set contributor")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: w.repo.ID, UserID: u.ID, Role: groupgate.RepoRoleAdmin}))
			return w
		}
		gone, kept := build("gone"), build("kept")

		noErr(t, st.DeleteOrganization(ctx, gone.org.ID), "delete organization")

		_, err := st.GetOrganization(ctx, gone.org.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted organization")
		_, err = st.GetRepository(ctx, gone.repo.ID)
		wantCode(t, err, groupgate.NotFound, "get repository of deleted organization")
		_, err = st.GetRepositoryByFullName(ctx, "gone", "api")
		wantCode(t, err, groupgate.NotFound, "get repository of deleted organization by full name")
		_, err = st.GetOrgMapping(ctx, gone.org.ID, "eng")
		wantCode(t, err, groupgate.NotFound, "get org mapping of deleted organization")
		_, err = st.GetRepoMapping(ctx, gone.repo.ID, "eng")
		wantCode(t, err, groupgate.NotFound, "get repo mapping of deleted organization")
		_, err = st.GetOrgMember(ctx, gone.org.ID, u.ID)
		wantCode(t, err, groupgate.NotFound, "get member of deleted organization")
		_, err = st.GetRepoContributor(ctx, gone.repo.ID, u.ID)
		wantCode(t, err, groupgate.NotFound, "get contributor of deleted organization")
		wantCode(t, st.DeleteOrganization(ctx, gone.org.ID), groupgate.NotFound, "delete organization twice")
		// Listings under the deleted resources are empty, not errors.
		if got := must[[]groupgate.Repository](t, "list repositories of deleted organization")(st.ListRepositories(ctx, gone.org.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("deleted organization lists repositories %+v", got)
		}
		if got := must[[]groupgate.OrgMapping](t, "list mappings of deleted organization")(st.ListOrgMappings(ctx, gone.org.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("deleted organization lists mappings %+v", got)
		}
		if got := must[[]groupgate.RepoMapping](t, "list mappings of deleted repository")(st.ListRepoMappings(ctx, gone.repo.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("deleted repository lists mappings %+v", got)
		}
		if got := must[[]groupgate.OrgMember](t, "list members of deleted organization")(st.ListOrgMembers(ctx, gone.org.ID)); len(got) != 0 {
			t.Errorf("deleted organization lists members %+v", got)
		}
		if got := must[[]groupgate.RepoContributor](t, "list contributors of deleted repository")(st.ListRepoContributors(ctx, gone.repo.ID)); len(got) != 0 {
			t.Errorf("deleted repository lists contributors %+v", got)
		}

		om, rm := must2(t, "mappings for eng")(st.MappingsForGroups(ctx, []string{"eng"}))
		wantEqual(t, "org mappings left", om, []groupgate.OrgMapping{kept.om})
		wantEqual(t, "repo mappings left", rm, []groupgate.RepoMapping{kept.rm})
		wantEqual(t, "alice's org roles left", must[[]groupgate.OrgMember](t, "list")(st.ListUserOrgMembers(ctx, u.ID)), []groupgate.OrgMember{kept.mem})
		wantEqual(t, "alice's repo roles left", must[[]groupgate.RepoContributor](t, "list")(st.ListUserRepoContributors(ctx, u.ID)), []groupgate.RepoContributor{kept.contr})
		wantEqual(t, "organizations left", must[[]groupgate.Organization](t, "list")(st.ListOrganizations(ctx, store.ListOptions{})), []groupgate.Organization{kept.org})
		wantEqual(t, "kept repository", must[groupgate.Repository](t, "get")(st.GetRepository(ctx, kept.repo.ID)), kept.repo)

		// The name is free again, and the new organization starts empty.
		again := mkOrg(t, ctx, st, "GONE")
		if got := must[[]groupgate.Repository](t, "list")(st.ListRepositories(ctx, again.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("re-created organization has repositories %+v", got)
		}
		mkRepo(t, ctx, st, again, "api")
	})
}

func (s suite) repositories(t *testing.T) {
	t.Run("a created repository round-trips with its organization's name filled in", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "Acme")
		r := must[groupgate.Repository](t, "create repository")(st.CreateRepository(ctx, groupgate.Repository{
			OrganizationID: org.ID, OrganizationName: "ignored", Name: "Payments-API", Visibility: groupgate.VisibilityPublic,
		}))
		want := groupgate.Repository{ID: r.ID, OrganizationID: org.ID, OrganizationName: "Acme", Name: "Payments-API", Visibility: groupgate.VisibilityPublic, CreatedAt: r.CreatedAt}
		if r.ID == "" {
			t.Fatal("created repository has no ID")
		}
		checkTime(t, "CreatedAt", r.CreatedAt)
		wantEqual(t, "created repository", r, want)
		wantEqual(t, "repository by ID", must[groupgate.Repository](t, "get")(st.GetRepository(ctx, r.ID)), want)
		for _, full := range [][2]string{{"Acme", "Payments-API"}, {"acme", "payments-api"}, {"ACME", "PAYMENTS-API"}} {
			wantEqual(t, "repository by full name "+full[0]+"/"+full[1], must[groupgate.Repository](t, "get by full name")(st.GetRepositoryByFullName(ctx, full[0], full[1])), want)
		}
		if r.FullName() != "Acme/Payments-API" {
			t.Errorf("FullName = %q", r.FullName())
		}
	})

	t.Run("creating a repository checks name, organization and visibility", func(t *testing.T) {
		cases := []struct {
			name     string
			repo     func(acme, beta groupgate.Organization) groupgate.Repository
			want     groupgate.ErrorCode
			wantVis  groupgate.Visibility
			wantOrgs string
		}{
			{"an empty visibility becomes private", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID, Name: "web"}
			}, "", groupgate.VisibilityPrivate, "acme"},
			{"private is kept", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID, Name: "web", Visibility: groupgate.VisibilityPrivate}
			}, "", groupgate.VisibilityPrivate, "acme"},
			{"public is kept", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID, Name: "web", Visibility: groupgate.VisibilityPublic}
			}, "", groupgate.VisibilityPublic, "acme"},
			{"an unknown visibility is refused", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID, Name: "web", Visibility: "internal"}
			}, groupgate.Invalid, "", ""},
			{"an empty name is refused", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID}
			}, groupgate.Invalid, "", ""},
			{"a missing organization is refused", func(groupgate.Organization, groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: store.NewID(), Name: "web"}
			}, groupgate.Invalid, "", ""},
			{"an empty organization is refused", func(groupgate.Organization, groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{Name: "web"}
			}, groupgate.Invalid, "", ""},
			{"a name the organization has in another case is a conflict", func(a, _ groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: a.ID, Name: "API"}
			}, groupgate.Conflict, "", ""},
			{"another organization may use the same name", func(_, b groupgate.Organization) groupgate.Repository {
				return groupgate.Repository{OrganizationID: b.ID, Name: "api"}
			}, "", groupgate.VisibilityPrivate, "beta"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				acme, beta := mkOrg(t, ctx, st, "acme"), mkOrg(t, ctx, st, "beta")
				mkRepo(t, ctx, st, acme, "api")
				r, err := st.CreateRepository(ctx, tc.repo(acme, beta))
				total := len(must[[]groupgate.Repository](t, "list")(st.ListRepositories(ctx, acme.ID, store.ListOptions{}))) +
					len(must[[]groupgate.Repository](t, "list")(st.ListRepositories(ctx, beta.ID, store.ListOptions{})))
				if tc.want != "" {
					wantCode(t, err, tc.want, "create repository")
					if total != 1 {
						t.Fatalf("%d repositories after a refused create, want 1", total)
					}
					return
				}
				noErr(t, err, "create repository")
				if r.Visibility != tc.wantVis || r.OrganizationName != tc.wantOrgs {
					t.Errorf("created %+v, want visibility %s in %s", r, tc.wantVis, tc.wantOrgs)
				}
				wantEqual(t, "repository read back", must[groupgate.Repository](t, "get")(st.GetRepository(ctx, r.ID)), r)
				if total != 2 {
					t.Fatalf("%d repositories, want 2", total)
				}
			})
		}
	})

	t.Run("a missing repository is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		org := mkOrg(t, ctx, st, "acme")
		mkRepo(t, ctx, st, org, "api")
		_, err := st.GetRepository(ctx, store.NewID())
		wantCode(t, err, groupgate.NotFound, "GetRepository")
		_, err = st.GetRepositoryByFullName(ctx, "acme", "web")
		wantCode(t, err, groupgate.NotFound, "GetRepositoryByFullName of a missing repository")
		_, err = st.GetRepositoryByFullName(ctx, "beta", "api")
		wantCode(t, err, groupgate.NotFound, "GetRepositoryByFullName in a missing organization")
		wantCode(t, st.DeleteRepository(ctx, store.NewID()), groupgate.NotFound, "DeleteRepository")
	})

	t.Run("repositories are listed per organization by name and paged", func(t *testing.T) {
		ctx, st := s.fresh(t)
		acme, beta := mkOrg(t, ctx, st, "acme"), mkOrg(t, ctx, st, "beta")
		mkRepo(t, ctx, st, beta, "other")
		var want []groupgate.Repository
		for _, name := range []string{"web", "api", "mobile", "docs", "infra"} {
			want = append(want, mkRepo(t, ctx, st, acme, name))
		}
		slices.SortFunc(want, func(a, b groupgate.Repository) int { return strings.Compare(a.Name, b.Name) })
		for _, o := range pages(len(want)) {
			got := must[[]groupgate.Repository](t, "list "+pageName(o))(st.ListRepositories(ctx, acme.ID, o))
			wantEqual(t, "repositories "+pageName(o), got, window(want, o))
		}
		empty := mkOrg(t, ctx, st, "empty")
		if got := must[[]groupgate.Repository](t, "list")(st.ListRepositories(ctx, empty.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("empty organization lists %+v", got)
		}
	})

	t.Run("deleting a repository removes its mappings and contributors", func(t *testing.T) {
		ctx, st := s.fresh(t)
		u := mkUser(t, ctx, st, "alice")
		org := mkOrg(t, ctx, st, "acme")
		gone, kept := mkRepo(t, ctx, st, org, "gone"), mkRepo(t, ctx, st, org, "kept")
		om := mkOrgMapping(t, ctx, st, org.ID, "eng", "")
		mkRepoMapping(t, ctx, st, gone.ID, "eng", groupgate.RepoRoleAdmin)
		keptMapping := mkRepoMapping(t, ctx, st, kept.ID, "eng", groupgate.RepoRoleRead)
		must[groupgate.RepoContributor](t, "set contributor")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: gone.ID, UserID: u.ID, Role: groupgate.RepoRoleWrite}))
		keptContr := must[groupgate.RepoContributor](t, "set contributor")(st.SetRepoContributor(ctx, groupgate.RepoContributor{RepositoryID: kept.ID, UserID: u.ID, Role: groupgate.RepoRoleWrite}))

		noErr(t, st.DeleteRepository(ctx, gone.ID), "delete repository")

		_, err := st.GetRepository(ctx, gone.ID)
		wantCode(t, err, groupgate.NotFound, "get deleted repository")
		_, err = st.GetRepoMapping(ctx, gone.ID, "eng")
		wantCode(t, err, groupgate.NotFound, "get mapping of deleted repository")
		_, err = st.GetRepoContributor(ctx, gone.ID, u.ID)
		wantCode(t, err, groupgate.NotFound, "get contributor of deleted repository")
		wantCode(t, st.DeleteRepository(ctx, gone.ID), groupgate.NotFound, "delete repository twice")
		if got := must[[]groupgate.RepoMapping](t, "list mappings of deleted repository")(st.ListRepoMappings(ctx, gone.ID, store.ListOptions{})); len(got) != 0 {
			t.Errorf("deleted repository lists mappings %+v", got)
		}
		if got := must[[]groupgate.RepoContributor](t, "list contributors of deleted repository")(st.ListRepoContributors(ctx, gone.ID)); len(got) != 0 {
			t.Errorf("deleted repository lists contributors %+v", got)
		}
		wantEqual(t, "repositories left", must[[]groupgate.Repository](t, "list")(st.ListRepositories(ctx, org.ID, store.ListOptions{})), []groupgate.Repository{kept})
		orgMaps, repoMaps := must2(t, "mappings for eng")(st.MappingsForGroups(ctx, []string{"eng"}))
		wantEqual(t, "org mappings", orgMaps, []groupgate.OrgMapping{om})
		wantEqual(t, "repo mappings", repoMaps, []groupgate.RepoMapping{keptMapping})
		wantEqual(t, "alice's repo roles", must[[]groupgate.RepoContributor](t, "list")(st.ListUserRepoContributors(ctx, u.ID)), []groupgate.RepoContributor{keptContr})
		mkRepo(t, ctx, st, org, "GONE")
	})
}

// must2 is must for the two results of MappingsForGroups.
func must2(t testing.TB, what string) func(o []groupgate.OrgMapping, r []groupgate.RepoMapping, err error) ([]groupgate.OrgMapping, []groupgate.RepoMapping) {
	t.Helper()
	return func(o []groupgate.OrgMapping, r []groupgate.RepoMapping, err error) ([]groupgate.OrgMapping, []groupgate.RepoMapping) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return o, r
	}
}
