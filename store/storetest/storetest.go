package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Run checks that the stores made by newStore follow the store contract.
// newStore must return an empty, migrated store of its own that it closes
// through t.Cleanup; every subtest asks for a fresh one so that no state
// leaks between subtests, and most subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := suite{newStore: newStore}
	t.Run("users", s.users)
	t.Run("emails", s.emails)
	t.Run("identities", s.identities)
	t.Run("groups", s.groups)
	t.Run("group sets", s.groupSets)
	t.Run("organizations", s.organizations)
	t.Run("repositories", s.repositories)
	t.Run("mappings", s.mappings)
	t.Run("manual roles", s.roles)
	t.Run("tokens", s.tokens)
	t.Run("audit", s.audit)
	t.Run("transactions", s.transactions)
	t.Run("concurrency", s.concurrency)
	t.Run("scim", s.scim)
	t.Run("outbox", s.outbox)
	t.Run("batch reads", s.batchReads)
	t.Run("user grants", s.userGrants)
	t.Run("bad input", s.badInput)
	t.Run("signing keys", s.signingKeys)
}

type suite struct {
	newStore func(t *testing.T) store.Store
}

// fresh marks t parallel and returns its context and an empty store.
func (s suite) fresh(t *testing.T) (context.Context, store.Store) {
	t.Helper()
	t.Parallel()
	return t.Context(), s.newStore(t)
}

// wantCode fails t unless err is a *groupgate.Error carrying code.
func wantCode(t testing.TB, err error, code groupgate.ErrorCode, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want code %s", what, code)
	}
	var ge *groupgate.Error
	if !errors.As(err, &ge) {
		t.Fatalf("%s: error %q (%T) is not a *groupgate.Error", what, err, err)
	}
	if !groupgate.IsCode(err, code) {
		t.Fatalf("%s: error %q has code %s, want %s", what, err, groupgate.ErrorCodeOf(err), code)
	}
}

// noErr fails t when err is not nil.
func noErr(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// must returns v or fails t with err.
func must[T any](t testing.TB, what string) func(v T, err error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// checkTime fails t unless tm is a store-made time: set, in UTC and of
// microsecond precision (the precision both backends keep).
func checkTime(t testing.TB, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() {
		t.Fatalf("%s is zero, want it set by the store", what)
	}
	if tm.Location() != time.UTC {
		t.Errorf("%s = %v is not in UTC", what, tm)
	}
	if tm.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v has sub-microsecond digits", what, tm)
	}
}

// checkNotBefore fails t when later is before earlier.
func checkNotBefore(t testing.TB, what string, later, earlier time.Time) {
	t.Helper()
	if later.Before(earlier) {
		t.Errorf("%s: %v is before %v", what, later, earlier)
	}
}

// wantEqual fails t when got and want differ; times compare with Equal,
// JSON semantically and byte slices by content (nil equals empty).
func wantEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	var diffs []string
	diffValue(&diffs, "", reflect.ValueOf(got), reflect.ValueOf(want))
	if len(diffs) > 0 {
		t.Fatalf("%s differs:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

var (
	timeType = reflect.TypeFor[time.Time]()
	jsonType = reflect.TypeFor[json.RawMessage]()
)

func diffValue(out *[]string, path string, g, w reflect.Value) {
	if !g.IsValid() || !w.IsValid() {
		if g.IsValid() != w.IsValid() {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, g, w))
		}
		return
	}
	if g.Type() != w.Type() {
		*out = append(*out, fmt.Sprintf("%s: got type %s, want %s", path, g.Type(), w.Type()))
		return
	}
	switch {
	case g.Type() == timeType:
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if !gt.Equal(wt) {
			*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, gt, wt))
		}
	case g.Type() == jsonType:
		if !jsonEqual(g.Bytes(), w.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s: got JSON %s, want %s", path, g.Bytes(), w.Bytes()))
		}
	case g.Kind() == reflect.Slice && g.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(g.Bytes(), w.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s: got %x, want %x", path, g.Bytes(), w.Bytes()))
		}
	case g.Kind() == reflect.Struct:
		for i := range g.NumField() {
			diffValue(out, path+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i))
		}
	case g.Kind() == reflect.Slice:
		if g.Len() != w.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %d elements, want %d: got %v, want %v", path, g.Len(), w.Len(), g, w))
			return
		}
		for i := range g.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i))
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: got %#v, want %#v", path, g.Interface(), w.Interface()))
		}
	}
}

