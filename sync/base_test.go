package sync_test

import (
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// baseFixture: acme owns api and web; alice is a manual MEMBER, bob holds
// MEMBER through a mapped group, carol is in no group of acme, dave is no
// member but in a group mapped to acme/api without override.
type baseFixture struct {
	*env
	acme                    groupgate.Organization
	api, web                groupgate.Repository
	alice, bob, carol, dave groupgate.User
}

func newBaseFixture(t *testing.T) *baseFixture {
	e := newEnv(t)
	f := &baseFixture{env: e, acme: e.org("acme")}
	f.api, f.web = e.repo(f.acme, "api"), e.repo(f.acme, "web")
	f.alice, f.bob, f.carol, f.dave = e.user("alice"), e.user("bob", "eng"), e.user("carol", "other"), e.user("dave", "contractors")
	_, err := e.s.SetOrgMember(e.ctx, "test", f.acme.ID, f.alice.ID, groupgate.OrgRoleMember)
	e.must(err)
	_, err = e.s.AddOrgMapping(e.ctx, "test", f.acme.ID, "eng", "")
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "test", f.api.ID, "contractors", "")
	e.must(err)
	e.rec.take()
	return f
}

func TestOrgMembersInheritTheRepositoryBaseRoleOnEveryRepository(t *testing.T) {
	f := newBaseFixture(t)
	if r, ok := f.resolve(f.alice.ID).Repo(f.api.ID); ok {
		t.Fatalf("before a base role alice holds %s on acme/api, want nothing", r.Role)
	}
	for _, base := range []groupgate.RepoRole{groupgate.RepoRoleRead, groupgate.RepoRoleWrite} {
		f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, base))
		sets, _ := f.rec.take()
		for _, u := range []groupgate.User{f.alice, f.bob} {
			a := f.resolve(u.ID)
			for _, repo := range []groupgate.Repository{f.api, f.web} {
				r, _ := a.Repo(repo.ID)
				if r.Role != base {
					t.Errorf("base %s: %s holds %q on %s, want %s", base, u.UserName, r.Role, repo.FullName(), base)
				}
				if got, want := repoSources(a, repo.ID), []string{"org_base::" + string(base)}; !slices.Equal(got, want) {
					t.Errorf("base %s: %s's sources on %s = %v, want %v", base, u.UserName, repo.FullName(), got, want)
				}
			}
			// Pushed to live sessions at once.
			if got := sets[u.ID].RepoRoles["acme/web"]; got != base {
				t.Errorf("base %s: %s's pushed snapshot has acme/web=%q, want %s", base, u.UserName, got, base)
			}
		}
		if r, ok := f.resolve(f.carol.ID).Repo(f.web.ID); ok {
			t.Errorf("base %s: carol, no member, holds %s on acme/web", base, r.Role)
		}
	}
	// A repository created later is covered too.
	later := f.repo(f.acme, "later")
	if r, _ := f.resolve(f.alice.ID).Repo(later.ID); r.Role != groupgate.RepoRoleWrite {
		t.Errorf("alice holds %q on a repository created after the base role, want WRITE", r.Role)
	}
	// Clearing it takes it away.
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, ""))
	sets, _ := f.rec.take()
	if r, ok := f.resolve(f.bob.ID).Repo(f.api.ID); ok {
		t.Errorf("after clearing the base role bob holds %s on acme/api", r.Role)
	}
	if got, ok := sets[f.bob.ID].RepoRoles["acme/api"]; ok {
		t.Errorf("bob's pushed snapshot still has acme/api=%s", got)
	}
}

func TestRepoMappingWithoutOverrideGrantsTheBaseRole(t *testing.T) {
	f := newBaseFixture(t)
	if r, _ := f.resolve(f.dave.ID).Repo(f.api.ID); r.Role != groupgate.RepoRoleRead {
		t.Fatalf("without a base role dave holds %q, want READ", r.Role)
	}
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleWrite))
	sets, _ := f.rec.take()
	a := f.resolve(f.dave.ID)
	if r, _ := a.Repo(f.api.ID); r.Role != groupgate.RepoRoleWrite {
		t.Errorf("under base WRITE dave's override-less mapping grants %q, want WRITE", r.Role)
	}
	if got, want := repoSources(a, f.api.ID), []string{"group:contractors:WRITE"}; !slices.Equal(got, want) {
		t.Errorf("dave's sources = %v, want %v (he is no member: no org_base source)", got, want)
	}
	if got := sets[f.dave.ID].RepoRoles["acme/api"]; got != groupgate.RepoRoleWrite {
		t.Errorf("dave's pushed snapshot has acme/api=%q, want WRITE", got)
	}
	if r, ok := a.Repo(f.web.ID); ok {
		t.Errorf("dave, no member, holds %s on acme/web", r.Role)
	}
	// An override still wins over the base role, even a lower one.
	_, err := f.s.UpdateRepoMapping(f.ctx, "admin", f.api.ID, "contractors", groupgate.RepoRoleLimitedWrite)
	f.must(err)
	if r, _ := f.resolve(f.dave.ID).Repo(f.api.ID); r.Role != groupgate.RepoRoleLimitedWrite {
		t.Errorf("with override LIMITED_WRITE dave holds %q", r.Role)
	}
}

