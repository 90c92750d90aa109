package claims

import (
	"maps"
	"strings"

	"github.com/groupgate/groupgate"
)

// Default OIDC claim names (OpenID Connect Core 1.0 §5.1).
const (
	DefaultUsernameClaim = "preferred_username"
	DefaultEmailClaim    = "email"
	DefaultNameClaim     = "name"
	DefaultGroupsClaim   = "groups"
)

// OIDCOptions says where a provider puts what. Empty claim names take the
// defaults above. Every claim name is resolved by LookupClaim: the exact
// name first, then a dotted path.
type OIDCOptions struct {
	GroupsClaim   string
	UsernameClaim string
	EmailClaim    string
	NameClaim     string
	// Filter hides groups outside the configured include/exclude lists;
	// nil allows every group.
	Filter *Filter
}

// FromOIDC normalizes the verified claims of an OIDC login (the ID token's,
// or the result of MergeUserInfo when groups come from UserInfo).
//
// The subject is "sub", required. The username is the username claim,
// falling back to the email, then the subject (ARCHITECTURE.md §7).
// EmailVerified is the email_verified claim, true or "true", and only when
// the email is read from the standard "email" claim it speaks of.
//
// A missing groups claim is not an error: an OIDC login without groups gets
// an empty group set and GroupsPresent=false (ARCHITECTURE.md §1.2). The one
// exception is Entra ID's group overage (too many groups for a token): the
// claim is then absent and "_claim_names" points at it instead, or
// "hasgroups" says there are some, and
// FromOIDC returns an error matching ErrGroupOverage rather than silently
// taking every group-derived role away from the user.
//
// Errors are *groupgate.Error: Invalid for a missing subject, Forbidden
// (wrapping ErrGroupOverage) for an overage.
func FromOIDC(provider string, claims map[string]any, opts OIDCOptions) (groupgate.Identity, error) {
	sub, _ := claims["sub"].(string)
	if strings.TrimSpace(sub) == "" {
		return groupgate.Identity{}, groupgate.Errorf(groupgate.Invalid,
			"the identity provider %q sent no subject (sub claim)", provider)
	}
	groupsClaim := orDefault(opts.GroupsClaim, DefaultGroupsClaim)
	id := groupgate.Identity{
		Provider:    provider,
		Subject:     sub,
		Username:    lookupString(claims, orDefault(opts.UsernameClaim, DefaultUsernameClaim)),
		Email:       lookupString(claims, orDefault(opts.EmailClaim, DefaultEmailClaim)),
		DisplayName: lookupString(claims, orDefault(opts.NameClaim, DefaultNameClaim)),
	}
	// email_verified (OpenID Connect Core 1.0 §5.1) speaks of the "email"
	// claim only: an address read from another claim is not covered.
	if orDefault(opts.EmailClaim, DefaultEmailClaim) == DefaultEmailClaim && id.Email != "" {
		id.EmailVerified = isTrue(claims["email_verified"])
	}
	if id.Username == "" {
		id.Username = id.Email
	}
	if id.Username == "" {
		id.Username = sub
	}
	v, present := LookupClaim(claims, groupsClaim)
	if !present && (distributedClaim(claims, groupsClaim) || hasGroupsMarker(claims, groupsClaim)) {
		return groupgate.Identity{}, groupgate.WrapError(groupgate.Forbidden, ErrGroupOverage,
			"the identity provider %q sent a reference to the groups instead of the groups (too many groups); "+
				"have it emit only the groups assigned to this application", provider)
	}
	id.GroupsPresent = present
	id.Groups, id.DroppedGroups, id.DroppedGroupCount = opts.Filter.Split(normalizeGroups(groupValues(v, nil), nil), groupgate.MaxDroppedGroups)
	return id, nil
}

// distributedClaim reports whether claims announce name as an aggregated or
// distributed claim (OpenID Connect Core 1.0 §5.6.2), as Entra ID does for
// "groups" when a user has more groups than fit in a token.
func distributedClaim(claims map[string]any, name string) bool {
	names, ok := claims["_claim_names"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = names[name]
	return ok
}

// hasGroupsMarker reports Entra ID's "hasgroups" claim, which replaces
// "groups" when even the overage reference would not fit (implicit flows):
// the user is in groups that must be read from Microsoft Graph.
func hasGroupsMarker(claims map[string]any, name string) bool {
	return name == DefaultGroupsClaim && isTrue(claims["hasgroups"])
}

// OverageLink returns the endpoint that claims name for the distributed
// claim name (OpenID Connect Core 1.0 §5.6.2: "_claim_names" maps the
// claim to a source in "_claim_sources", whose "endpoint" serves it), or
// "" when there is none, as with "hasgroups". The caller decides whether
// to trust the endpoint: it comes from the signed ID token, but holds a
// URL that a bearer token would be sent to.
func OverageLink(claims map[string]any, name string) string {
	if name == "" {
		name = DefaultGroupsClaim
	}
	names, _ := claims["_claim_names"].(map[string]any)
	src, _ := names[name].(string)
	sources, _ := claims["_claim_sources"].(map[string]any)
	s, _ := sources[src].(map[string]any)
	endpoint, _ := s["endpoint"].(string)
	return endpoint
}

// MergeUserInfo returns the claims to normalize when a provider delivers
// groups (or anything else) through the UserInfo endpoint: the ID token's
// claims with the UserInfo claims laid over them, key by key at the top
// level. A nested object such as "realm_access" is taken whole from UserInfo
// rather than merged, so one login never mixes groups from two sources.
// Neither input is modified.
//
// OpenID Connect Core 1.0 §5.3.2: the UserInfo "sub" must equal the ID
// token's, or the UserInfo response must not be used; a missing or different
// "sub" is a groupgate.Unauthenticated error.
func MergeUserInfo(idToken, userInfo map[string]any) (map[string]any, error) {
	want, _ := idToken["sub"].(string)
	got, _ := userInfo["sub"].(string)
	if want == "" || got != want {
		return nil, groupgate.Errorf(groupgate.Unauthenticated,
			"the UserInfo response is for another subject than the ID token")
	}
	merged := make(map[string]any, len(idToken)+len(userInfo))
	maps.Copy(merged, idToken)
	maps.Copy(merged, userInfo)
	return merged, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isTrue reads a boolean claim: JSON true, or the string "true" in any
// case, which some IdPs send. Anything else is false.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return false
}
