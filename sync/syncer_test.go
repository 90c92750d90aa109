package sync_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

type (
	orgRoles  = map[string]groupgate.OrgRole
	repoRoles = map[string]groupgate.RepoRole
)

// TestEveryOperationPushesExactlyTheAffectedSnapshots walks through a
// sequence of changes; after each it checks that exactly the affected users
// got a snapshot, that each snapshot is exactly right, and that one audit
// event with the right action was written.
func TestEveryOperationPushesExactlyTheAffectedSnapshots(t *testing.T) {
	e := newEnv(t)
	acme, beta := e.org("acme"), e.org("beta")
	api := e.repo(acme, "api")
	users := map[string]groupgate.User{
		"alice": e.user("alice", "eng", "ops"),
		"bob":   e.user("bob", "eng"),
		"carol": e.user("carol"),
		"dave":  e.user("dave", "ops"),
	}
	A, B := groupgate.OrgRoleAdmin, groupgate.OrgRoleWriter

	steps := []struct {
		name        string
		do          func() error
		action      string
		wantPushed  map[string]groupgate.Memberships
		wantDeleted []string
	}{
		{
			name:   "adding an org mapping reaches every member of the group",
			do:     func() error { _, err := e.s.AddOrgMapping(e.ctx, "admin", acme.ID, "eng", ""); return err },
			action: sync.ActionOrgMappingAdd,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"acme": groupgate.OrgRoleMember}, nil),
				"bob":   snapshot([]string{"eng"}, orgRoles{"acme": groupgate.OrgRoleMember}, nil),
			},
		},
		{
			name: "adding a repo mapping reaches every member of the group",
			do: func() error {
				_, err := e.s.AddRepoMapping(e.ctx, "admin", api.ID, "ops", groupgate.RepoRoleWrite)
				return err
			},
			action: sync.ActionRepoMappingAdd,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"acme": groupgate.OrgRoleMember}, repoRoles{"acme/api": groupgate.RepoRoleWrite}),
				"dave":  snapshot([]string{"ops"}, nil, repoRoles{"acme/api": groupgate.RepoRoleWrite}),
			},
		},
		{
			name:   "updating an org mapping changes the role at once",
			do:     func() error { _, err := e.s.UpdateOrgMapping(e.ctx, "admin", acme.ID, "eng", A); return err },
			action: sync.ActionOrgMappingUpdate,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"acme": A}, repoRoles{"acme/api": groupgate.RepoRoleWrite}),
				"bob":   snapshot([]string{"eng"}, orgRoles{"acme": A}, nil),
			},
		},
		{
			name: "a manual org role reaches only its user",
			do: func() error {
				_, err := e.s.SetOrgMember(e.ctx, "admin", beta.ID, users["carol"].ID, groupgate.OrgRoleOwner)
				return err
			},
			action: sync.ActionOrgMemberSet,
			wantPushed: map[string]groupgate.Memberships{
				"carol": snapshot(nil, orgRoles{"beta": groupgate.OrgRoleOwner}, nil),
			},
		},
		{
			name: "a manual repo role reaches only its user",
			do: func() error {
				_, err := e.s.SetRepoContributor(e.ctx, "admin", api.ID, users["bob"].ID, groupgate.RepoRoleLimitedWrite)
				return err
			},
			action: sync.ActionRepoContributorSet,
			wantPushed: map[string]groupgate.Memberships{
				"bob": snapshot([]string{"eng"}, orgRoles{"acme": A}, repoRoles{"acme/api": groupgate.RepoRoleLimitedWrite}),
			},
		},
		{
			name: "a new group set reaches its user",
			do: func() error {
				_, err := e.s.SetUserGroups(e.ctx, "scim", users["dave"].ID, groupgate.SourceSCIM, []string{"ops", "eng"})
				return err
			},
			action: sync.ActionUserGroupsSet,
			wantPushed: map[string]groupgate.Memberships{
				"dave": snapshot([]string{"eng", "ops"}, orgRoles{"acme": A}, repoRoles{"acme/api": groupgate.RepoRoleWrite}),
			},
		},
		{
			name:   "removing a repo mapping takes the role away from every member",
			do:     func() error { _, err := e.s.RemoveRepoMapping(e.ctx, "admin", api.ID, "ops"); return err },
			action: sync.ActionRepoMappingRemove,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"acme": A}, nil),
				"dave":  snapshot([]string{"eng", "ops"}, orgRoles{"acme": A}, nil),
			},
		},
		{
			name:   "removing a manual org role reaches only its user",
			do:     func() error { return e.s.RemoveOrgMember(e.ctx, "admin", beta.ID, users["carol"].ID) },
			action: sync.ActionOrgMemberRemove,
			wantPushed: map[string]groupgate.Memberships{
				"carol": snapshot(nil, nil, nil),
			},
		},
		{
			name:   "deleting a repository reaches its manual role holders",
			do:     func() error { return e.s.DeleteRepository(e.ctx, "admin", api.ID) },
			action: sync.ActionRepositoryDelete,
			wantPushed: map[string]groupgate.Memberships{
				"bob": snapshot([]string{"eng"}, orgRoles{"acme": A}, nil),
			},
		},
		{
			name:   "a WRITER mapping on a second org adds to the first",
			do:     func() error { _, err := e.s.AddOrgMapping(e.ctx, "admin", beta.ID, "ops", B); return err },
			action: sync.ActionOrgMappingAdd,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"acme": A, "beta": B}, nil),
				"dave":  snapshot([]string{"eng", "ops"}, orgRoles{"acme": A, "beta": B}, nil),
			},
		},
		{
			name:   "deleting an organization reaches the members of its mapped groups",
			do:     func() error { return e.s.DeleteOrganization(e.ctx, "admin", acme.ID) },
			action: sync.ActionOrganizationDelete,
			wantPushed: map[string]groupgate.Memberships{
				"alice": snapshot([]string{"eng", "ops"}, orgRoles{"beta": B}, nil),
				"bob":   snapshot([]string{"eng"}, nil, nil),
				"dave":  snapshot([]string{"eng", "ops"}, orgRoles{"beta": B}, nil),
			},
		},
		{
			name:        "deactivating a user ends their sessions",
			do:          func() error { _, err := e.s.DeactivateUser(e.ctx, "scim", users["bob"].ID); return err },
			action:      sync.ActionUserDeactivate,
			wantPushed:  map[string]groupgate.Memberships{},
			wantDeleted: []string{"bob"},
		},
	}
	byID := map[string]string{}
	for name, u := range users {
		byID[u.ID] = name
	}
	var lastAudit int64
	for _, step := range steps {
		if t.Failed() {
			return // later steps build on earlier ones
		}
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(); err != nil {
				t.Fatalf("operation: %v", err)
			}
			pushed, deleted := e.rec.take()
			got := map[string]groupgate.Memberships{}
			for id, m := range pushed {
				got[byID[id]] = m
			}
			if !reflect.DeepEqual(got, step.wantPushed) {
				t.Errorf("pushed snapshots:\n got %+v\nwant %+v", got, step.wantPushed)
			}
			var gotDeleted []string
			for _, id := range deleted {
				gotDeleted = append(gotDeleted, byID[id])
			}
			if !slices.Equal(gotDeleted, step.wantDeleted) {
				t.Errorf("sessions deleted for %v, want %v", gotDeleted, step.wantDeleted)
			}
			evs, err := e.st.ListAudit(e.ctx, lastAudit, 0)
			e.must(err)
			if len(evs) != 1 || evs[0].Action != step.action {
				t.Fatalf("audit events = %+v, want one %s", evs, step.action)
			}
			lastAudit = evs[0].ID
		})
	}
}

