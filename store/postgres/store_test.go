package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
)

// newStore opens a migrated store on a fresh database.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openOn(t, testenv.Postgres(t), true, opts...)
}

func openOn(t testing.TB, dsn string, migrate bool, opts ...Option) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if migrate {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return s
}

func appliedVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scan: %v", err)
		}
		vs = append(vs, v)
	}
	return vs
}

func wantVersions(t *testing.T, got []int) {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations has versions %v, want one row per migration (%d)", got, len(ms))
	}
	for i, m := range ms {
		if got[i] != m.version {
			t.Fatalf("schema_migrations has versions %v, want %d at %d", got, m.version, i)
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Run("applying twice is a no-op the second time", func(t *testing.T) {
		s := newStore(t)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		wantVersions(t, appliedVersions(t, s))
	})
	t.Run("five replicas migrating one database at once all succeed and apply each migration once", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		stores := make([]*Store, 5)
		for i := range stores {
			stores[i] = openOn(t, dsn, false)
		}
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range stores {
			wg.Go(func() {
				<-start
				errs[i] = s.Migrate(context.Background())
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: migrate: %v", i, err)
			}
		}
		wantVersions(t, appliedVersions(t, stores[0]))
		// The lock is released: another migrate does not wait forever.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stores[1].Migrate(ctx); err != nil {
			t.Fatalf("migrate after the race: %v", err)
		}
	})
	t.Run("a migrate that cannot get the lock gives up with its context", func(t *testing.T) {
		s := newStore(t)
		conn, err := s.pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLockKey) //nolint:errcheck
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err = s.Migrate(ctx)
		if !groupgate.IsCode(err, groupgate.Unavailable) {
			t.Fatalf("migrate while another holds the lock: got %v, want Unavailable", err)
		}
	})
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("open on a closed port: got %v, want Unavailable", err)
	}
}

