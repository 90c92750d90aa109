package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
)

// BenchmarkRemoveOrganizationGroup10000Members removes, through the API as
// plain HTTP JSON, a mapping whose group has 10,000 members, each with a
// live session: the call returns once every session holds the new
// snapshot. The mapping is re-added between iterations with the timer
// stopped.
func BenchmarkRemoveOrganizationGroup10000Members(b *testing.B) {
	const members = 10_000
	e := newAPIEnv(b)
	alice := e.user("alice")
	acme := e.org("acme", alice)
	tok := e.token(alice, time.Time{})

	ids := make([]string, 0, members)
	err := e.st.InTx(e.ctx, func(tx store.Store) error {
		for i := range members {
			u, err := tx.CreateUser(e.ctx, groupgate.User{UserName: fmt.Sprintf("member%05d", i), Active: true})
			if err != nil {
				return err
			}
			if _, err := tx.UpdateGroupSet(e.ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
				return groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin}}, nil
			}); err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		return nil
	})
	if err != nil {
		b.Fatalf("create members: %v", err)
	}
	sessions := make([]string, 0, members)
	for _, id := range ids {
		sid, err := session.NewID(id)
		if err != nil {
			b.Fatal(err)
		}
		rec := &session.Record{ID: sid, UserID: id, Provider: "test", Memberships: groupgate.Memberships{Groups: []string{"eng"}},
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := e.mem.Save(e.ctx, rec); err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, sid)
	}
	body := `{"organization_id":"` + acme.ID + `","group_name":"eng"}`

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := e.syncer.AddOrgMapping(e.ctx, "bench", acme.ID, "eng", groupgate.OrgRoleWriter); err != nil {
			b.Fatal(err)
		}
		if got := e.snapshot(sessions[members-1]).OrgRoles["acme"]; got != groupgate.OrgRoleWriter {
			b.Fatalf("before removal the last member has %q", got)
		}
		b.StartTimer()

		r := e.post("OrganizationService/RemoveOrganizationGroup", body, "Authorization: Bearer "+tok)

		b.StopTimer()
		if r.Status != http.StatusOK {
			b.Fatalf("remove: %s", r.Raw)
		}
		for _, sid := range []string{sessions[0], sessions[members/2], sessions[members-1]} {
			if got, ok := e.snapshot(sid).OrgRoles["acme"]; ok {
				b.Fatalf("after removal a member still has %q", got)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(members), "sessions/op")
	if b.Elapsed() > 0 {
		b.ReportMetric(float64(members)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	}
}
