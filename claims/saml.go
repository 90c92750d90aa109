package claims

import (
	"strings"

	"github.com/groupgate/groupgate"
)

// Attribute names worth knowing.
const (
	// EntraGroupsAttribute is where Microsoft Entra ID puts group object IDs
	// (or names, when so configured) in a SAML assertion.
	EntraGroupsAttribute = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	// EntraGroupsLinkAttribute replaces the groups when a user has more than
	// Entra puts in one assertion (150): the "group overage" claim.
	EntraGroupsLinkAttribute = "http://schemas.microsoft.com/claims/groups.link"

	DefaultGroupsAttribute = "groups"
	DefaultEmailAttribute  = "email"
)

// SAMLOptions says which assertion attributes (matched by their exact Name,
// SAML core §2.7.3.1) carry what. GroupsAttribute defaults to "groups" and
// EmailAttribute to "email"; an empty UsernameAttribute or NameAttribute is
// not read.
type SAMLOptions struct {
	GroupsAttribute string
	// Delimiter, when set, splits each groups value, for IdPs that send one
	// value "eng,ops" instead of one value per group.
	Delimiter         string
	UsernameAttribute string
	EmailAttribute    string
	NameAttribute     string
	// Filter hides groups outside the configured include/exclude lists;
	// nil allows every group.
	Filter *Filter
}

// FromSAML normalizes the attributes of a verified SAML assertion. The
// subject is the NameID, required.
//
// A SAML login must carry groups (ARCHITECTURE.md §1.2): an absent groups
// attribute, or one whose values are all empty or whitespace (or otherwise
// unusable as names, see normalizeGroups), is an error
// matching ErrNoGroups; an Entra overage link is one matching
// ErrGroupOverage (and so ErrNoGroups too). Groups that the IdP did send but
// the filter hides are not "no groups": the login succeeds with
// GroupsPresent=true and an empty set, since the IdP answered and the
// operator chose not to see those groups.
//
// Errors are *groupgate.Error: Invalid for a missing NameID, Forbidden
// (wrapping ErrNoGroups or ErrGroupOverage) for missing groups.
func FromSAML(provider, nameID string, attrs map[string][]string, opts SAMLOptions) (groupgate.Identity, error) {
	if strings.TrimSpace(nameID) == "" {
		return groupgate.Identity{}, groupgate.Errorf(groupgate.Invalid,
			"the identity provider %q sent no subject (NameID)", provider)
	}
	if _, overage := attrs[EntraGroupsLinkAttribute]; overage {
		return groupgate.Identity{}, groupgate.WrapError(groupgate.Forbidden, ErrGroupOverage,
			"the identity provider %q sent a link to the groups instead of the groups (too many groups); "+
				"have it emit only the groups assigned to this application", provider)
	}
	groupsAttr := orDefault(opts.GroupsAttribute, DefaultGroupsAttribute)
	var raw []string
	for _, v := range attrs[groupsAttr] {
		if opts.Delimiter != "" {
			raw = append(raw, strings.Split(v, opts.Delimiter)...)
		} else {
			raw = append(raw, v)
		}
	}
	// Filtered in two steps so that "sent nothing usable" (refused) stays
	// apart from "sent groups the operator hides" (allowed, empty set).
	sent := normalizeGroups(raw, nil)
	if len(sent) == 0 {
		return groupgate.Identity{}, groupgate.WrapError(groupgate.Forbidden, ErrNoGroups,
			"the identity provider %q sent no group information (attribute %q); "+
				"ask its administrator to release the groups attribute to this application", provider, groupsAttr)
	}
	id := groupgate.Identity{
		Provider:      provider,
		Subject:       nameID,
		Username:      firstValue(attrs, opts.UsernameAttribute),
		Email:         firstValue(attrs, orDefault(opts.EmailAttribute, DefaultEmailAttribute)),
		DisplayName:   firstValue(attrs, opts.NameAttribute),
		GroupsPresent: true,
	}
	id.Groups, id.DroppedGroups, id.DroppedGroupCount = opts.Filter.Split(sent, groupgate.MaxDroppedGroups)
	if id.Username == "" {
		id.Username = id.Email
	}
	if id.Username == "" {
		id.Username = nameID
	}
	return id, nil
}

// firstValue returns the first non-blank value of attribute name, trimmed.
func firstValue(attrs map[string][]string, name string) string {
	if name == "" {
		return ""
	}
	for _, v := range attrs[name] {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
