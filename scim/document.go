package scim

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// A document is a resource's attributes as decoded JSON with canonical
// attribute names: core attributes at the top level, each extension's
// attributes in an object under its URN. id, meta and schemas are not part
// of it; they are added when rendering.
type document map[string]any

// normalize turns a request body (POST/PUT) into a document: attribute
// names are matched case-insensitively and renamed to their canonical
// spelling, values are coerced to the attribute's type (Entra sends
// booleans as "True"/"False"), null means unassigned, read-only attributes
// are ignored (RFC 7643 §7: the client cannot set them), unknown
// attributes and extensions are ignored, and password is dropped since it
// is never used.
func normalize(rt *resourceType, raw map[string]any) (document, *Error) {
	doc := document{}
	for k, v := range raw {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if s := rt.schemaByURN(k); s != nil && s != rt.Core {
			obj, ok := v.(map[string]any)
			if v == nil {
				continue
			}
			if !ok {
				return nil, badRequest(errInvalidSyntax, "%s must be an object", s.ID)
			}
			ext := map[string]any{}
			for ek, ev := range obj {
				a := s.attr(ek)
				if a == nil {
					continue
				}
				if err := setNormalized(ext, a, ev, s.ID+":"+a.Name); err != nil {
					return nil, err
				}
			}
			if len(ext) > 0 {
				doc[s.ID] = ext
			}
			continue
		}
		r, ok := rt.resolve(k)
		if !ok || r.sub != nil {
			continue
		}
		if r.ext != nil {
			ext, _ := doc[r.ext.ID].(map[string]any)
			if ext == nil {
				ext = map[string]any{}
				doc[r.ext.ID] = ext
			}
			if err := setNormalized(ext, r.attr, v, r.canonical()); err != nil {
				return nil, err
			}
			continue
		}
		if err := setNormalized(doc, r.attr, v, r.attr.Name); err != nil {
			return nil, err
		}
	}
	canonicalMulti(rt, doc)
	return doc, nil
}

// canonicalMulti makes every multi-valued complex attribute of doc hold
// each value once and at most one primary value (RFC 7643 §2.4). POST,
// PUT and PATCH all end with it, so they agree: a repeated value (by
// "value", case-insensitively where the attribute is) is merged into its
// first occurrence, as a PATCH add merges it, and of several primaries
// the last one stays primary, as the last one written wins in PATCH.
func canonicalMulti(rt *resourceType, doc document) {
	for _, s := range append([]*schema{rt.Core}, rt.Extensions...) {
		m := map[string]any(doc)
		if s != rt.Core {
			if m, _ = doc[s.ID].(map[string]any); m == nil {
				continue
			}
		}
		for _, a := range s.Attrs {
			list, ok := m[a.Name].([]any)
			if !ok || !a.Multi || a.Type != tComplex {
				continue
			}
			m[a.Name] = lastPrimary(addValues(a, nil, list))
		}
	}
}

// lastPrimary clears primary on every element but the last primary one.
func lastPrimary(list []any) []any {
	seen := false
	for i := len(list) - 1; i >= 0; i-- {
		em, ok := list[i].(map[string]any)
		if !ok || em["primary"] != true {
			continue
		}
		if seen {
			delete(em, "primary")
		}
		seen = true
	}
	return list
}

// setNormalized stores the coerced v under a's canonical name in m, unless
// a is read-only or never stored.
func setNormalized(m map[string]any, a *attribute, v any, path string) *Error {
	if a.Mutability == mReadOnly || a.Mutability == mWriteOnly || a.Name == "id" || a.Name == "meta" {
		return nil
	}
	cv, err := coerce(a, v, path)
	if err != nil {
		return err
	}
	if isEmpty(cv) {
		delete(m, a.Name)
		return nil
	}
	m[a.Name] = cv
	return nil
}

