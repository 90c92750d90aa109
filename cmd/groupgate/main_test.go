package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
)

// sqliteConfig is a valid configuration on a SQLite file in dir and a free
// port.
func sqliteConfig(dir, extra string) string {
	return goodConfig + "store:\n  driver: sqlite\n  dsn: file:" + filepath.Join(dir, "gg.db") + "\n" + extra
}

// startServe runs `serve` like main() does and returns its base URL, the
// function that sends the "SIGTERM" (cancels ctx), and the channel Run's
// error arrives on.
func startServe(t *testing.T, config string) (base string, stop func(), done <-chan error, logs *syncBuffer) {
	t.Helper()
	return startServeWith(t, config, func(*Main) {})
}

// startServeWith is startServe with setup applied to the Main first.
func startServeWith(t *testing.T, config string, setup func(*Main)) (base string, stop func(), done <-chan error, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, logs
	m.LookupEnv = envFrom(nil)
	setup(m)
	path := writeFile(t, "groupgate.yaml", config)
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.ParseFlags(ctx, []string{"serve", "--config", path}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		err := m.Run(ctx)
		errc <- errors.Join(err, m.Close())
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	addr, err := m.Addr(wctx)
	if err != nil {
		cancel()
		t.Fatalf("serve did not listen: %v; run: %v; logs:\n%s", err, <-errc, logs)
	}
	t.Cleanup(cancel)
	return "http://" + addr.String(), cancel, errc, logs
}

// syncBuffer collects logs written by the server goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeOnSQLite(t *testing.T) {
	dir := t.TempDir()
	base, stop, done, logs := startServe(t, serveConfig(t, dir, ""))

	t.Run("healthz answers 200 ok", func(t *testing.T) {
		if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("readyz answers 200 with the store reachable", func(t *testing.T) {
		if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("logs are JSON", func(t *testing.T) {
		first, _, _ := strings.Cut(logs.String(), "\n")
		var rec map[string]any
		if err := json.Unmarshal([]byte(first), &rec); err != nil {
			t.Fatalf("first log line %q is not JSON: %v", first, err)
		}
	})
	t.Run("cancelling the context shuts down cleanly and closes the store", func(t *testing.T) {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
		}
		if _, err := http.Get(base + "/healthz"); err == nil {
			t.Fatal("server still answers after shutdown")
		}
		// The store was migrated and closed: it opens again and has the
		// schema (a user can be created).
		ctx := context.Background()
		s, err := sqlite.Open(ctx, "file:"+filepath.Join(dir, "gg.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.CreateUser(ctx, groupgate.User{UserName: "probe", Email: "probe@example.com", Active: true}); err != nil {
			t.Fatalf("store not migrated: %v", err)
		}
	})
}

func TestServeReadyzNamesUnreachableRedis(t *testing.T) {
	// Nothing listens on port 1; readiness must say so and name redis.
	base, stop, done, _ := startServe(t, serveConfig(t, t.TempDir(), "redis:\n  addrs: [127.0.0.1:1]\n"))
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis"`) || strings.Contains(body, `"store"`) {
		t.Fatalf("got %d %q, want 503 naming redis only", code, body)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServeWithRealRedisIsReady(t *testing.T) {
	addr := testenv.RedisAddr(t)
	base, stop, done, _ := startServe(t, serveConfig(t, t.TempDir(), "redis:\n  addrs: ["+addr+"]\n"))
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("got %d %q", code, body)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesBadConfigWithoutListening(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "serve", "--config", writeFile(t, "c.yaml", goodConfig+"bogus: 1\n"))
	if code != 1 || !strings.Contains(errOut, ":9: bogus: unknown key") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestTokenCreate(t *testing.T) {
	backends := []struct {
		name   string
		config func(t *testing.T) string
	}{
		{"on SQLite", func(t *testing.T) string { return sqliteConfig(t.TempDir(), "") }},
		{"on PostgreSQL", func(t *testing.T) string {
			return goodConfig + "store:\n  driver: postgres\n  dsn: " + testenv.Postgres(t) + "\n"
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			config := b.config(t)
			path := writeFile(t, "c.yaml", config)

			code, out, errOut := runCLI(t, nil, "token", "create", "--config", path, "--user", "bob@example.com", "--name", "ci")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, "created user bob@example.com") {
				t.Errorf("stderr does not say the user was created: %q", errOut)
			}
			token := lastLine(out)
			checkToken(t, token, "gg_")

			code, out2, errOut := runCLI(t, nil, "token", "create", "--config", path, "--user", "BOB@example.com")
			if code != 0 {
				t.Fatalf("second token: exit %d: %s", code, errOut)
			}
			if strings.Contains(errOut, "created user") {
				t.Errorf("second token created the user again: %q", errOut)
			}
			token2 := lastLine(out2)
			if token2 == token {
				t.Fatal("two tokens are equal")
			}

			// An existing user is found by user name too; an unknown name
			// creates nobody and says how to.
			named, err := openConfiguredStore(t, path).CreateUser(context.Background(), groupgate.User{UserName: "alice", Email: "alice@example.com", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			code, out4, errOut := runCLI(t, nil, "token", "create", "--config", path, "--user", "alice")
			if code != 0 || !strings.Contains(errOut, "for alice (alice@example.com)") {
				t.Fatalf("token for alice by user name: exit %d: %s", code, errOut)
			}
			sum := sha256.Sum256([]byte(lastLine(out4)))
			if got, err := openConfiguredStore(t, path).GetTokenByHash(context.Background(), groupgate.TokenAPI, sum[:]); err != nil || got.UserID != named.ID {
				t.Errorf("the token made with --user alice is %+v, %v; want one of user %s", got, err, named.ID)
			}
			if code, _, errOut := runCLI(t, nil, "token", "create", "--config", path, "--user", "nobody"); code != 1 || !strings.Contains(errOut, `no user is named "nobody"`) {
				t.Errorf("token for an unknown user name: exit %d, stderr %q; want exit 1 naming the user", code, errOut)
			}

			code, out3, errOut := runCLI(t, nil, "scim-token", "create", "--config", path)
			if code != 0 {
				t.Fatalf("scim token: exit %d: %s", code, errOut)
			}
			scimToken := lastLine(out3)
			checkToken(t, scimToken, "ggscim_")

			// Only hashes are stored, under the right kind and owner.
			st := openConfiguredStore(t, path)
			user, err := store.UserByEmail(context.Background(), st, "bob@example.com")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				token string
				kind  groupgate.TokenKind
				owner string
				name  string
			}{{token, groupgate.TokenAPI, user.ID, "ci"}, {token2, groupgate.TokenAPI, user.ID, "cli"}, {scimToken, groupgate.TokenSCIM, "", "scim"}} {
				sum := sha256.Sum256([]byte(c.token))
				got, err := st.GetTokenByHash(context.Background(), c.kind, sum[:])
				if err != nil {
					t.Fatalf("token %s not found by its SHA-256: %v", c.name, err)
				}
				if got.UserID != c.owner || got.Name != c.name {
					t.Errorf("token %s stored as %+v", c.name, got)
				}
			}
			if _, err := st.GetTokenByHash(context.Background(), groupgate.TokenSCIM, hashToken(token)); !groupgate.IsCode(err, groupgate.NotFound) {
				t.Errorf("an API token is usable as a SCIM token: %v", err)
			}
		})
	}
}

func openConfiguredStore(t *testing.T, path string) interface {
	ListUsersByEmail(context.Context, string) ([]groupgate.User, error)
	CreateUser(context.Context, groupgate.User) (groupgate.User, error)
	GetTokenByHash(context.Context, groupgate.TokenKind, []byte) (groupgate.Token, error)
} {
	t.Helper()
	cfg, err := LoadConfig(path, envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := buildStore(context.Background(), cfg.Store, buildLogger(cfg.Log, io.Discard, "text"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func checkToken(t *testing.T, token, prefix string) {
	t.Helper()
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		t.Fatalf("token %q lacks prefix %q", token, prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 base64url bytes: %v", token, err)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command is a usage error", nil, 2, "missing command"},
		{"an unknown command is a usage error", []string{"frobnicate"}, 2, "unknown command"},
		{"config without check is a usage error", []string{"config", "--config", "x"}, 2, "subcommand of config"},
		{"serve without --config is a usage error", []string{"serve"}, 2, "--config is required"},
		{"token create without --user is a usage error", []string{"token", "create", "--config", "x"}, 2, "--user EMAIL (or the user name of an existing user) is required"},
		{"a stray argument is a usage error", []string{"migrate", "--config", "x", "extra"}, 2, "unexpected argument"},
		{"help exits 0", []string{"--help"}, 0, ""},
		{"dev takes no configuration file", []string{"dev", "--config", "x"}, 2, "flag provided but not defined: -config"},
		{"a missing config file is an error", []string{"config", "check", "--config", "/nonexistent/gg.yaml"}, 1, "no such file"},
		{"version needs no configuration", []string{"version"}, 0, ""},
		{"healthcheck of nothing listening fails", []string{"healthcheck", "--url", "http://127.0.0.1:1/healthz"}, 1, "unhealthy"},
		{"healthcheck takes no configuration file", []string{"healthcheck", "--config", "x"}, 2, "flag provided but not defined: -config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	path := writeFile(t, "c.yaml", sqliteConfig(t.TempDir(), ""))
	for i := range 2 {
		code, _, errOut := runCLI(t, nil, "migrate", "--config", path)
		if code != 0 || !strings.Contains(errOut, "up to date") {
			t.Fatalf("run %d: exit %d, stderr %q", i+1, code, errOut)
		}
	}
}
