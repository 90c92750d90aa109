package scim

import (
	"strings"

	"github.com/groupgate/groupgate/store"
)

// patchPath is a parsed PATCH path (RFC 7644 §3.5.2):
//
//	PATH = attrPath / valuePath [subAttr]
//
// with an optional schema URN prefix. ext alone (attr nil) names a whole
// extension object.
type patchPath struct {
	r      resolved
	whole  *schema // set when the path is just an extension URN
	filter store.Filter
	// unknown is set for a well-formed path that names an attribute,
	// sub-attribute or extension this server does not have. PATCH ignores
	// it, as POST and PUT ignore unknown attributes, so that an IdP with a
	// custom attribute mapping can update what it could create.
	unknown bool
}

// parsePath parses a PATCH path against the resource type.
func parsePath(rt *resourceType, src string) (patchPath, *Error) {
	if len(src) > maxFilterLen {
		return patchPath{}, badRequest(errInvalidPath, "path longer than %d bytes", maxFilterLen)
	}
	src = strings.TrimSpace(src)
	if s, rest := rt.splitURN(src); s != nil && rest == "" {
		if s == rt.Core {
			return patchPath{}, badRequest(errInvalidPath, "path %q names the core schema, not an attribute", src)
		}
		return patchPath{whole: s}, nil
	}
	toks, lerr := lex(src)
	if lerr != nil {
		return patchPath{}, badRequest(errInvalidPath, "%s", lerr.Detail)
	}
	if toks[0].kind != tkWord {
		return patchPath{}, badRequest(errInvalidPath, "path %q does not start with an attribute", src)
	}
	r, ok := rt.resolve(toks[0].text)
	if !ok {
		if toks[1].kind == tkEOF || toks[1].kind == tkLBrack {
			return patchPath{unknown: true}, nil
		}
		return patchPath{}, badRequest(errInvalidPath, "bad path %q", src)
	}
	if toks[1].kind == tkEOF {
		return patchPath{r: r}, nil
	}
	if toks[1].kind != tkLBrack || r.sub != nil || r.attr.Type != tComplex || !r.attr.Multi {
		return patchPath{}, badRequest(errInvalidPath, "bad path %q", src)
	}
	p := &parser{rt: rt, toks: toks, pos: 2}
	f, ferr := p.parseOr(r.attr)
	if ferr != nil {
		return patchPath{}, badRequest(errInvalidPath, "bad value filter in path %q: %s", src, ferr.Detail)
	}
	if t := p.next(); t.kind != tkRBrack {
		return patchPath{}, badRequest(errInvalidPath, "missing ] in path %q", src)
	}
	pp := patchPath{r: r, filter: f}
	switch t := p.next(); {
	case t.kind == tkEOF:
		return pp, nil
	case t.kind == tkWord && strings.HasPrefix(t.text, ".") && p.peek().kind == tkEOF:
		sub := r.attr.sub(t.text[1:])
		if strings.Contains(t.text[1:], ".") {
			return patchPath{}, badRequest(errInvalidPath, "%q has no sub-attribute %q", r.attr.Name, t.text[1:])
		}
		if sub == nil {
			return patchPath{unknown: true}, nil
		}
		pp.r.sub = sub
		return pp, nil
	default:
		return patchPath{}, badRequest(errInvalidPath, "unexpected %q in path %q", t.text, src)
	}
}

// matches evaluates a value filter (sub-attribute comparisons joined by
// and/or/not) against one element of a multi-valued attribute.
func matches(parent *attribute, f store.Filter, elem map[string]any) bool {
	switch f := f.(type) {
	case store.And:
		return matches(parent, f.Left, elem) && matches(parent, f.Right, elem)
	case store.Or:
		return matches(parent, f.Left, elem) || matches(parent, f.Right, elem)
	case store.Not:
		return !matches(parent, f.Filter, elem)
	case store.Compare:
		return compareValue(parent.sub(f.Attr), elem[f.Attr], f)
	}
	return false
}

func compareValue(a *attribute, v any, c store.Compare) bool {
	if c.Op == store.OpPresent {
		return !isEmpty(v) && v != ""
	}
	if v == nil {
		return c.Op == store.OpNe
	}
	switch want := c.Value.(type) {
	case bool:
		got, ok := v.(bool)
		switch c.Op {
		case store.OpEq:
			return ok && got == want
		case store.OpNe:
			return !ok || got != want
		}
		return false
	case float64:
		got, ok := v.(float64)
		if !ok {
			return c.Op == store.OpNe
		}
		return ordered(c.Op, cmpFloat(got, want))
	case string:
		got, ok := v.(string)
		if !ok {
			return c.Op == store.OpNe
		}
		if a != nil && a.Type == tDateTime {
			// RFC 3339 strings in UTC order lexically only when normalized;
			// compare as times.
			if t1, t2, ok := parseTimes(got, want); ok && c.Op != store.OpCo && c.Op != store.OpSw && c.Op != store.OpEw {
				return ordered(c.Op, t1.Compare(t2))
			}
		}
		if !c.CaseExact {
			got, want = strings.ToLower(got), strings.ToLower(want)
		}
		switch c.Op {
		case store.OpCo:
			return strings.Contains(got, want)
		case store.OpSw:
			return strings.HasPrefix(got, want)
		case store.OpEw:
			return strings.HasSuffix(got, want)
		}
		return ordered(c.Op, strings.Compare(got, want))
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ordered(op store.CompareOp, c int) bool {
	switch op {
	case store.OpEq:
		return c == 0
	case store.OpNe:
		return c != 0
	case store.OpGt:
		return c > 0
	case store.OpGe:
		return c >= 0
	case store.OpLt:
		return c < 0
	case store.OpLe:
		return c <= 0
	}
	return false
}