// coerce converts v to a's type, multi-valuedness included.
func coerce(a *attribute, v any, path string) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	if a.Multi {
		list, ok := v.([]any)
		if !ok {
			list = []any{v} // a single value for a multi-valued attribute
		}
		out := make([]any, 0, len(list))
		for i, e := range list {
			ce, err := coerceSingle(a, e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if !isEmpty(ce) {
				out = append(out, ce)
			}
		}
		return out, nil
	}
	return coerceSingle(a, v, path)
}

func coerceSingle(a *attribute, v any, path string) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	switch a.Type {
	case tComplex:
		obj, ok := v.(map[string]any)
		if s, isStr := v.(string); isStr && a.sub("value") != nil {
			// Entra sets the enterprise manager as a bare ID string.
			obj, ok = map[string]any{"value": s}, true
		}
		if !ok {
			return nil, badRequest(errInvalidValue, "%s must be an object", path)
		}
		out := map[string]any{}
		for k, sv := range obj {
			s := a.sub(k)
			if s == nil {
				continue
			}
			cv, err := coerceSingle(s, sv, path+"."+s.Name)
			if err != nil {
				return nil, err
			}
			if !isEmpty(cv) {
				out[s.Name] = cv
			}
		}
		return out, nil
	case tBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if p, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(b))); err == nil {
				return p, nil
			}
		}
		return nil, badRequest(errInvalidValue, "%s must be a boolean", path)
	case tDecimal, tInteger:
		f, ok := v.(float64)
		if !ok {
			return nil, badRequest(errInvalidValue, "%s must be a number", path)
		}
		return f, nil
	case tDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest(errInvalidValue, "%s must be a date-time string", path)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, badRequest(errInvalidValue, "%s is not an RFC 3339 date-time", path)
		}
		return s, nil
	default:
		switch s := v.(type) {
		case string:
			return s, nil
		case float64:
			// Some IdPs send numeric employee numbers and the like.
			return strconv.FormatFloat(s, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(s), nil
		}
		return nil, badRequest(errInvalidValue, "%s must be a string", path)
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// clone deep-copies a decoded JSON value.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case document:
		m := make(document, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = clone(e)
		}
		return l
	}
	return v
}

// sameValue says whether two elements of a multi-valued attribute are the
// same value: by their "value" sub-attribute when both have one (members,
// emails), else by deep equality.
func sameValue(a *attribute, x, y any) bool {
	mx, okx := x.(map[string]any)
	my, oky := y.(map[string]any)
	if okx && oky {
		vx, hx := mx["value"]
		vy, hy := my["value"]
		if hx && hy {
			if sx, ok := vx.(string); ok {
				if sy, ok := vy.(string); ok {
					if sub := a.sub("value"); sub != nil && !sub.CaseExact && a.Name != "members" {
						return strings.EqualFold(sx, sy)
					}
					return sx == sy
				}
			}
			return reflect.DeepEqual(vx, vy)
		}
	}
	return reflect.DeepEqual(x, y)
}

// container returns the map an attribute of the resolved path lives in,
// creating the extension object when create is set.
func (d document) container(r resolved, create bool) map[string]any {
	if r.ext == nil {
		return d
	}
	ext, _ := d[r.ext.ID].(map[string]any)
	if ext == nil && create {
		ext = map[string]any{}
		d[r.ext.ID] = ext
	}
	return ext
}

// dropEmpty removes empty extension objects and empty values left behind
// by PATCH removals.
func (d document) dropEmpty() {
	for k, v := range d {
		if m, ok := v.(map[string]any); ok {
			for sk, sv := range m {
				if isEmpty(sv) {
					delete(m, sk)
				}
			}
		}
		if isEmpty(v) {
			delete(d, k)
		}
	}
}

func parseTimes(a, b string) (time.Time, time.Time, bool) {
	t1, err1 := time.Parse(time.RFC3339Nano, a)
	t2, err2 := time.Parse(time.RFC3339Nano, b)
	return t1, t2, err1 == nil && err2 == nil
}
