package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// txTimeout bounds transaction tests so that a backend that deadlocks
// (for example by opening a second transaction inside InTx) fails the test
// instead of hanging it.
const txTimeout = 60 * time.Second

func (s suite) txStore(t *testing.T) (context.Context, store.Store) {
	t.Helper()
	ctx, st := s.fresh(t)
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	t.Cleanup(cancel)
	return ctx, st
}

// writeEverything makes one change of each kind through tx, including the
// closure-based updates that run their own transaction outside InTx.
func writeEverything(t *testing.T, ctx context.Context, tx store.Store) {
	t.Helper()
	u := mkUser(t, ctx, tx, "alice")
	must[groupgate.User](t, "update user in tx")(tx.UpdateUser(ctx, u.ID, func(u *groupgate.User) error { u.DisplayName = "changed"; return nil }))
	setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin}})
	g := must[groupgate.Group](t, "create group in tx")(tx.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
	must[groupgate.Group](t, "update group in tx")(tx.UpdateGroup(ctx, g.ID, func(g *groupgate.Group) error { g.ExternalID = "x"; return nil }))
	org := mkOrg(t, ctx, tx, "acme")
	repo := mkRepo(t, ctx, tx, org, "api")
	mkOrgMapping(t, ctx, tx, org.ID, "eng", "")
	must[groupgate.OrgMapping](t, "update org mapping in tx")(tx.UpdateOrgMapping(ctx, org.ID, "eng", func(m *groupgate.OrgMapping) error { m.RoleOverride = groupgate.OrgRoleAdmin; return nil }))
	mkRepoMapping(t, ctx, tx, repo.ID, "eng", "")
	must[groupgate.RepoMapping](t, "update repo mapping in tx")(tx.UpdateRepoMapping(ctx, repo.ID, "eng", func(m *groupgate.RepoMapping) error { m.RoleOverride = groupgate.RepoRoleAdmin; return nil }))
	noErr(t, tx.LinkIdentity(ctx, u.ID, "okta", "alice"), "link identity in tx")
	must[groupgate.OrgMember](t, "set member in tx")(tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleAdmin}))
	must[groupgate.Token](t, "create token in tx")(tx.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Hash: hashOf("tx")}))
	must[groupgate.AuditEvent](t, "append audit in tx")(tx.AppendAudit(ctx, groupgate.AuditEvent{Actor: "alice", Action: "tx"}))
}

// wantNothingWritten checks that none of writeEverything's changes is
// visible.
func wantNothingWritten(t *testing.T, ctx context.Context, st store.Store) {
	t.Helper()
	if n := must[int](t, "count users")(st.CountUsers(ctx)); n != 0 {
		t.Errorf("%d users after a rollback, want 0", n)
	}
	_, err := st.GetUserByIdentity(ctx, "okta", "alice")
	wantCode(t, err, groupgate.NotFound, "identity after a rollback")
	if got := must[[]groupgate.Group](t, "list groups")(st.ListGroups(ctx, store.ListOptions{})); len(got) != 0 {
		t.Errorf("groups after a rollback: %+v", got)
	}
	if got := must[[]groupgate.Organization](t, "list orgs")(st.ListOrganizations(ctx, store.ListOptions{})); len(got) != 0 {
		t.Errorf("organizations after a rollback: %+v", got)
	}
	om, rm := must2(t, "mappings")(st.MappingsForGroups(ctx, []string{"eng"}))
	if len(om) != 0 || len(rm) != 0 {
		t.Errorf("mappings after a rollback: %+v %+v", om, rm)
	}
	if got := must[[]string](t, "members")(st.ListGroupMembers(ctx, "eng")); len(got) != 0 {
		t.Errorf("group members after a rollback: %v", got)
	}
	_, err = st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("tx"))
	wantCode(t, err, groupgate.NotFound, "token after a rollback")
	if got := must[[]groupgate.AuditEvent](t, "audit")(st.ListAudit(ctx, 0, 0)); len(got) != 0 {
		t.Errorf("audit events after a rollback: %+v", got)
	}
}

// wantStillUsable checks that a rolled-back transaction released the
// database: a write outside it succeeds.
func wantStillUsable(t *testing.T, ctx context.Context, st store.Store) {
	t.Helper()
	noErr(t, st.Ping(ctx), "ping after rollback")
	mkUser(t, ctx, st, "after")
	if n := must[int](t, "count")(st.CountUsers(ctx)); n != 1 {
		t.Errorf("%d users after one write, want 1", n)
	}
}

