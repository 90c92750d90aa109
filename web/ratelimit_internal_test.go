package web

import (
	"net/netip"
	"net/url"
	"testing"
	"time"
)

// FuzzHasQueryKey: the limiter must never take a query for one without a
// provider when handleLogin (url.ParseQuery) would find one, or a login
// start would store an attempt uncharged.
func FuzzHasQueryKey(f *testing.F) {
	for _, seed := range []string{
		"provider=demo", "rd=/x&provider=demo", "provider=", "providers=x", "prov%69der=demo",
		"provider%3Dx=1", "a=1;provider=x", "provider=demo&provider=other", "%zz=1&provider=x", "+provider=x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		if _, ok := q["provider"]; ok && !hasQueryKey(raw, "provider") {
			t.Fatalf("url.ParseQuery(%q) names provider, hasQueryKey does not", raw)
		}
	})
}

func TestLoginLimiterRing(t *testing.T) {
	l := newLoginLimiter(LoginLimits{PerClientBurst: 10, PerClientPerMinute: 60, MaxLive: 3, AttemptTTL: time.Minute})
	t0 := time.Unix(1_000_000, 0)
	client := func(i int) netip.Prefix { return clientKey(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})) }
	steps := []struct {
		at     time.Duration
		ok     bool
		reason string
		retry  time.Duration
	}{
		{0, true, "", 0},
		{10 * time.Second, true, "", 0},
		{20 * time.Second, true, "", 0},
		{30 * time.Second, false, refusedGlobal, 30 * time.Second}, // the first expires at 60s
		{60 * time.Second, true, "", 0},                            // it did; the ring wraps
		{61 * time.Second, false, refusedGlobal, 9 * time.Second},
		{70 * time.Second, true, "", 0},
		{80 * time.Second, true, "", 0},
		{85 * time.Second, false, refusedGlobal, 35 * time.Second},
	}
	for i, s := range steps {
		ok, reason, retry := l.admit(client(i), t0.Add(s.at))
		if ok != s.ok || reason != s.reason || retry != s.retry {
			t.Fatalf("step %d at %v: admit = %v %q %v, want %v %q %v", i, s.at, ok, reason, retry, s.ok, s.reason, s.retry)
		}
	}
	if n := l.live(t0.Add(85 * time.Second)); n != 3 {
		t.Fatalf("live = %d, want 3", n)
	}
	if n := l.live(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("live an hour later = %d, want 0", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(t0.Add(time.Hour), true)
	if len(l.clients) != 0 {
		t.Fatalf("%d client buckets kept after they refilled, want none", len(l.clients))
	}
}
