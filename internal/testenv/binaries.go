package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables naming the reverse proxies the proxy tests run
// (cmd/groupgate/proxies_test.go). scripts/test.sh installs nginx with apt
// and builds Caddy (and, on request, Traefik) with the Go toolchain, then
// exports their paths here.
const (
	NginxEnv   = "GROUPGATE_TEST_NGINX"
	CaddyEnv   = "GROUPGATE_TEST_CADDY"
	TraefikEnv = "GROUPGATE_TEST_TRAEFIK"
	EnvoyEnv   = "GROUPGATE_TEST_ENVOY"
)

// sbinDirs hold daemons that a non-root PATH often lacks (Debian's nginx
// is /usr/sbin/nginx).
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// lookBinary returns $env when it names an executable file, else the first
// of names found on PATH or in an sbin directory; "" and the places it
// looked when there is none.
func lookBinary(env string, names ...string) (path, looked string) {
	if p := os.Getenv(env); p != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, ""
		}
		return "", "$" + env + "=" + p + " (not an executable file)"
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
		for _, dir := range sbinDirs {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, ""
			}
		}
	}
	return "", "$" + env + " unset, and no " + names[0] + " on PATH or in " + strings.Join(sbinDirs, ", ")
}

// Binary returns the path of a program the test needs: $env, or the first
// of names on PATH (or in /usr/sbin and friends). When there is none the
// test skips locally and fails under CI=true; hint says how to get it.
func Binary(t testing.TB, env, hint string, names ...string) string {
	t.Helper()
	p, looked := lookBinary(env, names...)
	if p == "" {
		missing(t, "%s: %s", looked, hint)
	}
	return p
}

// OptionalBinary is Binary for a program the test command may not provide
// (Envoy has no Debian package and no Go module): when
// there is none the test skips with reason, under CI=true too. Once $env
// is set the program was asked for, and a bad path is missing as in Binary
// (a failed opt-in build fails CI instead of skipping).
func OptionalBinary(t testing.TB, env, reason string, names ...string) string {
	t.Helper()
	p, looked := lookBinary(env, names...)
	switch {
	case p != "":
		return p
	case os.Getenv(env) != "":
		missing(t, "%s: %s", looked, reason)
	default:
		t.Skipf("%s: %s", looked, reason)
	}
	return ""
}
