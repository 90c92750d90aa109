package sync_test

import (
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// The attack: an org ADMIN who held the role only through an IdP group gave
// himself a manual ADMIN role and kept it after the IdP removed him from
// the group. Nobody creates or raises a manual role on their own account;
// lowering or keeping one is allowed (it takes nothing from the IdP).
func TestNobodyCreatesOrRaisesTheirOwnManualRole(t *testing.T) {
	type op struct {
		name  string
		org   bool
		from  string // existing manual role, "" for none
		to    string
		actor string // "self" or another user
		want  groupgate.ErrorCode
	}
	tests := []op{
		{"creating an organization role on oneself is forbidden", true, "", "ADMIN", "self", groupgate.Forbidden},
		{"raising one's own organization role is forbidden", true, "WRITER", "ADMIN", "self", groupgate.Forbidden},
		{"lowering one's own organization role is allowed", true, "ADMIN", "MEMBER", "self", ""},
		{"setting one's own organization role to what it is is allowed", true, "WRITER", "WRITER", "self", ""},
		{"another admin may give the organization role", true, "", "ADMIN", "other", ""},
		{"creating a repository role on oneself is forbidden", false, "", "ADMIN", "self", groupgate.Forbidden},
		{"raising one's own repository role is forbidden", false, "READ", "WRITE", "self", groupgate.Forbidden},
		{"lowering one's own repository role is allowed", false, "ADMIN", "READ", "self", ""},
		{"another admin may give the repository role", false, "READ", "ADMIN", "other", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.org("acme")
			r := e.repo(o, "api")
			dave := e.user("dave", "eng-admins")
			other := e.user("root")
			_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng-admins", groupgate.OrgRoleAdmin)
			e.must(err)
			set := func(actor, role string) error {
				if tt.org {
					_, err := e.s.SetOrgMember(e.ctx, actor, o.ID, dave.ID, groupgate.OrgRole(role))
					return err
				}
				_, err := e.s.SetRepoContributor(e.ctx, actor, r.ID, dave.ID, groupgate.RepoRole(role))
				return err
			}
			if tt.from != "" {
				e.must(set(sync.UserActor(other.ID), tt.from))
			}
			actor := sync.UserActor(other.ID)
			if tt.actor == "self" {
				actor = sync.UserActor(dave.ID)
			}
			before := e.dump()
			err = set(actor, tt.to)
			if tt.want == "" {
				e.must(err)
				return
			}
			if !groupgate.IsCode(err, tt.want) {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if after := e.dump(); after != before {
				t.Errorf("a refused change wrote to the store")
			}
		})
	}
}

func TestExplainFlagsManualGrantsOfUsersInNoMappedGroup(t *testing.T) {
	e := newEnv(t)
	o := e.org("acme")
	r := e.repo(o, "api")
	_, err := e.s.AddOrgMapping(e.ctx, "t", o.ID, "eng", "")
	e.must(err)
	_, err = e.s.AddRepoMapping(e.ctx, "t", r.ID, "eng", "")
	e.must(err)
	backed, loose := e.user("alice", "eng"), e.user("bob", "sales")
	for _, u := range []groupgate.User{backed, loose} {
		_, err = e.s.SetOrgMember(e.ctx, "t", o.ID, u.ID, groupgate.OrgRoleWriter)
		e.must(err)
		_, err = e.s.SetRepoContributor(e.ctx, "t", r.ID, u.ID, groupgate.RepoRoleWrite)
		e.must(err)
	}
	for _, tc := range []struct {
		user groupgate.User
		want bool
	}{{backed, false}, {loose, true}} {
		org, err := e.s.Explain(e.ctx, tc.user.ID, sync.ResourceOrg, o.ID)
		e.must(err)
		repo, err := e.s.Explain(e.ctx, tc.user.ID, sync.ResourceRepo, r.ID)
		e.must(err)
		if len(org.OrgSources) == 0 || org.OrgSources[0].Kind != sync.SourceManual || org.OrgSources[0].NoMappedGroup != tc.want {
			t.Errorf("%s: organization sources %+v, want the manual one flagged %v", tc.user.UserName, org.OrgSources, tc.want)
		}
		if len(repo.RepoSources) == 0 || repo.RepoSources[0].Kind != sync.SourceManual || repo.RepoSources[0].NoMappedGroup != tc.want {
			t.Errorf("%s: repository sources %+v, want the manual one flagged %v", tc.user.UserName, repo.RepoSources, tc.want)
		}
		for _, s := range org.OrgSources[1:] {
			if s.NoMappedGroup {
				t.Errorf("a group source is flagged: %+v", s)
			}
		}
	}
}
