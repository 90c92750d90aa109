package session_test

import (
	"context"
	"fmt"
	"sync/atomic"
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

// BenchmarkSetMembershipsIf measures the per-user cost of a large
// propagation on Redis: take a generation and rewrite the user's one live
// session, 8 users at a time as the syncer runs them.
func BenchmarkSetMembershipsIf(b *testing.B) {
	const users = 1000
	ctx := context.Background()
	r, _, _ := newRedis(b, time.Now)
	now := time.Now()
	for i := range users {
		u := fmt.Sprint("user", i)
		id, err := session.NewID(u)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Save(ctx, &session.Record{ID: id, UserID: u, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	m := groupgate.Memberships{Groups: []string{"eng"}, OrgRoles: map[string]groupgate.OrgRole{"acme": groupgate.OrgRoleMember}}
	var next atomic.Int64
	b.SetParallelism(4) // with GOMAXPROCS=2: 8 writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := fmt.Sprint("user", next.Add(1)%users)
			gens, err := r.NextGenerations(ctx, []string{u})
			if err != nil {
				b.Error(err)
				return
			}
			if applied, n, err := r.SetMembershipsIf(ctx, u, gens[u], m); err != nil || (applied && n != 1) {
				b.Errorf("SetMembershipsIf(%s) = %v, %d, %v", u, applied, n, err)
				return
			}
		}
	})
}
