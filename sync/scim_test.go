package sync_test

import (
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

func auditActions(t *testing.T, e *env) []string {
	t.Helper()
	evs, err := e.st.ListAudit(e.ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func TestSCIMUserLifecycle(t *testing.T) {
	t.Run("a SCIM user with an SSO user's email adopts that user", func(t *testing.T) {
		e := newEnv(t)
		sso := e.user("alice")
		u, err := e.s.SCIMCreateUser(e.ctx, "scim:t", groupgate.User{UserName: "alice.scim", Email: "ALICE@example.com", Active: true, ExternalID: "x1", SCIM: []byte(`{}`)}, sync.MatchEmail)
		e.must(err)
		if u.ID != sso.ID || u.ExternalID != "x1" {
			t.Fatalf("got %+v, want the SSO user adopted", u)
		}
		if _, err := e.s.SCIMCreateUser(e.ctx, "scim:t", groupgate.User{UserName: "other", Email: "alice@example.com", Active: true}, sync.MatchEmail); !groupgate.IsCode(err, groupgate.Conflict) {
			t.Fatalf("second provisioning: %v, want Conflict", err)
		}
		if !slices.Contains(auditActions(t, e), sync.ActionSCIMUserAdopt) {
			t.Fatal("no adopt audit event")
		}
	})
	t.Run("matching by userName ignores email", func(t *testing.T) {
		e := newEnv(t)
		sso := e.user("bob")
		u, err := e.s.SCIMCreateUser(e.ctx, "scim:t", groupgate.User{UserName: "BOB", Active: true}, sync.MatchUserName)
		e.must(err)
		if u.ID != sso.ID {
			t.Fatal("not adopted by userName")
		}
	})
	t.Run("deactivation ends every session, refuses logins and reactivation allows them", func(t *testing.T) {
		e := newEnv(t)
		_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "p", Subject: "s", Email: "c@example.com", Username: "c"})
		e.must(err)
		u, err := store.UserByEmail(e.ctx, e.st, "c@example.com")
		e.must(err)
		e.rec.take()
		_, err = e.s.SCIMUpdateUser(e.ctx, "scim:t", u.ID, func(u *groupgate.User) error { u.Active = false; return nil })
		e.must(err)
		if _, deleted := e.rec.take(); !slices.Equal(deleted, []string{u.ID}) {
			t.Fatalf("sessions deleted for %v", deleted)
		}
		if _, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "p", Subject: "s"}); !groupgate.IsCode(err, groupgate.Forbidden) {
			t.Fatalf("login while deactivated: %v", err)
		}
		_, err = e.s.ReactivateUser(e.ctx, "admin", u.ID)
		e.must(err)
		_, _, err = e.s.Login(e.ctx, groupgate.Identity{Provider: "p", Subject: "s"})
		e.must(err)
		acts := auditActions(t, e)
		if !slices.Contains(acts, sync.ActionUserDeactivate) || !slices.Contains(acts, sync.ActionUserReactivate) {
			t.Fatalf("audit %v", acts)
		}
	})
	t.Run("delete ends every session", func(t *testing.T) {
		e := newEnv(t)
		u := e.user("d")
		e.rec.take()
		e.must(e.s.SCIMDeleteUser(e.ctx, "scim:t", u.ID))
		if _, deleted := e.rec.take(); !slices.Equal(deleted, []string{u.ID}) {
			t.Fatalf("sessions deleted for %v", deleted)
		}
	})
}

func TestSCIMGroupMembershipPushesSnapshots(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	_, err := e.s.AddOrgMapping(e.ctx, "admin", o.ID, "Eng", groupgate.OrgRoleAdmin)
	e.must(err)
	a, b := e.user("a"), e.user("b")
	e.rec.take()
	g, members, err := e.s.SCIMCreateGroup(e.ctx, "scim:t", groupgate.Group{Name: "Eng"}, []string{b.ID, a.ID, a.ID})
	e.must(err)
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(members, want) {
		t.Fatalf("members %v", members)
	}
	sets, _ := e.rec.take()
	if sets[a.ID].OrgRoles["acme"] != groupgate.OrgRoleAdmin || sets[b.ID].OrgRoles["acme"] != groupgate.OrgRoleAdmin {
		t.Fatalf("pushed %v", sets)
	}
	t.Run("removing a member pushes only that member, renaming keeps the mapping", func(t *testing.T) {
		_, _, err := e.s.SCIMUpdateGroup(e.ctx, "scim:t", g.ID, func(g *groupgate.Group, m []string) ([]string, error) {
			g.Name = "Engineering"
			return slices.DeleteFunc(m, func(id string) bool { return id == b.ID }), nil
		})
		e.must(err)
		sets, _ := e.rec.take()
		if len(sets[b.ID].OrgRoles) != 0 || sets[a.ID].OrgRoles["acme"] != groupgate.OrgRoleAdmin || !slices.Equal(sets[a.ID].Groups, []string{"Engineering"}) {
			t.Fatalf("pushed %v", sets)
		}
	})
	t.Run("an error from the change function writes nothing", func(t *testing.T) {
		before, _ := e.st.ListAudit(e.ctx, 0, 1000)
		_, _, err := e.s.SCIMUpdateGroup(e.ctx, "scim:t", g.ID, func(*groupgate.Group, []string) ([]string, error) {
			return nil, groupgate.Errorf(groupgate.Invalid, "no")
		})
		if !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("got %v", err)
		}
		after, _ := e.st.ListAudit(e.ctx, 0, 1000)
		if len(after) != len(before) {
			t.Fatal("audit written for a refused change")
		}
	})
	t.Run("deleting the group takes the role from its members", func(t *testing.T) {
		e.must(e.s.SCIMDeleteGroup(e.ctx, "scim:t", g.ID))
		if r := e.resolve(a.ID); len(r.Orgs) != 0 {
			t.Fatalf("roles left %v", r.Orgs)
		}
		if _, err := e.st.GetGroup(e.ctx, g.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("group still there: %v", err)
		}
	})
}
