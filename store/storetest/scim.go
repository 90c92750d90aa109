package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// scimUsers are the users the query tests filter: SCIM documents as the
// scim package stores them, with canonical attribute names. "level",
// "vip" and "hired" stand for a numeric, a boolean and a date-time
// attribute of the document.
var scimUsers = []groupgate.User{
	{UserName: "alice", Email: "alice@example.com", DisplayName: "Alice Smith", Active: true, ExternalID: "ext-a",
		SCIM: json.RawMessage(`{"userName":"alice","name":{"givenName":"Alice","familyName":"Smith"},"title":"Engineer",
			"emails":[{"value":"alice@example.com","type":"work","primary":true},{"value":"alice@home.org","type":"home"}],
			"level":3,"vip":true,"hired":"2020-05-01T00:00:00Z",
			"` + enterprise + `":{"employeeNumber":"100","department":"R&D"}}`)},
	{UserName: "BOB", Email: "bob@example.com", DisplayName: "Bob Jones", Active: false,
		SCIM: json.RawMessage(`{"userName":"BOB","name":{"givenName":"Bob"},"title":"Manager",
			"emails":[{"value":"bob@example.com","type":"work"}],
			"level":10,"vip":false,"hired":"2019-12-31T23:00:00-02:00",
			"` + enterprise + `":{"employeeNumber":"200","department":"Sales"}}`)},
	{UserName: "carol_x", Active: true,
		SCIM: json.RawMessage(`{"userName":"carol_x","title":"","emails":[],"level":2.5,"hired":"2021-01-01T00:00:00+01:00",
			"` + enterprise + `":{"employeeNumber":"300"}}`)},
	{UserName: "dave%", Email: "dave@example.com", Active: true},
}

// seedSCIMUsers creates scimUsers in order and returns them by user name.
func seedSCIMUsers(t *testing.T, st store.Store) map[string]groupgate.User {
	t.Helper()
	byName := make(map[string]groupgate.User, len(scimUsers))
	for _, u := range scimUsers {
		byName[u.UserName] = must[groupgate.User](t, "create user "+u.UserName)(st.CreateUser(t.Context(), u))
	}
	return byName
}

func attrCmp(attr string, op store.CompareOp, v any) store.Compare {
	return store.Compare{Attr: attr, Op: op, Value: v}
}

func exact(attr string, op store.CompareOp, v any) store.Compare {
	return store.Compare{Attr: attr, Op: op, Value: v, CaseExact: true}
}

// userNames returns the user names of users, in order.
func userNames(users []groupgate.User) []string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.UserName
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

func (s suite) scim(t *testing.T) {
	t.Run("user filters", s.scimUserFilters)
	t.Run("group filters", s.scimGroupFilters)
	t.Run("sorting and paging", s.scimSorting)
	t.Run("UpdateGroupMembers", s.scimMembers)
	t.Run("CreateGroupWithMembers", s.scimCreateWithMembers)
	t.Run("externalId is not unique", s.scimExternalIDNotUnique)
	t.Run("email value filters", s.scimEmailIndex)
	t.Run("email value filters follow writes", s.scimEmailIndexFollowsWrites)
	t.Run("a walk over pages", s.scimWalk)
	t.Run("every page of the default order", s.scimDefaultOrderPages)
}

// scimCreateWithMembers: a group created with its first members is at its
// first version, last modified when created (RFC 7643 §3.1).
func (s suite) scimCreateWithMembers(t *testing.T) {
	t.Run("the new group is at version 1 with UpdatedAt equal to CreatedAt", func(t *testing.T) {
		ctx, st := s.fresh(t)
		a, b := mkUser(t, ctx, st, "a"), mkUser(t, ctx, st, "b")
		g, affected, err := st.CreateGroupWithMembers(ctx, groupgate.Group{Name: "eng", ExternalID: "x",
			SCIM: json.RawMessage(`{"displayName":"eng"}`)}, []string{b.ID, a.ID, a.ID})
		noErr(t, err, "create group with members")
		if g.ID == "" || g.Version != 1 || !g.UpdatedAt.Equal(g.CreatedAt) {
			t.Fatalf("created %+v, want an ID, version 1 and UpdatedAt = CreatedAt", g)
		}
		checkTime(t, "CreatedAt", g.CreatedAt)
		wantEqual(t, "affected", affected, sorted([]string{a.ID, b.ID}))
		wantEqual(t, "group read back", must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)), g)
		wantEqual(t, "scim members", must[[]string](t, "scim members")(st.ListGroupMembersBySource(ctx, "eng", groupgate.SourceSCIM)),
			sorted([]string{a.ID, b.ID}))
	})
	t.Run("without members it is CreateGroup", func(t *testing.T) {
		ctx, st := s.fresh(t)
		g, affected, err := st.CreateGroupWithMembers(ctx, groupgate.Group{Name: "eng"}, nil)
		noErr(t, err, "create group without members")
		if g.Version != 1 || !g.UpdatedAt.Equal(g.CreatedAt) || len(affected) != 0 {
			t.Fatalf("created %+v affecting %v", g, affected)
		}
	})
	t.Run("a refused create writes nothing", func(t *testing.T) {
		cases := []struct {
			name    string
			group   string
			members func(a groupgate.User) []string
			want    groupgate.ErrorCode
		}{
			{"an unknown member is invalid", "new", func(a groupgate.User) []string { return []string{a.ID, "nobody"} }, groupgate.Invalid},
			{"a taken name is a conflict", "eng", func(a groupgate.User) []string { return []string{a.ID} }, groupgate.Conflict},
			{"an empty name is invalid", "", func(a groupgate.User) []string { return nil }, groupgate.Invalid},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				a := mkUser(t, ctx, st, "a")
				must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
				_, _, err := st.CreateGroupWithMembers(ctx, groupgate.Group{Name: tc.group}, tc.members(a))
				wantCode(t, err, tc.want, "CreateGroupWithMembers")
				if n := len(must[[]groupgate.Group](t, "list groups")(st.ListGroups(ctx, store.ListOptions{}))); n != 1 {
					t.Fatalf("%d groups after a refused create, want 1", n)
				}
				wantEqual(t, "group set of a", len(must[groupgate.GroupSet](t, "group set")(st.GetGroupSet(ctx, a.ID))), 0)
			})
		}
	})
}

