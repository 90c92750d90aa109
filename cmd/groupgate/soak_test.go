package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/internal/testenv"
)

// soakEnv sets the soak's length: GROUPGATE_SOAK=60s is the long form
// (docs/operations.md); unset, the test command's 10 s.
const soakEnv = "GROUPGATE_SOAK"

// soakWindow is the span whose samples are compared at the start and the
// end of a soak of length d: 10 s for the long form, 3 s for the short one
// (two 10 s windows would be the whole 10 s run).
func soakWindow(d time.Duration) time.Duration {
	if d >= 40*time.Second {
		return 10 * time.Second
	}
	return 3 * time.Second
}

// Flatness thresholds of the soak: the mean of the last window may exceed
// the first window's by at most this fraction plus this constant. A leak
// of one goroutine, one Redis key or a few KiB per request grows past them
// within seconds at the soak's rate (about 60 requests a second); the
// constants absorb what is in flight at a sampling instant and the race
// detector's memory.
const (
	soakGoroutineGrowth = 0.10
	soakGoroutineSlack  = 15
	soakKeyGrowth       = 0.10
	soakKeySlack        = 8
	soakRSSGrowth       = 0.15
	soakRSSSlackMiB     = 24
	// soakInFlight is how many of one operation may wait for answers at
	// once before a tick is missed.
	soakInFlight = 4
	// soakWarmUp runs the load before the first window: heaps and pools
	// grow to their working size in the first seconds.
	soakWarmUp = 2 * time.Second
)

// soakSample is one reading of the serve process.
type soakSample struct {
	at         time.Time
	rssKiB     float64
	goroutines float64
	keys       float64
	sidKeys    int // back-channel logout session index entries
}

