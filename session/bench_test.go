package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// BenchmarkLoad measures the forward-auth hot path: one Load per request,
// which for Redis is a single GET round trip.
func BenchmarkLoad(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) session.Backend
	}{
		{"memory", func(b *testing.B) session.Backend { return session.NewMemory() }},
		{"redis", func(b *testing.B) session.Backend {
			r, _, _ := newRedis(b, time.Now)
			return r
		}},
	}
	for _, bb := range backends {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			backend := bb.new(b)
			id, err := session.NewID("alice")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			rec := &session.Record{
				ID: id, UserID: "alice", Provider: "okta",
				Identity: groupgate.Identity{Provider: "okta", Subject: "s", Email: "alice@example.com", Groups: []string{"eng-a", "eng-b", "eng-c"}},
				Memberships: groupgate.Memberships{
					Groups:    []string{"eng-a", "eng-b", "eng-c"},
					OrgRoles:  map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleAdmin, "beta": groupgate.OrgRoleMember},
					RepoRoles: map[string]groupgate.RepoRole{"acme/api": groupgate.RepoRoleWrite},
				},
				CreatedAt: now, ExpiresAt: now.Add(time.Hour),
			}
			if err := backend.Save(ctx, rec); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := backend.Load(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