// scimExternalIDNotUnique: RFC 7643 §3.1, the service provider does not
// enforce the uniqueness of externalId.
func (s suite) scimExternalIDNotUnique(t *testing.T) {
	ctx, st := s.fresh(t)
	for _, name := range []string{"one", "two"} {
		must[groupgate.User](t, "create user "+name)(st.CreateUser(ctx, groupgate.User{UserName: name, Active: true, ExternalID: "same"}))
		must[groupgate.Group](t, "create group "+name)(st.CreateGroup(ctx, groupgate.Group{Name: name, ExternalID: "same"}))
	}
	g := must[groupgate.Group](t, "create three")(st.CreateGroup(ctx, groupgate.Group{Name: "three"}))
	_, _, err := st.UpdateGroupMembers(ctx, g.ID, func(g *groupgate.Group, m []string) ([]string, error) {
		g.ExternalID = "same"
		return m, nil
	})
	noErr(t, err, "give a third group the same externalId")
	users, total, err := st.QueryUsers(ctx, store.Query{Filter: exact("externalId", store.OpEq, "same")})
	noErr(t, err, "query users by externalId")
	if total != 2 || len(users) != 2 {
		t.Fatalf("%d users (total %d) with externalId same, want 2", len(users), total)
	}
}

func (s suite) scimUserFilters(t *testing.T) {
	ctx, st := s.fresh(t)
	users := seedSCIMUsers(t, st)
	first, last := users["alice"], users["dave%"]
	eng := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
	must[groupgate.Group](t, "create ops")(st.CreateGroup(ctx, groupgate.Group{Name: "ops"}))
	setMembers(t, st, eng.ID, users["alice"].ID, users["BOB"].ID)
	// A login membership of ops does not make dave a SCIM member of it.
	setGroups(t, ctx, st, users["dave%"].ID, groupgate.GroupSet{{Group: "ops", Source: groupgate.SourceLogin}})
	all := []string{"BOB", "alice", "carol_x", "dave%"}
	rfc := func(tm time.Time) string { return tm.Format(time.RFC3339Nano) }

	cases := []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		{"no filter selects every user", nil, all},
		{"userName eq ignores case", attrCmp("userName", store.OpEq, "bob"), []string{"BOB"}},
		{"a case-exact eq respects case", exact("userName", store.OpEq, "bob"), nil},
		{"ne excludes the equal one", attrCmp("userName", store.OpNe, "ALICE"), []string{"BOB", "carol_x", "dave%"}},
		{"co finds a substring in any case", attrCmp("userName", store.OpCo, "A"), []string{"alice", "carol_x", "dave%"}},
		{"sw finds a prefix", attrCmp("userName", store.OpSw, "car"), []string{"carol_x"}},
		{"ew finds a suffix in any case", attrCmp("userName", store.OpEw, "X"), []string{"carol_x"}},
		{"a case-exact ew respects case", exact("userName", store.OpEw, "X"), nil},
		{"a case-exact sw respects case", exact("userName", store.OpSw, "B"), []string{"BOB"}},
		{"% in a co value is a literal", attrCmp("userName", store.OpCo, "%"), []string{"dave%"}},
		{"_ in a co value is a literal", attrCmp("userName", store.OpCo, "_"), []string{"carol_x"}},
		{"a case-exact co keeps wildcards literal", exact("userName", store.OpCo, "l_"), []string{"carol_x"}},
		{"a case-exact co does not treat * as a wildcard", exact("userName", store.OpCo, "*"), nil},
		{"a backslash in a sw value is a literal", attrCmp("userName", store.OpSw, `c\`), nil},
		{"gt compares strings without case", attrCmp("userName", store.OpGt, "bob"), []string{"carol_x", "dave%"}},
		{"ge includes the equal string", attrCmp("userName", store.OpGe, "bob"), []string{"BOB", "carol_x", "dave%"}},
		{"lt compares strings", attrCmp("userName", store.OpLt, "bob"), []string{"alice"}},
		{"le includes the equal string", attrCmp("userName", store.OpLe, "BOB"), []string{"BOB", "alice"}},
		{"displayName pr skips users without one", attrCmp("displayName", store.OpPresent, nil), []string{"BOB", "alice"}},
		{"displayName co ignores case", attrCmp("displayName", store.OpCo, "SMITH"), []string{"alice"}},
		{"ne matches users without the attribute", attrCmp("displayName", store.OpNe, "Bob Jones"), []string{"alice", "carol_x", "dave%"}},
		{"externalId eq is exact", exact("externalId", store.OpEq, "ext-a"), []string{"alice"}},
		{"externalId eq with other case misses", exact("externalId", store.OpEq, "EXT-A"), nil},
		{"externalId pr", exact("externalId", store.OpPresent, nil), []string{"alice"}},
		{"id eq finds one user", exact("id", store.OpEq, users["carol_x"].ID), []string{"carol_x"}},
		{"active eq true", attrCmp("active", store.OpEq, true), []string{"alice", "carol_x", "dave%"}},
		{"active eq false", attrCmp("active", store.OpEq, false), []string{"BOB"}},
		{"active ne true", attrCmp("active", store.OpNe, true), []string{"BOB"}},
		{"meta.created ge the first creation is everyone", attrCmp("meta.created", store.OpGe, rfc(first.CreatedAt)), all},
		{"meta.created gt the last creation is no one", attrCmp("meta.created", store.OpGt, rfc(last.CreatedAt)), nil},
		{"meta.created compares chronologically across zones", attrCmp("meta.created", store.OpLe, rfc(last.CreatedAt.In(time.FixedZone("", -5*3600)))), all},
		{"meta.lastModified lt long ago is no one", attrCmp("meta.lastModified", store.OpLt, "2000-01-01T00:00:00Z"), nil},
		{"title eq reads the document without case", attrCmp("title", store.OpEq, "engineer"), []string{"alice"}},
		{"a case-exact title eq respects case", exact("title", store.OpEq, "engineer"), nil},
		{"title pr skips empty and absent titles", attrCmp("title", store.OpPresent, nil), []string{"BOB", "alice"}},
		{"not pr selects empty and absent titles", store.Not{Filter: attrCmp("title", store.OpPresent, nil)}, []string{"carol_x", "dave%"}},
		{"title ne matches absent titles too", attrCmp("title", store.OpNe, "Engineer"), []string{"BOB", "carol_x", "dave%"}},
		{"a sub-attribute of a complex attribute", attrCmp("name.givenName", store.OpSw, "b"), []string{"BOB"}},
		{"a JSON string gt compares lexicographically", attrCmp("title", store.OpGt, "F"), []string{"BOB"}},
		{"numbers compare numerically", attrCmp("level", store.OpGt, 2.5), []string{"BOB", "alice"}},
		{"ge on numbers", attrCmp("level", store.OpGe, 2.5), []string{"BOB", "alice", "carol_x"}},
		{"eq on numbers", attrCmp("level", store.OpEq, 10.0), []string{"BOB"}},
		{"lt on numbers", attrCmp("level", store.OpLt, 3.0), []string{"carol_x"}},
		{"a string never equals a number", attrCmp("level", store.OpEq, "3"), nil},
		{"booleans in the document", attrCmp("vip", store.OpEq, true), []string{"alice"}},
		{"ne on a boolean matches absence", attrCmp("vip", store.OpNe, true), []string{"BOB", "carol_x", "dave%"}},
		{"date-times in the document compare chronologically", attrCmp("hired", store.OpGt, "2020-01-01T00:30:00Z"), []string{"BOB", "alice", "carol_x"}},
		{"date-time lt across offsets", attrCmp("hired", store.OpLt, "2020-01-01T02:00:00+00:00"), []string{"BOB"}},
		{"a value path matches one element on two sub-attributes",
			store.ValuePath{Attr: "emails", Filter: store.And{Left: attrCmp("type", store.OpEq, "work"), Right: attrCmp("value", store.OpEw, "EXAMPLE.COM")}},
			[]string{"BOB", "alice"}},
		{"a value path does not mix elements",
			store.ValuePath{Attr: "emails", Filter: store.And{Left: attrCmp("type", store.OpEq, "home"), Right: attrCmp("value", store.OpEw, "example.com")}},
			nil},
		{"a value path over any email", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpEq, "alice@home.org")}, []string{"alice"}},
		{"an email value path sw ignores case", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpSw, "ALICE@")}, []string{"alice"}},
		{"an email value path ew matches any element", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpEw, "HOME.ORG")}, []string{"alice"}},
		{"an email value path co", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpCo, "@EXAMPLE.")}, []string{"BOB", "alice"}},
		{"a case-exact email value path respects case", store.ValuePath{Attr: "emails", Filter: exact("value", store.OpCo, "EXAMPLE")}, nil},
		{"an email eq is the whole value, not a part", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpEq, "bob@example.co")}, nil},
		{"% in an email value is a literal", store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpCo, "%")}, nil},
		{"an email value path with or", store.ValuePath{Attr: "emails", Filter: store.Or{Left: attrCmp("value", store.OpEq, "bob@example.com"), Right: attrCmp("value", store.OpEq, "alice@home.org")}},
			[]string{"BOB", "alice"}},
		{"not an email value path", store.Not{Filter: store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpEw, "@example.com")}},
			[]string{"carol_x", "dave%"}},
		{"a multi-valued attribute is present when it has elements", attrCmp("emails", store.OpPresent, nil), []string{"BOB", "alice"}},
		{"an enterprise extension attribute", attrCmp(enterprise+".employeeNumber", store.OpEq, "200"), []string{"BOB"}},
		{"an extension value with a special character", attrCmp(enterprise+".department", store.OpCo, "&"), []string{"alice"}},
		{"an extension is present when it has attributes", attrCmp(enterprise, store.OpPresent, nil), []string{"BOB", "alice", "carol_x"}},
		{"groups value path over SCIM memberships", store.ValuePath{Attr: "groups", Filter: exact("display", store.OpEq, "eng")}, []string{"BOB", "alice"}},
		{"groups.value by group ID", exact("groups.value", store.OpEq, eng.ID), []string{"BOB", "alice"}},
		{"login memberships are not SCIM groups", store.ValuePath{Attr: "groups", Filter: exact("display", store.OpEq, "ops")}, nil},
		{"and binds as the tree says: (active and title pr) or userName eq bob",
			store.Or{Left: store.And{Left: attrCmp("active", store.OpEq, true), Right: attrCmp("title", store.OpPresent, nil)}, Right: attrCmp("userName", store.OpEq, "bob")},
			[]string{"BOB", "alice"}},
		{"and binds as the tree says: active and (title pr or userName eq bob)",
			store.And{Left: attrCmp("active", store.OpEq, true), Right: store.Or{Left: attrCmp("title", store.OpPresent, nil), Right: attrCmp("userName", store.OpEq, "bob")}},
			[]string{"alice"}},
		{"not of an or",
			store.Not{Filter: store.Or{Left: attrCmp("userName", store.OpEq, "alice"), Right: attrCmp("level", store.OpGt, 5.0)}},
			[]string{"carol_x", "dave%"}},
		{"not of a comparison on an absent attribute matches",
			store.Not{Filter: attrCmp("level", store.OpLt, 100.0)}, []string{"dave%"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := st.QueryUsers(ctx, store.Query{Filter: tc.filter})
			noErr(t, err, "QueryUsers")
			wantEqual(t, "matching users", sorted(userNames(got)), sorted(tc.want))
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}

	invalid := []struct {
		name   string
		filter store.Filter
	}{
		{"a path with a quote", attrCmp(`name."givenName`, store.OpEq, "x")},
		{"a path with SQL in it", attrCmp(`title') OR 1=1 --`, store.OpEq, "x")},
		{"an empty path segment", attrCmp("name..givenName", store.OpEq, "x")},
		{"a malformed extension URN", attrCmp(`urn:"x".y`, store.OpEq, "x")},
		{"co with a boolean", attrCmp("vip", store.OpCo, true)},
		{"gt on a boolean column", attrCmp("active", store.OpGt, true)},
		{"a string for active", attrCmp("active", store.OpEq, "true")},
		{"a date-time column with a non-date", attrCmp("meta.created", store.OpGt, "yesterday")},
		{"sw on a date-time column", attrCmp("meta.created", store.OpSw, "2021")},
		{"a number for userName", attrCmp("userName", store.OpEq, 1.0)},
		{"an unknown operator", attrCmp("userName", "like", "a")},
		{"a value path inside a value path", store.ValuePath{Attr: "emails", Filter: store.ValuePath{Attr: "x", Filter: attrCmp("y", store.OpPresent, nil)}}},
	}
	for _, tc := range invalid {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, _, err := st.QueryUsers(ctx, store.Query{Filter: tc.filter})
			wantCode(t, err, groupgate.Invalid, "QueryUsers")
		})
	}
	t.Run("refuses sorting by an invalid path", func(t *testing.T) {
		_, _, err := st.QueryUsers(ctx, store.Query{SortBy: "title'--"})
		wantCode(t, err, groupgate.Invalid, "QueryUsers")
	})
	t.Run("the users table survives the injection attempts", func(t *testing.T) {
		if n := must[int](t, "count users")(st.CountUsers(ctx)); n != len(scimUsers) {
			t.Fatalf("CountUsers = %d, want %d", n, len(scimUsers))
		}
	})
}

