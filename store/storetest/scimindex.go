package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Email value filters are narrowed by an index that each backend keeps
// beside the document (PostgreSQL: a generated column with a trigram
// index; SQLite: a side table written with the document). These tests
// hold the index to the document's answers: every operator, case folding
// (ASCII letters only), several emails per user, and every write that
// changes a document's emails.

// emailDoc is a SCIM document with the given emails (value, type pairs).
func emailDoc(userName string, emails ...[2]string) json.RawMessage {
	list := make([]map[string]any, 0, len(emails))
	for _, e := range emails {
		list = append(list, map[string]any{"value": e[0], "type": e[1]})
	}
	doc, err := json.Marshal(map[string]any{"userName": userName, "emails": list})
	if err != nil {
		panic(err) // strings and maps always encode
	}
	return doc
}

// emailPath is emails[value op v].
func emailPath(op store.CompareOp, v string) store.Filter {
	return store.ValuePath{Attr: "emails", Filter: attrCmp("value", op, v)}
}

// workEmail is emails[type eq "work" and value op v].
func workEmail(op store.CompareOp, v string) store.Filter {
	return store.ValuePath{Attr: "emails", Filter: store.And{Left: attrCmp("type", store.OpEq, "work"), Right: attrCmp("value", op, v)}}
}