func TestAnAuditEventRecordsActorTargetBeforeAndAfter(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	_, err := e.s.AddOrgMapping(e.ctx, "alice", o.ID, "eng", "")
	e.must(err)
	m, err := e.s.UpdateOrgMapping(e.ctx, "bob", o.ID, "eng", groupgate.OrgRoleMachine)
	e.must(err)
	evs, err := e.st.ListAudit(e.ctx, 0, 0)
	e.must(err)
	if len(evs) != 2 {
		t.Fatalf("%d audit events, want 2", len(evs))
	}
	ev := evs[1]
	if ev.Actor != "bob" || ev.Action != "org_mapping.update" || ev.TargetType != "organization" || ev.TargetID != o.ID || !ev.At.Equal(epoch) {
		t.Errorf("event = %+v", ev)
	}
	var before, after map[string]any
	e.must(json.Unmarshal(ev.Before, &before))
	e.must(json.Unmarshal(ev.After, &after))
	if before["role"] != "MEMBER" || before["role_override"] != "" || after["role"] != "MACHINE" || after["id"] != m.ID || after["group"] != "eng" {
		t.Errorf("before = %v, after = %v", before, after)
	}
	if len(evs[0].Before) != 0 {
		t.Errorf("an add has no before, got %s", evs[0].Before)
	}
}

