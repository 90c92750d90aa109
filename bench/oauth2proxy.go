package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/devidp"
)

// oauth2-proxy is the forward-auth service most deployments would use
// instead of groupgate; issue 15 asks for its /oauth2/auth in the same
// rounds as the bare handler and /auth.
const (
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.6.0"
	oauth2ProxyClient  = "oauth2-proxy-bench"
	oauth2ProxyUser    = "alice" // a devidp demo user with groups
	oauth2ProxyEmail   = "alice@example.com"
)

// oauth2ProxyOff is the -oauth2-proxy value that leaves it out.
const oauth2ProxyOff = "off"

// defaultOAuth2ProxyBinary is where the harness keeps its build, beside
// the proxies scripts/test.sh builds (GROUPGATE_PROXY_CACHE, else
// $XDG_CACHE_HOME or ~/.cache, then groupgate/proxies).
func defaultOAuth2ProxyBinary() (string, error) {
	dir := os.Getenv("GROUPGATE_PROXY_CACHE")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory for the oauth2-proxy build: %w", err)
		}
		dir = filepath.Join(cache, "groupgate", "proxies")
	}
	return filepath.Join(dir, "oauth2-proxy-"+oauth2ProxyVersion, "oauth2-proxy"), nil
}

// oauth2ProxyBinary returns the binary to measure: the one named by the
// flag (or GROUPGATE_BENCH_OAUTH2_PROXY), else the cached build, built
// first through the Go module proxy when missing.
func oauth2ProxyBinary(ctx context.Context, named string) (string, error) {
	if named != "" {
		if _, err := exec.LookPath(named); err != nil {
			return "", fmt.Errorf("oauth2-proxy binary %s: %w", named, err)
		}
		return named, nil
	}
	bin, err := defaultOAuth2ProxyBinary()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "bench: building %s@%s into %s (once; a few minutes)\n", oauth2ProxyModule, oauth2ProxyVersion, bin)
	if err := buildOAuth2Proxy(ctx, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildOAuth2Proxy downloads the module and builds it inside the module
// cache: its go.mod has replace directives, so `go install pkg@version`
// refuses it. The build goes to a temporary name first so that an
// interrupted build never leaves a binary that looks complete.
func buildOAuth2Proxy(ctx context.Context, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	download := exec.CommandContext(ctx, "go", "mod", "download", "-json", oauth2ProxyModule+"@"+oauth2ProxyVersion)
	download.Stderr = &stderr
	out, err := download.Output()
	if err != nil {
		return fmt.Errorf("go mod download %s@%s: %w: %s", oauth2ProxyModule, oauth2ProxyVersion, err, lastLine(stderr.String()))
	}
	dir, err := moduleDir(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return fmt.Errorf("oauth2-proxy build directory: %w", err)
	}
	tmp := bin + ".building"
	stderr.Reset()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	build.Stdout, build.Stderr = &stderr, &stderr
	if err := build.Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("go build in %s: %w: %s", dir, err, lastLine(stderr.String()))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("install oauth2-proxy build: %w", err)
	}
	return nil
}

// moduleDir reads the Dir of `go mod download -json`; an Error field there
// means the module proxy did not serve it.
func moduleDir(downloadJSON []byte) (string, error) {
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(downloadJSON, &m); err != nil {
		return "", fmt.Errorf("go mod download -json output: %w", err)
	}
	if m.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", oauth2ProxyModule, oauth2ProxyVersion, m.Error)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no module directory", oauth2ProxyModule, oauth2ProxyVersion)
	}
	return m.Dir, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// oauth2ProxyStore is oauth2-proxy's session store in the measured run.
type oauth2ProxyStore struct {
	name      string // "cookie" or "redis"
	redisAddr string // for "redis"
}

func oauth2ProxyFigure(store string) string {
	return fmt.Sprintf("oauth2-proxy %s /oauth2/auth, %s sessions", oauth2ProxyVersion, store)
}

// oauth2ProxyRun is a running oauth2-proxy with the demo OIDC provider it
// signs in against.
type oauth2ProxyRun struct {
	target *target
	store  oauth2ProxyStore
	// cookieName is unique to the run; oauth2-proxy's Redis keys start
	// with it, so Close can delete them.
	cookieName string
	cmd        *exec.Cmd
	idp        *http.Server
	output     *tailBuffer
	exited     chan struct{}
	// answered is set once oauth2-proxy answered: only then can it have
	// written sessions to Redis.
	answered bool
}