// setMembers makes ids the SCIM members of group id.
func setMembers(t *testing.T, st store.Store, id string, ids ...string) []string {
	t.Helper()
	_, affected, err := st.UpdateGroupMembers(t.Context(), id, func(*groupgate.Group, []string) ([]string, error) {
		return ids, nil
	})
	noErr(t, err, "set members of "+id)
	return affected
}

func (s suite) scimGroupFilters(t *testing.T) {
	ctx, st := s.fresh(t)
	users := seedSCIMUsers(t, st)
	eng := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng", ExternalID: "g-1",
		SCIM: json.RawMessage(`{"displayName":"eng","description":"Engineering"}`)}))
	ops := must[groupgate.Group](t, "create Ops")(st.CreateGroup(ctx, groupgate.Group{Name: "Ops"}))
	must[groupgate.Group](t, "create sales")(st.CreateGroup(ctx, groupgate.Group{Name: "sales"}))
	setMembers(t, st, eng.ID, users["alice"].ID, users["BOB"].ID)
	setMembers(t, st, ops.ID, users["carol_x"].ID)
	setGroups(t, ctx, st, users["dave%"].ID, groupgate.GroupSet{{Group: "sales", Source: groupgate.SourceLogin}})

	cases := []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		{"no filter selects every group", nil, []string{"Ops", "eng", "sales"}},
		{"displayName eq ignores case", attrCmp("displayName", store.OpEq, "ops"), []string{"Ops"}},
		{"a case-exact displayName eq respects case", exact("displayName", store.OpEq, "ops"), nil},
		{"displayName sw", attrCmp("displayName", store.OpSw, "S"), []string{"sales"}},
		{"externalId eq", exact("externalId", store.OpEq, "g-1"), []string{"eng"}},
		{"a document attribute", attrCmp("description", store.OpCo, "engineer"), []string{"eng"}},
		{"members value path by user ID", store.ValuePath{Attr: "members", Filter: exact("value", store.OpEq, users["alice"].ID)}, []string{"eng"}},
		{"members.value as a comparison", exact("members.value", store.OpEq, users["carol_x"].ID), []string{"Ops"}},
		{"members by display name", store.ValuePath{Attr: "members", Filter: attrCmp("display", store.OpCo, "smith")}, []string{"eng"}},
		{"members pr ignores login memberships", attrCmp("members", store.OpPresent, nil), []string{"Ops", "eng"}},
		{"not members pr", store.Not{Filter: attrCmp("members", store.OpPresent, nil)}, []string{"sales"}},
		{"a login member is not a SCIM member", exact("members.value", store.OpEq, users["dave%"].ID), nil},
		{"ne on members matches groups without that member", exact("members.value", store.OpNe, users["alice"].ID), []string{"Ops", "sales"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := st.QueryGroups(ctx, store.Query{Filter: tc.filter})
			noErr(t, err, "QueryGroups")
			names := make([]string, len(got))
			for i, g := range got {
				names[i] = g.Name
			}
			wantEqual(t, "matching groups", sorted(names), sorted(tc.want))
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}
	t.Run("groups read back whole", func(t *testing.T) {
		got, _, err := st.QueryGroups(ctx, store.Query{Filter: exact("id", store.OpEq, eng.ID)})
		noErr(t, err, "QueryGroups")
		if len(got) != 1 {
			t.Fatalf("got %d groups, want 1", len(got))
		}
		wantEqual(t, "group", got[0], must[groupgate.Group](t, "get eng")(st.GetGroup(ctx, eng.ID)))
	})
}