func (s suite) scimEmailIndex(t *testing.T) {
	ctx, st := s.fresh(t)
	create := func(name string, doc json.RawMessage) groupgate.User {
		t.Helper()
		return must[groupgate.User](t, "create "+name)(st.CreateUser(ctx, groupgate.User{UserName: name, Active: true, SCIM: doc}))
	}
	create("ann", emailDoc("ann", [2]string{"Ann.Lee@Corp.example", "work"}, [2]string{"ann@home.example", "home"}))
	create("ben", emailDoc("ben", [2]string{"ben@corp.example", "home"}, [2]string{"BEN@WORK.example", "work"}))
	create("cyd", emailDoc("cyd", [2]string{"cyd@corp.example", "work"}, [2]string{"cyd@corp.example", "other"}))
	create("eve", emailDoc("eve", [2]string{"ÉVE@corp.example", "work"}))
	create("glob", emailDoc("glob", [2]string{"a*b?c[d]e%f_g\\h@corp.example", "work"}))
	// Elements a filter can never match on value: no object, a number, no
	// value at all; and a document whose emails is an object, not an array.
	create("odd", json.RawMessage(`{"userName":"odd","emails":["odd@corp.example",{"value":42,"type":"work"},{"type":"work"}]}`))
	create("obj", json.RawMessage(`{"userName":"obj","emails":{"value":"obj@corp.example","type":"work"}}`))
	create("none", nil)

	check := func(t *testing.T, name string, f store.Filter, want ...string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, total, err := st.QueryUsers(ctx, store.Query{Filter: f})
			noErr(t, err, "QueryUsers")
			wantEqual(t, "matching users", sorted(userNames(got)), sorted(want))
			if total != len(want) {
				t.Errorf("total = %d, want %d", total, len(want))
			}
		})
	}
	check(t, "eq ignores ASCII case", emailPath(store.OpEq, "ann.lee@corp.EXAMPLE"), "ann")
	check(t, "eq is the whole value", emailPath(store.OpEq, "ann.lee@corp.exampl"))
	check(t, "eq finds a user by a second email", emailPath(store.OpEq, "ben@work.example"), "ben")
	check(t, "an email listed twice matches once", emailPath(store.OpEq, "cyd@corp.example"), "cyd")
	check(t, "sw ignores case", emailPath(store.OpSw, "ANN."), "ann")
	check(t, "sw on a shared prefix", emailPath(store.OpSw, "b"), "ben")
	check(t, "ew ignores case", emailPath(store.OpEw, "@CORP.example"), "ann", "ben", "cyd", "eve", "glob")
	check(t, "ew of a whole value", emailPath(store.OpEw, "ben@work.example"), "ben")
	check(t, "ew longer than every value", emailPath(store.OpEw, "x.ann.lee@corp.example"))
	check(t, "co ignores case", emailPath(store.OpCo, "LEE@"), "ann")
	check(t, "case folding is ASCII only: É is not é", emailPath(store.OpEq, "éve@corp.example"))
	// The filter's value folds as the document's does, ASCII letters only:
	// its É stays É and still finds the stored ÉVE.
	check(t, "a non-ASCII capital in the value folds as the document's", emailPath(store.OpSw, "ÉV"), "eve")
	check(t, "GLOB and LIKE wildcards are literals in co", emailPath(store.OpCo, "*b?c[d]e%f_g\\"), "glob")
	check(t, "a * does not match any text", emailPath(store.OpCo, "a*c"))
	check(t, "[ is a literal in sw", emailPath(store.OpSw, "a*b?c["), "glob")
	check(t, "_ is a literal in ew", emailPath(store.OpEw, "_g\\h@corp.example"), "glob")
	check(t, "type and value hold on one element", workEmail(store.OpEw, "home.example"))
	check(t, "type and value on the work email", workEmail(store.OpEw, "@work.example"), "ben")
	check(t, "two value conditions on one element", store.ValuePath{Attr: "emails", Filter: store.And{
		Left: attrCmp("value", store.OpSw, "ann"), Right: attrCmp("value", store.OpEw, "corp.example")}}, "ann")
	check(t, "two value conditions no single element meets", store.ValuePath{Attr: "emails", Filter: store.And{
		Left: attrCmp("value", store.OpSw, "ann@"), Right: attrCmp("value", store.OpEw, "corp.example")}})
	check(t, "or of values", store.ValuePath{Attr: "emails", Filter: store.Or{
		Left: attrCmp("value", store.OpEq, "ann@home.example"), Right: attrCmp("value", store.OpEw, "work.example")}}, "ann", "ben")
	check(t, "not of a value path", store.Not{Filter: emailPath(store.OpEw, "corp.example")}, "odd", "obj", "none")
	check(t, "ne is not eq", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpNe, "odd@corp.example")},
		"ann", "ben", "cyd", "eve", "glob", "odd")
	check(t, "a string that is not an object's value never matches", emailPath(store.OpEq, "odd@corp.example"))
	check(t, "emails that are not an array never match", emailPath(store.OpEq, "obj@corp.example"))
	check(t, "an empty sw matches every string value", emailPath(store.OpSw, ""), "ann", "ben", "cyd", "eve", "glob")
	check(t, "an empty ew matches every string value", emailPath(store.OpEw, ""), "ann", "ben", "cyd", "eve", "glob")
	check(t, "a case-exact ew respects case", store.ValuePath{Attr: "emails", Filter: exact("value", store.OpEw, "@WORK.example")}, "ben")
	check(t, "a case-exact ew with other case misses", store.ValuePath{Attr: "emails", Filter: exact("value", store.OpEw, "@work.example")})
	check(t, "a value path and a column condition",
		store.And{Left: attrCmp("active", store.OpEq, true), Right: emailPath(store.OpSw, "cyd")}, "cyd")
}