// startOAuth2Proxy runs bin on loopback against devidp's OIDC provider,
// served in this process, signs alice in through the provider's login
// form and returns the target that asks its /oauth2/auth with her session
// cookies. oauth2-proxy's request log is off, as nothing logs per request
// in groupgate's targets either. Close stops both servers.
func startOAuth2Proxy(ctx context.Context, bin string, store oauth2ProxyStore) (_ *oauth2ProxyRun, err error) {
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the demo OIDC provider: %w", err)
	}
	proxyAddr, err := freeLoopbackAddr()
	if err != nil {
		idpLn.Close()
		return nil, err
	}
	proxyURL := "http://" + proxyAddr
	clientSecret, cookieSecret := randomHex(16), randomHex(16) // 32 characters: an AES-256 key for oauth2-proxy
	issuer := "http://" + idpLn.Addr().String()
	idp, err := devidp.NewOIDC(issuer, devidp.OIDCConfig{
		Clients: []devidp.OIDCClient{{ID: oauth2ProxyClient, Secret: clientSecret, RedirectURIs: []string{proxyURL + "/oauth2/callback"}}},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		idpLn.Close()
		return nil, err
	}
	run := &oauth2ProxyRun{
		store:      store,
		cookieName: "_oauth2_proxy_bench_" + randomHex(4),
		idp:        &http.Server{Handler: idp, ReadHeaderTimeout: 5 * time.Second},
		output:     &tailBuffer{max: 8 << 10},
		exited:     make(chan struct{}),
	}
	go run.idp.Serve(idpLn)
	defer func() {
		if err != nil {
			run.Close()
		}
	}()

	args := []string{
		"--http-address=" + proxyAddr,
		"--provider=oidc",
		"--oidc-issuer-url=" + issuer,
		"--client-id=" + oauth2ProxyClient,
		"--redirect-url=" + proxyURL + "/oauth2/callback",
		"--scope=openid email profile groups",
		"--upstream=static://202",
		"--email-domain=*",
		"--set-xauthrequest",
		"--skip-provider-button",
		"--cookie-secure=false",
		"--cookie-name=" + run.cookieName,
		"--request-logging=false",
		"--session-store-type=" + store.name,
	}
	if store.name == "redis" {
		args = append(args, "--redis-connection-url=redis://"+store.redisAddr)
	}
	run.cmd = exec.Command(bin, args...)
	// Secrets through the environment, not the process list.
	run.cmd.SysProcAttr = orphanSignal()
	run.cmd.Env = append(os.Environ(), "OAUTH2_PROXY_CLIENT_SECRET="+clientSecret, "OAUTH2_PROXY_COOKIE_SECRET="+cookieSecret)
	run.cmd.Stdout, run.cmd.Stderr = run.output, run.output
	if err := run.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = run.cmd.Wait()
		close(run.exited)
	}()
	if err := run.waitReady(ctx, proxyURL+"/ping", 30*time.Second); err != nil {
		return nil, err
	}
	run.answered = true
	cookies, err := signInOAuth2Proxy(ctx, proxyURL, run.cookieName, oauth2ProxyUser)
	if err != nil {
		return nil, fmt.Errorf("sign in through oauth2-proxy: %w (its output: %s)", err, run.output.lastLines(3))
	}
	run.target = &target{
		name:     oauth2ProxyFigure(store.name),
		endpoint: proxyURL + "/oauth2/auth",
		cookies:  cookies,
		accept:   acceptOAuth2ProxyAuth,
		close:    run.Close,
	}
	if err := verify(ctx, run.target); err != nil {
		return nil, err
	}
	return run, nil
}

// acceptOAuth2ProxyAuth is a signed-in answer of /oauth2/auth: 202 (200
// in other versions) with alice's email and groups from
// --set-xauthrequest, the identity headers groupgate's /auth also writes.
func acceptOAuth2ProxyAuth(resp *http.Response) error {
	email, groups := resp.Header.Get("X-Auth-Request-Email"), resp.Header.Get("X-Auth-Request-Groups")
	if (resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK) || email != oauth2ProxyEmail || !strings.Contains(groups, "platform-admins") {
		return fmt.Errorf("status %d, X-Auth-Request-Email %q, X-Auth-Request-Groups %q", resp.StatusCode, email, groups)
	}
	return nil
}

// verify asks t's endpoint once with its first session.
func verify(ctx context.Context, t *target) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.endpoint, nil)
	if err != nil {
		return err
	}
	for _, c := range t.cookies[0] {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if err := t.accept(resp); err != nil {
		return fmt.Errorf("%s with the signed-in cookie: %w", t.name, err)
	}
	return nil
}

func (r *oauth2ProxyRun) waitReady(ctx context.Context, pingURL string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("oauth2-proxy exited at start: %s", r.output.lastLines(3))
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pingURL, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("oauth2-proxy not answering %s after %v: %s", pingURL, limit, r.output.lastLines(3))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rss is the resident memory of the oauth2-proxy process.
func (r *oauth2ProxyRun) rss() string {
	if r.cmd == nil || r.cmd.Process == nil {
		return "?"
	}
	return rssOf(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
}

// Close stops oauth2-proxy (SIGTERM, then SIGKILL after 5 s) and the
// demo provider, and deletes the sessions it kept in Redis.
func (r *oauth2ProxyRun) Close() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	_ = r.idp.Close()
	if r.store.name == "redis" && r.answered {
		client := redis.NewClient(&redis.Options{Addr: r.store.redisAddr})
		cleanupRedis(client, r.cookieName+"-")
		_ = client.Close()
	}
}

var (
	loginFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	loginFormID     = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)"`)
)

