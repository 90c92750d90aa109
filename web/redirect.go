package web

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
)

// RedirectPolicy decides where a login may send the browser afterwards (the
// `rd` parameter), so that groupgate is never an open redirect
// (ARCHITECTURE.md §5). It accepts two shapes only:
//
//   - a path-absolute reference on our own host: "/x?y#z";
//   - an absolute http or https URL whose host is public_url's host or one of
//     allowed_redirect_hosts.
//
// Hosts compare case-insensitively and by port: an entry without a port
// ("bsr.example.com") matches only the scheme's default port (80 for http,
// 443 for https, written or not), "bsr.example.com:8443" matches only that
// port, and "bsr.example.com:*" any port. public_url's host counts as an
// entry with public_url's port. Entries are exact names: no wildcards for
// subdomains, no trailing dot, no Unicode (write IDNs in their xn-- form).
//
// Everything else is refused, and the check is deliberately stricter than
// URL syntax: browsers repair input (they drop tabs and newlines, read "\"
// as "/", resolve "/../", decode percent escapes at the next hop), so any
// control character, whitespace, backslash, non-ASCII byte or userinfo is
// refused outright, as is a path that turns into "//" after decoding or dot
// segment removal. A RedirectPolicy is immutable and safe for concurrent use.
type RedirectPolicy struct {
	hosts []redirectHost
}

// redirectHost is one allowed authority; port is "" (the scheme's default),
// "*" (any) or a decimal port.
type redirectHost struct {
	host string
	port string
}

// redirectMaxLen caps rd: longer ones are not links a user clicked, they
// end up in a Location header, and every login start stores its rd until
// the attempt expires, so this bounds what one start can make the server
// (and Redis) hold.
const redirectMaxLen = 2048

// NewRedirectPolicy returns the policy for public_url and the
// allowed_redirect_hosts entries. Every bad entry is named in one
// groupgate.Invalid error.
func NewRedirectPolicy(publicURL *url.URL, allowedHosts []string) (*RedirectPolicy, error) {
	var problems []string
	p := &RedirectPolicy{}
	if publicURL == nil || (publicURL.Scheme != "http" && publicURL.Scheme != "https") || publicURL.Hostname() == "" {
		problems = append(problems, "public_url must be an absolute http or https URL")
	} else if h, ok := parseRedirectAuthority(strings.ToLower(publicURL.Host), false); ok {
		p.hosts = append(p.hosts, h)
	} else {
		problems = append(problems, "public_url host "+strconv.Quote(publicURL.Host)+" is not a plain host name or IP address")
	}
	for _, entry := range allowedHosts {
		h, ok := parseRedirectAuthority(strings.ToLower(strings.TrimSpace(entry)), true)
		if !ok {
			problems = append(problems, "allowed_redirect_hosts entry "+strconv.Quote(entry)+
				" is not a host name, optionally with :port or :*")
			continue
		}
		p.hosts = append(p.hosts, h)
	}
	if len(problems) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "redirect policy: %s", strings.Join(problems, "; "))
	}
	return p, nil
}

// Validate returns rd when it is a safe place to send the browser, in a
// normalized form (scheme and host lower-cased), and "/" otherwise.
func (p *RedirectPolicy) Validate(rd string) string {
	if target, ok := p.check(rd); ok {
		return target
	}
	return "/"
}

func (p *RedirectPolicy) check(rd string) (string, bool) {
	if rd == "" || len(rd) > redirectMaxLen || !redirectPlainASCII(rd) {
		return "", false
	}
	if rd[0] == '/' {
		return redirectCheckPath(rd)
	}
	lower := strings.ToLower(rd)
	var scheme string
	switch {
	case strings.HasPrefix(lower, "https://"):
		scheme = "https"
	case strings.HasPrefix(lower, "http://"):
		scheme = "http"
	default:
		// javascript:, data:, "https:evil.com", "evil.com", "%2F%2F…", …
		return "", false
	}
	rest := rd[len(scheme)+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := strings.ToLower(rest[:end])
	target, ok := parseRedirectAuthority(authority, false)
	if !ok || !p.allows(scheme, target) {
		return "", false
	}
	// Our own reading of the authority must agree with net/url's, which the
	// rest of the stack uses; any disagreement means a trick.
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" || strings.ToLower(u.Host) != authority {
		return "", false
	}
	return scheme + "://" + authority + rest[end:], true
}