// scimEmailIndexFollowsWrites: the index answers as the documents do after
// every write that changes a user's emails, the writes a SCIM PUT or PATCH
// makes through UpdateUser, and a delete.
func (s suite) scimEmailIndexFollowsWrites(t *testing.T) {
	ctx, st := s.fresh(t)
	names := func(f store.Filter) []string {
		t.Helper()
		got, total, err := st.QueryUsers(ctx, store.Query{Filter: f})
		noErr(t, err, "QueryUsers")
		if total != len(got) {
			t.Errorf("total %d for %d users", total, len(got))
		}
		return sorted(userNames(got))
	}
	update := func(id string, doc json.RawMessage) {
		t.Helper()
		_, err := st.UpdateUser(ctx, id, func(u *groupgate.User) error {
			u.SCIM = doc
			return nil
		})
		noErr(t, err, "update user")
	}
	a := must[groupgate.User](t, "create a")(st.CreateUser(ctx, groupgate.User{UserName: "a", SCIM: emailDoc("a", [2]string{"old@corp.example", "work"})}))
	b := must[groupgate.User](t, "create b")(st.CreateUser(ctx, groupgate.User{UserName: "b", SCIM: emailDoc("b", [2]string{"b@corp.example", "work"})}))

	t.Run("a replaced email is found by its new value only", func(t *testing.T) {
		update(a.ID, emailDoc("a", [2]string{"New@Corp.example", "work"}))
		wantEqual(t, "eq old", names(emailPath(store.OpEq, "old@corp.example")), []string{})
		wantEqual(t, "ew old", names(emailPath(store.OpEw, "old@corp.example")), []string{})
		wantEqual(t, "eq new", names(emailPath(store.OpEq, "new@corp.example")), []string{"a"})
		wantEqual(t, "ew new", names(workEmail(store.OpEw, "W@CORP.EXAMPLE")), []string{"a"})
	})
	t.Run("an added email is found, the others still are", func(t *testing.T) {
		update(a.ID, emailDoc("a", [2]string{"new@corp.example", "work"}, [2]string{"a@home.example", "home"}))
		wantEqual(t, "home", names(emailPath(store.OpSw, "a@home")), []string{"a"})
		wantEqual(t, "work", names(emailPath(store.OpEq, "new@corp.example")), []string{"a"})
	})
	t.Run("a change that keeps the document keeps the index", func(t *testing.T) {
		_, err := st.UpdateUser(ctx, a.ID, func(u *groupgate.User) error {
			u.DisplayName = "A"
			return nil
		})
		noErr(t, err, "rename a")
		wantEqual(t, "work", names(emailPath(store.OpEq, "new@corp.example")), []string{"a"})
	})
	t.Run("a document changed in place by the update function is indexed anew", func(t *testing.T) {
		_, err := st.UpdateUser(ctx, a.ID, func(u *groupgate.User) error {
			i := bytes.Index(u.SCIM, []byte("new@"))
			if i < 0 {
				return fmt.Errorf("no new@ in %s", u.SCIM)
			}
			copy(u.SCIM[i:], "wen@")
			return nil
		})
		noErr(t, err, "change a's email in place")
		wantEqual(t, "new", names(emailPath(store.OpEq, "new@corp.example")), []string{})
		wantEqual(t, "wen", names(emailPath(store.OpEq, "wen@corp.example")), []string{"a"})
	})
	t.Run("removed emails are not found", func(t *testing.T) {
		update(a.ID, json.RawMessage(`{"userName":"a"}`))
		wantEqual(t, "ew", names(emailPath(store.OpEw, "example")), []string{"b"})
	})
	t.Run("a user whose document goes away has no emails", func(t *testing.T) {
		update(b.ID, nil)
		wantEqual(t, "ew", names(emailPath(store.OpEw, "example")), []string{})
		update(b.ID, emailDoc("b", [2]string{"b@corp.example", "work"}))
		wantEqual(t, "ew again", names(emailPath(store.OpEw, "example")), []string{"b"})
	})
	t.Run("an update in a transaction that fails leaves the index as it was", func(t *testing.T) {
		err := st.InTx(ctx, func(tx store.Store) error {
			if _, err := tx.UpdateUser(ctx, b.ID, func(u *groupgate.User) error {
				u.SCIM = emailDoc("b", [2]string{"gone@corp.example", "work"})
				return nil
			}); err != nil {
				return err
			}
			return groupgate.Errorf(groupgate.Conflict, "roll back")
		})
		wantCode(t, err, groupgate.Conflict, "InTx")
		wantEqual(t, "old", names(emailPath(store.OpEq, "b@corp.example")), []string{"b"})
		wantEqual(t, "new", names(emailPath(store.OpEq, "gone@corp.example")), []string{})
	})
	t.Run("a deleted user is not found, and a new user may take the address", func(t *testing.T) {
		noErr(t, st.DeleteUser(ctx, b.ID), "delete b")
		wantEqual(t, "after delete", names(emailPath(store.OpEq, "b@corp.example")), []string{})
		must[groupgate.User](t, "create c")(st.CreateUser(ctx, groupgate.User{UserName: "c", SCIM: emailDoc("c", [2]string{"b@corp.example", "work"})}))
		wantEqual(t, "new owner", names(emailPath(store.OpEq, "b@corp.example")), []string{"c"})
	})
}

