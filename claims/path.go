package claims

import "strings"

// LookupClaim finds the claim called name in claims. The exact name is tried
// first, so URL-shaped claim names such as "https://example.com/groups" work
// although they contain dots. Otherwise name is read as a dotted path into
// nested objects ("realm_access.roles", "resource_access.app.roles"); at each
// level a key that itself contains dots is also tried, shortest first, so
// "https://example.com/claims.groups" resolves whether the URL is one key
// holding an object with "groups" or the whole string is one key.
//
// The search cannot blow up: claims decoded from JSON form a tree, every
// object is reached by exactly one chain of keys, so each object is visited
// at most once for a given name.
func LookupClaim(claims map[string]any, name string) (any, bool) {
	if claims == nil || name == "" {
		return nil, false
	}
	if v, ok := claims[name]; ok {
		return v, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		head, rest := name[:i], name[i+1:]
		if head == "" || rest == "" {
			continue
		}
		inner, ok := asObject(claims[head])
		if !ok {
			continue
		}
		if v, ok := LookupClaim(inner, rest); ok {
			return v, true
		}
	}
	return nil, false
}

// asObject accepts the object shapes a claims map may hold: decoded JSON
// objects and the map[string][]string some libraries build.
func asObject(v any) (map[string]any, bool) {
	switch o := v.(type) {
	case map[string]any:
		return o, true
	case map[string][]string:
		m := make(map[string]any, len(o))
		for k, vs := range o {
			m[k] = vs
		}
		return m, true
	}
	return nil, false
}

// lookupString returns the trimmed string claim called name, or "" when it
// is absent or not a string.
func lookupString(claims map[string]any, name string) string {
	v, ok := LookupClaim(claims, name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		return ""
	}
	return strings.TrimSpace(s)
}
