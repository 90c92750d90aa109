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

// Requirement is what a route asks of a signed-in caller beyond the
// session: a role on an organization or on a repository, and/or
// membership of a group. Every part that is set must hold.
type Requirement struct {
	// Org and OrgRole: at least OrgRole on the organization named Org.
	Org     string
	OrgRole groupgate.OrgRole
	// Repo ("org/name") and RepoRole: at least RepoRole on the repository,
	// where ADMIN or OWNER of its organization counts as ADMIN.
	Repo     string
	RepoRole groupgate.RepoRole
	// Group: the caller's group set holds this name (exact, as the IdP
	// sends it).
	Group string
}

// IsZero reports whether r asks for nothing beyond a session.
func (r Requirement) IsZero() bool { return r.Org == "" && r.Repo == "" && r.Group == "" }

// ParseRequirement builds a Requirement from its four spellings, shared by
// /auth's query (?org=acme&min_role=WRITER) and the configuration's
// upstream_routes. minRole takes the BSR's enum names or their short forms
// (ORGANIZATION_ROLE_WRITER or WRITER; REPOSITORY_ROLE_READ or READ), and
// defaults to the lowest role (MEMBER, READ): any role at all. Invalid,
// with a message that names the problem, for anything else.
func ParseRequirement(org, repo, group, minRole string) (Requirement, error) {
	var req Requirement
	switch {
	case org != "" && repo != "":
		return req, groupgate.Errorf(groupgate.Invalid, "org and repo cannot be combined (min_role would be ambiguous); require the repository, or the organization")
	case minRole != "" && org == "" && repo == "":
		return req, groupgate.Errorf(groupgate.Invalid, "min_role needs org or repo")
	}
	if org != "" {
		if err := checkRequiredName("org", org); err != nil {
			return req, err
		}
		if strings.Contains(org, "/") {
			return req, groupgate.Errorf(groupgate.Invalid, "org %q must be an organization name (for a repository, use repo=org/name)", org)
		}
		req.Org, req.OrgRole = org, groupgate.OrgRoleMember
		if minRole != "" {
			r, err := sync.ParseOrgRole(minRole)
			if err != nil {
				return Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "min_role: %s", groupgate.ErrorMessageOf(err))
			}
			req.OrgRole = r
		}
	}
	if repo != "" {
		if err := checkRequiredName("repo", repo); err != nil {
			return req, err
		}
		if o, n, ok := strings.Cut(repo, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
			return req, groupgate.Errorf(groupgate.Invalid, "repo %q must be a full name such as acme/api", repo)
		}
		req.Repo, req.RepoRole = repo, groupgate.RepoRoleRead
		if minRole != "" {
			r, err := sync.ParseRepoRole(minRole)
			if err != nil {
				return Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "min_role: %s", groupgate.ErrorMessageOf(err))
			}
			req.RepoRole = r
		}
	}
	if group != "" {
		if err := checkRequiredName("group", group); err != nil {
			return Requirement{}, err
		}
		req.Group = group
	}
	return req, nil
}

// checkRequiredName bounds a name as the store bounds names, so that a
// requirement that can never hold is refused rather than silently denying
// everyone.
func checkRequiredName(key, v string) error {
	if strings.TrimSpace(v) != v || len(v) > 4*groupgate.MaxNameLen {
		return groupgate.Errorf(groupgate.Invalid, "%s %q has surrounding spaces or is too long", key, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return groupgate.Errorf(groupgate.Invalid, "%s holds a control character", key)
		}
	}
	return nil
}