// scimWalk: a walk over pages in the default order continues after the
// last row it saw (keyset) rather than counting its startIndex off again,
// so a row deleted before the cursor shifts no row of the rest past the
// walk; a jump is counted off.
func (s suite) scimWalk(t *testing.T) {
	ctx, st := s.fresh(t)
	var names []string
	for i := range 7 {
		u := must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("u%d", i), Active: true}))
		names = append(names, u.UserName)
	}
	for _, tc := range []struct {
		name  string
		query store.Query
	}{
		{"a filtered listing", store.Query{Filter: attrCmp("active", store.OpEq, true), Limit: 2}},
		{"an unfiltered listing", store.Query{Limit: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []string
			page := func(offset, wantTotal int) {
				t.Helper()
				q := tc.query
				q.Offset = offset
				got, total, err := st.QueryUsers(ctx, q)
				noErr(t, err, "QueryUsers")
				if total != wantTotal {
					t.Errorf("page at %d: total %d, want %d", offset, total, wantTotal)
				}
				seen = append(seen, userNames(got)...)
			}
			all := slices.Clone(names)
			page(0, len(all))
			// The first row goes away before the next page; OFFSET 2
			// would now start one row later and never show all[2].
			first := must[groupgate.User](t, "get first")(st.GetUserByUserName(ctx, all[0]))
			noErr(t, st.DeleteUser(ctx, first.ID), "delete first")
			names = names[1:]
			page(2, len(all)-1)
			page(4, len(all)-1)
			page(6, len(all)-1)
			wantEqual(t, "walk", seen, all)

			// A page no walk ended at is counted off.
			seen = nil
			page(3, len(all)-1)
			wantEqual(t, "a jump to 3", seen, all[4:6])
		})
	}
}

// scimDefaultOrderPages: every page of a listing in the default order, at
// every offset and for several page sizes, in order (so that each page
// can continue a walk) and again (cursors taken), is the part of the full
// listing it names, with the full total; from whichever end a backend
// counts the offset off.
func (s suite) scimDefaultOrderPages(t *testing.T) {
	ctx, st := s.fresh(t)
	for i := range 9 {
		must[groupgate.User](t, "create user")(st.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("u%d", i), Active: i != 4}))
	}
	for _, tc := range []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		{"unfiltered", nil, []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}},
		{"active eq true", attrCmp("active", store.OpEq, true), []string{"u0", "u1", "u2", "u3", "u5", "u6", "u7", "u8"}},
		{"active eq false", attrCmp("active", store.OpEq, false), []string{"u4"}},
		{"userName sw u", attrCmp("userName", store.OpSw, "U"), []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 3, 4, 100} {
				for range 2 {
					for offset := 0; offset <= len(tc.want)+1; offset++ {
						opts := store.ListOptions{Offset: offset, Limit: limit}
						got, total, err := st.QueryUsers(ctx, store.Query{Filter: tc.filter, Offset: offset, Limit: limit})
						noErr(t, err, "QueryUsers")
						wantEqual(t, pageName(opts), userNames(got), window(tc.want, opts))
						if total != len(tc.want) {
							t.Errorf("%s: total %d, want %d", pageName(opts), total, len(tc.want))
						}
					}
				}
			}
		})
	}
}