// signInOAuth2Proxy signs user in as a browser would: /oauth2/start, the
// redirect to the provider's login form, the form posted with the demo
// password, and the redirects back through /oauth2/callback. It returns
// the session cookies oauth2-proxy set (one or, for a large session,
// several _oauth2_proxy_N parts), as one session.
func signInOAuth2Proxy(ctx context.Context, proxyURL, cookieName, user string) ([][]*http.Cookie, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxyURL+"/oauth2/start?rd=%2F", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /oauth2/start: %w", err)
	}
	body, err := readAll(resp)
	if err != nil {
		return nil, err
	}
	action, id := loginFormAction.FindStringSubmatch(body), loginFormID.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || action == nil || id == nil {
		return nil, fmt.Errorf("/oauth2/start ended at %s with %s, not the provider's login form", resp.Request.URL.Redacted(), resp.Status)
	}
	form := url.Values{"id": {html.UnescapeString(id[1])}, "username": {user}, "password": {user + "-password"}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = client.Do(req); err != nil {
		return nil, fmt.Errorf("post the login form: %w", err)
	}
	if body, err = readAll(resp); err != nil {
		return nil, err
	}
	// rd=/ goes to the static upstream, which answers 202 once signed in.
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("after the login form: %s at %s: %.200s", resp.Status, resp.Request.URL.Redacted(), body)
	}
	u, err := url.Parse(proxyURL)
	if err != nil {
		return nil, err
	}
	var session []*http.Cookie
	for _, c := range jar.Cookies(u) {
		// The jar ignores ports: keep the session's cookie (or its
		// parts, cookieName_0, _1, …), not the provider's or the CSRF one.
		if c.Name == cookieName || strings.HasPrefix(c.Name, cookieName+"_") && !strings.HasSuffix(c.Name, "_csrf") {
			session = append(session, c)
		}
	}
	if len(session) == 0 {
		return nil, fmt.Errorf("no %s session cookie after the callback", cookieName)
	}
	return [][]*http.Cookie{session}, nil
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", resp.Request.URL.Redacted(), err)
	}
	return string(b), nil
}

// freeLoopbackAddr is a port the kernel just handed out and took back,
// for a process that must be told its address before it listens.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes a process wrote, for error messages.
type tailBuffer struct {
	mu  stdsync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) lastLines(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(b.buf)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, " | ")
	if s == "" {
		return "no output"
	}
	return strconv.Quote(s)
}

// oauth2ProxyOptions say what of oauth2-proxy the auth section measures.
type oauth2ProxyOptions struct {
	binary string   // a path, "" for the cached build, or oauth2ProxyOff
	stores []string // "cookie", "redis"
}

func (o *oauth2ProxyOptions) setStores(v string) error {
	o.stores = []string{}
	for s := range strings.SplitSeq(v, ",") {
		switch s = strings.TrimSpace(s); s {
		case "cookie", "redis":
			o.stores = append(o.stores, s)
		case "":
		default:
			return fmt.Errorf("session store %q: oauth2-proxy has cookie and redis", s)
		}
	}
	return nil
}

// startOAuth2Proxies starts one oauth2-proxy per session store asked for.
// What cannot run comes back as rows saying why, never as a figure.
func startOAuth2Proxies(ctx context.Context, o oauth2ProxyOptions, redisAddr string) ([]*oauth2ProxyRun, []row) {
	figure := oauth2ProxyFigure
	var notMeasured []row
	notAll := func(why string) []row {
		for _, s := range o.stores {
			notMeasured = append(notMeasured, row{figure: figure(s), value: "not measured: " + why, pass: "-"})
		}
		return notMeasured
	}
	if o.binary == oauth2ProxyOff {
		return nil, notAll("left out by -oauth2-proxy=off")
	}
	bin, err := oauth2ProxyBinary(ctx, o.binary)
	if err != nil {
		return nil, notAll(err.Error())
	}
	var runs []*oauth2ProxyRun
	for _, s := range o.stores {
		fmt.Fprintf(os.Stderr, "bench: starting %s with %s sessions, signing in as %s\n", bin, s, oauth2ProxyUser)
		run, err := startOAuth2Proxy(ctx, bin, oauth2ProxyStore{name: s, redisAddr: redisAddr})
		if err != nil {
			notMeasured = append(notMeasured, row{figure: figure(s), value: "not measured: " + err.Error(), pass: "-"})
			continue
		}
		runs = append(runs, run)
	}
	return runs, notMeasured
}
