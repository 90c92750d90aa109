package session_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/session"
)

// BenchmarkCurrentOnTheCache measures finding the request's session on a
// cache hit, the forward-auth hot path: Current (cookie slice, ID string,
// a copy of the record) against CurrentView (the shared entry, which
// should allocate nothing).
func BenchmarkCurrentOnTheCache(b *testing.B) {
	client, prefix := testenv.Redis(b)
	c := newCache(b, client, prefix, time.Now, session.WithCacheTTL(10*time.Second))
	s, err := session.NewStore(c, []byte("0123456789abcdef0123456789abcdef-bench"))
	if err != nil {
		b.Fatal(err)
	}
	rec := &session.Record{UserID: "alice", Identity: groupgate.Identity{Username: "alice", Email: "alice@example.com", Groups: []string{"eng", "platform-admins"}},
		Memberships: groupgate.Memberships{Groups: []string{"eng", "platform-admins"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin}}}
	w := httptest.NewRecorder()
	if err := s.Start(w, httptest.NewRequest(http.MethodGet, "/callback/okta", nil), rec); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/auth", nil)
	r.AddCookie(w.Result().Cookies()[0])
	for _, bb := range []struct {
		name string
		get  func() error
	}{
		{"Current", func() error { _, err := s.Current(r); return err }},
		{"CurrentView", func() error { _, err := s.CurrentView(r); return err }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			// The save's invalidation may arrive after the first reads.
			for range 100 {
				if err := bb.get(); err != nil {
					b.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := bb.get(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
