package sync_test

import (
	"context"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// identities lists "provider/subject" of every identity linked to userID.
func (e *env) identities(userID string) []string {
	e.t.Helper()
	ids, err := e.st.ListIdentities(e.ctx, userID)
	e.must(err)
	var out []string
	for _, id := range ids {
		out = append(out, id.Provider+"/"+id.Subject)
	}
	return out
}

func (e *env) get(userID string) groupgate.User {
	e.t.Helper()
	u, err := e.st.GetUser(e.ctx, userID)
	e.must(err)
	return u
}

// wantRefused checks a login was refused as a Conflict (a page in the
// browser) and that the store did not change.
func (e *env) wantRefused(before string, err error) {
	e.t.Helper()
	if !groupgate.IsCode(err, groupgate.Conflict) {
		e.t.Fatalf("login error = %v, want a Conflict", err)
	}
	if groupgate.ErrorMessageOf(err) == "" {
		e.t.Errorf("the refusal has no message to show")
	}
	if after := e.dump(); after != before {
		e.t.Errorf("a refused login changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

// The attack: a subject whose username claim was alice's user name (and
// whose own email was evil's) became alice and rewrote her email.
func TestLoginDoesNotLinkByUserName(t *testing.T) {
	e := newEnv(t)
	alice, err := e.st.CreateUser(e.ctx, groupgate.User{UserName: "alice@example.com", Email: "alice@example.com", Active: true})
	e.must(err)
	e.must(e.st.LinkIdentity(e.ctx, alice.ID, "okta", "alice-sub"))
	before := e.dump()
	_, _, err = e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "evil-sub", Username: "alice@example.com", Email: "evil@example.com", EmailVerified: true})
	e.wantRefused(before, err)
	if got := e.identities(alice.ID); !slices.Equal(got, []string{"okta/alice-sub"}) {
		t.Errorf("alice's identities = %v", got)
	}
	if got := e.get(alice.ID); got.Email != "alice@example.com" {
		t.Errorf("alice's email = %q", got.Email)
	}
}

func TestLoginLinksByEmailOnlyWhenVerified(t *testing.T) {
	tests := []struct {
		name     string
		trusted  []string // providers configured to vouch for emails
		verified bool     // the IdP's email_verified
		link     bool
	}{
		{"an unverified email from a provider that does not vouch is refused", nil, false, false},
		{"an email the IdP says is verified links", nil, true, true},
		{"an email from a provider configured to vouch links", []string{"entra"}, false, true},
		{"another provider's vouching does not count", []string{"okta"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sync.WithTrustedEmailProviders(tt.trusted...))
			ivy := e.user("ivy")
			before := e.dump()
			got, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "entra", Subject: "ivy-oid", Username: "ivy.other", Email: "IVY@example.com", EmailVerified: tt.verified})
			if !tt.link {
				e.wantRefused(before, err)
				return
			}
			e.must(err)
			if got.ID != ivy.ID {
				t.Fatalf("logged in as %s, want ivy %s", got.ID, ivy.ID)
			}
			if ids := e.identities(ivy.ID); !slices.Equal(ids, []string{"entra/ivy-oid"}) {
				t.Errorf("identities = %v", ids)
			}
			if got.VerifiedEmail != "IVY@example.com" {
				t.Errorf("VerifiedEmail = %q, want the verified login's address", got.VerifiedEmail)
			}
		})
	}
}

func TestLoginNeverLinksASecondSubjectOfTheSameProvider(t *testing.T) {
	e := newEnv(t)
	ivy := e.user("ivy")
	_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "ivy-1", Email: "ivy@example.com", EmailVerified: true})
	e.must(err)
	before := e.dump()
	_, _, err = e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "ivy-2", Email: "ivy@example.com", EmailVerified: true})
	e.wantRefused(before, err)
	// Another provider's subject with the verified address still links.
	got, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "entra", Subject: "ivy-oid", Email: "ivy@example.com", EmailVerified: true})
	e.must(err)
	if got.ID != ivy.ID {
		t.Fatalf("entra login went to %s, want ivy", got.ID)
	}
	if ids := e.identities(ivy.ID); !slices.Equal(ids, []string{"entra/ivy-oid", "okta/ivy-1"}) {
		t.Errorf("identities = %v", ids)
	}
}

