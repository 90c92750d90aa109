package sync_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// TestSCIMCreateUserOnEachStore runs the create cases on SQLite and on
// PostgreSQL, whose store creates a user nobody has yet in one statement
// (user and audit event together) and leaves matches and clashes to the
// transaction: each case must end the same on both.
func TestSCIMCreateUserOnEachStore(t *testing.T) {
	ctx := context.Background()
	backends := []struct {
		name string
		env  func(t *testing.T) *env
	}{
		{"sqlite", func(t *testing.T) *env { return newEnv(t) }},
		{"postgres", func(t *testing.T) *env {
			st := newPostgresStore(t)
			rec := newRecorder()
			return &env{t: t, ctx: ctx, st: st, rec: rec, s: sync.New(st, rec, sync.WithPushRetry(3, time.Millisecond))}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Run("a new user is created with one create audit event naming it", func(t *testing.T) {
				e := be.env(t)
				u, err := e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "new", Email: "new@example.com", Active: true, ExternalID: "x9", SCIM: []byte(`{"a":1}`)}, sync.MatchEmail)
				e.must(err)
				got, err := e.st.GetUser(ctx, u.ID)
				e.must(err)
				if got.UserName != "new" || got.ExternalID != "x9" || got.Version != 1 || !got.CreatedAt.Equal(u.CreatedAt) {
					t.Fatalf("stored %+v, returned %+v", got, u)
				}
				evs, err := e.st.ListAudit(ctx, 0, 100)
				e.must(err)
				if len(evs) != 1 || evs[0].Action != sync.ActionSCIMUserCreate || evs[0].TargetID != u.ID || evs[0].Actor != "scim:t" {
					t.Fatalf("audit %+v, want one create of %s", evs, u.ID)
				}
				var after struct {
					ID string `json:"id"`
				}
				e.must(json.Unmarshal(evs[0].After, &after))
				if after.ID != u.ID || evs[0].Before != nil {
					t.Fatalf("audit before %s after %s", evs[0].Before, evs[0].After)
				}
			})
			t.Run("an SSO user with the email is adopted, not duplicated", func(t *testing.T) {
				e := be.env(t)
				sso := e.user("alice")
				u, err := e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "alice.scim", Email: "alice@example.com", Active: true, ExternalID: "x1"}, sync.MatchEmail)
				e.must(err)
				if u.ID != sso.ID {
					t.Fatalf("created %s, want %s adopted", u.ID, sso.ID)
				}
				if n, err := e.st.CountUsers(ctx); err != nil || n != 1 {
					t.Fatalf("CountUsers = %d, %v", n, err)
				}
			})
			t.Run("a taken userName is a conflict naming it, with no audit event", func(t *testing.T) {
				e := be.env(t)
				_, err := e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "Carol", Email: "c1@example.com", Active: true, ExternalID: "c1"}, sync.MatchEmail)
				e.must(err)
				_, err = e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "carol", Email: "c2@example.com", Active: true}, sync.MatchEmail)
				if !groupgate.IsCode(err, groupgate.Conflict) || !strings.Contains(err.Error(), "userName") {
					t.Fatalf("err = %v, want Conflict naming userName", err)
				}
				if acts := auditActions(t, e); len(acts) != 1 {
					t.Fatalf("audit %v, want the first create only", acts)
				}
			})
			t.Run("match_key userName ignores a shared email", func(t *testing.T) {
				e := be.env(t)
				_, err := e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "d1", Email: "d@example.com", Active: true, ExternalID: "d1"}, sync.MatchUserName)
				e.must(err)
				_, err = e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "d2", Email: "d@example.com", Active: true, ExternalID: "d2"}, sync.MatchUserName)
				e.must(err)
				if n, err := e.st.CountUsers(ctx); err != nil || n != 2 {
					t.Fatalf("CountUsers = %d, %v", n, err)
				}
			})
			t.Run("match_key email refuses a second provisioned user with the email", func(t *testing.T) {
				e := be.env(t)
				_, err := e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "e1", Email: "e@example.com", Active: true, ExternalID: "e1"}, sync.MatchEmail)
				e.must(err)
				_, err = e.s.SCIMCreateUser(ctx, "scim:t", groupgate.User{UserName: "e2", Email: "E@example.com", Active: true, ExternalID: "e2"}, sync.MatchEmail)
				if !groupgate.IsCode(err, groupgate.Conflict) || !strings.Contains(err.Error(), "emails") {
					t.Fatalf("err = %v, want Conflict naming emails", err)
				}
			})
		})
	}
}
