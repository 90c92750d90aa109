package e2e

import (
	"context"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// holdFirst passes snapshot writes through, except that the first rewrite
// of the armed user waits, after its store read and before its write, until
// the test releases it. With unordered set, it writes without the
// generation check, as groupgate did before generations: the control that
// shows the scenario really reorders the writes.
type holdFirst struct {
	sync.SnapshotWriter
	backend   session.Backend
	unordered bool

	mu      stdsync.Mutex
	userID  string // armed user; "" once the hold is used
	reached chan struct{}
	release chan struct{}
}

func (h *holdFirst) arm(userID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.userID = userID
}

func (h *holdFirst) SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	h.mu.Lock()
	hold := userID != "" && userID == h.userID
	if hold {
		h.userID = ""
	}
	h.mu.Unlock()
	if hold {
		close(h.reached)
		<-h.release
	}
	if h.unordered {
		n, err := h.backend.SetMemberships(ctx, userID, m)
		return err == nil, n, err
	}
	return h.SnapshotWriter.SetMembershipsIf(ctx, userID, gen, m)
}

// TestRacingPushesFromTwoReplicasLeaveTheNewestSnapshot reproduces the race
// of issue 6: replica A commits a change and reads alice's access, then
// (held) writes it only after replica B committed a later change and
// wrote its snapshot. The session must end with B's snapshot, which
// includes both changes, with both outbox entries acknowledged and no
// replay needed.
func TestRacingPushesFromTwoReplicasLeaveTheNewestSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		unordered bool
		// want judges alice's /auth once A's delayed write is done.
		want func(auth) bool
	}{
		{"with generations A's older snapshot is skipped and B's stays", false,
			func(x auth) bool {
				return roleIn(x.orgRoles, "acme") == "MEMBER" && roleIn(x.orgRoles, "beta") == "WRITER"
			}},
		{"without them (the control) A's older snapshot lands last and B's change is lost", true,
			func(x auth) bool { return roleIn(x.orgRoles, "acme") == "MEMBER" && roleIn(x.orgRoles, "beta") == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, prefix := testenv.Redis(t)
			var held *holdFirst
			rs := startReplicas(t, 2, replicaConfig{
				openStore: sharedPostgres(t), client: client, prefix: prefix, cache: true,
				wrapWriter: func(i int, w sync.SnapshotWriter) sync.SnapshotWriter {
					if i != 0 {
						return w
					}
					held = &holdFirst{SnapshotWriter: w, backend: w.(session.Backend), unordered: tt.unordered,
						reached: make(chan struct{}), release: make(chan struct{})}
					return held
				},
			})
			a, b := rs[0], rs[1]
			ctx := context.Background()
			st := a.st
			root, err := st.CreateUser(ctx, groupgate.User{UserName: "root", Email: "root@example.com", VerifiedEmail: "root@example.com", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			tok := apiToken(t, st, root.ID)
			acme, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
			beta, _ := st.CreateOrganization(ctx, groupgate.Organization{Name: "beta"})
			for _, m := range []groupgate.OrgMapping{
				{OrganizationID: acme.ID, Group: "eng", RoleOverride: groupgate.OrgRoleAdmin},
				{OrganizationID: acme.ID, Group: "platform-admins"},
			} {
				if _, err := st.AddOrgMapping(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			alice := newBrowser(t)
			signIn(t, alice, a, "alice")
			aliceUser, err := store.UserByEmail(ctx, st, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, alice, a, time.Second, "alice's roles after sign-in", func(x auth) bool {
				return roleIn(x.orgRoles, "acme") == "ADMIN" && roleIn(x.orgRoles, "beta") == ""
			})

			held.arm(aliceUser.ID)
			done := make(chan error, 1)
			go func() {
				_, err := tryCall(a, tok, "OrganizationService/RemoveOrganizationGroup",
					`{"organization_id":"`+acme.ID+`","group_name":"eng"}`)
				done <- err
			}()
			select {
			case <-held.reached: // A has read {acme: MEMBER} and waits to write it
			case err := <-done:
				t.Fatalf("A's change returned before its write was held: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("A's write never reached the hold")
			}
			call(t, b, tok, "OrganizationService/AddOrganizationMember",
				`{"organization_id":"`+beta.ID+`","user_id":"`+aliceUser.ID+`","organization_role":5}`)
			eventually(t, alice, a, time.Second, "B's snapshot on A", func(x auth) bool { return roleIn(x.orgRoles, "beta") == "WRITER" })
			close(held.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			for _, r := range rs {
				eventually(t, alice, r, time.Second, "alice's final roles", tt.want)
			}
			// And it stays so: nothing is left to change it.
			time.Sleep(300 * time.Millisecond)
			for _, r := range rs {
				if x, err := getAuth(alice, r); err != nil || !tt.want(x) {
					t.Fatalf("alice's roles moved on %s: %+v, %v", r.url, x, err)
				}
			}
			if es := pendingOutbox(t, st); len(es) != 0 {
				t.Errorf("outbox holds %d entries, want both changes acknowledged", len(es))
			}
		})
	}
}

func pendingOutbox(t *testing.T, st store.Store) []store.OutboxEntry {
	t.Helper()
	es, err := st.(store.OutboxStore).ListOutbox(context.Background(), 0)
	if err != nil {
		t.Fatalf("list outbox: %v", err)
	}
	return es
}
