package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// TestLoginOnEachStore runs the login's writes and its resolution on both
// backends: on PostgreSQL they are batched statements (the group set's
// savepoint, lock and read in one round trip, its writes and release in
// another; the resolution's reads in one batch), so each case below is an
// edge of one of those batches.
func TestLoginOnEachStore(t *testing.T) {
	ctx := context.Background()
	backends := []struct {
		name string
		env  func(t *testing.T, opts ...sync.Option) *env
	}{
		{"sqlite", func(t *testing.T, opts ...sync.Option) *env { return newEnv(t, opts...) }},
		{"postgres", func(t *testing.T, opts ...sync.Option) *env {
			st := newPostgresStore(t)
			rec := newRecorder()
			opts = append([]sync.Option{sync.WithPushRetry(3, time.Millisecond)}, opts...)
			return &env{t: t, ctx: ctx, st: st, rec: rec, s: sync.New(st, rec, opts...)}
		}},
	}
	ident := func(groups ...string) groupgate.Identity {
		return groupgate.Identity{Provider: "okta", Subject: "alice-sub", Username: "alice", Email: "alice@example.com", EmailVerified: true,
			DisplayName: "Alice", Groups: groups, GroupsPresent: true}
	}
	// loginAudit returns the groups of the last login event's before and
	// after views (nil before for a new user).
	loginAudit := func(e *env) (before, after []string, hasBefore bool) {
		e.t.Helper()
		evs, err := e.st.SearchAudit(ctx, store.AuditFilter{Action: sync.ActionUserLogin}, 1)
		e.must(err)
		if len(evs) != 1 {
			e.t.Fatalf("%d login audit events, want 1", len(evs))
		}
		var b, a struct {
			Groups []string `json:"groups"`
		}
		if evs[0].Before != nil {
			e.must(json.Unmarshal(evs[0].Before, &b))
		}
		e.must(json.Unmarshal(evs[0].After, &a))
		return b.Groups, a.Groups, evs[0].Before != nil
	}
	pendingOutbox := func(e *env) int {
		e.t.Helper()
		es, err := e.st.(store.OutboxStore).ListOutbox(ctx, 0)
		e.must(err)
		return len(es)
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Run("a new user is created, linked, given the login's groups and their roles", func(t *testing.T) {
				e := be.env(t)
				acme := e.org("acme")
				e.orgMapping(acme, "eng", groupgate.OrgRoleAdmin)
				u, m, err := e.s.Login(ctx, ident("eng", "unmapped"))
				e.must(err)
				if got := e.identities(u.ID); !slices.Equal(got, []string{"okta/alice-sub"}) {
					t.Fatalf("identities %v", got)
				}
				if !slices.Equal(m.Groups, []string{"eng", "unmapped"}) || m.OrgRoles["acme"] != groupgate.OrgRoleAdmin {
					t.Fatalf("memberships %+v, want eng and unmapped, ADMIN on acme", m)
				}
				if _, after, hasBefore := loginAudit(e); hasBefore || !slices.Equal(after, []string{"eng", "unmapped"}) {
					t.Fatalf("audit before present %v, after groups %v", hasBefore, after)
				}
				if n := pendingOutbox(e); n != 0 {
					t.Fatalf("%d outbox entries left after the push succeeded", n)
				}
			})

			t.Run("a returning user's login groups are replaced, SCIM ones kept, and the roles follow", func(t *testing.T) {
				e := be.env(t)
				acme, beta := e.org("acme"), e.org("beta")
				e.orgMapping(acme, "eng", groupgate.OrgRoleWriter)
				e.orgMapping(beta, "ops", "")
				e.orgMapping(beta, "sre", groupgate.OrgRoleAdmin)
				u, _, err := e.s.Login(ctx, ident("eng", "ops"))
				e.must(err)
				_, err = e.s.SetUserGroups(ctx, "scim:t", u.ID, groupgate.SourceSCIM, []string{"ops", "scim-only"})
				e.must(err)
				first := e.groupSet(u.ID)

				_, m, err := e.s.Login(ctx, ident("ops", "sre"))
				e.must(err)
				if !slices.Equal(m.Groups, []string{"ops", "scim-only", "sre"}) {
					t.Fatalf("groups %v, want ops, scim-only, sre", m.Groups)
				}
				if _, ok := m.OrgRoles["acme"]; ok || m.OrgRoles["beta"] != groupgate.OrgRoleAdmin {
					t.Fatalf("org roles %v, want none on acme (eng left), ADMIN on beta", m.OrgRoles)
				}
				set := e.groupSet(u.ID)
				want := map[string]bool{"ops/login": true, "ops/scim": true, "scim-only/scim": true, "sre/login": true}
				if len(set) != len(want) {
					t.Fatalf("set %+v, want %v", set, want)
				}
				for _, ms := range set {
					if !want[ms.Group+"/"+string(ms.Source)] {
						t.Fatalf("set %+v, want %v", set, want)
					}
					// A membership that stayed keeps when it was added.
					for _, old := range first {
						if old.Group == ms.Group && old.Source == ms.Source && !old.AddedAt.Equal(ms.AddedAt) {
							t.Errorf("%s/%s added at %v, was %v", ms.Group, ms.Source, ms.AddedAt, old.AddedAt)
						}
					}
				}
				before, after, _ := loginAudit(e)
				if !slices.Equal(before, []string{"eng", "ops", "scim-only"}) || !slices.Equal(after, []string{"ops", "scim-only", "sre"}) {
					t.Fatalf("audit groups before %v after %v", before, after)
				}
				if n := pendingOutbox(e); n != 0 {
					t.Fatalf("%d outbox entries left after the push succeeded", n)
				}
			})

			t.Run("a login with unchanged groups writes no membership and no profile", func(t *testing.T) {
				e := be.env(t)
				u, _, err := e.s.Login(ctx, ident("eng", "ops"))
				e.must(err)
				set, user := e.groupSet(u.ID), e.get(u.ID)
				_, m, err := e.s.Login(ctx, ident("ops", "eng"))
				e.must(err)
				if !slices.Equal(m.Groups, []string{"eng", "ops"}) {
					t.Fatalf("groups %v", m.Groups)
				}
				if got := e.groupSet(u.ID); !slices.EqualFunc(got, set, func(a, b groupgate.Membership) bool {
					return a.Group == b.Group && a.Source == b.Source && a.AddedAt.Equal(b.AddedAt)
				}) {
					t.Fatalf("set %+v, was %+v", got, set)
				}
				if got := e.get(u.ID); got.Version != user.Version {
					t.Fatalf("user version %d, was %d: the profile was rewritten", got.Version, user.Version)
				}
				before, after, _ := loginAudit(e)
				if !slices.Equal(before, after) || len(after) != 2 {
					t.Fatalf("audit groups before %v after %v", before, after)
				}
			})

			t.Run("a deactivated user is refused and nothing changes", func(t *testing.T) {
				e := be.env(t)
				u, _, err := e.s.Login(ctx, ident("eng"))
				e.must(err)
				_, err = e.s.DeactivateUser(ctx, "scim:t", u.ID)
				e.must(err)
				before := e.dump()
				_, _, err = e.s.Login(ctx, ident("ops"))
				if !groupgate.IsCode(err, groupgate.Forbidden) || !errors.Is(err, sync.ErrDeactivated) {
					t.Fatalf("login error %v, want Forbidden (deactivated)", err)
				}
				if after := e.dump(); after != before {
					t.Fatalf("a refused login changed the store:\nbefore %s\nafter  %s", before, after)
				}
			})

			t.Run("an organization's repository base role reaches the login through its mappings", func(t *testing.T) {
				e := be.env(t)
				acme, beta := e.org("acme"), e.org("beta")
				e.repo(acme, "api")
				e.repo(beta, "web")
				e.orgMapping(acme, "eng", "")
				e.must(e.st.SetOrganizationRepositoryBaseRole(ctx, acme.ID, groupgate.RepoRoleWrite))
				e.must(e.st.SetOrganizationRepositoryBaseRole(ctx, beta.ID, groupgate.RepoRoleAdmin))
				_, m, err := e.s.Login(ctx, ident("eng"))
				e.must(err)
				if len(m.RepoRoles) != 1 || m.RepoRoles["acme/api"] != groupgate.RepoRoleWrite {
					t.Fatalf("repository roles %v, want WRITE on acme/api only (beta's base role is not alice's)", m.RepoRoles)
				}
			})

			t.Run("a group the filter hides grants nothing even when stored", func(t *testing.T) {
				e := be.env(t, sync.WithGroupFilter(func(g string) bool { return g != "hidden" }))
				acme := e.org("acme")
				e.orgMapping(acme, "hidden", groupgate.OrgRoleAdmin)
				e.orgMapping(acme, "eng", "")
				u, _, err := e.s.Login(ctx, ident("eng"))
				e.must(err)
				// Stored before a filter existed: the store holds it.
				_, err = e.st.UpdateGroupSet(ctx, u.ID, func(s groupgate.GroupSet) (groupgate.GroupSet, error) {
					return append(s, groupgate.Membership{Group: "hidden", Source: groupgate.SourceSCIM}), nil
				})
				e.must(err)
				_, m, err := e.s.Login(ctx, ident("eng"))
				e.must(err)
				if !slices.Equal(m.Groups, []string{"eng"}) || m.OrgRoles["acme"] != groupgate.OrgRoleMember {
					t.Fatalf("memberships %+v, want eng only and MEMBER on acme", m)
				}
			})
		})
	}
}

func (e *env) groupSet(userID string) groupgate.GroupSet {
	e.t.Helper()
	set, err := e.st.GetGroupSet(e.ctx, userID)
	e.must(err)
	return set
}

// orgMapping maps group on o in the store directly, as a mapping made
// before a group filter was configured would be.
func (e *env) orgMapping(o groupgate.Organization, group string, role groupgate.OrgRole) {
	e.t.Helper()
	_, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: o.ID, Group: group, RoleOverride: role})
	e.must(err)
}
