package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// scimBenchUser is a user as a SCIM push creates it, with its document.
func scimBenchUser(prefix string, i int) groupgate.User {
	name := fmt.Sprintf("%s%05d", prefix, i)
	doc, _ := json.Marshal(map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": name,
		"name":     map[string]string{"givenName": "Given", "familyName": name},
		"title":    fmt.Sprintf("title-%d", i%100),
		"emails":   []map[string]any{{"value": name + "@example.com", "type": "work", "primary": true}, {"value": name + "@home.example", "type": "home"}},
		enterprise: map[string]string{"employeeNumber": fmt.Sprint(i)},
	})
	return groupgate.User{UserName: name, Email: name + "@example.com", DisplayName: name, Active: i%2 == 0, SCIM: doc}
}

// benchSCIMCreateUsers creates 10,000 users one call each, as a SCIM client
// pushing a directory does.
func benchSCIMCreateUsers(b *testing.B, st store.Store) {
	ctx := b.Context()
	const n = 10000
	round := 0
	for b.Loop() {
		prefix := fmt.Sprintf("r%d-user-", round)
		round++
		for i := range n {
			if _, err := st.CreateUser(ctx, scimBenchUser(prefix, i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/user")
}

// benchSCIMAddMembers measures one UpdateGroupMembers call that adds
// 10,000 members to an empty group.
func benchSCIMAddMembers(b *testing.B, st store.Store) {
	ctx := b.Context()
	const n = 10000
	ids := make([]string, n)
	start := time.Now()
	seedChunks(b, ctx, st, n, 1000, func(tx store.Store, i int) error {
		u, err := tx.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("user-%05d", i)})
		ids[i] = u.ID
		return err
	})
	b.Logf("seeded %d users in %v", n, time.Since(start).Round(time.Millisecond))
	round := 0
	for b.Loop() {
		g, err := st.CreateGroup(ctx, groupgate.Group{Name: fmt.Sprintf("group-%d", round)})
		if err != nil {
			b.Fatal(err)
		}
		round++
		_, affected, err := st.UpdateGroupMembers(ctx, g.ID, func(_ *groupgate.Group, members []string) ([]string, error) {
			return append(members, ids...), nil
		})
		if err != nil || len(affected) != n {
			b.Fatalf("UpdateGroupMembers affected %d users, %v; want %d", len(affected), err, n)
		}
	}
}

// benchSCIMFilter runs filtered, paged queries over 100,000 users: one an
// index can serve and one that must read every user's document.
func benchSCIMFilter(b *testing.B, st store.Store) {
	ctx := b.Context()
	const n = 100000
	start := time.Now()
	seedChunks(b, ctx, st, n, 5000, func(tx store.Store, i int) error {
		_, err := tx.CreateUser(ctx, scimBenchUser("user-", i))
		return err
	})
	b.Logf("seeded %d users in %v", n, time.Since(start).Round(time.Millisecond))
	cases := []struct {
		name   string
		query  store.Query
		total  int
		length int
	}{
		{"userName-sw-and-active", store.Query{
			Filter: store.And{
				Left:  store.Compare{Attr: "userName", Op: store.OpSw, Value: "user-123"},
				Right: store.Compare{Attr: "active", Op: store.OpEq, Value: true},
			},
			SortBy: "userName", Limit: 20,
		}, 50, 20},
		{"emails-value-path", store.Query{
			Filter: store.ValuePath{Attr: "emails", Filter: store.And{
				Left:  store.Compare{Attr: "type", Op: store.OpEq, Value: "work"},
				Right: store.Compare{Attr: "value", Op: store.OpEq, Value: "user-54321@example.com"},
			}},
			Limit: 20,
		}, 1, 1},
		{"title-eq-sorted-page", store.Query{
			Filter: store.Compare{Attr: "title", Op: store.OpEq, Value: "TITLE-7"},
			SortBy: "userName", SortOrder: store.Descending, Offset: 100, Limit: 100,
		}, 1000, 100},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			got, total, err := st.QueryUsers(ctx, tc.query)
			if err != nil || total != tc.total || len(got) != tc.length {
				b.Fatalf("QueryUsers = %d of %d users, %v; want %d of %d", len(got), total, err, tc.length, tc.total)
			}
			for b.Loop() {
				if _, _, err := st.QueryUsers(ctx, tc.query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