// TestRefusedOperationsChangeNothing runs every refused operation against
// the same store and compares a full dump before and after each.
func TestRefusedOperationsChangeNothing(t *testing.T) {
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return !strings.HasPrefix(g, "ext-") }))
	o := e.org("acme")
	r := e.repo(o, "api")
	u := e.user("alice", "eng")
	gone := e.user("gone", "eng")
	_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", "")
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", "")
	e.must(err)
	_, err = e.s.DeactivateUser(e.ctx, "t", gone.ID)
	e.must(err)
	e.must(e.st.LinkIdentity(e.ctx, gone.ID, "okta", "gone-sub"))
	e.rec.take()

	tests := []struct {
		name    string
		do      func() error
		code    groupgate.ErrorCode
		message string
	}{
		{"an org mapping of a filtered group is a failed precondition",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "ext-vendors", ""); return err },
			groupgate.FailedPrecondition, "excluded by the configured group filter"},
		{"a repo mapping of a filtered group is a failed precondition",
			func() error { _, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "ext-vendors", ""); return err },
			groupgate.FailedPrecondition, "excluded by the configured group filter"},
		{"a repo mapping with OWNER is refused because the owner is the parent organization",
			func() error {
				_, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "ops", groupgate.RepoRoleOwner)
				return err
			},
			groupgate.Invalid, "parent organization"},
		{"updating a repo mapping to OWNER is refused",
			func() error {
				_, err := e.s.UpdateRepoMapping(e.ctx, "t", r.ID, "eng", groupgate.RepoRoleOwner)
				return err
			},
			groupgate.Invalid, "parent organization"},
		{"an org mapping with OWNER is refused",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "ops", groupgate.OrgRoleOwner); return err },
			groupgate.Invalid, "OWNER"},
		{"an org mapping with an unknown role is refused",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "ops", "BOSS"); return err },
			groupgate.Invalid, "unknown organization role"},
		{"an empty group name is refused",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, " ", ""); return err },
			groupgate.Invalid, "group name required"},
		{"mapping a group again with another override is a conflict",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", groupgate.OrgRoleAdmin); return err },
			groupgate.Conflict, "already maps"},
		{"mapping a repo group again with another override is a conflict",
			func() error {
				_, err := e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", groupgate.RepoRoleWrite)
				return err
			},
			groupgate.Conflict, "already maps"},
		{"mapping onto an unknown organization is not found",
			func() error { _, err := e.s.AddOrgMapping(e.ctx, "t", "nope", "ops", ""); return err },
			groupgate.NotFound, ""},
		{"mapping onto an unknown repository is not found",
			func() error { _, err := e.s.AddRepoMapping(e.ctx, "t", "nope", "ops", ""); return err },
			groupgate.NotFound, ""},
		{"updating a missing mapping is not found",
			func() error { _, err := e.s.UpdateOrgMapping(e.ctx, "t", o.ID, "ops", ""); return err },
			groupgate.NotFound, ""},
		{"removing a mapping from an unknown organization is not found",
			func() error { _, err := e.s.RemoveOrgMapping(e.ctx, "t", "nope", "ops"); return err },
			groupgate.NotFound, ""},
		{"removing a mapping from an unknown repository is not found",
			func() error { _, err := e.s.RemoveRepoMapping(e.ctx, "t", "nope", "ops"); return err },
			groupgate.NotFound, ""},
		{"removing a malformed group name is refused",
			func() error { _, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, " "); return err },
			groupgate.Invalid, ""},
		{"a manual role for an unknown user is not found",
			func() error {
				_, err := e.s.SetOrgMember(e.ctx, "t", o.ID, "nobody", groupgate.OrgRoleAdmin)
				return err
			},
			groupgate.NotFound, ""},
		{"an empty manual role is refused",
			func() error { _, err := e.s.SetOrgMember(e.ctx, "t", o.ID, u.ID, ""); return err },
			groupgate.Invalid, "role required"},
		{"a manual repo OWNER is refused",
			func() error {
				_, err := e.s.SetRepoContributor(e.ctx, "t", r.ID, u.ID, groupgate.RepoRoleOwner)
				return err
			},
			groupgate.Invalid, "parent organization"},
		{"removing a missing manual org role is not found",
			func() error { return e.s.RemoveOrgMember(e.ctx, "t", o.ID, u.ID) },
			groupgate.NotFound, ""},
		{"removing a missing manual repo role is not found",
			func() error { return e.s.RemoveRepoContributor(e.ctx, "t", r.ID, u.ID) },
			groupgate.NotFound, ""},
		{"deleting an unknown organization is not found",
			func() error { return e.s.DeleteOrganization(e.ctx, "t", "nope") },
			groupgate.NotFound, ""},
		{"deleting an unknown repository is not found",
			func() error { return e.s.DeleteRepository(e.ctx, "t", "nope") },
			groupgate.NotFound, ""},
		{"a group set from an unknown source is refused",
			func() error { _, err := e.s.SetUserGroups(e.ctx, "t", u.ID, "ldap", []string{"x"}); return err },
			groupgate.Invalid, "unknown membership source"},
		{"a group set for an unknown user is not found",
			func() error {
				_, err := e.s.SetUserGroups(e.ctx, "t", "nobody", groupgate.SourceSCIM, []string{"x"})
				return err
			},
			groupgate.NotFound, ""},
		{"deactivating an unknown user is not found",
			func() error { _, err := e.s.DeactivateUser(e.ctx, "t", "nobody"); return err },
			groupgate.NotFound, ""},
		{"a deactivated user's login is forbidden",
			func() error {
				_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "gone-sub", Email: "new@example.com", Groups: []string{"ops"}})
				return err
			},
			groupgate.Forbidden, "account deactivated"},
		{"a deactivated user found by verified email is forbidden",
			func() error {
				_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "entra", Subject: "x", Email: "GONE@example.com", EmailVerified: true})
				return err
			},
			groupgate.Forbidden, "account deactivated"},
		{"a login without subject is refused",
			func() error { _, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta"}); return err },
			groupgate.Invalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dump()
			err := tt.do()
			if !groupgate.IsCode(err, tt.code) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if !strings.Contains(groupgate.ErrorMessageOf(err), tt.message) {
				t.Errorf("message %q does not say %q", groupgate.ErrorMessageOf(err), tt.message)
			}
			if after := e.dump(); after != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
			if pushed, deleted := e.rec.take(); len(pushed) != 0 || len(deleted) != 0 {
				t.Errorf("sessions touched: %v %v", pushed, deleted)
			}
		})
	}
}

