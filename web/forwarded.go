package web

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
)

// TrustedProxies are the peers whose forwarding headers (X-Forwarded-*,
// X-Original-URL) groupgate believes. A request from any other address has
// those headers ignored: a client could otherwise claim any host, scheme or
// IP. A nil *TrustedProxies trusts nobody. It is immutable and safe for
// concurrent use.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies reads IP addresses ("10.0.0.7", "::1") and CIDR
// prefixes ("10.0.0.0/8", "fd00::/8"). IPv4-mapped IPv6 peers match IPv4
// entries. Every bad entry is named in one groupgate.Invalid error.
func ParseTrustedProxies(entries []string) (*TrustedProxies, error) {
	t := &TrustedProxies{}
	var bad []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				bad = append(bad, strconv.Quote(e))
				continue
			}
			if p.Addr().Is4In6() {
				// ::ffff:10.0.0.0/104 means 10.0.0.0/8; shorter ones
				// mix families and are more likely a typo than a wish.
				if p.Bits() < 96 {
					bad = append(bad, strconv.Quote(e))
					continue
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			t.prefixes = append(t.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			bad = append(bad, strconv.Quote(e))
			continue
		}
		a = a.Unmap()
		t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(bad) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid,
			"trusted proxies: %s: want IP addresses or CIDR prefixes", strings.Join(bad, ", "))
	}
	return t, nil
}

// Contains reports whether addr is a trusted proxy.
func (t *TrustedProxies) Contains(addr netip.Addr) bool {
	if t == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedPeer parses r.RemoteAddr ("ip:port", or a bare IP as some test
// servers and listeners give); the zero Addr when it is neither (a Unix
// socket, say).
func forwardedPeer(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// ClientIP returns the address of the client behind any trusted proxies:
// r.RemoteAddr when that is not a trusted proxy; otherwise the right-most
// X-Forwarded-For entry that is not a trusted proxy, since every entry left
// of the first untrusted one may have been written by the client. When the
// whole chain is trusted, its left-most entry. An entry that does not parse
// stops the walk at the last address known good. The zero Addr means the
// peer address itself is unknown.
func ClientIP(r *http.Request, trusted *TrustedProxies) netip.Addr {
	ip := forwardedPeer(r)
	if !trusted.Contains(ip) {
		return ip
	}
	var hops []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(line, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		ip = hop.Unmap().WithZone("")
		if !trusted.Contains(ip) {
			return ip
		}
	}
	return ip
}

// OriginalURL reconstructs the URL the browser asked for, for the `rd` of a
// login that forward-auth or reverse-proxy mode starts. The result is only a
// suggestion: always pass it through RedirectPolicy.Validate.
//
// When r comes from a trusted proxy that says where the request was going,
// the URL is built from X-Forwarded-Proto, X-Forwarded-Host and
// X-Forwarded-Uri (Traefik, Caddy) or X-Original-URL (nginx; a full URL or a
// path), and the bool is true. A header the proxy sent more than once or as
// a comma-separated list is ignored: a trusted proxy overwrites these
// headers, and a list means it appended to what the client sent.
//
// Otherwise (no trusted proxy, or one that sent none of the headers that
// locate the request) the forwarding headers are ignored and the URL is
// r's own request URI on publicURL's scheme and host (r's Host and TLS
// state when publicURL is nil), and the bool is false.
func OriginalURL(r *http.Request, trusted *TrustedProxies, publicURL *url.URL) (string, bool) {
	scheme, host := forwardedDefaultOrigin(r, publicURL)
	uri := r.URL.RequestURI()
	if !trusted.Contains(forwardedPeer(r)) {
		return scheme + "://" + host + uri, false
	}
	fwdHost := forwardedSingle(r, "X-Forwarded-Host")
	if fwdHost != "" && !forwardedHostOK(fwdHost) {
		fwdHost = ""
	}
	fwdURI := forwardedSingle(r, "X-Forwarded-Uri")
	if !forwardedPathOK(fwdURI) {
		fwdURI = ""
	}
	var origScheme, origHost, origURI string
	if orig := forwardedSingle(r, "X-Original-URL"); forwardedPathOK(orig) {
		origURI = orig
	} else if u, err := url.Parse(orig); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
		u.User == nil && forwardedHostOK(u.Host) && forwardedPathOK(u.RequestURI()) {
		origScheme, origHost, origURI = u.Scheme, u.Host, u.RequestURI()
	}
	if fwdHost == "" && fwdURI == "" && origURI == "" {
		return scheme + "://" + host + uri, false
	}
	switch proto := strings.ToLower(forwardedSingle(r, "X-Forwarded-Proto")); {
	case proto == "http" || proto == "https":
		scheme = proto
	case origScheme != "":
		scheme = origScheme
	}
	switch {
	case fwdHost != "":
		host = fwdHost
	case origHost != "":
		host = origHost
	case forwardedHostOK(r.Host):
		host = r.Host
	}
	switch {
	case fwdURI != "":
		uri = fwdURI
	case origURI != "":
		uri = origURI
	}
	return scheme + "://" + host + uri, true
}

// forwardedDefaultOrigin is where r went when no proxy says otherwise.
func forwardedDefaultOrigin(r *http.Request, publicURL *url.URL) (scheme, host string) {
	if publicURL != nil && publicURL.Host != "" && (publicURL.Scheme == "http" || publicURL.Scheme == "https") {
		return publicURL.Scheme, publicURL.Host
	}
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme, r.Host
}

// forwardedSingle returns header name when it was sent exactly once with
// one value, trimmed; "" otherwise.
func forwardedSingle(r *http.Request, name string) string {
	vs := r.Header.Values(name)
	if len(vs) != 1 || strings.Contains(vs[0], ",") {
		return ""
	}
	return strings.TrimSpace(vs[0])
}

// forwardedHostOK accepts a plain "host[:port]" or "[v6][:port]": nothing
// that could smuggle a path, userinfo or a header.
func forwardedHostOK(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// forwardedPathOK accepts an origin-form request target (RFC 9112 §3.2.1):
// "/" then printable ASCII without spaces or backslashes.
func forwardedPathOK(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
