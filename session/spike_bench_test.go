package session

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
)

// BenchmarkSnapshotShapes is the measurement behind the decision in
// docs/decisions.md ("One snapshot per session, not per user"): today's
// shape, a copy of the membership snapshot in every session record, against
// a per-user snapshot that /auth would join to the session, on real Redis.
// It times the primitives each shape needs: a push to a user with k live
// sessions (a generation, then the checked write), and the read of an
// /auth miss (one GET, or an MGET of the record and the user's snapshot,
// which share the user's hash slot).
//
//	go test -run '^$' -bench BenchmarkSnapshotShapes -benchtime 200x ./session/
func BenchmarkSnapshotShapes(b *testing.B) {
	ctx := context.Background()
	client, prefix := testenv.Redis(b)
	r, err := NewRedis(client, prefix)
	if err != nil {
		b.Fatal(err)
	}
	for _, groups := range []int{50, 1000} {
		m := groupgate.Memberships{OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}
		for i := range groups {
			m.Groups = append(m.Groups, fmt.Sprintf("group-%05d", i))
		}
		for i := range 20 {
			m.OrgRoles[fmt.Sprintf("org-%02d", i)] = groupgate.OrgRoleMember
			m.RepoRoles[fmt.Sprintf("org-%02d/repo", i)] = groupgate.RepoRoleRead
		}
		for _, k := range []int{1, 10, 100} {
			user := fmt.Sprintf("u-%d-%d", groups, k)
			now := time.Now()
			var first string
			for range k {
				id, _ := NewID(user)
				if first == "" {
					first = id
				}
				if err := r.Save(ctx, &Record{ID: id, UserID: user, Provider: "p", Memberships: m, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(fmt.Sprintf("groups-%d/sessions-%d/per-session/push", groups, k), func(b *testing.B) {
				for b.Loop() {
					gens, err := r.NextGenerations(ctx, []string{user})
					if err != nil {
						b.Fatal(err)
					}
					if ok, n, err := r.SetMembershipsIf(ctx, user, gens[user], m); err != nil || !ok || n != k {
						b.Fatalf("push = %v, %d, %v", ok, n, err)
					}
				}
			})
			// The per-user shape writes one key whatever k is: a checked
			// SET of the encoded snapshot next to the generation counter.
			snapKey := prefix + "snap:{u:" + userTag(user) + "}"
			snap, _ := encodeRecord(&Record{Memberships: m})
			b.Run(fmt.Sprintf("groups-%d/sessions-%d/per-user/push", groups, k), func(b *testing.B) {
				for b.Loop() {
					gens, err := r.NextGenerations(ctx, []string{user})
					if err != nil {
						b.Fatal(err)
					}
					res, err := client.Eval(ctx, `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[2]) return 1`, []string{r.genKey(userTag(user)), snapKey}, strconv.FormatInt(gens[user], 10), snap).Int()
					if err != nil || res != 1 {
						b.Fatalf("per-user write = %d, %v", res, err)
					}
				}
			})
			if k != 1 {
				continue
			}
			b.Run(fmt.Sprintf("groups-%d/per-session/auth-miss", groups), func(b *testing.B) {
				for b.Loop() {
					if _, err := r.Load(ctx, first); err != nil {
						b.Fatal(err)
					}
				}
			})
			key, _ := r.keyOf(first)
			bare, _ := encodeRecord(&Record{ID: first, UserID: user, Provider: "p", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			bareKey := key + ":bare"
			if err := client.Set(ctx, bareKey, bare, time.Hour).Err(); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("groups-%d/per-user/auth-miss", groups), func(b *testing.B) {
				for b.Loop() {
					vals, err := client.MGet(ctx, bareKey, snapKey).Result()
					if err != nil {
						b.Fatal(err)
					}
					rec, err := decodeRecordString(vals[0].(string))
					if err != nil {
						b.Fatal(err)
					}
					s, err := decodeRecordString(vals[1].(string))
					if err != nil {
						b.Fatal(err)
					}
					rec.Memberships = s.Memberships
				}
			})
		}
	}
}
