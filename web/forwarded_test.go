package web

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/groupgate/groupgate"
)

func testTrustedProxies(t *testing.T) *TrustedProxies {
	t.Helper()
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", " fd00::/8 ", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatalf("ParseTrustedProxies: %v", err)
	}
	return tp
}

func TestTrustedProxiesContains(t *testing.T) {
	tp := testTrustedProxies(t)
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.0.2.7", true},
		{"192.0.2.8", false},
		{"::ffff:10.9.9.9", true},
		{"fd12::1", true},
		{"fe80::1", false},
		{"172.16.5.5", true},
		{"172.32.0.1", false},
	}
	for _, tt := range tests {
		name := "an address outside every entry is not trusted: " + tt.addr
		if tt.want {
			name = "an address inside an entry is trusted: " + tt.addr
		}
		t.Run(name, func(t *testing.T) {
			if got := tp.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	t.Run("a nil set trusts nobody", func(t *testing.T) {
		var none *TrustedProxies
		if none.Contains(netip.MustParseAddr("127.0.0.1")) {
			t.Error("nil TrustedProxies trusted an address")
		}
	})
}

func TestParseTrustedProxiesNamesEveryBadEntry(t *testing.T) {
	_, err := ParseTrustedProxies([]string{"10.0.0.1", "10.0.0.0/33", "proxy.internal", "fe80::1%eth0", "::ffff:0:0/64"})
	if !groupgate.IsCode(err, groupgate.Invalid) {
		t.Fatalf("err = %v, want invalid", err)
	}
	msg := groupgate.ErrorMessageOf(err)
	for _, want := range []string{`"10.0.0.0/33"`, `"proxy.internal"`, `"fe80::1%eth0"`, `"::ffff:0:0/64"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %s", msg, want)
		}
	}
	if strings.Contains(msg, `"10.0.0.1"`) {
		t.Errorf("message %q blames a good entry", msg)
	}
}

func forwardedRequest(remote, target string, headers map[string][]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	for k, vs := range headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return r
}

func TestOriginalURL(t *testing.T) {
	tp := testTrustedProxies(t)
	pub, _ := url.Parse("https://sso.example.com/base")
	tests := []struct {
		name      string
		remote    string
		target    string
		headers   map[string][]string
		publicURL *url.URL
		want      string
		wantFwd   bool
	}{
		{
			name:   "Traefik's headers from a trusted proxy rebuild the URL",
			remote: "10.0.0.5:4431", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/acme/api?tab=docs"}},
			want:    "https://bsr.example.com/acme/api?tab=docs", wantFwd: true,
		},
		{
			name:   "the same headers from an untrusted client are ignored",
			remote: "203.0.113.9:5555", target: "/auth?redirect=1",
			headers: map[string][]string{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"evil.com"}, "X-Forwarded-Uri": {"/phish"}},
			want:    "https://sso.example.com/auth?redirect=1", wantFwd: false,
		},
		{
			name:   "nginx's full X-Original-URL is used",
			remote: "192.0.2.7:80", target: "/auth",
			headers: map[string][]string{"X-Original-URL": {"https://bsr.example.com:8443/acme?x=1"}},
			want:    "https://bsr.example.com:8443/acme?x=1", wantFwd: true,
		},
		{
			name:   "a path-only X-Original-URL takes proto and host from the other headers",
			remote: "192.0.2.7:80", target: "/auth",
			headers: map[string][]string{"X-Original-URL": {"/acme"}, "X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Proto": {"http"}},
			want:    "http://bsr.example.com/acme", wantFwd: true,
		},
		{
			name:   "X-Forwarded-Uri wins over X-Original-URL",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Uri": {"/from-uri"}, "X-Original-URL": {"https://other.example.com/from-original"}, "X-Forwarded-Host": {"bsr.example.com"}},
			want:    "https://bsr.example.com/from-uri", wantFwd: true,
		},
		{
			name:   "a missing proto falls back to public_url's scheme",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://bsr.example.com/x", wantFwd: true,
		},
		{
			name:   "a missing host falls back to the request's Host",
			remote: "10.0.0.5:1", target: "http://app.internal/auth",
			headers: map[string][]string{"X-Forwarded-Uri": {"/x"}, "X-Forwarded-Proto": {"https"}},
			want:    "https://app.internal/x", wantFwd: true,
		},
		{
			name:   "a trusted proxy that sends no locating header is treated like a direct request",
			remote: "10.0.0.5:1", target: "/repos?x=1",
			headers: map[string][]string{"X-Forwarded-Proto": {"http"}},
			want:    "https://sso.example.com/repos?x=1", wantFwd: false,
		},
		{
			name:   "an appended, comma-separated host is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"evil.com, bsr.example.com"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://example.com/x", wantFwd: true,
		},
		{
			name:   "a host sent twice is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"evil.com", "bsr.example.com"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://example.com/x", wantFwd: true,
		},
		{
			name:   "a host with userinfo or a path is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"bsr.example.com@evil.com/x"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://example.com/x", wantFwd: true,
		},
		{
			name:   "a URI that is not a path is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"//evil.com/x"}},
			want:    "https://bsr.example.com//evil.com/x", wantFwd: true,
		},
		{
			name:   "a URI with a backslash or space is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/\\evil.com x"}},
			want:    "https://bsr.example.com/auth", wantFwd: true,
		},
		{
			name:   "an unknown proto is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Proto": {"javascript"}, "X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://bsr.example.com/x", wantFwd: true,
		},
		{
			name:   "an X-Original-URL with another scheme is ignored",
			remote: "10.0.0.5:1", target: "/auth",
			headers: map[string][]string{"X-Original-URL": {"javascript://bsr.example.com/%0aalert(1)"}},
			want:    "https://sso.example.com/auth", wantFwd: false,
		},
		{
			name:   "a trusted IPv6 proxy is believed",
			remote: "[fd00::1]:443", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"bsr.example.com"}, "X-Forwarded-Uri": {"/v6"}},
			want:    "https://bsr.example.com/v6", wantFwd: true,
		},
		{
			name:   "without public_url a direct request uses its own Host and TLS state",
			remote: "203.0.113.9:5555", target: "https://app.example.com/x?y",
			publicURL: &url.URL{}, want: "https://app.example.com/x?y", wantFwd: false,
		},
		{
			name:   "a Unix-socket peer is not trusted",
			remote: "@", target: "/auth",
			headers: map[string][]string{"X-Forwarded-Host": {"evil.com"}, "X-Forwarded-Uri": {"/x"}},
			want:    "https://sso.example.com/auth", wantFwd: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := forwardedRequest(tt.remote, tt.target, tt.headers)
			if strings.HasPrefix(tt.target, "https:") {
				r.TLS = &tls.ConnectionState{}
			}
			p := pub
			if tt.publicURL != nil {
				p = tt.publicURL
			}
			got, fwd := OriginalURL(r, tp, p)
			if got != tt.want || fwd != tt.wantFwd {
				t.Errorf("OriginalURL = %q, %v; want %q, %v", got, fwd, tt.want, tt.wantFwd)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	tp := testTrustedProxies(t)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{name: "a direct client is its peer address", remote: "203.0.113.9:1", want: "203.0.113.9"},
		{name: "a direct client cannot claim another address", remote: "203.0.113.9:1", xff: []string{"1.2.3.4"}, want: "203.0.113.9"},
		{name: "behind a trusted proxy the forwarded client counts", remote: "10.0.0.5:1", xff: []string{"198.51.100.4"}, want: "198.51.100.4"},
		{name: "the right-most untrusted hop wins over what the client wrote", remote: "10.0.0.5:1", xff: []string{"1.2.3.4, 198.51.100.4, 10.0.0.9"}, want: "198.51.100.4"},
		{name: "several header lines form one chain", remote: "10.0.0.5:1", xff: []string{"1.2.3.4", "198.51.100.4"}, want: "198.51.100.4"},
		{name: "a fully trusted chain gives its left-most entry", remote: "10.0.0.5:1", xff: []string{"10.0.0.1, 10.0.0.2"}, want: "10.0.0.1"},
		{name: "a garbage entry stops at the last good address", remote: "10.0.0.5:1", xff: []string{"1.2.3.4, garbage, 10.0.0.9"}, want: "10.0.0.9"},
		{name: "a trusted proxy without the header is the client", remote: "10.0.0.5:1", want: "10.0.0.5"},
		{name: "an IPv4-mapped peer is unmapped", remote: "[::ffff:203.0.113.9]:1", want: "203.0.113.9"},
		{name: "a bare IP as RemoteAddr works", remote: "203.0.113.9", want: "203.0.113.9"},
		{name: "an unparseable peer is unknown", remote: "@", xff: []string{"1.2.3.4"}, want: "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := forwardedRequest(tt.remote, "/", map[string][]string{"X-Forwarded-For": tt.xff})
			if got := ClientIP(r, tp).String(); got != tt.want {
				t.Errorf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