// The Kelvin sign attack: "Kelly@…" spelled with U+212A matched kelly on
// PostgreSQL. Whatever the store folds, a login never links to or takes
// over an address that equals another account's only after folding.
func TestLoginRefusesAnEmailThatFoldsOntoAnotherAccount(t *testing.T) {
	for _, email := range []string{
		"\u212Aelly@example.com",                     // KELVIN SIGN
		"\uff4b\uff45\uff4c\uff4c\uff59@example.com", // fullwidth kelly
	} {
		for _, verified := range []bool{false, true} {
			t.Run(email, func(t *testing.T) {
				e := newEnv(t)
				kelly := e.user("kelly")
				before := e.dump()
				_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "mallory", Username: "mallory", Email: email, EmailVerified: verified})
				e.wantRefused(before, err)
				if ids := e.identities(kelly.ID); len(ids) != 0 {
					t.Errorf("kelly got identities %v", ids)
				}
			})
		}
	}
	t.Run("dotless ı is another address and gets its own account", func(t *testing.T) {
		e := newEnv(t)
		ivy := e.user("ivy")
		got, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "x", Username: "\u0131vy", Email: "\u0131vy@example.com", EmailVerified: true})
		e.must(err)
		if got.ID == ivy.ID {
			t.Fatal("\u0131vy@ was linked to ivy@")
		}
	})
}

func TestLoginRefusesAVerifiedEmailSeveralAccountsShare(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b"} {
		_, err := e.st.CreateUser(e.ctx, groupgate.User{UserName: n, Email: "shared@example.com", Active: true})
		e.must(err)
	}
	before := e.dump()
	_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "s", Username: "c", Email: "Shared@example.com", EmailVerified: true})
	e.wantRefused(before, err)
}

func TestOnlyALinkedSubjectChangesTheStoredEmail(t *testing.T) {
	t.Run("a new subject with an unverified email another account has is refused", func(t *testing.T) {
		e := newEnv(t)
		lee := e.user("lee")
		before := e.dump()
		_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "new", Username: "newbie", Email: lee.Email})
		e.wantRefused(before, err)
	})
	t.Run("a linked subject taking another account's email is refused and changes nothing", func(t *testing.T) {
		e := newEnv(t)
		kim := e.user("kim")
		lee := e.user("lee")
		e.must(e.st.LinkIdentity(e.ctx, kim.ID, "okta", "kim-sub"))
		for _, email := range []string{lee.Email, "LEE@example.com", "\u217Cee@example.com" /* SMALL ROMAN NUMERAL FIFTY */} {
			before := e.dump()
			_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "kim-sub", Email: email, EmailVerified: true})
			e.wantRefused(before, err)
		}
	})
	t.Run("a linked subject changes its own email to a free one", func(t *testing.T) {
		e := newEnv(t)
		kim := e.user("kim")
		e.must(e.st.LinkIdentity(e.ctx, kim.ID, "okta", "kim-sub"))
		got, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "kim-sub", Email: "kimberly@example.com"})
		e.must(err)
		if got.ID != kim.ID || got.Email != "kimberly@example.com" {
			t.Errorf("user = %+v, want kim with her new email", got)
		}
		if got.VerifiedEmail != "" {
			t.Errorf("VerifiedEmail = %q after an unverified login, want none", got.VerifiedEmail)
		}
	})
}

func TestVerifiedEmailIsSetOnlyByAVerifiedLogin(t *testing.T) {
	e := newEnv(t)
	u, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "bob-sub", Username: "bob", Email: "bob@example.com"})
	e.must(err)
	if u.VerifiedEmail != "" {
		t.Fatalf("an unverified login set VerifiedEmail %q", u.VerifiedEmail)
	}
	u, _, err = e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "bob-sub", Username: "bob", Email: "bob@example.com", EmailVerified: true})
	e.must(err)
	if u.VerifiedEmail != "bob@example.com" {
		t.Fatalf("VerifiedEmail = %q after a verified login", u.VerifiedEmail)
	}
	// SCIM may rewrite the email, never the verified one.
	u, err = e.s.SCIMUpdateUser(e.ctx, "scim", u.ID, func(u *groupgate.User) error {
		u.Email, u.VerifiedEmail = "root@example.com", "root@example.com"
		return nil
	})
	e.must(err)
	if u.Email != "root@example.com" || u.VerifiedEmail != "bob@example.com" {
		t.Fatalf("after a SCIM update: email %q, verified %q; want root@ and bob@", u.Email, u.VerifiedEmail)
	}
	// SCIM provisioning never brings one either.
	p, err := e.s.SCIMCreateUser(e.ctx, "scim", groupgate.User{UserName: "p", Email: "p@example.com", VerifiedEmail: "p@example.com", Active: true}, sync.MatchEmail)
	e.must(err)
	if p.VerifiedEmail != "" {
		t.Fatalf("SCIM provisioning set VerifiedEmail %q", p.VerifiedEmail)
	}
}