// Check reports whether m satisfies r and, when it does not, why, in words
// for the logs (names encoded as the identity headers encode them).
func (r Requirement) Check(m groupgate.Memberships) (ok bool, reason string) {
	if r.Org != "" {
		has := lookupFold(m.OrgRoles, r.Org)
		if sync.OrgRoleRank(has) < sync.OrgRoleRank(r.OrgRole) {
			return false, fmt.Sprintf("requires %s on organization %s, has %s", r.OrgRole, encodeName(r.Org), roleOrNone(string(has)))
		}
	}
	if r.Repo != "" {
		has := sync.SnapshotRepoRole(m, canonicalRepo(m, r.Repo))
		if sync.RepoRoleRank(has) < sync.RepoRoleRank(r.RepoRole) {
			return false, fmt.Sprintf("requires %s on repository %s, has %s", r.RepoRole, encodeName(r.Repo), roleOrNone(string(has)))
		}
	}
	if r.Group != "" && !slices.Contains(m.Groups, r.Group) {
		return false, "requires membership of group " + encodeName(r.Group)
	}
	return true, ""
}

// lookupFold finds name in roles, or, failing that, a name equal to it up
// to case: the store treats organization and repository names as
// case-insensitive, so /auth?org=ACME means acme.
func lookupFold[R ~string](roles map[string]R, name string) R {
	if r, ok := roles[name]; ok {
		return r
	}
	for k, r := range roles {
		if strings.EqualFold(k, name) {
			return r
		}
	}
	return ""
}

// canonicalRepo spells repo ("org/name") as the snapshot does, matching
// both parts up to case, so that SnapshotRepoRole finds the repository
// and its organization.
func canonicalRepo(m groupgate.Memberships, repo string) string {
	if _, ok := m.RepoRoles[repo]; ok {
		return repo
	}
	for k := range m.RepoRoles {
		if strings.EqualFold(k, repo) {
			return k
		}
	}
	org, name, _ := strings.Cut(repo, "/")
	for k := range m.OrgRoles {
		if strings.EqualFold(k, org) {
			return k + "/" + name
		}
	}
	return repo
}

func roleOrNone(r string) string {
	if r == "" {
		return "none"
	}
	return r
}

// authQueryKeys are the parameters /auth understands. Any other is refused:
// a misspelt requirement (?grop=eng) must not let everyone through.
var authQueryKeys = []string{"redirect", "org", "repo", "group", "min_role"}

// parseAuthQuery reads /auth's parameters: whether to redirect an
// anonymous browser to the login, and what the route requires. Invalid for
// an unknown or repeated parameter and for a requirement ParseRequirement
// refuses.
func parseAuthQuery(rawQuery string) (redirect bool, req Requirement, err error) {
	if rawQuery == "" {
		// The common case: no allocation.
		return false, Requirement{}, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return false, Requirement{}, groupgate.WrapError(groupgate.Invalid, err, "the query string does not parse")
	}
	for k, vs := range q {
		if !slices.Contains(authQueryKeys, k) {
			return false, Requirement{}, groupgate.Errorf(groupgate.Invalid, "unknown parameter %q (/auth takes %s)", k, strings.Join(authQueryKeys, ", "))
		}
		if len(vs) > 1 {
			return false, Requirement{}, groupgate.Errorf(groupgate.Invalid, "parameter %q is given %d times; give it once", k, len(vs))
		}
	}
	for _, k := range []string{"org", "repo", "group", "min_role"} {
		if vs, ok := q[k]; ok && vs[0] == "" {
			return false, Requirement{}, groupgate.Errorf(groupgate.Invalid, "parameter %q is empty", k)
		}
	}
	v := q.Get("redirect")
	req, err = ParseRequirement(q.Get("org"), q.Get("repo"), q.Get("group"), q.Get("min_role"))
	return v == "1" || v == "true", req, err
}

// Route is a requirement on every upstream path under PathPrefix, in
// reverse-proxy mode (configuration: upstream_routes).
type Route struct {
	// PathPrefix starts with "/". It matches the path itself and every
	// path below it: "/releases" matches /releases and /releases/v1 but
	// not /releases-old; "/releases/" matches only below it.
	PathPrefix string
	Require    Requirement
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
