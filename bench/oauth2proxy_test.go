package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/internal/testenv"
)

// testOAuth2ProxyBinary is $GROUPGATE_TEST_OAUTH2_PROXY (scripts/test.sh
// builds it once into its proxy cache and sets it), else the harness's
// cached build. Without either the test skips locally and fails under
// CI=true, as for the real proxies.
func testOAuth2ProxyBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("GROUPGATE_TEST_OAUTH2_PROXY") == "" {
		if bin, err := defaultOAuth2ProxyBinary(); err == nil {
			if _, err := os.Stat(bin); err == nil {
				return bin
			}
		}
	}
	return testenv.Binary(t, "GROUPGATE_TEST_OAUTH2_PROXY",
		"scripts/test.sh builds oauth2-proxy "+oauth2ProxyVersion+" once, or run `go run ./bench -only auth`", "oauth2-proxy")
}

func TestOAuth2ProxyIsSignedInThroughTheDemoProviderAndMeasured(t *testing.T) {
	bin := testOAuth2ProxyBinary(t)
	redisAddr := testenv.RedisAddr(t)
	for _, store := range []string{"cookie", "redis"} {
		t.Run("with its "+store+" session store", func(t *testing.T) {
			ctx := context.Background()
			run, err := startOAuth2Proxy(ctx, bin, oauth2ProxyStore{name: store, redisAddr: redisAddr})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					run.Close()
				}
			}()
			tg := run.target
			if len(tg.cookies) != 1 || len(tg.cookies[0]) == 0 {
				t.Fatalf("cookies %v: want one session", tg.cookies)
			}
			for _, c := range tg.cookies[0] {
				t.Logf("session cookie %s: %d bytes", c.Name, len(c.Value))
				if !strings.HasPrefix(c.Name, run.cookieName) {
					t.Errorf("cookie %s sent to /oauth2/auth: not oauth2-proxy's session", c.Name)
				}
			}

			r, err := load(tg, 300*time.Millisecond, 4)
			if err != nil {
				t.Fatalf("load with the signed-in session: %v", err)
			}
			if r.rps <= 0 || r.p50 <= 0 {
				t.Fatalf("load result %+v", r)
			}

			// The load generator must refuse what is not a signed-in
			// answer, or a broken sign-in would be measured as a 401 rate.
			tampered := *tg
			tampered.cookies = [][]*http.Cookie{{{Name: tg.cookies[0][0].Name, Value: "x" + tg.cookies[0][0].Value}}}
			if _, err := load(&tampered, 200*time.Millisecond, 2); err == nil || !strings.Contains(err.Error(), "status 401") {
				t.Fatalf("load with a tampered cookie: %v, want status 401", err)
			}
			if err := verify(ctx, &tampered); err == nil {
				t.Fatal("verify accepted a tampered cookie")
			}

			var keys []string
			client := redis.NewClient(&redis.Options{Addr: redisAddr})
			defer client.Close()
			if store == "redis" {
				if keys, err = client.Keys(ctx, run.cookieName+"-*").Result(); err != nil || len(keys) == 0 {
					t.Fatalf("redis keys of the session: %v %v", keys, err)
				}
			}
			pid := run.cmd.Process.Pid
			run.Close()
			closed = true
			if err := syscall.Kill(pid, 0); err == nil {
				t.Fatalf("oauth2-proxy (pid %d) still running after Close", pid)
			}
			if keys, err = client.Keys(ctx, run.cookieName+"-*").Result(); err != nil || len(keys) != 0 {
				t.Fatalf("redis keys left after Close: %v %v", keys, err)
			}
		})
	}
}

func TestOAuth2ProxyRowsSayWhyWhenItCannotRun(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-such-oauth2-proxy")
	exitsAtStart := filepath.Join(t.TempDir(), "oauth2-proxy")
	if err := os.WriteFile(exitsAtStart, []byte("#!/bin/sh\necho 'flag provided but not defined' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, binary string
		want         string
	}{
		{"left out by the flag", oauth2ProxyOff, "left out by -oauth2-proxy=off"},
		{"a binary that is not there", missing, missing},
		{"a binary that exits at start", exitsAtStart, "oauth2-proxy exited at start"},
	} {
		t.Run(c.name, func(t *testing.T) {
			runs, rows := startOAuth2Proxies(ctx, oauth2ProxyOptions{binary: c.binary, stores: []string{"cookie", "redis"}}, "127.0.0.1:1")
			if len(runs) != 0 {
				t.Fatalf("%d runs started", len(runs))
			}
			if len(rows) != 2 {
				t.Fatalf("rows %v: want one per store", rows)
			}
			for _, r := range rows {
				if !strings.HasPrefix(r.value, "not measured: ") || !strings.Contains(r.value, c.want) || r.pass != "-" {
					t.Errorf("row %q = %q, want not measured because %q", r.figure, r.value, c.want)
				}
			}
		})
	}
}

func TestModuleDirReportsWhatTheModuleProxySaid(t *testing.T) {
	for _, c := range []struct {
		name, json, dir, err string
	}{
		{"a downloaded module", `{"Path":"m","Version":"v7.6.0","Dir":"/mod/m@v7.6.0"}`, "/mod/m@v7.6.0", ""},
		{"a module the proxy refused", `{"Path":"m","Version":"v7.6.0","Error":"not found: 404"}`, "", "not found: 404"},
		{"no directory", `{"Path":"m"}`, "", "no module directory"},
		{"not JSON", `go: command not found`, "", "output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, err := moduleDir([]byte(c.json))
			if dir != c.dir || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("moduleDir = %q, %v; want %q, error containing %q", dir, err, c.dir, c.err)
			}
		})
	}
}