func TestRemovingAMappingOfAGroupTheFilterNowExcludesStillWorks(t *testing.T) {
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return g != "old" }))
	o := e.org("acme")
	_, err := e.st.AddOrgMapping(e.ctx, groupgate.OrgMapping{OrganizationID: o.ID, Group: "old"})
	e.must(err)
	if _, err := e.s.RemoveOrgMapping(e.ctx, "t", o.ID, "old"); err != nil {
		t.Fatalf("remove: %v", err)
	}
}

func TestAFailedPushIsRetriedAndNeverFailsTheCommittedChange(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		delivered bool
	}{
		{"two failures are retried until the snapshot lands", 2, true},
		{"a writer that keeps failing is given up on, the change stays", 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.org("acme")
			u := e.user("u", "eng")
			e.rec.failNext(tt.failures)
			if _, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", ""); err != nil {
				t.Fatalf("add: %v", err)
			}
			if _, err := e.st.GetOrgMapping(e.ctx, o.ID, "eng"); err != nil {
				t.Fatalf("the mapping was not kept: %v", err)
			}
			pushed, _ := e.rec.take()
			m, ok := pushed[u.ID]
			if ok != tt.delivered {
				t.Fatalf("delivered = %v, want %v", ok, tt.delivered)
			}
			if ok && m.OrgRoles["acme"] != groupgate.OrgRoleMember {
				t.Errorf("snapshot = %+v", m)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	type setup struct {
		e    *env
		acme groupgate.Organization
		beta groupgate.Organization
	}
	newSetup := func(t *testing.T) setup {
		e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return !strings.HasPrefix(g, "ext-") }))
		s := setup{e: e, acme: e.org("acme"), beta: e.org("beta")}
		_, err := e.s.AddOrgMapping(e.ctx, "t", s.acme.ID, "eng", groupgate.OrgRoleWriter)
		e.must(err)
		_, err = e.s.AddOrgMapping(e.ctx, "t", s.beta.ID, "scim-team", "")
		e.must(err)
		return s
	}
	members := func(set groupgate.GroupSet) []string {
		var out []string
		for _, m := range set {
			out = append(out, m.Group+"/"+string(m.Source))
		}
		return out
	}

	t.Run("a first login creates the user with the login groups and their roles", func(t *testing.T) {
		s := newSetup(t)
		u, m, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "sub-1", Username: "erin", Email: "erin@example.com", DisplayName: "Erin", Groups: []string{"eng", "ext-contractors", " eng "}})
		s.e.must(err)
		if u.UserName != "erin" || u.Email != "erin@example.com" || u.DisplayName != "Erin" || !u.Active {
			t.Errorf("user = %+v", u)
		}
		want := snapshot([]string{"eng"}, orgRoles{"acme": groupgate.OrgRoleWriter}, nil)
		if !reflect.DeepEqual(m, want) {
			t.Errorf("memberships = %+v, want %+v", m, want)
		}
		byID, err := s.e.st.GetUserByIdentity(s.e.ctx, "okta", "sub-1")
		s.e.must(err)
		if byID.ID != u.ID {
			t.Errorf("identity not linked to the new user")
		}
		evs, err := s.e.st.ListAudit(s.e.ctx, 0, 0)
		s.e.must(err)
		if last := evs[len(evs)-1]; last.Action != sync.ActionUserLogin || last.TargetID != u.ID {
			t.Errorf("last audit event = %+v", last)
		}
	})

	t.Run("the user name falls back to the email, then the subject", func(t *testing.T) {
		s := newSetup(t)
		u, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "sub-1", Email: "fay@example.com"})
		s.e.must(err)
		v, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "sub-2"})
		s.e.must(err)
		if u.UserName != "fay@example.com" || v.UserName != "sub-2" {
			t.Errorf("user names = %q, %q", u.UserName, v.UserName)
		}
	})

	t.Run("login keeps scim memberships and replaces login ones", func(t *testing.T) {
		s := newSetup(t)
		u := s.e.user("gus", "scim-team")
		_, err := s.e.s.SetUserGroups(s.e.ctx, "t", u.ID, groupgate.SourceLogin, []string{"old-group", "eng"})
		s.e.must(err)
		_, m, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "gus-sub", Username: "gus", Email: "gus@example.com", EmailVerified: true, Groups: []string{"eng", "new-group"}})
		s.e.must(err)
		set, err := s.e.st.GetGroupSet(s.e.ctx, u.ID)
		s.e.must(err)
		if got, want := members(set), []string{"eng/login", "new-group/login", "scim-team/scim"}; !slices.Equal(got, want) {
			t.Errorf("group set = %v, want %v", got, want)
		}
		want := snapshot([]string{"eng", "new-group", "scim-team"}, orgRoles{"acme": groupgate.OrgRoleWriter, "beta": groupgate.OrgRoleMember}, nil)
		if !reflect.DeepEqual(m, want) {
			t.Errorf("memberships = %+v, want %+v", m, want)
		}
	})

	t.Run("an OIDC login without groups drops group roles and keeps manual ones", func(t *testing.T) {
		s := newSetup(t)
		u, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "hal-sub", Username: "hal", Groups: []string{"eng"}})
		s.e.must(err)
		_, err = s.e.s.SetOrgMember(s.e.ctx, "t", s.beta.ID, u.ID, groupgate.OrgRoleAdmin)
		s.e.must(err)
		s.e.rec.take()
		_, m, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "hal-sub", Username: "hal"})
		s.e.must(err)
		want := snapshot(nil, orgRoles{"beta": groupgate.OrgRoleAdmin}, nil)
		if !reflect.DeepEqual(m, want) {
			t.Errorf("memberships = %+v, want %+v", m, want)
		}
		pushed, _ := s.e.rec.take()
		if !reflect.DeepEqual(pushed[u.ID], want) {
			t.Errorf("the user's other sessions got %+v, want %+v", pushed[u.ID], want)
		}
	})

	t.Run("an existing user is found by verified email, case-insensitively, and linked", func(t *testing.T) {
		s := newSetup(t)
		u := s.e.user("ivy")
		got, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "entra", Subject: "ivy-oid", Username: "ivy.other", Email: "IVY@example.com", EmailVerified: true, DisplayName: "Ivy"})
		s.e.must(err)
		if got.ID != u.ID || got.UserName != "ivy" || got.DisplayName != "Ivy" || got.Email != "ivy@example.com" {
			t.Errorf("user = %+v, want %s with the new display name and its stored email", got, u.ID)
		}
		ids, err := s.e.st.ListIdentities(s.e.ctx, u.ID)
		s.e.must(err)
		if len(ids) != 1 || ids[0].Provider != "entra" || ids[0].Subject != "ivy-oid" {
			t.Errorf("identities = %+v", ids)
		}
	})

	t.Run("an existing user is never found by user name", func(t *testing.T) {
		s := newSetup(t)
		s.e.user("jon")
		_, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "jon-sub", Username: "JON"})
		if !groupgate.IsCode(err, groupgate.Conflict) {
			t.Errorf("login with another account's user name: err = %v, want Conflict", err)
		}
	})

	t.Run("an email another user holds is not taken over: the login is refused", func(t *testing.T) {
		s := newSetup(t)
		kim := s.e.user("kim")
		lee := s.e.user("lee")
		s.e.must(s.e.st.LinkIdentity(s.e.ctx, kim.ID, "okta", "kim-sub"))
		_, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "kim-sub", Email: lee.Email})
		if !groupgate.IsCode(err, groupgate.Conflict) {
			t.Fatalf("err = %v, want Conflict", err)
		}
		got, err := s.e.st.GetUser(s.e.ctx, kim.ID)
		s.e.must(err)
		if got.Email != kim.Email {
			t.Errorf("kim's email = %q, want her own", got.Email)
		}
	})

	t.Run("an unchanged profile is not rewritten", func(t *testing.T) {
		s := newSetup(t)
		u, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "m-sub", Username: "max", Email: "max@example.com"})
		s.e.must(err)
		again, _, err := s.e.s.Login(s.e.ctx, groupgate.Identity{Provider: "okta", Subject: "m-sub", Username: "max", Email: "max@example.com"})
		s.e.must(err)
		if again.Version != u.Version {
			t.Errorf("version went from %d to %d", u.Version, again.Version)
		}
	})
}

