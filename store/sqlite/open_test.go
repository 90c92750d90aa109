package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

func openTemp(t testing.TB, opts ...Option) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, "file:"+filepath.Join(t.TempDir(), "groupgate.db"), opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func TestMigrate(t *testing.T) {
	t.Run("applying the migrations twice changes nothing the second time", func(t *testing.T) {
		s := openTemp(t)
		ctx := context.Background()
		if _, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		var n int
		if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		names, _ := migrationFS.ReadDir("migrations")
		if n != len(names) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(names))
		}
		if _, err := s.GetOrganizationByName(ctx, "ACME"); err != nil {
			t.Fatalf("data lost by the second migrate: %v", err)
		}
	})
	t.Run("a database reopened from the same file keeps its data", func(t *testing.T) {
		ctx := context.Background()
		dsn := "file:" + filepath.Join(t.TempDir(), "gg.db")
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := s.CreateUser(ctx, groupgate.User{UserName: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		var mode string
		if err := s2.rdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		if _, err := s2.GetUser(ctx, u.ID); err != nil {
			t.Fatalf("user lost across reopen: %v", err)
		}
	})
}

func TestInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "bob"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("CountUsers = %d, %v; want 1", n, err)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
	s := openTemp(t, WithNow(func() time.Time { return clock }))

	u, err := s.CreateUser(ctx, groupgate.User{UserName: "Alice", Email: "Alice@Example.com", Active: true,
		SCIM: []byte(`{"name":{"givenName":"Alice"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 4, 4, 6, 7, 891234000, time.UTC)
	if !u.CreatedAt.Equal(want) || u.CreatedAt.Location() != time.UTC || u.Version != 1 {
		t.Fatalf("created user = %+v; want CreatedAt %v UTC, version 1", u, want)
	}
	found, err := s.ListUsersByEmail(ctx, "alice@EXAMPLE.com")
	if err != nil || len(found) != 1 {
		t.Fatalf("ListUsersByEmail = %+v, %v; want alice", found, err)
	}
	got := found[0]
	if got.UserName != "Alice" || got.Email != "Alice@Example.com" || !got.CreatedAt.Equal(u.CreatedAt) || string(got.SCIM) != string(u.SCIM) {
		t.Fatalf("read back %+v, want %+v", got, u)
	}
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "ALICE"}); !groupgate.IsCode(err, groupgate.Conflict) {
		t.Fatalf("duplicate user name: err = %v, want Conflict", err)
	}
	clock = clock.Add(time.Second)
	upd, err := s.UpdateUser(ctx, u.ID, func(u *groupgate.User) error { u.DisplayName = "A"; u.ID = "x"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != u.ID || upd.Version != 2 || !upd.UpdatedAt.After(upd.CreatedAt) {
		t.Fatalf("updated user = %+v", upd)
	}
	sentinel := errors.New("stop")
	if _, err := s.UpdateUser(ctx, u.ID, func(*groupgate.User) error { return sentinel }); err != sentinel {
		t.Fatalf("fn error = %v, want it unchanged", err)
	}

	org, err := s.CreateOrganization(ctx, groupgate.Organization{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := s.CreateRepository(ctx, groupgate.Repository{OrganizationID: org.ID, Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if repo.OrganizationName != "Acme" || repo.Visibility != groupgate.VisibilityPrivate {
		t.Fatalf("repo = %+v", repo)
	}
	if _, err := s.CreateRepository(ctx, groupgate.Repository{OrganizationID: "nope", Name: "api"}); !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("repo in missing org: err = %v, want Invalid", err)
	}
	if _, err := s.AddOrgMapping(ctx, groupgate.OrgMapping{OrganizationID: org.ID, Group: "eng"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRepoMapping(ctx, groupgate.RepoMapping{RepositoryID: repo.ID, Group: "eng", RoleOverride: groupgate.RepoRoleWrite}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: u.ID, Role: groupgate.OrgRoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOrgMember(ctx, groupgate.OrgMember{OrganizationID: org.ID, UserID: "ghost", Role: groupgate.OrgRoleAdmin}); !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("member who does not exist: err = %v, want Invalid", err)
	}
	groups := make([]string, 2000)
	for i := range groups {
		groups[i] = fmt.Sprintf("g%04d", i)
	}
	groups[1500] = "eng"
	om, rm, err := s.MappingsForGroups(ctx, groups)
	if err != nil || len(om) != 1 || len(rm) != 1 {
		t.Fatalf("MappingsForGroups = %v, %v, %v", om, rm, err)
	}
	if err := s.DeleteOrganization(ctx, org.ID); err != nil {
		t.Fatal(err)
	}
	om, rm, err = s.MappingsForGroups(ctx, []string{"eng"})
	if err != nil || len(om) != 0 || len(rm) != 0 {
		t.Fatalf("after deleting the org, MappingsForGroups = %v, %v, %v", om, rm, err)
	}
	if got, err := s.ListUserOrgMembers(ctx, u.ID); err != nil || len(got) != 0 {
		t.Fatalf("after deleting the org, members = %v, %v", got, err)
	}
}

func TestConcurrentGroupSetUpdates(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	u, err := s.CreateUser(ctx, groupgate.User{UserName: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			_, err := s.UpdateGroupSet(ctx, u.ID, func(old groupgate.GroupSet) (groupgate.GroupSet, error) {
				return append(old, groupgate.Membership{Group: fmt.Sprintf("g%02d", i), Source: groupgate.SourceLogin}), nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UpdateGroupSet: %v", err)
		}
	}
	set, err := s.GetGroupSet(ctx, u.ID)
	if err != nil || len(set) != 50 {
		t.Fatalf("group set has %d entries (%v), want 50", len(set), err)
	}
}

func TestInTx(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.CreateUser(ctx, groupgate.User{UserName: "dave"}); err != nil {
			return err
		}
		return tx.InTx(ctx, func(inner store.Store) error {
			if _, err := inner.GetUserByUserName(ctx, "dave"); err != nil {
				return err
			}
			return boom
		})
	})
	if err != boom {
		t.Fatalf("InTx = %v, want boom unchanged", err)
	}
	if _, err := s.GetUserByUserName(ctx, "dave"); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Fatalf("rolled-back user: err = %v, want NotFound", err)
	}
}

func TestErrorsAfterClose(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetUser(cctx, "x"); !groupgate.IsCode(err, groupgate.Unavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v, want Unavailable wrapping context.Canceled", err)
	}
	_ = s.Close()
	if _, err := s.GetUser(ctx, "x"); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("closed store: err = %v, want Unavailable", err)
	}
	if _, err := s.CreateUser(ctx, groupgate.User{UserName: "x"}); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("closed store write: err = %v, want Unavailable", err)
	}
}

// Two Stores on one file stand for two processes: only BEGIN IMMEDIATE and
// the busy timeout serialize them, not the in-process write connection.
func TestTwoStoresOnOneFileSerializeWrites(t *testing.T) {
	ctx := context.Background()
	dsn := "file:" + filepath.Join(t.TempDir(), "shared.db") + "?mode=rwc"
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("open store %d: %v", i, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate store %d: %v", i, err)
		}
		stores[i] = s
	}
	u, err := stores[0].CreateUser(ctx, groupgate.User{UserName: "erin"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			_, err := stores[i%2].UpdateGroupSet(ctx, u.ID, func(old groupgate.GroupSet) (groupgate.GroupSet, error) {
				return append(old, groupgate.Membership{Group: fmt.Sprintf("g%02d", i), Source: groupgate.SourceSCIM}), nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UpdateGroupSet: %v", err)
		}
	}
	set, err := stores[1].GetGroupSet(ctx, u.ID)
	if err != nil || len(set) != 40 {
		t.Fatalf("group set has %d entries (%v), want 40", len(set), err)
	}
}

func TestOpenRefusesWhatItCannotUse(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, dsn string
		code      groupgate.ErrorCode
	}{
		{"an empty DSN is invalid", "", groupgate.Invalid},
		{"a file in a missing directory is unavailable", "file:" + filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), groupgate.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want %s", tc.dsn, tc.code)
			}
			if !groupgate.IsCode(err, tc.code) {
				t.Fatalf("Open(%q) = %v, want code %s", tc.dsn, err, tc.code)
			}
		})
	}
}

// TestMigrationBackfillsTheEmailKeyInGo: rows written before migration 0004
// get users.email_norm from groupgate.NormalizeEmail.
func TestMigrationBackfillsTheEmailKeyInGo(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
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
	err = s.write(ctx, func(q queryer) error {
		// The state before 0004: no key stored.
		if _, err := q.ExecContext(ctx, `UPDATE users SET email_norm = '', verified_email = ''`); err != nil {
			return err
		}
		return afterMigration(4)(ctx, s, q)
	})
	if err != nil {
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

// TestMigratingA0003DatabaseBackfillsEmailKeys upgrades a database made by
// migrations 0001–0003 holding users, as an existing deployment has.
func TestMigratingA0003DatabaseBackfillsEmailKeys(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	err = s.write(ctx, func(q queryer) error {
		if _, err := q.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
			return err
		}
		for i, name := range []string{"0001_init", "0002_scim", "0003_outbox"} {
			v := i + 1
			body, err := migrationFS.ReadFile("migrations/" + name + ".sql")
			if err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?, 0)`, v, name); err != nil {
				return err
			}
		}
		_, err := q.ExecContext(ctx, `INSERT INTO users (id, user_name, email, display_name, active, external_id, created_at, updated_at, version)
			VALUES ('k', 'kelly', ?, '', 1, '', 0, 0, 1), ('v', 'vik', ?, '', 1, 'ext-v', 0, 0, 1)`, "Kelly@Example.com", "\u212Aim@example.com")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for lookup, want := range map[string]string{"kelly@example.com": "k", "KIM@example.com": "v"} {
		got, err := s.ListUsersByEmail(ctx, lookup)
		if err != nil || len(got) != 1 || got[0].ID != want {
			t.Errorf("ListUsersByEmail(%q) after the upgrade = %+v, %v; want user %s", lookup, got, err, want)
		}
	}
	if u, _ := s.GetUser(ctx, "k"); u.VerifiedEmail != "Kelly@Example.com" {
		t.Errorf("an operator-made account's VerifiedEmail = %q, want its email", u.VerifiedEmail)
	}
	if u, _ := s.GetUser(ctx, "v"); u.VerifiedEmail != "" {
		t.Errorf("a SCIM account's VerifiedEmail = %q, want none", u.VerifiedEmail)
	}
}
