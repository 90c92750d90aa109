package scim

import (
	"slices"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate/store"
)

// patchRequest is a PatchOp message (RFC 7644 §3.5.2).
type patchRequest struct {
	Schemas    []string         `json:"schemas"`
	Operations []patchOperation `json:"Operations"`
}

type patchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

const maxPatchOps = 1000

// applyPatch applies ops to a copy of doc and returns it. Either every
// operation applies or an error is returned and doc is unchanged: PATCH is
// atomic (RFC 7644 §3.5.2).
func applyPatch(rt *resourceType, doc document, req patchRequest) (document, *Error) {
	if len(req.Schemas) > 0 && !slices.ContainsFunc(req.Schemas, func(s string) bool { return strings.EqualFold(s, URNPatchOp) }) {
		return nil, badRequest(errInvalidSyntax, "schemas must be [%q]", URNPatchOp)
	}
	if len(req.Operations) == 0 {
		return nil, badRequest(errInvalidSyntax, "no Operations")
	}
	if len(req.Operations) > maxPatchOps {
		return nil, &Error{Status: 413, Detail: "too many PATCH operations"}
	}
	out := clone(doc).(document)
	for i, op := range req.Operations {
		if err := applyOp(rt, out, op); err != nil {
			err.Detail = "operation " + strconv.Itoa(i) + ": " + err.Detail
			return nil, err
		}
	}
	out.dropEmpty()
	canonicalMulti(rt, out)
	return out, nil
}

// applyOp applies one operation. Operation names are matched
// case-insensitively: Entra sends "Add", "Replace", "Remove".
func applyOp(rt *resourceType, doc document, op patchOperation) *Error {
	kind := strings.ToLower(strings.TrimSpace(op.Op))
	switch kind {
	case "add", "replace", "remove":
	default:
		return badRequest(errInvalidSyntax, "unknown op %q", op.Op)
	}
	if strings.TrimSpace(op.Path) == "" {
		if kind == "remove" {
			return badRequest(errNoTarget, "remove needs a path")
		}
		obj, ok := op.Value.(map[string]any)
		if !ok {
			return badRequest(errInvalidValue, "%s without a path needs an object value", kind)
		}
		return applyPathless(rt, doc, kind, obj)
	}
	pp, err := parsePath(rt, op.Path)
	if err != nil {
		return err
	}
	return applyAt(rt, doc, kind, pp, op.Value, op.Value != nil)
}

// isActive reports whether r is the User's core attribute active.
func isActive(rt *resourceType, r resolved) bool {
	return r.ext == nil && r.sub == nil && r.attr == rt.Core.attr("active") && rt.Core.ID == URNUser
}

