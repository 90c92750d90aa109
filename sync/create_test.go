package sync_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// TestCreateOrganization: the organization, its creator's OWNER role, the
// audit event and the outbox entry are one transaction, and the role
// reaches the creator's sessions at once.
func TestCreateOrganization(t *testing.T) {
	t.Run("the creator's session learns OWNER at once and no entry is left", func(t *testing.T) {
		e := newEnv(t)
		root := e.user("root")
		o, err := e.s.CreateOrganization(e.ctx, sync.UserActor(root.ID), "acme", root.ID)
		e.must(err)
		sets, _ := e.rec.take()
		if got := sets[root.ID].OrgRoles["acme"]; got != groupgate.OrgRoleOwner {
			t.Errorf("pushed %v to the creator, want acme=OWNER", sets[root.ID])
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("outbox holds %+v after a successful push", es)
		}
		evs, err := e.st.ListAudit(e.ctx, 0, 0)
		e.must(err)
		if len(evs) != 1 || evs[0].Action != sync.ActionOrganizationCreate || evs[0].TargetID != o.ID || evs[0].Actor != sync.UserActor(root.ID) {
			t.Fatalf("audit %+v, want one organization.create of %s", evs, o.ID)
		}
		var after map[string]string
		e.must(json.Unmarshal(evs[0].After, &after))
		if after["name"] != "acme" || after["owner"] != root.ID || after["id"] != o.ID {
			t.Errorf("audit after = %s", evs[0].After)
		}
	})

	t.Run("a crash between commit and push is finished by the outbox", func(t *testing.T) {
		e := newEnv(t, sync.WithCrashAfterCommit(), sync.WithOutbox(time.Minute, 0))
		root := e.user("root")
		if _, err := e.s.CreateOrganization(e.ctx, "admin", "acme", root.ID); err != nil {
			t.Fatal(err)
		}
		if sets, _ := e.rec.take(); len(sets) != 0 {
			t.Fatalf("the crashed syncer pushed %v", sets)
		}
		es := pending(t, e.st)
		if len(es) != 1 || len(es[0].UserIDs) != 1 || es[0].UserIDs[0] != root.ID {
			t.Fatalf("outbox = %+v, want one entry for the creator", es)
		}
		replayer := sync.New(e.st, e.rec, sync.WithNow(func() time.Time { return epoch }), sync.WithOutbox(time.Minute, 0))
		if n, err := replayer.ReplayOutbox(e.ctx); err != nil || n != 1 {
			t.Fatalf("ReplayOutbox = %d, %v", n, err)
		}
		sets, _ := e.rec.take()
		if got := sets[root.ID].OrgRoles["acme"]; got != groupgate.OrgRoleOwner {
			t.Errorf("replay pushed %v to the creator, want acme=OWNER", sets[root.ID])
		}
	})

	t.Run("a refused creation writes nothing", func(t *testing.T) {
		e := newEnv(t)
		root := e.user("root")
		e.org("taken")
		before := e.dump()
		for _, tc := range []struct {
			name, org, owner string
			code             groupgate.ErrorCode
		}{
			{"unknown owner", "acme", "nobody", groupgate.NotFound},
			{"name taken", "taken", root.ID, groupgate.Conflict},
			{"bad name", "a,b", root.ID, groupgate.Invalid},
		} {
			if _, err := e.s.CreateOrganization(e.ctx, "admin", tc.org, tc.owner); !groupgate.IsCode(err, tc.code) {
				t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
			}
		}
		if after := e.dump(); after != before {
			t.Errorf("refused creations changed the store:\n%s\nwant\n%s", after, before)
		}
		if es := pending(t, e.st); len(es) != 0 {
			t.Errorf("outbox holds %+v after refused creations", es)
		}
	})
}

// TestCreateRepository: a new repository reaches the organization's
// holders (manual members, members of its mapped groups), where its base
// repository role applies, through the outbox like any access change.
func TestCreateRepository(t *testing.T) {
	e := newEnv(t, sync.WithCrashAfterCommit(), sync.WithOutbox(time.Minute, 0))
	acme := e.org("acme")
	alice, bob := e.user("alice", "eng"), e.user("bob")
	_, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: acme.ID, Group: "eng"})
	e.must(err)
	_, err = e.st.SetOrgMember(e.ctx, groupgate.OrgMember{OrganizationID: acme.ID, UserID: bob.ID, Role: groupgate.OrgRoleAdmin})
	e.must(err)
	r, err := e.s.CreateRepository(e.ctx, "admin", groupgate.Repository{OrganizationID: acme.ID, Name: "api", Visibility: groupgate.VisibilityPrivate})
	e.must(err)
	if r.FullName() != "acme/api" {
		t.Errorf("created %q", r.FullName())
	}
	es := pending(t, e.st)
	if len(es) != 1 || len(es[0].UserIDs) != 1 || es[0].UserIDs[0] != bob.ID || len(es[0].Groups) != 1 || es[0].Groups[0] != "eng" {
		t.Fatalf("outbox = %+v, want one entry for bob and group eng", es)
	}
	if n, err := sync.New(e.st, e.rec, sync.WithOutbox(time.Minute, 0)).ReplayOutbox(e.ctx); err != nil || n != 1 {
		t.Fatalf("ReplayOutbox = %d, %v", n, err)
	}
	if sets, _ := e.rec.take(); len(sets) != 2 || sets[alice.ID].OrgRoles["acme"] != groupgate.OrgRoleMember || sets[bob.ID].OrgRoles["acme"] != groupgate.OrgRoleAdmin {
		t.Errorf("replay pushed %v, want alice and bob", sets)
	}
	evs, err := e.st.ListAudit(e.ctx, 0, 0)
	e.must(err)
	if len(evs) != 1 || evs[0].Action != sync.ActionRepositoryCreate || evs[0].TargetID != r.ID {
		t.Errorf("audit %+v, want one repository.create", evs)
	}
	if _, err := e.s.CreateRepository(e.ctx, "admin", groupgate.Repository{OrganizationID: "nope", Name: "web"}); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Errorf("unknown organization: %v, want NotFound", err)
	}
}