func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	alice, err := s.CreateUser(ctx, groupgate.User{UserName: "Alice", Email: "Alice@Example.com", ExternalID: "ext-1"})
	if err != nil {
		t.Fatal(err)
	}
	org, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want groupgate.ErrorCode
	}{
		{"a user name differing only in case conflicts", func() error {
			_, err := s.CreateUser(ctx, groupgate.User{UserName: "ALICE"})
			return err
		}, groupgate.Conflict},
		{"two users without email do not conflict", func() error {
			if _, err := s.CreateUser(ctx, groupgate.User{UserName: "carol"}); err != nil {
				return err
			}
			_, err := s.CreateUser(ctx, groupgate.User{UserName: "dave"})
			return err
		}, ""},
		{"a user without name is invalid", func() error {
			_, err := s.CreateUser(ctx, groupgate.User{})
			return err
		}, groupgate.Invalid},
		{"malformed SCIM JSON is invalid", func() error {
			_, err := s.CreateUser(ctx, groupgate.User{UserName: "eve", SCIM: []byte("{")})
			return err
		}, groupgate.Invalid},
		{"a missing user is not found", func() error {
			_, err := s.GetUser(ctx, "nope")
			return err
		}, groupgate.NotFound},
		{"a repository of a missing organization is invalid", func() error {
			_, err := s.CreateRepository(ctx, groupgate.Repository{OrganizationID: "nope", Name: "api"})
			return err
		}, groupgate.Invalid},
		{"an organization name differing only in case conflicts", func() error {
			_, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "ACME"})
			return err
		}, groupgate.Conflict},
		{"a mapping on a missing organization is invalid", func() error {
			_, err := s.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: "nope", Group: "eng"})
			return err
		}, groupgate.Invalid},
		{"a manual role of a missing user is invalid", func() error {
			_, err := s.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: "nope", Role: groupgate.OrgRoleAdmin})
			return err
		}, groupgate.Invalid},
		{"an identity of a missing user is invalid", func() error {
			return s.LinkIdentity(ctx, "nope", "okta", "sub")
		}, groupgate.Invalid},
		{"an API token of a missing user is invalid", func() error {
			_, err := s.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: "nope", Hash: []byte{1}})
			return err
		}, groupgate.Invalid},
		{"an update renaming onto a taken name conflicts and changes nothing", func() error {
			bob, err := s.CreateUser(ctx, groupgate.User{UserName: "bobby"})
			if err != nil {
				return err
			}
			_, err = s.UpdateUser(ctx, bob.ID, func(u *groupgate.User) error { u.UserName = "alice"; return nil })
			if got, _ := s.GetUser(ctx, bob.ID); got.UserName != "bobby" || got.Version != 1 {
				return fmt.Errorf("after a refused update the user is %+v", got)
			}
			return err
		}, groupgate.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := groupgate.ErrorCodeOf(tt.do()); got != tt.want {
				t.Fatalf("got code %q, want %q", got, tt.want)
			}
		})
	}
	if got, err := s.ListUsersByEmail(ctx, "ALICE@example.com"); err != nil || len(got) != 1 || got[0].ID != alice.ID || got[0].Email != "Alice@Example.com" {
		t.Fatalf("lookup by email in another case: %+v, %v", got, err)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	s := newStore(t, WithNow(func() time.Time { return clock }))
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "Alice", Active: true, SCIM: []byte(`{"b": 1, "a": [true]}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 1, 9, 0, 0, 123456000, time.UTC)
	if !u.CreatedAt.Equal(want) || u.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt %v, want %v in UTC", u.CreatedAt, want)
	}
	got, err := s.GetUserByUserName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.UserName != "Alice" || !got.CreatedAt.Equal(u.CreatedAt) || got.CreatedAt.Location() != time.UTC ||
		string(got.SCIM) != `{"b": 1, "a": [true]}` || got.Version != 1 {
		t.Fatalf("read back %+v, created %+v", got, u)
	}
	clock = clock.Add(time.Minute)
	up, err := s.UpdateUser(ctx, u.ID, func(u *groupgate.User) error {
		u.ID, u.DisplayName, u.SCIM = "other", "Alice A.", nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != u.ID || up.Version != 2 || !up.UpdatedAt.Equal(want.Add(time.Minute)) || up.SCIM != nil {
		t.Fatalf("updated %+v", up)
	}
	closureErr := errors.New("closure says no")
	if _, err := s.UpdateUser(ctx, u.ID, func(u *groupgate.User) error { return closureErr }); err != closureErr {
		t.Fatalf("closure error came back as %v", err)
	}
	set, err := s.UpdateGroupSet(ctx, u.ID, func(groupgate.GroupSet) (groupgate.GroupSet, error) {
		return groupgate.GroupSet{{Group: "b", Source: groupgate.SourceSCIM}, {Group: "a", Source: groupgate.SourceLogin, AddedAt: clock.Add(-time.Hour)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.GetGroupSet(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 2 || read[0].Group != "a" || read[1].Group != "b" || !read[0].AddedAt.Equal(set[0].AddedAt) || !read[1].AddedAt.Equal(set[1].AddedAt) {
		t.Fatalf("stored %+v, read %+v", set, read)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if members, err := s.ListGroupMembers(ctx, "a"); err != nil || len(members) != 0 {
		t.Fatalf("members of a after the user's deletion: %v, %v", members, err)
	}
}

func TestUpdateGroupSetSerializesCallers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.UpdateGroupSet(ctx, u.ID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
				return append(cur, groupgate.Membership{Group: "g" + strconv.Itoa(i), Source: groupgate.SourceSCIM}), nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	set, err := s.GetGroupSet(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != n {
		t.Fatalf("the set has %d groups after %d concurrent additions", len(set), n)
	}
}

// Two transactions that each give the user a manual role (a foreign-key
// reference, which takes a KEY SHARE lock on the user) and then update the
// user's group set must both finish: a FOR UPDATE lock would deadlock here.
func TestGroupSetLockDoesNotDeadlockWithReferences(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var both sync.WaitGroup
	both.Add(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		org, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "org" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			errs[i] = s.InTx(ctx, func(tx store.Store) error {
				_, err := tx.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleAdmin})
				both.Done()
				if err != nil {
					return err
				}
				both.Wait()
				_, err = tx.UpdateGroupSet(ctx, u.ID, func(cur groupgate.GroupSet) (groupgate.GroupSet, error) {
					return append(cur, groupgate.Membership{Group: org.Name, Source: groupgate.SourceLogin}), nil
				})
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if set, err := s.GetGroupSet(ctx, u.ID); err != nil || len(set) != 2 {
		t.Fatalf("group set after both transactions: %+v, %v", set, err)
	}
}

func TestInTx(t *testing.T) {
	ctx := context.Background()
	t.Run("an error from fn undoes every write and comes back unchanged", func(t *testing.T) {
		s := newStore(t)
		fail := errors.New("fail")
		err := s.InTx(ctx, func(tx store.Store) error {
			if _, err := tx.CreateUser(ctx, groupgate.User{UserName: "alice"}); err != nil {
				return err
			}
			return tx.InTx(ctx, func(tx store.Store) error { return fail })
		})
		if err != fail {
			t.Fatalf("InTx returned %v", err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 0 {
			t.Fatalf("users after rollback: %d, %v", n, err)
		}
	})
	t.Run("a refused write inside the transaction leaves the rest usable", func(t *testing.T) {
		s := newStore(t)
		err := s.InTx(ctx, func(tx store.Store) error {
			if _, err := tx.CreateUser(ctx, groupgate.User{UserName: "alice"}); err != nil {
				return err
			}
			if _, err := tx.CreateUser(ctx, groupgate.User{UserName: "ALICE"}); !groupgate.IsCode(err, groupgate.Conflict) {
				return fmt.Errorf("duplicate inside tx: got %v, want Conflict", err)
			}
			_, err := tx.CreateUser(ctx, groupgate.User{UserName: "bob"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 2 {
			t.Fatalf("users after commit: %d, %v", n, err)
		}
	})
	t.Run("a panic in fn rolls back", func(t *testing.T) {
		s := newStore(t)
		func() {
			defer func() { _ = recover() }()
			_ = s.InTx(ctx, func(tx store.Store) error {
				if _, err := tx.CreateUser(ctx, groupgate.User{UserName: "alice"}); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if n, err := s.CountUsers(ctx); err != nil || n != 0 {
			t.Fatalf("users after panic: %d, %v", n, err)
		}
	})
}

func TestMappingsForManyGroups(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	org, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 2000)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%04d", i)
	}
	for _, g := range []string{groups[5], groups[1999], "unlisted"} {
		if _, err := s.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: g}); err != nil {
			t.Fatal(err)
		}
	}
	orgs, repos, err := s.MappingsForGroups(ctx, groups)
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 2 || orgs[0].Group != groups[5] || orgs[1].Group != groups[1999] || len(repos) != 0 {
		t.Fatalf("got %+v and %+v", orgs, repos)
	}
}

// Migration 0005: API tokens created through the API before tokens had to
// expire get an expiry; the operator's CLI tokens keep none.
func TestMigrationGivesAPICreatedTokensAnExpiry(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "alice", Email: "alice@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, err := s.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: []byte("api")})
	if err != nil {
		t.Fatal(err)
	}
	viaCLI, err := s.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: []byte("cli")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, groupgate.AuditEvent{Actor: "user:" + u.ID, Action: "token.create", TargetType: "token", TargetID: viaAPI.ID, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version = 5"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	got, err := s.ListTokens(ctx, groupgate.TokenAPI, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range got {
		switch tok.ID {
		case viaAPI.ID:
			if d := time.Until(tok.ExpiresAt); d < 29*24*time.Hour || d > 31*24*time.Hour {
				t.Errorf("API-created token expires %v, want in 30 days", tok.ExpiresAt)
			}
		case viaCLI.ID:
			if !tok.ExpiresAt.IsZero() {
				t.Errorf("CLI token got an expiry %v", tok.ExpiresAt)
			}
		}
	}
}

// TestMigrationBackfillsTheEmailKeyInGo: rows written before migration 0004
// get users.email_norm from groupgate.NormalizeEmail, not from lower().
func TestMigrationBackfillsTheEmailKeyInGo(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i, e := range []string{"Kelly@Example.com", "\u212Aim@example.com", "\u0131vy@example.com"} {
		if _, err := s.CreateUser(ctx, groupgate.User{UserName: fmt.Sprintf("u%d", i), Email: e}); err != nil {
			t.Fatal(err)
		}
	}
	operator, err := s.CreateUser(ctx, groupgate.User{UserName: "machine", Email: "machine@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	loggedIn, err := s.CreateUser(ctx, groupgate.User{UserName: "person", Email: "person@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LinkIdentity(ctx, loggedIn.ID, "okta", "p"); err != nil {
		t.Fatal(err)
	}
	provisioned, err := s.CreateUser(ctx, groupgate.User{UserName: "pushed", Email: "pushed@example.com", SCIM: []byte(`{"userName":"pushed"}`)})
	if err != nil {
		t.Fatal(err)
	}
	// The state before 0004: no key stored.
	if _, err := s.pool.Exec(ctx, `UPDATE users SET email_norm = '', verified_email = ''`); err != nil {
		t.Fatal(err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := afterMigration(4)(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for lookup, want := range map[string]string{
		"kelly@example.com":    "Kelly@Example.com",
		"kim@example.com":      "\u212Aim@example.com",
		"\u0131VY@example.com": "\u0131vy@example.com",
	} {
		got, err := s.ListUsersByEmail(ctx, lookup)
		if err != nil || len(got) != 1 || got[0].Email != want {
			t.Errorf("ListUsersByEmail(%q) after the backfill = %+v, %v; want %q", lookup, got, err, want)
		}
	}
	if got, _ := s.ListUsersByEmail(ctx, "ivy@example.com"); len(got) != 0 {
		t.Errorf("dotless \u0131 matched i after the backfill: %+v", got)
	}
	for _, c := range []struct {
		who  groupgate.User
		want string
	}{{operator, "machine@example.com"}, {loggedIn, ""}, {provisioned, ""}} {
		got, err := s.GetUser(ctx, c.who.ID)
		if err != nil || got.VerifiedEmail != c.want {
			t.Errorf("%s: VerifiedEmail after the backfill = %q, %v; want %q (only accounts neither a login nor SCIM made are vouched for)", c.who.UserName, got.VerifiedEmail, err, c.want)
		}
	}
}
