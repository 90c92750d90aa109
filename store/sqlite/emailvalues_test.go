package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func emailFilter(op store.CompareOp, v string) store.Filter {
	return store.ValuePath{Attr: "emails", Filter: store.Compare{Attr: "value", Op: op, Value: v}}
}

func queryNames(t *testing.T, s *Store, f store.Filter) []string {
	t.Helper()
	got, total, err := s.QueryUsers(context.Background(), store.Query{Filter: f})
	if err != nil {
		t.Fatalf("QueryUsers: %v", err)
	}
	if total != len(got) {
		t.Errorf("total %d for %d users", total, len(got))
	}
	names := make([]string, len(got))
	for i, u := range got {
		names[i] = u.UserName
	}
	slices.Sort(names)
	return names
}

// Non-ASCII letters are compared as they are (folding is ASCII only, as
// COLLATE NOCASE and LIKE fold): the index stores them unfolded and
// reverses ew suffixes by UTF-8 sequence, not by byte. (Not in the
// conformance suite: PostgreSQL folds the filter's value with the
// database collation; see store/storetest/scimindex.go.)
func TestEmailValueIndexKeepsNonASCIILettersAsTheyAre(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	doc := json.RawMessage(`{"userName":"eve","emails":[{"value":"ÉVE@Corp.example","type":"work"}]}`)
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "eve", SCIM: doc}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    store.Filter
		want []string
	}{
		{"sw with the capital", emailFilter(store.OpSw, "ÉV"), []string{"eve"}},
		{"sw with the small letter", emailFilter(store.OpSw, "év"), []string{}},
		{"ew with the capital and other ASCII case", emailFilter(store.OpEw, "ÉVE@CORP.EXAMPLE"), []string{"eve"}},
		{"ew starting inside the capital's bytes", emailFilter(store.OpEw, "\x89VE@corp.example"), []string{}},
		{"eq", emailFilter(store.OpEq, "Éve@corp.example"), []string{"eve"}},
		{"co", emailFilter(store.OpCo, "ÉVE@c"), []string{"eve"}},
		{"a case-exact co (GLOB)", store.ValuePath{Attr: "emails", Filter: store.Compare{Attr: "value", Op: store.OpCo, Value: "ÉVE@C", CaseExact: true}}, []string{"eve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := queryNames(t, s, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("matched %v, want %v", got, tc.want)
			}
		})
	}
}

// The email value filter of issue 15 is answered from
// user_email_values' indexes, not by reading every user's document; so
// are eq and sw. (The plan, not a timing: the figures are in
// scim/bench_sqlite_test.go.)
func TestEmailValueFiltersSearchTheIndex(t *testing.T) {
	s := openTemp(t)
	for _, tc := range []struct {
		op    store.CompareOp
		index string
	}{
		{store.OpEw, "user_email_values_rev"},
		{store.OpEq, "user_email_values_fold"},
		{store.OpSw, "user_email_values_fold"},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			f := store.ValuePath{Attr: "emails", Filter: store.And{
				Left:  store.Compare{Attr: "type", Op: store.OpEq, Value: "work"},
				Right: store.Compare{Attr: "value", Op: tc.op, Value: "4242@example.com"},
			}}
			var tr translator
			where, err := tr.where(userScope, f)
			if err != nil {
				t.Fatal(err)
			}
			plan := explain(t, s, `SELECT u.id FROM users u WHERE `+where, tr.args...)
			if !strings.Contains(plan, "SEARCH user_email_values USING COVERING INDEX "+tc.index) ||
				strings.Contains(plan, "SCAN u") {
				t.Errorf("plan does not search %s before reading users:\n%s", tc.index, plan)
			}
		})
	}
}

// A deep page of `active eq true` counts and skips over the index on
// (active, created_at, id) alone.
func TestADeepActivePageSkipsOverTheIndex(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for i, active := range []bool{true, false, true, true} {
		if _, err := s.CreateUser(ctx, groupgate.User{UserName: fmt.Sprint("u", i), Active: active}); err != nil {
			t.Fatal(err)
		}
	}
	// Counted as every user less the inactive ones, which the index finds.
	f := store.Compare{Attr: "active", Op: store.OpEq, Value: true}
	var tr translator
	where, err := tr.where(userScope, f)
	if err != nil {
		t.Fatal(err)
	}
	count, args, err := countQuery(userScope, "users u", where, f, tr.args)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 1 || args[0] != false {
		t.Errorf("count %s binds %v, want the inactive side (false)", count, args)
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, count, args...).Scan(&n); err != nil || n != 3 {
		t.Errorf("count = %d, %v; want 3", n, err)
	}
	if plan := explain(t, s, count, args...); !strings.Contains(plan, "SEARCH u USING COVERING INDEX users_active_created (active=?)") {
		t.Errorf("the inactive users are not counted from the index:\n%s", plan)
	}
	plan := explain(t, s, `SELECT u.id FROM users u WHERE (u.active = ?1) ORDER BY u.created_at, u.id LIMIT 100 OFFSET 90000`, true)
	if !strings.Contains(plan, "USING COVERING INDEX users_active_created") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("the skipped IDs do not come from the index in order:\n%s", plan)
	}
	// A page nearer the end is counted off from the end, the index read
	// backwards.
	plan = explain(t, s, `SELECT u.id FROM users u WHERE (u.active = ?1) ORDER BY u.created_at DESC, u.id DESC LIMIT 100 OFFSET 9900`, true)
	if !strings.Contains(plan, "USING COVERING INDEX users_active_created") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("the IDs skipped from the end do not come from the index in order:\n%s", plan)
	}
}

func explain(t *testing.T, s *Store, stmt string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+stmt, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer func() { _ = rows.Close() }()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Migration 0009 indexes the emails of the users that existed before it.
func TestMigrationIndexesExistingEmails(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for _, name := range []string{"ann", "ben"} {
		doc := json.RawMessage(`{"userName":"` + name + `","emails":[{"value":"` + strings.ToUpper(name) + `@corp.example","type":"work"}]}`)
		if _, err := s.CreateUser(ctx, groupgate.User{UserName: name, SCIM: doc}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "nodoc"}); err != nil {
		t.Fatal(err)
	}
	err := s.write(ctx, func(q queryer) error {
		// The state before 0009: no rows.
		if _, err := q.ExecContext(ctx, `DELETE FROM user_email_values`); err != nil {
			return err
		}
		return afterMigration(9)(ctx, s, q)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := queryNames(t, s, emailFilter(store.OpEw, "n@corp.example")); !slices.Equal(got, []string{"ann", "ben"}) {
		t.Errorf("ew after the backfill matched %v, want [ann ben]", got)
	}
	if got := queryNames(t, s, emailFilter(store.OpEq, "ann@corp.example")); !slices.Equal(got, []string{"ann"}) {
		t.Errorf("eq after the backfill matched %v, want [ann]", got)
	}
}

func TestReverseTextAndPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "cba", "aÉb": "bÉa", "x\xffy": "y\xffx", "€1": "1€"} {
		if got := reverseText(in); got != want {
			t.Errorf("reverseText(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"ab": "ac", "a\xff": "b", "É": "\xc3\x8a"} {
		if got, ok := prefixEnd(in); !ok || got != want {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := prefixEnd("\xff\xff"); ok {
		t.Error("prefixEnd of all 0xff bytes has an end")
	}
}