// TestSoakAtAFixedRate runs serve as a process of its own on PostgreSQL and
// Redis with an OIDC and a SAML provider (the embedded IdPs) and drives it
// at a fixed rate with /auth, OIDC and SAML logins (each signed out again),
// API reads and writes and SCIM reads and writes. Every request must
// succeed; the process's resident memory, its goroutine count and the
// number of Redis keys under its prefix must be flat between the first and
// the last window (soakWindow). GROUPGATE_SOAK=60s runs the long form.
func TestSoakAtAFixedRate(t *testing.T) {
	length := 10 * time.Second
	if v := os.Getenv(soakEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 5s", soakEnv, v)
		}
		length = d
	}
	window := soakWindow(length)

	dsn := testenv.Postgres(t)
	rc, prefix := testenv.Redis(t)
	dir := t.TempDir()
	cert, key, err := writeSPKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	metricsBase := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	config := withProvider(postgresConfig(t, dsn, "redis:\n  addrs: ["+testenv.RedisAddr(t)+"]\n  key_prefix: \""+prefix+"\"\n"+
		"scim:\n  enabled: true\nmetrics:\n  listen: "+strings.TrimPrefix(metricsBase, "http://")+"\n"+
		// Every login comes from 127.0.0.1: two a second would exhaust
		// the per-client allowance (30 a minute) after a minute.
		"login_limits:\n  per_client_burst: 1000\n  per_client_per_minute: 600\n"),
		// alice's account exists (her API token): the SAML provider
		// vouches for emails so that her SAML logins join it.
		samlProvider(t, cert, key)+"    trust_email: true\n")
	path := writeFile(t, "gg.yaml", config)
	base := publicURLRE.FindStringSubmatch(config)[1]
	token, scimToken := createTokens(t, path)
	p := newServeProcess(t, path, base)
	p.start()
	defer func() {
		if t.Failed() {
			out := p.output()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("serve's output:\n%s", out)
		}
	}()

	w := setUpWriteLoad(t, base, token, scimToken)
	w.signIn(t, "bob")
	code, member := scimCall(t, http.MethodPost, base+"/scim/v2/Users", scimToken,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"soak","emails":[{"value":"soak@example.com","primary":true}]}`)
	if code != http.StatusCreated {
		t.Fatalf("create the SCIM user: %d %v", code, member)
	}
	memberID, _ := member["id"].(string)
	u, _ := url.Parse(base)

	// The operations and their rates (per second: /auth 40, logins 2,
	// API 4, SCIM 4).
	type op struct {
		name  string
		every time.Duration
		do    func(i int) error
	}
	ops := []op{
		{"/auth", 25 * time.Millisecond, func(i int) error {
			who := []string{"bob", "signed-out"}[i%2]
			a := askAuth(base, w.cookies[who], who)
			want := map[string]int{"bob": http.StatusOK, "signed-out": http.StatusUnauthorized}[who]
			if a.err != nil || a.status != want {
				return fmt.Errorf("/auth for %s = %d (%v), want %d", who, a.status, a.err, want)
			}
			return nil
		}},
		{"OIDC login", time.Second, func(int) error {
			cookies, err := signInCookies(base, u, "carol")
			if err != nil {
				return err
			}
			return checkAndSignOut(base, cookies)
		}},
		{"SAML login", time.Second, func(int) error {
			cookies, err := samlSignInCookies(base, u, "alice")
			if err != nil {
				return err
			}
			return checkAndSignOut(base, cookies)
		}},
		{"API", 250 * time.Millisecond, func(i int) error {
			var a attempt
			if i%2 == 0 {
				a = apiAttempt(base, token, "read", "acme", "OrganizationService/GetOrganizationByName", `{"name":"acme"}`)
			} else {
				role := engRoles[i/2%len(engRoles)]
				a = apiAttempt(base, token, "mapping", role.name, "OrganizationService/UpdateOrganizationGroup",
					`{"organization_id":"`+w.orgID+`","group_name":"eng","role_override":`+role.json+`}`)
			}
			if !a.acked() {
				return fmt.Errorf("API %s: %d %s %v", a.kind, a.status, a.code, a.err)
			}
			return nil
		}},
		{"SCIM", 250 * time.Millisecond, func(i int) error {
			var a attempt
			switch i % 4 {
			case 0, 2:
				a = scimAttempt(base, scimToken, "read", "soak", http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "soak"`), "")
			case 1:
				a = scimAttempt(base, scimToken, "add", memberID, http.MethodPatch, "/Groups/"+w.groupID,
					`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+memberID+`"}]}]}`)
			case 3:
				a = scimAttempt(base, scimToken, "remove", memberID, http.MethodPatch, "/Groups/"+w.groupID,
					`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+memberID+`\"]"}]}`)
			}
			if !a.acked() {
				return fmt.Errorf("SCIM %s: %d %s %v", a.kind, a.status, a.code, a.err)
			}
			return nil
		}},
	}

	var (
		mu      stdsync.Mutex
		done    = map[string]int{}
		errs    []string
		nerrs   int
		samples []soakSample
		wg      stdsync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	for _, o := range ops {
		// Open loop: each tick starts the operation, whether or not the
		// previous one is done (up to soakInFlight at once), so that the
		// rate stays fixed while answers slow down on a busy machine.
		inflight := make(chan struct{}, soakInFlight)
		wg.Go(func() {
			tick := time.NewTicker(o.every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				select {
				case inflight <- struct{}{}:
				default:
					continue // the operation is that far behind: a missed tick
				}
				wg.Go(func() {
					defer func() { <-inflight }()
					err := o.do(i)
					mu.Lock()
					done[o.name]++
					if err != nil {
						nerrs++
						if len(errs) < 20 {
							errs = append(errs, fmt.Sprintf("%v: %s: %v", time.Since(start).Round(time.Millisecond), o.name, err))
						}
					}
					mu.Unlock()
				})
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s, err := sampleServe(ctx, p, metricsBase, rc, prefix)
			if err != nil {
				if ctx.Err() == nil {
					mu.Lock()
					nerrs++
					errs = append(errs, "sample: "+err.Error())
					mu.Unlock()
				}
				continue
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	})
	time.Sleep(soakWarmUp + length)
	cancel()
	elapsed := time.Since(start)
	wg.Wait()

	for _, o := range ops {
		want := int(elapsed / o.every)
		t.Logf("%s: %d done (%.1f/s, %d due at the fixed rate)", o.name, done[o.name], float64(done[o.name])/elapsed.Seconds(), want)
		// A fixed rate: ticks missed because soakInFlight operations were
		// still waiting mean the server slowed down.
		if done[o.name] < want*9/10 {
			t.Errorf("%s ran %d times, fewer than 90%% of the %d its rate asks for", o.name, done[o.name], want)
		}
	}
	if nerrs > 0 {
		t.Errorf("%d errors, want none; the first:\n%s", nerrs, strings.Join(errs, "\n"))
	}

	// Every key expires by itself: one without a TTL would pile up for
	// good, however slowly.
	iter := rc.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		if ttl, err := rc.TTL(context.Background(), iter.Val()).Result(); err == nil && ttl < 0 {
			t.Errorf("Redis key %s has no expiry", iter.Val())
		}
	}
	measured := start.Add(soakWarmUp)
	first := meanSamples(samples, measured, measured.Add(window))
	last := meanSamples(samples, start.Add(elapsed-window), start.Add(elapsed))
	t.Logf("over %v (after %v of warm-up), first %v vs last %v: RSS %.1f → %.1f MiB, goroutines %.1f → %.1f, Redis keys %.1f → %.1f (%d samples)",
		length, soakWarmUp, window, window, first.rssKiB/1024, last.rssKiB/1024, first.goroutines, last.goroutines, first.keys, last.keys, len(samples))
	if len(samples) > 0 {
		// Every soak login signs out, which forgets its IdP session: only
		// the set-up's live sessions (bob's and carol's) may keep an index
		// entry; more is a leak that grows with the login rate.
		if n, live := samples[len(samples)-1].sidKeys, 2; n > live {
			t.Errorf("%d back-channel logout index keys after %d OIDC logins, all but %d signed out", n, done["OIDC login"], live)
		}
	}
	for _, c := range []struct {
		what          string
		first, last   float64
		growth, slack float64
	}{
		{"goroutines", first.goroutines, last.goroutines, soakGoroutineGrowth, soakGoroutineSlack},
		{"Redis keys", first.keys, last.keys, soakKeyGrowth, soakKeySlack},
		{"RSS (MiB)", first.rssKiB / 1024, last.rssKiB / 1024, soakRSSGrowth, soakRSSSlackMiB},
	} {
		if c.first == 0 {
			t.Errorf("no %s samples in the first window", c.what)
			continue
		}
		if limit := c.first*(1+c.growth) + c.slack; c.last > limit {
			t.Errorf("%s grew from %.1f to %.1f, more than the %.1f allowed", c.what, c.first, c.last, limit)
		}
	}
}

// meanSamples averages the samples taken in [from, to).
func meanSamples(samples []soakSample, from, to time.Time) soakSample {
	var m soakSample
	n := 0
	for _, s := range samples {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		m.rssKiB += s.rssKiB
		m.goroutines += s.goroutines
		m.keys += s.keys
		n++
	}
	if n > 0 {
		m.rssKiB /= float64(n)
		m.goroutines /= float64(n)
		m.keys /= float64(n)
	}
	return m
}

// anyHiddenRE matches hidden inputs however the tag ends (crewjam/saml's
// auto-submitting form closes them with " />").
var anyHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

var goGoroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\S+)$`)