// applyPathless applies add or replace without a path: each key of value
// is an attribute, and may itself be a path ("name.givenName") or a
// URN-qualified name, as Entra sends; an extension URN key holds an object
// of that extension's attributes.
func applyPathless(rt *resourceType, doc document, kind string, value map[string]any) *Error {
	keys := make([]string, 0, len(value))
	for k := range value {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic order of application
	for _, k := range keys {
		v := value[k]
		lk := strings.ToLower(k)
		if lk == "schemas" || lk == "id" || lk == "meta" {
			continue // Okta repeats id in a path-less replace; it cannot change
		}
		if s, rest := rt.splitURN(k); s != nil && rest == "" && s != rt.Core {
			obj, ok := v.(map[string]any)
			if !ok {
				return badRequest(errInvalidValue, "%s must be an object", s.ID)
			}
			for _, ek := range sortedKeys(obj) {
				pp, err := parsePath(rt, s.ID+":"+ek)
				if err != nil {
					return err
				}
				if err := applyAt(rt, doc, kind, pp, obj[ek], true); err != nil {
					return err
				}
			}
			continue
		}
		pp, err := parsePath(rt, k)
		if err != nil {
			return err
		}
		if err := applyAt(rt, doc, kind, pp, v, true); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// applyAt applies one operation at a parsed path.
func applyAt(rt *resourceType, doc document, kind string, pp patchPath, value any, hasValue bool) *Error {
	if pp.unknown {
		return nil // ignored, as by POST and PUT
	}
	if pp.whole != nil {
		switch kind {
		case "remove":
			delete(doc, pp.whole.ID)
			return nil
		default:
			obj, ok := value.(map[string]any)
			if !ok {
				return badRequest(errInvalidValue, "%s must be an object", pp.whole.ID)
			}
			for _, k := range sortedKeys(obj) {
				sub, err := parsePath(rt, pp.whole.ID+":"+k)
				if err != nil {
					return err
				}
				if err := applyAt(rt, doc, kind, sub, obj[k], true); err != nil {
					return err
				}
			}
			return nil
		}
	}
	a, target := pp.r.attr, pp.r.target()
	if a.Mutability == mReadOnly || target.Mutability == mReadOnly || a.Name == "id" {
		return &Error{Status: 400, ScimType: errMutability, Detail: pp.r.canonical() + " is read-only"}
	}
	if kind != "remove" && !hasValue {
		return badRequest(errInvalidValue, "%s needs a value", kind)
	}
	if a.Mutability == mWriteOnly {
		return nil // password: accepted and discarded
	}
	if kind == "remove" && isActive(rt, pp.r) {
		// active is how groupgate ends a user's access; "unassigned"
		// has no meaning for it, and a remove that kept the current
		// state would let a client believe it had done something.
		return &Error{Status: 400, ScimType: errMutability, Detail: "active cannot be removed: replace it with true or false"}
	}
	m := doc.container(pp.r, kind != "remove")
	if m == nil {
		return nil // removing from an extension that has no values
	}
	switch {
	case pp.filter != nil:
		return applyFiltered(m, kind, pp, value)
	case pp.r.sub != nil && a.Multi:
		return applySubOfAll(m, kind, pp, value)
	case pp.r.sub != nil:
		obj, _ := m[a.Name].(map[string]any)
		if kind == "remove" {
			if obj != nil {
				delete(obj, pp.r.sub.Name)
			}
			return nil
		}
		cv, err := coerce(pp.r.sub, value, pp.r.canonical())
		if err != nil {
			return err
		}
		if obj == nil {
			obj = map[string]any{}
			m[a.Name] = obj
		}
		setOrDelete(obj, pp.r.sub.Name, cv)
		return nil
	case kind == "remove":
		if a.Multi && hasValue {
			// Entra removes members as {"path":"members","value":[{"value":id}]}:
			// remove just those values.
			cv, err := coerce(a, value, a.Name)
			if err != nil {
				return err
			}
			cur, _ := m[a.Name].([]any)
			m[a.Name] = removeValues(a, slices.Clone(cur), cv.([]any))
			return nil
		}
		delete(m, a.Name)
		return nil
	default:
		cv, err := coerce(a, value, pp.r.canonical())
		if err != nil {
			return err
		}
		switch {
		case a.Multi && kind == "add":
			cur, _ := m[a.Name].([]any)
			m[a.Name] = onePrimary(addValues(a, slices.Clone(cur), cv.([]any)), cv.([]any))
		case a.Multi:
			m[a.Name] = onePrimary(cv.([]any), cv.([]any))
		case a.Type == tComplex:
			// add and replace both merge sub-attributes into a complex
			// attribute (RFC 7644 §3.5.2.1, §3.5.2.3).
			obj, _ := m[a.Name].(map[string]any)
			if obj == nil {
				obj = map[string]any{}
			}
			for k, v := range cv.(map[string]any) {
				obj[k] = v
			}
			setOrDelete(m, a.Name, obj)
		default:
			if a.Mutability == mImmutable {
				if old, ok := m[a.Name]; ok && old != cv {
					return &Error{Status: 400, ScimType: errMutability, Detail: a.Name + " is immutable"}
				}
			}
			setOrDelete(m, a.Name, cv)
		}
		return nil
	}
}

func setOrDelete(m map[string]any, k string, v any) {
	if isEmpty(v) {
		delete(m, k)
		return
	}
	m[k] = v
}

// onePrimary keeps at most one element with primary=true: the last one
// that was just written wins (RFC 7643 §2.4).
func onePrimary(list, written []any) []any {
	winner := -1
	for i, e := range list {
		if em, ok := e.(map[string]any); ok && em["primary"] == true {
			for _, w := range written {
				if wm, ok := w.(map[string]any); ok && wm["primary"] == true && sameValue(&attribute{}, e, w) {
					winner = i
				}
			}
		}
	}
	if winner < 0 {
		return list
	}
	for i, e := range list {
		if em, ok := e.(map[string]any); ok && i != winner && em["primary"] == true {
			delete(em, "primary")
		}
	}
	return list
}

// applyFiltered applies an operation to the elements a value filter
// selects, or to one sub-attribute of them.
func applyFiltered(m map[string]any, kind string, pp patchPath, value any) *Error {
	a := pp.r.attr
	cur, _ := m[a.Name].([]any)
	cur = slices.Clone(cur)
	var hits []int
	for i, e := range cur {
		if em, ok := e.(map[string]any); ok && matches(a, pp.filter, em) {
			hits = append(hits, i)
		}
	}
	if kind == "remove" {
		// Removing what is already gone is a no-op, so that an IdP's retry
		// of a member removal succeeds.
		if pp.r.sub != nil {
			for _, i := range hits {
				delete(cur[i].(map[string]any), pp.r.sub.Name)
			}
		} else {
			for j := len(hits) - 1; j >= 0; j-- {
				cur = slices.Delete(cur, hits[j], hits[j]+1)
			}
		}
		m[a.Name] = cur
		return nil
	}
	var cv any
	var err *Error
	if pp.r.sub != nil {
		cv, err = coerce(pp.r.sub, value, pp.r.canonical())
	} else {
		cv, err = coerceSingle(a, value, a.Name)
	}
	if err != nil {
		return err
	}
	if len(hits) == 0 {
		// RFC 7644 §3.5.2.3: a replace whose filter matches nothing is
		// noTarget. The exception is Entra's replace of
		// emails[type eq "work"].value on a user without a work email:
		// a filter that is exactly type eq <canonical type> names one
		// value that may be created (docs/scim.md). add keeps creating the
		// element any equality filter describes.
		elem, ok := elementFor(pp.filter)
		if kind == "replace" && !upsertable(a, pp.filter) {
			ok = false
		}
		if !ok {
			return badRequest(errNoTarget, "no %s value matches the filter", a.Name)
		}
		if pp.r.sub != nil {
			setOrDelete(elem, pp.r.sub.Name, cv)
		} else if obj, ok := cv.(map[string]any); ok {
			for k, v := range obj {
				elem[k] = v
			}
		}
		m[a.Name] = onePrimary(append(cur, elem), []any{elem})
		return nil
	}
	for _, i := range hits {
		em := cur[i].(map[string]any)
		switch {
		case pp.r.sub != nil:
			setOrDelete(em, pp.r.sub.Name, cv)
		case kind == "add":
			for k, v := range cv.(map[string]any) {
				em[k] = v
			}
		default:
			cur[i] = cv
		}
	}
	// A value just made primary stays the only primary one.
	written := make([]any, 0, len(hits))
	for _, i := range hits {
		written = append(written, cur[i])
	}
	m[a.Name] = onePrimary(cur, written)
	return nil
}

// upsertable reports whether a replace with value filter f on a may
// create the value it describes: f is exactly `type eq "<t>"` with t one of
// the canonical types of a.
func upsertable(a *attribute, f store.Filter) bool {
	c, ok := f.(store.Compare)
	if !ok || c.Op != store.OpEq || !strings.EqualFold(c.Attr, "type") {
		return false
	}
	t, ok := c.Value.(string)
	typ := a.sub("type")
	return ok && typ != nil && slices.Contains(typ.Canonical, t)
}

// elementFor returns the element a filter of equalities joined by "and"
// describes ({"type":"work"} for type eq "work"); ok is false for any
// other filter, where no single element is implied.
func elementFor(f store.Filter) (map[string]any, bool) {
	switch f := f.(type) {
	case store.Compare:
		if f.Op != store.OpEq {
			return nil, false
		}
		return map[string]any{f.Attr: f.Value}, true
	case store.And:
		l, ok1 := elementFor(f.Left)
		r, ok2 := elementFor(f.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// applySubOfAll applies an operation to one sub-attribute of every element
// ("emails.type").
func applySubOfAll(m map[string]any, kind string, pp patchPath, value any) *Error {
	cur, _ := m[pp.r.attr.Name].([]any)
	if kind != "remove" && len(cur) == 0 {
		return badRequest(errNoTarget, "%s has no values", pp.r.attr.Name)
	}
	cv, err := coerce(pp.r.sub, value, pp.r.canonical())
	if err != nil && kind != "remove" {
		return err
	}
	for _, e := range cur {
		if em, ok := e.(map[string]any); ok {
			if kind == "remove" {
				delete(em, pp.r.sub.Name)
			} else {
				setOrDelete(em, pp.r.sub.Name, cv)
			}
		}
	}
	return nil
}

// valueKey indexes elements by their string "value" so that adding or
// removing thousands of members is linear, not quadratic.
func valueKey(a *attribute, e any) (string, bool) {
	em, ok := e.(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := em["value"].(string)
	if !ok {
		return "", false
	}
	if sub := a.sub("value"); sub != nil && !sub.CaseExact && a.Name != "members" {
		v = strings.ToLower(v)
	}
	return v, true
}

// addValues appends each of add not already in cur; an element already
// there takes the sub-attributes of the new one.
func addValues(a *attribute, cur, add []any) []any {
	idx := make(map[string]int, len(cur))
	for i, e := range cur {
		if k, ok := valueKey(a, e); ok {
			idx[k] = i
		}
	}
	for _, e := range add {
		i := -1
		if k, ok := valueKey(a, e); ok {
			if j, found := idx[k]; found {
				i = j
			} else {
				idx[k] = len(cur)
			}
		} else {
			i = slices.IndexFunc(cur, func(x any) bool { return sameValue(a, x, e) })
		}
		if i < 0 {
			cur = append(cur, e)
			continue
		}
		if em, ok := e.(map[string]any); ok {
			if xm, ok := cur[i].(map[string]any); ok {
				for k, v := range em {
					xm[k] = v
				}
			}
		}
	}
	return cur
}

// removeValues drops the elements of cur equal to one of rm.
func removeValues(a *attribute, cur, rm []any) []any {
	keys := map[string]bool{}
	var other []any
	for _, e := range rm {
		if k, ok := valueKey(a, e); ok {
			keys[k] = true
		} else {
			other = append(other, e)
		}
	}
	return slices.DeleteFunc(cur, func(e any) bool {
		if k, ok := valueKey(a, e); ok && keys[k] {
			return true
		}
		return slices.ContainsFunc(other, func(r any) bool { return sameValue(a, e, r) })
	})
}