// jsonEqual compares two JSON documents by meaning; empty equals empty only.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var av, bv any
	if json.Unmarshal(a, &av) != nil || json.Unmarshal(b, &bv) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(av, bv)
}

// fixedTime is a caller-given time of microsecond precision, so that what
// the store keeps is exactly what was given.
func fixedTime(day int) time.Time {
	return time.Date(2021, time.March, day, 10, 11, 12, 123456000, time.UTC)
}

// Fixtures. They fail the test at once when the store refuses valid input.

func mkUser(t testing.TB, ctx context.Context, s store.Store, name string) groupgate.User {
	t.Helper()
	return must[groupgate.User](t, "create user "+name)(s.CreateUser(ctx, groupgate.User{
		UserName: name, Email: name + "@example.com", DisplayName: strings.ToUpper(name), Active: true,
	}))
}

func mkOrg(t testing.TB, ctx context.Context, s store.Store, name string) groupgate.Organization {
	t.Helper()
	return must[groupgate.Organization](t, "create organization "+name)(s.CreateOrganization(ctx, groupgate.Organization{Name: name}))
}

func mkRepo(t testing.TB, ctx context.Context, s store.Store, org groupgate.Organization, name string) groupgate.Repository {
	t.Helper()
	return must[groupgate.Repository](t, "create repository "+name)(s.CreateRepository(ctx, groupgate.Repository{OrganizationID: org.ID, Name: name}))
}

func mkOrgMapping(t testing.TB, ctx context.Context, s store.Store, orgID, group string, role groupgate.OrgRole) groupgate.OrgMapping {
	t.Helper()
	return must[groupgate.OrgMapping](t, "add org mapping "+group)(s.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: orgID, Group: group, RoleOverride: role}))
}

func mkRepoMapping(t testing.TB, ctx context.Context, s store.Store, repoID, group string, role groupgate.RepoRole) groupgate.RepoMapping {
	t.Helper()
	return must[groupgate.RepoMapping](t, "add repo mapping "+group)(s.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repoID, Group: group, RoleOverride: role}))
}

func setGroups(t testing.TB, ctx context.Context, s store.Store, userID string, set groupgate.GroupSet) groupgate.GroupSet {
	t.Helper()
	return must[groupgate.GroupSet](t, "set group set of "+userID)(s.UpdateGroupSet(ctx, userID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
		return set, nil
	}))
}

// pages are the ListOptions every paged listing is checked with, against
// the full listing of n rows.
func pages(n int) []store.ListOptions {
	return []store.ListOptions{
		{}, {Limit: 2}, {Offset: 2, Limit: 2}, {Offset: n - 1, Limit: 2},
		{Offset: 1}, {Offset: n}, {Offset: n + 10, Limit: 3}, {Limit: n + 10},
	}
}

// window is the part of all that opts selects.
func window[T any](all []T, opts store.ListOptions) []T {
	lo := min(opts.Offset, len(all))
	hi := len(all)
	if opts.Limit > 0 {
		hi = min(lo+opts.Limit, hi)
	}
	return all[lo:hi]
}

func pageName(o store.ListOptions) string {
	return fmt.Sprintf("offset %d limit %d", o.Offset, o.Limit)
}

// errBoom is returned by callers' closures; the store must pass it through.
var errBoom = errors.New("storetest: closure refused the change")