// sampleServe reads the serve process's resident memory (/proc), its
// goroutine count (go_goroutines on its metrics listener) and the number
// of Redis keys under its prefix but the SAML replay cache.
func sampleServe(ctx context.Context, p *serveProcess, metricsBase string, rc redis.UniversalClient, prefix string) (soakSample, error) {
	s := soakSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKiB, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsBase+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := goGoroutinesRE.FindSubmatch(body)
	if m == nil {
		return s, fmt.Errorf("no go_goroutines in /metrics (%s)", resp.Status)
	}
	s.goroutines, _ = strconv.ParseFloat(string(m[1]), 64)
	var n int
	iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		// The SAML replay cache keeps each assertion's ID until the
		// assertion expires (minutes), by design: it grows with the login
		// rate up to that bound, and is left out.
		// The back-channel logout index (an OIDC login's IdP session ID)
		// is counted apart (sidKeys): it must not outlive a sign-out.
		switch key := iter.Val(); {
		case strings.HasPrefix(key, prefix+"replay:"):
		case strings.HasPrefix(key, prefix+"attempt:bcl-sid:"):
			s.sidKeys++
		default:
			n++
		}
	}
	if err := iter.Err(); err != nil {
		return s, err
	}
	s.keys = float64(n)
	return s, nil
}

// checkAndSignOut asks /auth with a new session's cookies (200), signs it
// out, and asks again (401): the soak's logins leave no live session.
func checkAndSignOut(base string, cookies []*http.Cookie) error {
	if a := askAuth(base, cookies, "new"); a.status != http.StatusOK {
		return fmt.Errorf("/auth after sign-in = %d (%v)", a.status, a.err)
	}
	if _, err := signOutOf(base, cookies); err != nil {
		return err
	}
	if a := askAuth(base, cookies, "gone"); a.status != http.StatusUnauthorized {
		return fmt.Errorf("/auth after sign-out = %d (%v), want 401", a.status, a.err)
	}
	return nil
}

// samlSignInCookies signs user in through the provider corp (the demo
// SAML IdP, samlProvider) with a new browser: the login page redirects to
// the IdP, whose form posts back an auto-submitting form to the ACS.
func samlSignInCookies(base string, u *url.URL, user string) ([]*http.Cookie, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/login?provider=corp&rd=" + url.QueryEscape(base+"/whoami"))
	if err != nil {
		return nil, err
	}
	action, form, err := readForm(resp)
	if err != nil {
		return nil, fmt.Errorf("the IdP's login page: %w", err)
	}
	form.Set("username", user)
	form.Set("password", user+"-password")
	if resp, err = c.PostForm(action, form); err != nil {
		return nil, err
	}
	acs, posted, err := readForm(resp)
	if err != nil || posted.Get("SAMLResponse") == "" {
		return nil, fmt.Errorf("the IdP's answer is no form with a SAMLResponse: %v", err)
	}
	if resp, err = c.PostForm(acs, posted); err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/whoami" {
		return nil, fmt.Errorf("SAML sign-in ended at %s with %s", resp.Request.URL, resp.Status)
	}
	return jar.Cookies(u), nil
}

// readForm reads the first form of an HTML page: its absolute action and
// its hidden fields.
func readForm(resp *http.Response) (string, url.Values, error) {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formActionRE.FindStringSubmatch(string(b))
	if m == nil {
		return "", nil, fmt.Errorf("%s: no form in %.300q", resp.Status, b)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", nil, err
	}
	v := url.Values{}
	for _, h := range anyHiddenRE.FindAllStringSubmatch(string(b), -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return action.String(), v, nil
}