func (s suite) transactions(t *testing.T) {
	t.Run("changes made in a transaction commit together", func(t *testing.T) {
		ctx, st := s.txStore(t)
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			writeEverything(t, ctx, tx)
			return nil
		}), "InTx")
		u := must[groupgate.User](t, "get committed user")(st.GetUserByUserName(ctx, "alice"))
		if u.DisplayName != "changed" || u.Version != 2 {
			t.Errorf("committed user = %+v, want the update made in the transaction", u)
		}
		wantEqual(t, "committed group set", must[groupgate.GroupSet](t, "get set")(st.GetGroupSet(ctx, u.ID)).Names(), []string{"eng"})
		org := must[groupgate.Organization](t, "get org")(st.GetOrganizationByName(ctx, "acme"))
		if m := must[groupgate.OrgMapping](t, "get mapping")(st.GetOrgMapping(ctx, org.ID, "eng")); m.RoleOverride != groupgate.OrgRoleAdmin {
			t.Errorf("committed mapping override = %q, want ADMIN", m.RoleOverride)
		}
		must[groupgate.Repository](t, "get repo")(st.GetRepositoryByFullName(ctx, "acme", "api"))
		must[groupgate.Token](t, "get token")(st.GetTokenByHash(ctx, groupgate.TokenSCIM, hashOf("tx")))
		if n := len(must[[]groupgate.AuditEvent](t, "audit")(st.ListAudit(ctx, 0, 0))); n != 1 {
			t.Errorf("%d audit events, want 1", n)
		}
	})

	t.Run("an error from fn rolls everything back and is returned unchanged", func(t *testing.T) {
		ctx, st := s.txStore(t)
		err := st.InTx(ctx, func(tx store.Store) error {
			writeEverything(t, ctx, tx)
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want fn's error", err)
		}
		wantNothingWritten(t, ctx, st)
		wantStillUsable(t, ctx, st)
	})

	t.Run("a panic in fn rolls everything back", func(t *testing.T) {
		ctx, st := s.txStore(t)
		var err error
		var recovered any
		func() {
			defer func() { recovered = recover() }()
			err = st.InTx(ctx, func(tx store.Store) error {
				writeEverything(t, ctx, tx)
				panic("storetest: panic inside InTx")
			})
		}()
		// Re-panicking is the expected behaviour; an error is tolerated.
		if recovered == nil && err == nil {
			t.Fatal("InTx swallowed fn's panic and reported success")
		}
		wantNothingWritten(t, ctx, st)
		wantStillUsable(t, ctx, st)
	})

	t.Run("a nested InTx joins the outer transaction", func(t *testing.T) {
		ctx, st := s.txStore(t)
		err := st.InTx(ctx, func(tx store.Store) error {
			noErr(t, tx.InTx(ctx, func(inner store.Store) error {
				writeEverything(t, ctx, inner)
				return nil
			}), "nested InTx")
			// The inner call committed nothing on its own: the outer
			// rollback must undo it.
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want fn's error", err)
		}
		wantNothingWritten(t, ctx, st)

		err = st.InTx(ctx, func(tx store.Store) error {
			return tx.InTx(ctx, func(inner store.Store) error { return errBoom })
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("nested InTx error = %v, want fn's error", err)
		}
		wantStillUsable(t, ctx, st)
	})

	t.Run("reads in a transaction see its own writes and Close on it is a no-op", func(t *testing.T) {
		ctx, st := s.txStore(t)
		noErr(t, st.InTx(ctx, func(tx store.Store) error {
			u := mkUser(t, ctx, tx, "alice")
			wantEqual(t, "user read in tx", must[groupgate.User](t, "get in tx")(tx.GetUserByUserName(ctx, "ALICE")), u)
			if n := must[int](t, "count in tx")(tx.CountUsers(ctx)); n != 1 {
				t.Errorf("CountUsers in tx = %d, want 1", n)
			}
			set := setGroups(t, ctx, tx, u.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceSCIM}})
			wantEqual(t, "group set read in tx", must[groupgate.GroupSet](t, "get set in tx")(tx.GetGroupSet(ctx, u.ID)), set)
			org := mkOrg(t, ctx, tx, "acme")
			m := mkOrgMapping(t, ctx, tx, org.ID, "eng", "")
			om, _ := must2(t, "mappings in tx")(tx.MappingsForGroups(ctx, []string{"eng"}))
			wantEqual(t, "mappings read in tx", om, []groupgate.OrgMapping{m})
			noErr(t, tx.Close(), "Close on the tx store")
			noErr(t, tx.Ping(ctx), "Ping on the tx store after Close")
			mkRepo(t, ctx, tx, org, "api") // still usable after Close
			return nil
		}), "InTx")
		must[groupgate.Repository](t, "get repo committed after tx Close")(st.GetRepositoryByFullName(ctx, "acme", "api"))
		noErr(t, st.Ping(ctx), "Ping")
	})
}
