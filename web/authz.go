package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// HeaderReason says, on a /auth answer other than 200, why: for the
// proxy's logs (nginx $upstream_http_x_auth_request_reason) and for
// whoever debugs a refusal. It never carries a secret.
const HeaderReason = "X-Auth-Request-Reason"

// reasonOf says in words, for the logs and X-Auth-Request-Reason, which
// part of a requirement the caller misses; names are encoded as the
// identity headers encode them, so the value is always a valid header.
func reasonOf(sf sync.Shortfall) string {
	if sf.Kind == sync.NeedGroup {
		return "requires membership of group " + encodeName(sf.Name)
	}
	has := sf.Has
	if has == "" {
		has = "none"
	}
	return fmt.Sprintf("requires %s on %s %s, has %s", sf.Need, sf.Kind, encodeName(sf.Name), has)
}

// check is req.Check with the reason in words.
func check(req sync.Requirement, m groupgate.Memberships) (ok bool, reason string) {
	sf, ok := req.Check(m)
	if ok {
		return true, ""
	}
	return false, reasonOf(sf)
}

// authQueryKeys are the parameters /auth understands. Any other is refused:
// a misspelt requirement (?grop=eng) must not let everyone through.
var authQueryKeys = []string{"redirect", "org", "repo", "group", "min_role"}

// parseAuthQuery reads /auth's parameters: whether to redirect an
// anonymous browser to the login, and what the route requires. Invalid for
// an unknown or repeated parameter and for a requirement sync.ParseRequirement
// refuses.
func parseAuthQuery(rawQuery string) (redirect bool, req sync.Requirement, err error) {
	if rawQuery == "" {
		// The common case: no allocation.
		return false, sync.Requirement{}, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return false, sync.Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "the query string does not parse")
	}
	for k, vs := range q {
		if !slices.Contains(authQueryKeys, k) {
			return false, sync.Requirement{}, groupgate.Errorf(groupgate.Invalid, "unknown parameter %q (/auth takes %s)", k, strings.Join(authQueryKeys, ", "))
		}
		if len(vs) > 1 {
			return false, sync.Requirement{}, groupgate.Errorf(groupgate.Invalid, "parameter %q is given %d times; give it once", k, len(vs))
		}
	}
	for _, k := range []string{"org", "repo", "group", "min_role"} {
		if vs, ok := q[k]; ok && vs[0] == "" {
			return false, sync.Requirement{}, groupgate.Errorf(groupgate.Invalid, "parameter %q is empty", k)
		}
	}
	v := q.Get("redirect")
	req, err = sync.ParseRequirement(q.Get("org"), q.Get("repo"), q.Get("group"), q.Get("min_role"))
	return v == "1" || v == "true", req, err
}

// Route is a requirement on every upstream path under PathPrefix, in
// reverse-proxy mode (configuration: upstream_routes).
type Route struct {
	// PathPrefix starts with "/". It matches the path itself and every
	// path below it: "/releases" matches /releases and /releases/v1 but
	// not /releases-old; "/releases/" matches only below it.
	PathPrefix string
	Require    sync.Requirement
}

// matches reports whether path is under the route's prefix.
func (rt Route) matches(path string) bool {
	p := rt.PathPrefix
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || strings.HasSuffix(p, "/") || path[len(p)] == '/'
}

// routeFor is the route with the longest prefix that matches path; ok is
// false when none does. Routes are few and checked per proxied request.
func routeFor(routes []Route, path string) (Route, bool) {
	best, found := Route{}, false
	for _, rt := range routes {
		if rt.matches(path) && (!found || len(rt.PathPrefix) > len(best.PathPrefix)) {
			best, found = rt, true
		}
	}
	return best, found
}

// checkRoutes refuses routes NewServer cannot apply.
func checkRoutes(cfg Config) []string {
	var problems []string
	if len(cfg.Routes) > 0 && cfg.Upstream == nil {
		problems = append(problems, "routes need an upstream (reverse-proxy mode); in auth-only mode put the requirement in /auth's query")
	}
	seen := map[string]bool{}
	for _, rt := range cfg.Routes {
		switch {
		case !strings.HasPrefix(rt.PathPrefix, "/"):
			problems = append(problems, fmt.Sprintf("route path prefix %q must start with /", rt.PathPrefix))
		case seen[rt.PathPrefix]:
			problems = append(problems, fmt.Sprintf("route path prefix %q is listed twice", rt.PathPrefix))
		case rt.Require.IsZero():
			problems = append(problems, fmt.Sprintf("route %q requires nothing", rt.PathPrefix))
		}
		seen[rt.PathPrefix] = true
	}
	return problems
}

// writeAuthRefusal answers /auth with status and the reason header, and a
// one-line body for whoever reads it by hand.
func writeAuthRefusal(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set(HeaderReason, reason)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, reason)
}
