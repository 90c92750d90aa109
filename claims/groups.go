package claims

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// groupValues flattens the shapes IdPs use for a groups claim into raw
// names: a string; a number (Entra, some LDAP-backed IdPs send numeric IDs),
// written as its decimal text; an object, named by the first non-empty of
// "name", "displayName" and "value" (SCIM-style group objects); or an array
// of any of these, nested arrays included. Nulls, booleans and objects
// without a name contribute nothing.
func groupValues(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		return append(out, x)
	case []string:
		return append(out, x...)
	case []any:
		for _, e := range x {
			out = groupValues(e, out)
		}
		return out
	case map[string]any:
		for _, key := range []string{"name", "displayName", "value"} {
			if s, ok := scalarText(x[key]); ok && strings.TrimSpace(s) != "" {
				return append(out, s)
			}
		}
		return out
	case []map[string]any:
		for _, e := range x {
			out = groupValues(e, out)
		}
		return out
	}
	if s, ok := scalarText(v); ok {
		return append(out, s)
	}
	return out
}

// scalarText renders a string or number claim value as text.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		// 'f' with -1 precision: 12345 stays "12345", never "1.2345e+04".
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return scalarText(float64(x))
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}

// normalizeGroups trims every name, drops empty ones and ones that no
// header or page could carry (control characters, invalid UTF-8; no IdP
// sends those for a real group), removes duplicates (names are compared
// exactly: group names are case-sensitive), keeps what the filter allows
// and sorts the result. It never returns nil, so an empty set is still a set.
func normalizeGroups(names []string, f *Filter) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || !printableName(n) || !f.Allowed(n) {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func printableName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
