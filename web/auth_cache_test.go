package web_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/web"
)

// On the local cache, /auth answers every request of a session from one
// shared record and headers rendered from it once (session.View). These
// tests hold the three things that sharing relies on: the headers follow
// every change of the session at once, /auth changes nothing it shares,
// and an answer's headers can be changed without touching the next one's.
func TestAuthOnTheLocalCache(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessConfig{backend: cachedBackend})
	c := h.browser()
	h.login(c, "demo", "alice", "/", "/")
	// Another Store on the same cache reads the View /auth reads.
	views, err := session.NewStore(h.backend, sessionSecret)
	if err != nil {
		t.Fatal(err)
	}
	cookie := h.sessionCookie(c)
	sharedView := func() *session.View {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/auth", nil)
		r.AddCookie(cookie)
		v, err := views.CurrentView(r)
		if err != nil {
			t.Fatalf("CurrentView: %v", err)
		}
		return v
	}
	authHeaders := func(t *testing.T, query string) http.Header {
		t.Helper()
		resp := h.get(c, h.srv.URL+"/auth"+query, nil)
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/auth%s = %s", query, resp.Status)
		}
		return resp.Header
	}

	t.Run("a mapping change shows in the headers of the next answer", func(t *testing.T) {
		for range 3 { // the first answers may be misses; the rest are hits
			if got := authHeaders(t, "").Get(web.HeaderOrgRoles); got != "acme=MEMBER" {
				t.Fatalf("org roles = %q, want acme=MEMBER", got)
			}
		}
		if _, err := h.syncer.AddOrgMapping(ctx, "test", h.acme.ID, "platform-admins", groupgate.OrgRoleAdmin); err != nil {
			t.Fatal(err)
		}
		if got := authHeaders(t, "").Get(web.HeaderOrgRoles); got != "acme=ADMIN" {
			t.Fatalf("org roles after mapping platform-admins to ADMIN = %q, want acme=ADMIN", got)
		}
		if _, err := h.syncer.RemoveOrgMapping(ctx, "test", h.acme.ID, "platform-admins"); err != nil {
			t.Fatal(err)
		}
		if got := authHeaders(t, "").Get(web.HeaderOrgRoles); got != "acme=MEMBER" {
			t.Fatalf("org roles after removing that mapping = %q, want acme=MEMBER", got)
		}
	})

	t.Run("answering leaves the shared record as it was", func(t *testing.T) {
		authHeaders(t, "")
		v := sharedView()
		before := cloneRecord(v.Record())
		for _, q := range []string{"", "?org=acme&min_role=member", "?group=eng", "?redirect=1"} {
			authHeaders(t, q)
		}
		if resp := h.get(c, h.srv.URL+"/auth?org=acme&min_role=admin", nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("/auth requiring acme admin = %s, want 403", resp.Status)
		}
		if sharedView() != v {
			t.Fatal("the cache entry was replaced: the test no longer looks at what /auth shared")
		}
		if !reflect.DeepEqual(v.Record(), before) {
			t.Fatalf("the shared record changed while answering: %+v, want %+v", v.Record(), before)
		}
	})

	t.Run("changing one answer's headers leaves the next answer's alone", func(t *testing.T) {
		handler := h.web.Handler()
		serve := func() http.Header {
			req := httptest.NewRequest(http.MethodGet, "/auth", nil)
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("/auth = %d", w.Code)
			}
			return w.Header()
		}
		want := serve().Clone()
		first := serve()
		for k := range first {
			first.Add(k, "added")
			first[k][0] = "overwritten"
		}
		if got := serve(); !reflect.DeepEqual(got, want) {
			t.Fatalf("headers after another answer's were changed = %v, want %v", got, want)
		}
	})

	t.Run("an ended session is refused although it was cached", func(t *testing.T) {
		authHeaders(t, "")
		if err := h.backend.Delete(ctx, sharedView().Record().ID); err != nil {
			t.Fatal(err)
		}
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/auth after the session ended = %s", resp.Status)
		}
	})

	t.Run("a session past its expiry is refused although it was cached", func(t *testing.T) {
		c := h.browser()
		h.login(c, "demo", "alice", "/", "/")
		if resp := h.auth(c); resp.StatusCode != http.StatusOK {
			t.Fatalf("/auth = %s", resp.Status)
		}
		h.clock.Advance(sessionTTL + time.Minute)
		if resp := h.auth(c); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/auth after expiry = %s", resp.Status)
		}
	})
}

func cloneRecord(rec *session.Record) *session.Record {
	out := *rec
	out.Identity.Groups = slices.Clone(rec.Identity.Groups)
	out.Memberships.Groups = slices.Clone(rec.Memberships.Groups)
	out.Memberships.OrgRoles = maps.Clone(rec.Memberships.OrgRoles)
	out.Memberships.RepoRoles = maps.Clone(rec.Memberships.RepoRoles)
	return &out
}