// A user provisioned over SCIM before their first login is adopted by
// that login when the email is verified, whatever the SCIM match key.
func TestSCIMProvisionedUserIsAdoptedAtFirstLogin(t *testing.T) {
	for _, match := range []sync.MatchKey{sync.MatchEmail, sync.MatchUserName} {
		t.Run(string(match), func(t *testing.T) {
			e := newEnv(t, sync.WithTrustedEmailProviders("entra"))
			nina, err := e.s.SCIMCreateUser(e.ctx, "scim", groupgate.User{UserName: "nina@corp.example", Email: "Nina@example.com", ExternalID: "ext-nina", Active: true}, match)
			e.must(err)
			_, err = e.s.SetUserGroups(e.ctx, "scim", nina.ID, groupgate.SourceSCIM, []string{"eng"})
			e.must(err)
			// Entra's SAML: no email_verified, the provider vouches.
			got, m, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "entra", Subject: "nina-nameid", Username: "nina@corp.example", Email: "nina@example.com", GroupsPresent: true})
			e.must(err)
			if got.ID != nina.ID || got.ExternalID != "ext-nina" {
				t.Fatalf("login went to %+v, want the SCIM user %s", got, nina.ID)
			}
			if !slices.Equal(m.Groups, []string{"eng"}) {
				t.Errorf("groups = %v, want the SCIM ones", m.Groups)
			}
			// An OIDC provider saying email_verified adopts too, on another
			// user.
			omar, err := e.s.SCIMCreateUser(e.ctx, "scim", groupgate.User{UserName: "omar", Email: "omar@example.com", Active: true}, match)
			e.must(err)
			got, _, err = e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "omar-sub", Username: "omar", Email: "omar@example.com", EmailVerified: true})
			e.must(err)
			if got.ID != omar.ID {
				t.Fatalf("OIDC login went to %s, want the SCIM user %s", got.ID, omar.ID)
			}
		})
	}
}

// The reported attack ran on PostgreSQL, whose lower() folds U+212A KELVIN
// SIGN onto k: the same login must be refused whatever the store.
func TestTheKelvinSignLoginIsRefusedOnEveryStore(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"SQLite", func(t *testing.T) store.Store { return newStore(t) }},
		{"PostgreSQL", newPostgresStore},
	} {
		t.Run(st.name, func(t *testing.T) {
			for _, verified := range []bool{false, true} {
				s := st.open(t)
				rec := newRecorder()
				e := &env{t: t, ctx: context.Background(), st: s, rec: rec, s: sync.New(s, rec, sync.WithNow(func() time.Time { return epoch }))}
				kelly := e.user("kelly")
				before := e.dump()
				_, _, err := e.s.Login(e.ctx, groupgate.Identity{Provider: "okta", Subject: "mallory", Username: "mallory", Email: "\u212Aelly@example.com", EmailVerified: verified})
				e.wantRefused(before, err)
				if ids := e.identities(kelly.ID); len(ids) != 0 {
					t.Errorf("verified=%v: kelly got identities %v", verified, ids)
				}
			}
		})
	}
}

// Concurrent first logins of one person (two tabs, two replicas) all end
// in the same new account: the refusals above must not mistake the account
// a racing login of the same subject just created for someone else's.
func TestConcurrentFirstLoginsOfOneSubjectShareOneAccount(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"SQLite", func(t *testing.T) store.Store { return newStore(t) }},
		{"PostgreSQL", newPostgresStore},
	} {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			sy := sync.New(s, newRecorder())
			const n = 6
			ids := make([]string, n)
			errs := make([]error, n)
			var wg stdsync.WaitGroup
			for i := range n {
				wg.Go(func() {
					u, _, err := sy.Login(context.Background(), groupgate.Identity{Provider: "okta", Subject: "pat-sub", Username: "pat", Email: "pat@example.com", EmailVerified: i%2 == 0})
					ids[i], errs[i] = u.ID, err
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("login %d: %v", i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Fatalf("logins ended in accounts %v", ids)
				}
			}
		})
	}
}