func (s suite) scimSorting(t *testing.T) {
	ctx, st := s.fresh(t)
	users := seedSCIMUsers(t, st)
	// Users without a value sort by ID among themselves.
	idOrder := func(names ...string) []string {
		slices.SortFunc(names, func(a, b string) int { return strings.Compare(users[a].ID, users[b].ID) })
		return names
	}
	noDisplay := idOrder("carol_x", "dave%")
	cases := []struct {
		name  string
		query store.Query
		want  []string
	}{
		{"the default order is creation", store.Query{}, []string{"alice", "BOB", "carol_x", "dave%"}},
		{"userName ascending ignores case", store.Query{SortBy: "userName"}, []string{"alice", "BOB", "carol_x", "dave%"}},
		{"userName descending", store.Query{SortBy: "userName", SortOrder: store.Descending}, []string{"dave%", "carol_x", "BOB", "alice"}},
		{"missing values sort last when ascending", store.Query{SortBy: "displayName", SortOrder: store.Ascending},
			append([]string{"alice", "BOB"}, noDisplay...)},
		{"missing values sort first when descending", store.Query{SortBy: "displayName", SortOrder: store.Descending},
			append(slices.Clone(noDisplay), "BOB", "alice")},
		{"numbers in the document sort numerically", store.Query{SortBy: "level"}, []string{"carol_x", "alice", "BOB", "dave%"}},
		{"strings in the document sort lexicographically", store.Query{SortBy: "title"}, []string{"carol_x", "alice", "BOB", "dave%"}},
		{"an extension attribute descending", store.Query{SortBy: enterprise + ".employeeNumber", SortOrder: store.Descending},
			[]string{"dave%", "carol_x", "BOB", "alice"}},
		{"emails sort by the primary email", store.Query{SortBy: "emails.value"}, []string{"alice", "BOB", "dave%", "carol_x"}},
		{"ties sort by ID", store.Query{SortBy: "active", Filter: attrCmp("active", store.OpEq, true)}, idOrder("alice", "carol_x", "dave%")},
		{"a filtered, sorted page", store.Query{Filter: attrCmp("active", store.OpEq, true), SortBy: "userName", Offset: 1, Limit: 1}, []string{"carol_x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := st.QueryUsers(ctx, tc.query)
			noErr(t, err, "QueryUsers")
			wantEqual(t, "order", userNames(got), tc.want)
		})
	}

	active := store.Query{Filter: attrCmp("active", store.OpEq, true), SortBy: "userName"}
	wantAll := []string{"alice", "carol_x", "dave%"}
	for _, opts := range pages(len(wantAll)) {
		t.Run("paging "+pageName(opts)+" keeps the total", func(t *testing.T) {
			q := active
			q.Offset, q.Limit = opts.Offset, opts.Limit
			got, total, err := st.QueryUsers(ctx, q)
			noErr(t, err, "QueryUsers")
			wantEqual(t, "page", userNames(got), window(wantAll, opts))
			if total != len(wantAll) {
				t.Errorf("total = %d, want %d", total, len(wantAll))
			}
		})
	}
	// Pages past the first in the default order take another path in
	// PostgreSQL (the IDs first, then the rows): the same answers.
	for _, q := range []struct {
		name string
		q    store.Query
		want []string
	}{
		{"creation order", store.Query{}, []string{"alice", "BOB", "carol_x", "dave%"}},
		{"creation order, filtered", store.Query{Filter: attrCmp("active", store.OpEq, true)}, wantAll},
		{"creation order, a value path", store.Query{Filter: store.ValuePath{Attr: "emails", Filter: attrCmp("value", store.OpCo, "example")}}, []string{"alice", "BOB"}},
	} {
		for _, opts := range pages(len(q.want)) {
			t.Run("paging in "+q.name+" "+pageName(opts)+" keeps the total", func(t *testing.T) {
				qq := q.q
				qq.Offset, qq.Limit = opts.Offset, opts.Limit
				got, total, err := st.QueryUsers(ctx, qq)
				noErr(t, err, "QueryUsers")
				wantEqual(t, "page", userNames(got), window(q.want, opts))
				if total != len(q.want) {
					t.Errorf("total = %d, want %d", total, len(q.want))
				}
			})
		}
	}
	t.Run("groups sort by displayName and page with totals", func(t *testing.T) {
		for _, name := range []string{"b", "C", "a"} {
			must[groupgate.Group](t, "create group")(st.CreateGroup(ctx, groupgate.Group{Name: name}))
		}
		got, total, err := st.QueryGroups(ctx, store.Query{SortBy: "displayName", SortOrder: store.Descending, Limit: 2})
		noErr(t, err, "QueryGroups")
		if total != 3 || len(got) != 2 || got[0].Name != "C" || got[1].Name != "b" {
			t.Fatalf("got %d of %d groups starting %+v, want C, b of 3", len(got), total, got)
		}
	})
}

