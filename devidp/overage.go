package devidp

import (
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Overage makes the demo OIDC provider behave as Microsoft Entra ID does
// for users in more groups than fit in a token: instead of the "groups"
// claim, it sends a reference to Microsoft Graph ("_claim_names" and
// "_claim_sources", OpenID Connect Core 1.0 §5.6.2) or the "hasgroups"
// marker, and the relying party must read the groups from Graph with the
// access token. Tests serve Graph themselves (internal/fakegraph).
type Overage struct {
	// Threshold: a user in more groups than this gets the overage claims
	// instead of the groups (Entra: 200 in a JWT).
	Threshold int
	// GraphURL is the Graph root the source endpoint points at, as
	// {GraphURL}/v1.0/users/{sub}/getMemberObjects. Empty names the
	// retired Azure AD Graph instead
	// (https://graph.windows.net/{tenant}/users/{sub}/getMemberObjects),
	// as older Entra tenants still send.
	GraphURL string
	// HasGroups sends "hasgroups": true and no source at all, as Entra
	// does when even the reference would not fit.
	HasGroups bool
}

// legacyGraph is the retired Azure AD Graph root with a demo tenant.
const legacyGraph = "https://graph.windows.net/devidp-tenant"

// apply puts the overage claims for u into info and reports whether it
// did; the caller then leaves the groups out.
func (o *Overage) apply(info *oidc.UserInfo, u User) bool {
	if o == nil || len(u.Groups) <= o.Threshold {
		return false
	}
	if o.HasGroups {
		info.AppendClaims("hasgroups", true)
		return true
	}
	endpoint := legacyGraph + "/users/" + u.Subject + "/getMemberObjects"
	if o.GraphURL != "" {
		endpoint = strings.TrimSuffix(o.GraphURL, "/") + "/v1.0/users/" + u.Subject + "/getMemberObjects"
	}
	info.AppendClaims("_claim_names", map[string]any{groupsClaim: "src1"})
	info.AppendClaims("_claim_sources", map[string]any{"src1": map[string]any{"endpoint": endpoint}})
	return true
}
