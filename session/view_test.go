package session_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
)

// The forward-auth path reads a View that every hit on a cache entry
// shares, and a value derived from it once (web's identity headers). That
// is safe only while (1) no Load result is the shared record, (2) a View
// lives no longer than its entry, so that a change to the session is never
// answered with an old record or an old derived value.
func TestCurrentViewSharesOnlyWhatNobodyChanges(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	cache := newCache(t, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
	s := newStore(t, cache)
	rec := login("alice")
	rec.Identity.Groups = []string{"eng", "ops"}
	rec.Memberships = groupgate.Memberships{
		Groups:    []string{"eng", "ops"},
		OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember},
		RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleRead},
	}
	cookie := start(t, s, rec)
	r := httptest.NewRequest(http.MethodGet, "/auth", nil)
	r.AddCookie(cookie)
	view := func() *session.View {
		t.Helper()
		v, err := s.CurrentView(r)
		if err != nil {
			t.Fatalf("CurrentView: %v", err)
		}
		return v
	}
	var builds atomic.Int32
	build := func(rec *session.Record) any {
		builds.Add(1)
		return slices.Clone(rec.Memberships.Groups)
	}

	// The save's own invalidation may arrive after the first reads (late
	// on a loaded machine): wait until one View has answered for a while.
	shared, since := view(), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Since(since) < 300*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if v := view(); v != shared {
			shared, since = v, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("reads of a cached session never kept sharing one View")
		}
	}
	before := deepCopy(shared.Record())

	t.Run("hits share one View and derive from it once", func(t *testing.T) {
		for range 3 {
			if v := view(); v != shared {
				t.Fatal("a hit returned another View")
			}
			if got := shared.Derived(build).([]string); !slices.Equal(got, []string{"eng", "ops"}) {
				t.Fatalf("Derived = %q", got)
			}
		}
		if n := builds.Load(); n != 1 {
			t.Fatalf("the derived value was built %d times, want once", n)
		}
	})

	t.Run("changing what Load and Current return leaves the shared record alone", func(t *testing.T) {
		for _, load := range []func() (*session.Record, error){
			func() (*session.Record, error) { return cache.Load(ctx, rec.ID) },
			func() (*session.Record, error) { return s.Current(r) },
		} {
			got, err := load()
			if err != nil {
				t.Fatal(err)
			}
			if got == shared.Record() {
				t.Fatal("a caller that may change its record was handed the shared one")
			}
			got.Identity.Email = "mallory@example.com"
			got.Identity.Groups[0] = "admins"
			got.Memberships.Groups[0] = "admins"
			got.Memberships.Groups = append(got.Memberships.Groups, "more")
			got.Memberships.OrgRoles["acme"] = groupgate.OrgRoleAdmin
			got.Memberships.OrgRoles["beta"] = groupgate.OrgRoleAdmin
			got.Memberships.RepoRoles["acme/api"] = groupgate.RepoRoleAdmin
			got.ExpiresAt = got.ExpiresAt.Add(time.Hour)
		}
		if v := view(); v != shared || !reflect.DeepEqual(v.Record(), before) {
			t.Fatalf("the cached record changed: %+v, want %+v", v.Record(), before)
		}
	})

	t.Run("a change to the session drops the View and what was derived from it", func(t *testing.T) {
		admin := groupgate.Memberships{Groups: []string{"admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}
		if n, err := cache.SetMemberships(ctx, "alice", admin); err != nil || n != 1 {
			t.Fatalf("SetMemberships = %d, %v", n, err)
		}
		v := view()
		if v == shared {
			t.Fatal("the View outlived a change to its session")
		}
		if !reflect.DeepEqual(v.Record().Memberships, admin) {
			t.Fatalf("memberships after the change = %+v, want %+v", v.Record().Memberships, admin)
		}
		if got := v.Derived(build).([]string); !slices.Equal(got, []string{"admins"}) {
			t.Fatalf("Derived after the change = %q, want the new groups", got)
		}
		if !reflect.DeepEqual(shared.Record(), before) {
			t.Fatal("the change was written into the old shared record")
		}
	})

	t.Run("an ended session has no View", func(t *testing.T) {
		if err := cache.Delete(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CurrentView(r); !groupgate.IsCode(err, groupgate.Unauthenticated) {
			t.Fatalf("CurrentView after Delete = %v, want Unauthenticated", err)
		}
	})
}

func deepCopy(rec *session.Record) *session.Record {
	out := *rec
	out.Identity.Groups = slices.Clone(rec.Identity.Groups)
	out.Memberships.Groups = slices.Clone(rec.Memberships.Groups)
	out.Memberships.OrgRoles = maps.Clone(rec.Memberships.OrgRoles)
	out.Memberships.RepoRoles = maps.Clone(rec.Memberships.RepoRoles)
	return &out
}