func (s suite) scimMembers(t *testing.T) {
	t.Run("a replace adds and removes SCIM members and reports who changed", func(t *testing.T) {
		ctx, st := s.fresh(t)
		a, b, c, d := mkUser(t, ctx, st, "a"), mkUser(t, ctx, st, "b"), mkUser(t, ctx, st, "c"), mkUser(t, ctx, st, "d")
		g := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		setGroups(t, ctx, st, d.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin, AddedAt: fixedTime(1)}})

		affected := setMembers(t, st, g.ID, b.ID, a.ID, a.ID)
		wantEqual(t, "affected by the first change", affected, sorted([]string{a.ID, b.ID}))
		setB := must[groupgate.GroupSet](t, "group set of b")(st.GetGroupSet(ctx, b.ID))
		if len(setB) != 1 || setB[0].Group != "eng" || setB[0].Source != groupgate.SourceSCIM {
			t.Fatalf("group set of b = %+v, want eng from scim", setB)
		}
		checkTime(t, "AddedAt", setB[0].AddedAt)

		var seen []string
		stored, affected, err := st.UpdateGroupMembers(ctx, g.ID, func(gr *groupgate.Group, members []string) ([]string, error) {
			seen = members
			gr.SCIM = json.RawMessage(`{"displayName":"eng","description":"x"}`)
			return []string{c.ID, b.ID}, nil
		})
		noErr(t, err, "replace members")
		wantEqual(t, "members fn saw", seen, sorted([]string{a.ID, b.ID}))
		wantEqual(t, "affected by the replace", affected, sorted([]string{a.ID, c.ID}))
		if stored.Version != 3 || stored.ID != g.ID || !stored.CreatedAt.Equal(g.CreatedAt) {
			t.Errorf("stored group = %+v, want version 3 with ID and CreatedAt kept", stored)
		}
		checkNotBefore(t, "UpdatedAt", stored.UpdatedAt, g.UpdatedAt)
		wantEqual(t, "group read back", must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)), stored)
		wantEqual(t, "scim members", must[[]string](t, "scim members")(st.ListGroupMembersBySource(ctx, "eng", groupgate.SourceSCIM)),
			sorted([]string{b.ID, c.ID}))
		wantEqual(t, "login members are untouched", must[[]string](t, "login members")(st.ListGroupMembersBySource(ctx, "eng", groupgate.SourceLogin)),
			[]string{d.ID})
		wantEqual(t, "a kept member keeps AddedAt", must[groupgate.GroupSet](t, "group set of b")(st.GetGroupSet(ctx, b.ID)), setB)
		if set := must[groupgate.GroupSet](t, "group set of a")(st.GetGroupSet(ctx, a.ID)); len(set) != 0 {
			t.Errorf("removed member a still has %+v", set)
		}

		affected = setMembers(t, st, g.ID)
		wantEqual(t, "affected by emptying", affected, sorted([]string{b.ID, c.ID}))
		if got := must[[]string](t, "scim members")(st.ListGroupMembersBySource(ctx, "eng", groupgate.SourceSCIM)); len(got) != 0 {
			t.Errorf("scim members after emptying = %v", got)
		}
	})

	t.Run("refusals write nothing", func(t *testing.T) {
		errFn := fmt.Errorf("wrapped: %w", errBoom)
		cases := []struct {
			name string
			fn   func(g *groupgate.Group, members []string) ([]string, error)
			code groupgate.ErrorCode
			err  error
		}{
			{"an unknown user ID is Invalid", func(g *groupgate.Group, m []string) ([]string, error) {
				g.Name = "renamed"
				return append(m, "no-such-user"), nil
			}, groupgate.Invalid, nil},
			{"an empty user ID is Invalid", func(g *groupgate.Group, m []string) ([]string, error) { return append(m, ""), nil }, groupgate.Invalid, nil},
			{"an empty name is Invalid", func(g *groupgate.Group, m []string) ([]string, error) { g.Name = ""; return nil, nil }, groupgate.Invalid, nil},
			{"invalid JSON is Invalid", func(g *groupgate.Group, m []string) ([]string, error) {
				g.SCIM = json.RawMessage(`{`)
				return nil, nil
			}, groupgate.Invalid, nil},
			{"another group's name is a Conflict", func(g *groupgate.Group, m []string) ([]string, error) { g.Name = "ops"; return nil, nil }, groupgate.Conflict, nil},
			{"a renamed mapping colliding with one of the new name is a Conflict", func(g *groupgate.Group, m []string) ([]string, error) {
				g.Name = "platform"
				return m, nil
			}, groupgate.Conflict, nil},
			{"fn's error comes back unchanged", func(g *groupgate.Group, m []string) ([]string, error) {
				g.Name = "renamed"
				return nil, errFn
			}, "", errBoom},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx, st := s.fresh(t)
				a := mkUser(t, ctx, st, "a")
				org := mkOrg(t, ctx, st, "acme")
				g := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng", SCIM: json.RawMessage(`{"displayName":"eng"}`)}))
				must[groupgate.Group](t, "create ops")(st.CreateGroup(ctx, groupgate.Group{Name: "ops", ExternalID: "ext-ops"}))
				mkOrgMapping(t, ctx, st, org.ID, "eng", groupgate.OrgRoleAdmin)
				mkOrgMapping(t, ctx, st, org.ID, "platform", "")
				setMembers(t, st, g.ID, a.ID)
				before := must[groupgate.Group](t, "get eng")(st.GetGroup(ctx, g.ID))
				setBefore := must[groupgate.GroupSet](t, "group set")(st.GetGroupSet(ctx, a.ID))

				_, _, err := st.UpdateGroupMembers(ctx, g.ID, tc.fn)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("error = %v, want fn's error", err)
					}
				} else {
					wantCode(t, err, tc.code, "UpdateGroupMembers")
				}
				wantEqual(t, "group after refusal", must[groupgate.Group](t, "get eng")(st.GetGroup(ctx, g.ID)), before)
				wantEqual(t, "group set after refusal", must[groupgate.GroupSet](t, "group set")(st.GetGroupSet(ctx, a.ID)), setBefore)
				must[groupgate.OrgMapping](t, "eng mapping is still there")(st.GetOrgMapping(ctx, org.ID, "eng"))
			})
		}
	})

	t.Run("an unknown group is NotFound", func(t *testing.T) {
		ctx, st := s.fresh(t)
		called := false
		_, _, err := st.UpdateGroupMembers(ctx, store.NewID(), func(*groupgate.Group, []string) ([]string, error) {
			called = true
			return nil, nil
		})
		wantCode(t, err, groupgate.NotFound, "UpdateGroupMembers")
		if called {
			t.Error("fn was called for a missing group")
		}
	})

	t.Run("a rename moves memberships of every source and mappings to the new name", func(t *testing.T) {
		ctx, st := s.fresh(t)
		a, b, c, d := mkUser(t, ctx, st, "a"), mkUser(t, ctx, st, "b"), mkUser(t, ctx, st, "c"), mkUser(t, ctx, st, "d")
		org := mkOrg(t, ctx, st, "acme")
		repo := mkRepo(t, ctx, st, org, "api")
		g := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		om := mkOrgMapping(t, ctx, st, org.ID, "eng", groupgate.OrgRoleAdmin)
		rm := mkRepoMapping(t, ctx, st, repo.ID, "eng", groupgate.RepoRoleWrite)
		mkOrgMapping(t, ctx, st, org.ID, "other", "")
		setMembers(t, st, g.ID, a.ID)
		setA := must[groupgate.GroupSet](t, "group set of a")(st.GetGroupSet(ctx, a.ID))
		setGroups(t, ctx, st, b.ID, groupgate.GroupSet{{Group: "eng", Source: groupgate.SourceLogin, AddedAt: fixedTime(2)}})
		// c already has the new name from login: the moved mappings now
		// apply to c too.
		setGroups(t, ctx, st, c.ID, groupgate.GroupSet{{Group: "engineering", Source: groupgate.SourceLogin, AddedAt: fixedTime(3)}})

		stored, affected, err := st.UpdateGroupMembers(ctx, g.ID, func(gr *groupgate.Group, m []string) ([]string, error) {
			gr.Name = "engineering"
			return m, nil
		})
		noErr(t, err, "rename")
		if stored.Name != "engineering" {
			t.Fatalf("stored name = %q", stored.Name)
		}
		wantEqual(t, "affected by the rename", affected, sorted([]string{a.ID, b.ID, c.ID}))
		wantEqual(t, "group by new name", must[groupgate.Group](t, "get by name")(st.GetGroupByName(ctx, "engineering")), stored)
		setA[0].Group = "engineering"
		wantEqual(t, "a's SCIM membership moved with its AddedAt", must[groupgate.GroupSet](t, "group set of a")(st.GetGroupSet(ctx, a.ID)), setA)
		wantEqual(t, "b's login membership moved", must[groupgate.GroupSet](t, "group set of b")(st.GetGroupSet(ctx, b.ID)),
			groupgate.GroupSet{{Group: "engineering", Source: groupgate.SourceLogin, AddedAt: fixedTime(2)}})
		if set := must[groupgate.GroupSet](t, "group set of d")(st.GetGroupSet(ctx, d.ID)); len(set) != 0 {
			t.Errorf("bystander d got %+v", set)
		}
		if n := must[[]string](t, "old members")(st.ListGroupMembers(ctx, "eng")); len(n) != 0 {
			t.Errorf("old name still has members %v", n)
		}
		gotOM := must[groupgate.OrgMapping](t, "org mapping of the new name")(st.GetOrgMapping(ctx, org.ID, "engineering"))
		if gotOM.ID != om.ID || gotOM.RoleOverride != groupgate.OrgRoleAdmin {
			t.Errorf("moved org mapping = %+v, want %+v under the new name", gotOM, om)
		}
		gotRM := must[groupgate.RepoMapping](t, "repo mapping of the new name")(st.GetRepoMapping(ctx, repo.ID, "engineering"))
		if gotRM.ID != rm.ID || gotRM.RoleOverride != groupgate.RepoRoleWrite {
			t.Errorf("moved repo mapping = %+v, want %+v under the new name", gotRM, rm)
		}
		_, err = st.GetOrgMapping(ctx, org.ID, "eng")
		wantCode(t, err, groupgate.NotFound, "org mapping of the old name")
		_, err = st.GetRepoMapping(ctx, repo.ID, "eng")
		wantCode(t, err, groupgate.NotFound, "repo mapping of the old name")
		must[groupgate.OrgMapping](t, "other mapping untouched")(st.GetOrgMapping(ctx, org.ID, "other"))
	})

	t.Run("a rename inside a transaction commits with it", func(t *testing.T) {
		ctx, st := s.fresh(t)
		a := mkUser(t, ctx, st, "a")
		g := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		err := st.InTx(ctx, func(tx store.Store) error {
			_, _, err := tx.UpdateGroupMembers(ctx, g.ID, func(gr *groupgate.Group, m []string) ([]string, error) {
				gr.Name = "eng2"
				return []string{a.ID}, nil
			})
			if err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx = %v, want errBoom", err)
		}
		if got := must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)); got.Name != "eng" {
			t.Errorf("rolled-back rename left name %q", got.Name)
		}
		if set := must[groupgate.GroupSet](t, "group set")(st.GetGroupSet(ctx, a.ID)); len(set) != 0 {
			t.Errorf("rolled-back change left %+v", set)
		}
	})

	t.Run("50 parallel adds and removes of different members lose nothing", func(t *testing.T) {
		ctx, st := s.fresh(t)
		const n = 50
		ids := make([]string, n)
		for i := range ids {
			ids[i] = mkUser(t, ctx, st, fmt.Sprintf("user-%02d", i)).ID
		}
		g := must[groupgate.Group](t, "create eng")(st.CreateGroup(ctx, groupgate.Group{Name: "eng"}))
		// Odd workers remove their member, even ones add theirs.
		var initial, want []string
		for i, id := range ids {
			if i%2 == 1 {
				initial = append(initial, id)
			} else {
				want = append(want, id)
			}
		}
		setMembers(t, st, g.ID, initial...)
		errs := parallel(n, func(i int) error {
			_, _, err := st.UpdateGroupMembers(ctx, g.ID, func(_ *groupgate.Group, m []string) ([]string, error) {
				if i%2 == 1 {
					return slices.DeleteFunc(m, func(id string) bool { return id == ids[i] }), nil
				}
				return append(m, ids[i]), nil
			})
			return err
		})
		failOnErrors(t, "update members", errs)
		wantEqual(t, "members after parallel changes",
			must[[]string](t, "scim members")(st.ListGroupMembersBySource(ctx, "eng", groupgate.SourceSCIM)), sorted(want))
		if got := must[groupgate.Group](t, "get group")(st.GetGroup(ctx, g.ID)); got.Version != n+2 {
			t.Errorf("version = %d after %d updates, want %d", got.Version, n+2, n+2)
		}
	})
}