func TestPreviewMappingChange(t *testing.T) {
	e := newEnv(t, sync.WithGroupFilter(func(g string) bool { return !strings.HasPrefix(g, "ext-") }))
	acme := e.org("acme")
	api := e.repo(acme, "api")
	alice := e.user("alice", "eng", "admins")
	bob := e.user("bob", "eng")
	carol := e.user("carol", "eng")
	dave := e.user("dave", "ops")
	for _, m := range []struct {
		group string
		role  groupgate.OrgRole
	}{{"eng", ""}, {"admins", groupgate.OrgRoleAdmin}} {
		_, err := e.s.AddOrgMapping(e.ctx, "t", acme.ID, m.group, m.role)
		e.must(err)
	}
	_, err := e.s.SetOrgMember(e.ctx, "t", acme.ID, carol.ID, groupgate.OrgRoleAdmin)
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "t", api.ID, "ops", groupgate.RepoRoleWrite)
	e.must(err)
	e.rec.take()

	tests := []struct {
		name      string
		kind      sync.ResourceKind
		resource  string
		group     string
		op        sync.MappingOp
		override  string
		want      []sync.RoleChange
		unchanged int
		code      groupgate.ErrorCode
	}{
		{
			name: "raising a mapping changes only those without a higher source",
			kind: sync.ResourceOrg, resource: acme.ID, group: "eng", op: sync.OpUpdate, override: "ORGANIZATION_ROLE_WRITER",
			want:      []sync.RoleChange{{UserID: bob.ID, Before: "MEMBER", After: "WRITER", Change: sync.ChangeChange}},
			unchanged: 2,
		},
		{
			name: "removing a mapping loses the role only for those without another source",
			kind: sync.ResourceOrg, resource: acme.ID, group: "eng", op: sync.OpRemove,
			want:      []sync.RoleChange{{UserID: bob.ID, Before: "MEMBER", After: "", Change: sync.ChangeLose}},
			unchanged: 2,
		},
		{
			name: "adding a mapping is a gain for members without a role",
			kind: sync.ResourceOrg, resource: acme.ID, group: "ops", op: sync.OpAdd, override: "ADMIN",
			want: []sync.RoleChange{{UserID: dave.ID, Before: "", After: "ADMIN", Change: sync.ChangeGain}},
		},
		{
			name: "adding a repository mapping with the default role grants READ",
			kind: sync.ResourceRepo, resource: api.ID, group: "eng", op: sync.OpAdd,
			want: sortChanges([]sync.RoleChange{
				{UserID: alice.ID, After: "READ", Change: sync.ChangeGain},
				{UserID: bob.ID, After: "READ", Change: sync.ChangeGain},
				{UserID: carol.ID, After: "READ", Change: sync.ChangeGain},
			}),
		},
		{
			name: "lowering a repository mapping is a change",
			kind: sync.ResourceRepo, resource: api.ID, group: "ops", op: sync.OpUpdate, override: "REPOSITORY_ROLE_UNSPECIFIED",
			want: []sync.RoleChange{{UserID: dave.ID, Before: "WRITE", After: "READ", Change: sync.ChangeChange}},
		},
		{name: "adding an existing mapping is a conflict", kind: sync.ResourceOrg, resource: acme.ID, group: "eng", op: sync.OpAdd, code: groupgate.Conflict},
		{name: "updating a missing mapping is not found", kind: sync.ResourceOrg, resource: acme.ID, group: "ops", op: sync.OpUpdate, code: groupgate.NotFound},
		{name: "a repository OWNER is refused", kind: sync.ResourceRepo, resource: api.ID, group: "eng", op: sync.OpAdd, override: "REPOSITORY_ROLE_OWNER", code: groupgate.Invalid},
		{name: "a filtered group is a failed precondition", kind: sync.ResourceOrg, resource: acme.ID, group: "ext-x", op: sync.OpAdd, code: groupgate.FailedPrecondition},
		{name: "an unknown organization is not found", kind: sync.ResourceOrg, resource: "nope", group: "eng", op: sync.OpAdd, code: groupgate.NotFound},
		{name: "an unknown operation is refused", kind: sync.ResourceOrg, resource: acme.ID, group: "eng", op: "rename", code: groupgate.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dump()
			p, err := e.s.PreviewMappingChange(e.ctx, tt.kind, tt.resource, tt.group, tt.op, tt.override)
			if tt.code != "" {
				if !groupgate.IsCode(err, tt.code) {
					t.Fatalf("err = %v, want %s", err, tt.code)
				}
			} else {
				if err != nil {
					t.Fatalf("preview: %v", err)
				}
				if !reflect.DeepEqual(sortChanges(p.Changes), tt.want) || p.Unchanged != tt.unchanged {
					t.Errorf("changes = %+v (unchanged %d), want %+v (unchanged %d)", p.Changes, p.Unchanged, tt.want, tt.unchanged)
				}
			}
			if after := e.dump(); after != before {
				t.Error("the preview wrote to the store")
			}
			if pushed, deleted := e.rec.take(); len(pushed) != 0 || len(deleted) != 0 {
				t.Errorf("the preview touched sessions: %v %v", pushed, deleted)
			}
		})
	}

	t.Run("the preview matches what the change then does", func(t *testing.T) {
		p, err := e.s.PreviewMappingChange(e.ctx, sync.ResourceOrg, acme.ID, "eng", sync.OpUpdate, "ADMIN")
		e.must(err)
		_, err = e.s.UpdateOrgMapping(e.ctx, "t", acme.ID, "eng", groupgate.OrgRoleAdmin)
		e.must(err)
		for _, c := range p.Changes {
			if got := string(e.resolve(c.UserID).OrgRole(acme.ID)); got != c.After {
				t.Errorf("user %s: role after the change = %q, preview said %q", c.UserID, got, c.After)
			}
		}
		if len(p.Changes) != 1 {
			t.Errorf("changes = %+v, want bob only", p.Changes)
		}
	})
}

func sortChanges(cs []sync.RoleChange) []sync.RoleChange {
	slices.SortFunc(cs, func(a, b sync.RoleChange) int { return strings.Compare(a.UserID, b.UserID) })
	return cs
}

func TestConcurrentChangesLeaveTheLatestSnapshotInTheSessions(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	u := e.user("u")
	for i := range 10 {
		_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, fmt.Sprintf("g%d", i), "")
		e.must(err)
	}
	var wg stdsync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, err := e.s.SetUserGroups(e.ctx, "t", u.ID, groupgate.SourceSCIM, []string{fmt.Sprintf("g%d", i)})
			if err != nil {
				t.Errorf("set groups: %v", err)
			}
		})
	}
	wg.Wait()
	pushed, _ := e.rec.take()
	if want := e.resolve(u.ID).Memberships(); !reflect.DeepEqual(pushed[u.ID], want) {
		t.Errorf("sessions hold %+v, the store says %+v", pushed[u.ID], want)
	}
}