// redirectCheckPath accepts "/x…" but not "//x" (a network-path reference to
// another host), including after up to three rounds of percent-decoding and
// after dot-segment removal, since the next hop (the application, another
// proxy) may decode or resolve once more.
func redirectCheckPath(rd string) (string, bool) {
	if len(rd) > 1 && rd[1] == '/' {
		return "", false
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	path := rd
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for round := 0; ; round++ {
		if strings.HasPrefix(path, "//") || strings.ContainsFunc(path, redirectBadRune) ||
			strings.HasPrefix(redirectRemoveDotSegments(path), "//") {
			return "", false
		}
		next, err := url.PathUnescape(path)
		if err != nil {
			return "", false
		}
		if next == path {
			return rd, true
		}
		if round == 3 {
			// Still encoded after three rounds: nobody links like that.
			return "", false
		}
		path = next
	}
}

// redirectBadRune is what a decoded path may not hold: characters browsers
// drop or reinterpret (controls, "\"), whitespace, and U+FFFD, which is also
// how ranging over invalid UTF-8 (say "/%FF" decoded) shows up.
func redirectBadRune(r rune) bool {
	return r < 0x21 || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || r == 0x85 || r == 0xa0 || r == 0xfffd
}

// redirectPlainASCII reports whether rd is printable ASCII without space or
// backslash: what a browser sends for a URL once it is percent-encoded.
func redirectPlainASCII(rd string) bool {
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// redirectRemoveDotSegments is RFC 3986 §5.2.4 for a path that starts with
// "/": what a browser does to "/a/../b" before requesting it.
func redirectRemoveDotSegments(in string) string {
	var out []string // output segments, each with its leading "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			// Move the first segment, "/" included, to the output.
			next := strings.IndexByte(in[1:], '/')
			if next < 0 {
				out = append(out, in)
				in = ""
			} else {
				out = append(out, in[:next+1])
				in = in[next+1:]
			}
		}
	}
	return strings.Join(out, "")
}

// parseRedirectAuthority splits a lower-cased "host[:port]" with a plain
// DNS-style name (letters, digits, "-", "_", ".") or an IP literal; IPv6 in
// brackets. It refuses userinfo, percent escapes, empty hosts or ports and
// everything non-ASCII. wildcardPort allows ":*" (configuration only).
func parseRedirectAuthority(a string, wildcardPort bool) (redirectHost, bool) {
	var h redirectHost
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return h, false
		}
		host, port = a[:end+1], a[end+1:]
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return h, false
		}
		if port != "" {
			if port[0] != ':' {
				return h, false
			}
			port = port[1:]
			if port == "" {
				return h, false
			}
		}
	} else {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i+1:]
			if port == "" {
				return h, false
			}
		}
		if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" ||
			strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
			return h, false
		}
	}
	switch {
	case port == "":
	case port == "*" && wildcardPort:
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			return h, false
		}
		port = strconv.Itoa(n)
	}
	return redirectHost{host: host, port: port}, true
}

// allows reports whether target, reached with scheme, matches an entry.
func (p *RedirectPolicy) allows(scheme string, target redirectHost) bool {
	def := "443"
	if scheme == "http" {
		def = "80"
	}
	got := target.port
	if got == "" {
		got = def
	}
	for _, h := range p.hosts {
		if h.host != target.host {
			continue
		}
		switch h.port {
		case "*":
			return true
		case "":
			if got == def {
				return true
			}
		default:
			if got == h.port {
				return true
			}
		}
	}
	return false
}
