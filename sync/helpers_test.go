package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
)

// recorder is a SnapshotWriter that remembers what it was told, keeps
// generations like the session backends, and can be made to fail.
type recorder struct {
	mu          stdsync.Mutex
	last        map[string]groupgate.Memberships
	gens        map[string]int64
	sets        []string // user IDs in push order
	skipped     int      // rewrites refused for an older generation
	deleted     []string
	failures    int // next writes that fail
	genFailures int // next NextGenerations calls that fail
}

func newRecorder() *recorder {
	return &recorder{last: map[string]groupgate.Memberships{}, gens: map[string]int64{}}
}

var errWriter = errors.New("session backend down")

func (r *recorder) NextGenerations(_ context.Context, userIDs []string) (map[string]int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.genFailures > 0 {
		r.genFailures--
		return nil, errWriter
	}
	out := make(map[string]int64, len(userIDs))
	for _, id := range userIDs {
		r.gens[id]++
		out[id] = r.gens[id]
	}
	return out, nil
}

func (r *recorder) Generation(_ context.Context, userID string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gens[userID], nil
}

func (r *recorder) SetMembershipsIf(_ context.Context, userID string, gen int64, m groupgate.Memberships) (bool, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return false, 0, errWriter
	}
	if r.gens[userID] != gen {
		r.skipped++
		return false, 0, nil
	}
	r.last[userID] = m
	r.sets = append(r.sets, userID)
	return true, 1, nil
}

func (r *recorder) DeleteUserSessions(_ context.Context, userID string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return 0, errWriter
	}
	r.deleted = append(r.deleted, userID)
	delete(r.last, userID)
	return 1, nil
}

// pushed returns the users pushed to since the last reset, and forgets them.
func (r *recorder) take() (sets map[string]groupgate.Memberships, deleted []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sets = map[string]groupgate.Memberships{}
	for _, id := range r.sets {
		sets[id] = r.last[id]
	}
	deleted = r.deleted
	r.sets, r.deleted = nil, nil
	return sets, deleted
}

func (r *recorder) failNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = n
}

func (r *recorder) failNextGenerations(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.genFailures = n
}

type env struct {
	t   testing.TB
	ctx context.Context
	st  store.Store
	rec *recorder
	s   *sync.Syncer
}

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	now := func() time.Time { return epoch }
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"), sqlite.WithNow(now))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func newEnv(t testing.TB, opts ...sync.Option) *env {
	t.Helper()
	st := newStore(t)
	rec := newRecorder()
	opts = append([]sync.Option{sync.WithNow(func() time.Time { return epoch }), sync.WithPushRetry(3, time.Millisecond)}, opts...)
	return &env{t: t, ctx: context.Background(), st: st, rec: rec, s: sync.New(st, rec, opts...)}
}

func (e *env) org(name string) groupgate.Organization {
	e.t.Helper()
	o, err := e.st.CreateOrganization(e.ctx, groupgate.Organization{Name: name})
	if err != nil {
		e.t.Fatalf("create organization %s: %v", name, err)
	}
	return o
}

func (e *env) repo(o groupgate.Organization, name string) groupgate.Repository {
	e.t.Helper()
	r, err := e.st.CreateRepository(e.ctx, groupgate.Repository{OrganizationID: o.ID, Name: name})
	if err != nil {
		e.t.Fatalf("create repository %s: %v", name, err)
	}
	return r
}

// user creates a user whose group set holds groups from the scim source.
func (e *env) user(name string, groups ...string) groupgate.User {
	e.t.Helper()
	u, err := e.st.CreateUser(e.ctx, groupgate.User{UserName: name, Email: name + "@example.com", Active: true})
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	_, err = e.st.UpdateGroupSet(e.ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
		var set groupgate.GroupSet
		for _, g := range groups {
			set = append(set, groupgate.Membership{Group: g, Source: groupgate.SourceSCIM})
		}
		return set, nil
	})
	if err != nil {
		e.t.Fatalf("set groups of %s: %v", name, err)
	}
	return u
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("unexpected error: %v", err)
	}
}

func (e *env) resolve(userID string) sync.Access {
	e.t.Helper()
	a, err := e.s.Resolve(e.ctx, userID)
	e.must(err)
	return a
}

// dump is the whole store as JSON, to prove an operation wrote nothing.
func (e *env) dump() string {
	e.t.Helper()
	ctx, st := e.ctx, e.st
	d := map[string]any{}
	check := func(err error) {
		if err != nil {
			e.t.Fatalf("dump: %v", err)
		}
	}
	users, err := st.ListUsers(ctx, store.ListOptions{})
	check(err)
	d["users"] = users
	for _, u := range users {
		set, err := st.GetGroupSet(ctx, u.ID)
		check(err)
		d["set/"+u.ID] = set
		ids, err := st.ListIdentities(ctx, u.ID)
		check(err)
		d["ids/"+u.ID] = ids
	}
	orgs, err := st.ListOrganizations(ctx, store.ListOptions{})
	check(err)
	d["orgs"] = orgs
	for _, o := range orgs {
		ms, err := st.ListOrgMappings(ctx, o.ID, store.ListOptions{})
		check(err)
		d["om/"+o.ID] = ms
		mem, err := st.ListOrgMembers(ctx, o.ID)
		check(err)
		d["members/"+o.ID] = mem
		repos, err := st.ListRepositories(ctx, o.ID, store.ListOptions{})
		check(err)
		d["repos/"+o.ID] = repos
		for _, r := range repos {
			rms, err := st.ListRepoMappings(ctx, r.ID, store.ListOptions{})
			check(err)
			d["rm/"+r.ID] = rms
			cs, err := st.ListRepoContributors(ctx, r.ID)
			check(err)
			d["contrib/"+r.ID] = cs
		}
	}
	audit, err := st.ListAudit(ctx, 0, 0)
	check(err)
	d["audit"] = audit
	b, err := json.MarshalIndent(d, "", " ")
	check(err)
	return string(b)
}

func snapshot(groups []string, orgs map[string]groupgate.OrgRole, repos map[string]groupgate.RepoRole) groupgate.Memberships {
	if groups == nil {
		groups = []string{}
	}
	m := groupgate.Memberships{Groups: groups, OrgRoles: map[string]groupgate.OrgRole{}, RepoRoles: map[string]groupgate.RepoRole{}}
	maps.Copy(m.OrgRoles, orgs)
	maps.Copy(m.RepoRoles, repos)
	return m
}