func TestTheHighestOfTheBaseRoleAndOtherSourcesWins(t *testing.T) {
	f := newBaseFixture(t)
	_, err := f.s.SetRepoContributor(f.ctx, "admin", f.api.ID, f.alice.ID, groupgate.RepoRoleAdmin)
	f.must(err)
	_, err = f.s.AddRepoMapping(f.ctx, "admin", f.web.ID, "eng", groupgate.RepoRoleRead)
	f.must(err)
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleWrite))
	a := f.resolve(f.alice.ID)
	if r, _ := a.Repo(f.api.ID); r.Role != groupgate.RepoRoleAdmin {
		t.Errorf("alice (manual ADMIN, base WRITE) holds %q, want ADMIN", r.Role)
	}
	if got, want := repoSources(a, f.api.ID), []string{"manual::ADMIN", "org_base::WRITE"}; !slices.Equal(got, want) {
		t.Errorf("alice's sources = %v, want %v", got, want)
	}
	b := f.resolve(f.bob.ID)
	if r, _ := b.Repo(f.web.ID); r.Role != groupgate.RepoRoleWrite {
		t.Errorf("bob (group READ, base WRITE) holds %q, want WRITE", r.Role)
	}
	if got, want := repoSources(b, f.web.ID), []string{"group:eng:READ", "org_base::WRITE"}; !slices.Equal(got, want) {
		t.Errorf("bob's sources = %v, want %v", got, want)
	}
	// An organization admin's authorized role stays ADMIN, whatever the base.
	_, err = f.s.SetOrgMember(f.ctx, "admin", f.acme.ID, f.carol.ID, groupgate.OrgRoleAdmin)
	f.must(err)
	c := f.resolve(f.carol.ID)
	if r, _ := c.Repo(f.web.ID); r.Role != groupgate.RepoRoleWrite {
		t.Errorf("carol (org ADMIN) direct role on acme/web = %q, want the base WRITE", r.Role)
	}
	if got := c.RepoRole(f.web); got != groupgate.RepoRoleAdmin {
		t.Errorf("carol's authorized role = %q, want ADMIN", got)
	}
}

func TestExplainAndPreviewAgreeWithTheBaseRole(t *testing.T) {
	f := newBaseFixture(t)
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleWrite))
	e, err := f.s.Explain(f.ctx, f.bob.ID, sync.ResourceRepo, f.web.ID)
	f.must(err)
	if e.RepoRole != groupgate.RepoRoleWrite || len(e.RepoSources) != 1 || e.RepoSources[0].Kind != sync.SourceOrgBase {
		t.Errorf("explain bob on acme/web = %s %+v, want WRITE from org_base", e.RepoRole, e.RepoSources)
	}
	// carol is in no acme group: an override-less mapping of her group to
	// acme/web would grant her the base role, as the real change does.
	p, err := f.s.PreviewMappingChange(f.ctx, sync.ResourceRepo, f.web.ID, "other", sync.OpAdd, "")
	f.must(err)
	if len(p.Changes) != 1 || p.Changes[0].UserID != f.carol.ID || p.Changes[0].After != string(groupgate.RepoRoleWrite) {
		t.Errorf("preview = %+v, want carol to gain WRITE", p.Changes)
	}
	_, err = f.s.AddRepoMapping(f.ctx, "admin", f.web.ID, "other", "")
	f.must(err)
	if r, _ := f.resolve(f.carol.ID).Repo(f.web.ID); r.Role != groupgate.RepoRoleWrite {
		t.Errorf("after the previewed change carol holds %q, want WRITE", r.Role)
	}
}

func TestSettingTheRepositoryBaseRoleIsAuditedAndChecked(t *testing.T) {
	f := newBaseFixture(t)
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleRead))
	evs, err := f.st.ListAudit(f.ctx, 0, 100)
	f.must(err)
	last := evs[len(evs)-1]
	if last.Action != sync.ActionOrgRepositoryBaseRoleSet || last.Actor != "admin" || last.TargetID != f.acme.ID {
		t.Errorf("last audit event = %+v, want the base role change by admin", last)
	}
	before := f.dump()
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleRead))
	if after := f.dump(); after != before {
		t.Errorf("setting the same base role again wrote something")
	}
	err = f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleOwner)
	if !groupgate.IsCode(err, groupgate.Invalid) {
		t.Errorf("base role OWNER: err = %v, want Invalid", err)
	}
	err = f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", "no-such-org", groupgate.RepoRoleRead)
	if !groupgate.IsCode(err, groupgate.NotFound) {
		t.Errorf("unknown organization: err = %v, want NotFound", err)
	}
	if after := f.dump(); after != before {
		t.Errorf("refused changes wrote something")
	}
}

func TestDeletingARepositoryUnderABaseRoleReachesTheMembersAtOnce(t *testing.T) {
	f := newBaseFixture(t)
	f.must(f.s.SetOrgRepositoryBaseRole(f.ctx, "admin", f.acme.ID, groupgate.RepoRoleWrite))
	f.rec.take()
	f.must(f.s.DeleteRepository(f.ctx, "admin", f.web.ID))
	sets, _ := f.rec.take()
	for _, u := range []groupgate.User{f.alice, f.bob} {
		m, ok := sets[u.ID]
		if !ok {
			t.Errorf("%s's sessions were not rewritten after acme/web was deleted", u.UserName)
			continue
		}
		if got, ok := m.RepoRoles["acme/web"]; ok {
			t.Errorf("%s's pushed snapshot still has acme/web=%s", u.UserName, got)
		}
		if got := m.RepoRoles["acme/api"]; got != groupgate.RepoRoleWrite {
			t.Errorf("%s's pushed snapshot has acme/api=%q, want WRITE", u.UserName, got)
		}
	}
}
