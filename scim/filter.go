package scim

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/groupgate/groupgate/store"
)

// Limits that keep a hostile filter from costing more than a page of
// results: the length and nesting are invalidFilter, the number of
// comparisons tooMany (more than we are willing to process, RFC 7644
// §3.12).
const (
	maxFilterLen   = 8192
	maxFilterDepth = 32
	maxFilterTerms = 100
)

type tokKind int

const (
	tkEOF tokKind = iota
	tkLParen
	tkRParen
	tkLBrack
	tkRBrack
	tkString
	tkWord
)

type token struct {
	kind tokKind
	text string // the word, or the decoded string literal
	pos  int
}

// lex splits a filter (or PATCH path) into tokens. Words run until
// whitespace or one of ()[]"; a string literal is JSON-quoted.
func lex(src string) ([]token, *Error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tkLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tkRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tkLBrack, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tkRBrack, "]", i})
			i++
		case c == '"':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, badRequest(errInvalidFilter, "at %d: %s", i, err.Detail)
			}
			toks = append(toks, token{tkString, s, i})
			i += n
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n()[]\"", rune(src[j])) {
				j++
			}
			toks = append(toks, token{tkWord, src[i:j], i})
			i = j
		}
	}
	return append(toks, token{tkEOF, "", len(src)}), nil
}

// lexString decodes a JSON string literal at the start of s and returns it
// with the number of bytes consumed.
func lexString(s string) (string, int, *Error) {
	var b strings.Builder
	for i := 1; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, badRequest(errInvalidFilter, "unterminated escape")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+6 > len(s) {
					return "", 0, badRequest(errInvalidFilter, "short \\u escape")
				}
				n, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return "", 0, badRequest(errInvalidFilter, "bad \\u escape")
				}
				b.WriteRune(rune(n))
				i += 4
			default:
				return "", 0, badRequest(errInvalidFilter, "bad escape \\%c", e)
			}
			i += 2
		case c < 0x20:
			return "", 0, badRequest(errInvalidFilter, "control character in string")
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return "", 0, badRequest(errInvalidFilter, "invalid UTF-8 in string")
			}
			b.WriteString(s[i : i+n])
			i += n
		}
	}
	return "", 0, badRequest(errInvalidFilter, "unterminated string")
}

// parser is a recursive-descent parser over tokens. Precedence (RFC 7644
// §3.4.2.2): not and grouping bind tightest, then and, then or.
type parser struct {
	rt    *resourceType
	toks  []token
	pos   int
	depth int
	terms int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

func (p *parser) isKeyword(t token, kw string) bool {
	return t.kind == tkWord && strings.EqualFold(t.text, kw)
}

// ParseFilter parses a SCIM filter for the resource type and resolves it
// to a store.Filter with canonical attribute names.
func parseFilter(rt *resourceType, src string) (store.Filter, *Error) {
	if len(src) > maxFilterLen {
		return nil, badRequest(errInvalidFilter, "filter longer than %d bytes", maxFilterLen)
	}
	if strings.TrimSpace(src) == "" {
		return nil, badRequest(errInvalidFilter, "empty filter")
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{rt: rt, toks: toks}
	f, err := p.parseOr(nil)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, badRequest(errInvalidFilter, "unexpected %q at %d", t.text, t.pos)
	}
	return f, nil
}

// parseOr parses "A or B or …"; parent is the multi-valued attribute whose
// sub-attributes a value filter names, nil at the top level.
func (p *parser) parseOr(parent *attribute) (store.Filter, *Error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxFilterDepth {
		return nil, badRequest(errInvalidFilter, "filter nested deeper than %d", maxFilterDepth)
	}
	left, err := p.parseAnd(parent)
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), "or") {
		p.next()
		right, err := p.parseAnd(parent)
		if err != nil {
			return nil, err
		}
		left = store.Or{Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseAnd(parent *attribute) (store.Filter, *Error) {
	left, err := p.parseUnary(parent)
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), "and") {
		p.next()
		right, err := p.parseUnary(parent)
		if err != nil {
			return nil, err
		}
		left = store.And{Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseUnary(parent *attribute) (store.Filter, *Error) {
	t := p.peek()
	switch {
	case p.isKeyword(t, "not") && p.toks[p.pos+1].kind == tkLParen:
		p.next()
		p.next()
		f, err := p.parseGroup(parent)
		if err != nil {
			return nil, err
		}
		return store.Not{Filter: f}, nil
	case t.kind == tkLParen:
		p.next()
		return p.parseGroup(parent)
	case t.kind == tkWord:
		return p.parseAttrExp(parent)
	case t.kind == tkEOF:
		return nil, badRequest(errInvalidFilter, "filter ends where an expression is expected")
	default:
		return nil, badRequest(errInvalidFilter, "unexpected %q at %d", t.text, t.pos)
	}
}

// parseGroup parses the inside of "( … )" after the opening parenthesis.
func (p *parser) parseGroup(parent *attribute) (store.Filter, *Error) {
	f, err := p.parseOr(parent)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tkRParen {
		return nil, badRequest(errInvalidFilter, "missing ) at %d", t.pos)
	}
	return f, nil
}

func (p *parser) parseAttrExp(parent *attribute) (store.Filter, *Error) {
	at := p.next()
	if parent == nil && p.peek().kind == tkLBrack {
		return p.parseValuePath(at)
	}
	opTok := p.next()
	if opTok.kind != tkWord {
		return nil, badRequest(errInvalidFilter, "expected an operator after %q at %d", at.text, opTok.pos)
	}
	op := store.CompareOp(strings.ToLower(opTok.text))
	switch op {
	case store.OpEq, store.OpNe, store.OpCo, store.OpSw, store.OpEw, store.OpGt, store.OpGe, store.OpLt, store.OpLe, store.OpPresent:
	default:
		return nil, badRequest(errInvalidFilter, "unknown operator %q at %d", opTok.text, opTok.pos)
	}
	p.terms++
	if p.terms > maxFilterTerms {
		return nil, &Error{Status: 400, ScimType: errTooMany, Detail: "filter has more than 100 comparisons"}
	}
	var value any
	if op != store.OpPresent {
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		value = v
	}
	if parent != nil {
		sub := parent.sub(at.text)
		if sub == nil || strings.ContainsAny(at.text, ".:") {
			return nil, badRequest(errInvalidFilter, "%q has no sub-attribute %q", parent.Name, at.text)
		}
		return compare(sub, sub.Name, op, value)
	}
	r, ok := p.rt.resolve(at.text)
	if !ok {
		return nil, badRequest(errInvalidFilter, "unknown attribute %q", at.text)
	}
	if r.attr.Multi {
		// "any value matches": emails.value eq x, or emails eq x meaning
		// emails.value (RFC 7644 §3.4.2.2).
		sub := r.sub
		if sub == nil {
			sub = r.attr.sub("value")
		}
		if sub == nil {
			return nil, badRequest(errInvalidFilter, "%q needs a sub-attribute", at.text)
		}
		inner, err := compare(sub, sub.Name, op, value)
		if err != nil {
			return nil, err
		}
		return store.ValuePath{Attr: resolved{ext: r.ext, attr: r.attr}.canonical(), Filter: inner}, nil
	}
	return compare(r.target(), r.canonical(), op, value)
}

// parseValuePath parses `attr[valFilter]` after the attribute token.
func (p *parser) parseValuePath(at token) (store.Filter, *Error) {
	r, ok := p.rt.resolve(at.text)
	if !ok || r.sub != nil || r.attr.Type != tComplex {
		return nil, badRequest(errInvalidFilter, "%q is not a complex attribute", at.text)
	}
	p.next() // [
	inner, err := p.parseOr(r.attr)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tkRBrack {
		return nil, badRequest(errInvalidFilter, "missing ] at %d", t.pos)
	}
	return store.ValuePath{Attr: r.canonical(), Filter: inner}, nil
}

// parseValue parses compValue: false / null / true / number / string.
func (p *parser) parseValue() (any, *Error) {
	t := p.next()
	switch t.kind {
	case tkString:
		return t.text, nil
	case tkWord:
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || strings.ContainsAny(t.text, "xXpP_nN") {
			return nil, badRequest(errInvalidFilter, "bad value %q at %d", t.text, t.pos)
		}
		return f, nil
	default:
		return nil, badRequest(errInvalidFilter, "expected a value at %d", t.pos)
	}
}

// compare builds a Compare checked against the attribute's type.
func compare(a *attribute, path string, op store.CompareOp, value any) (store.Filter, *Error) {
	c := store.Compare{Attr: path, Op: op, Value: value, CaseExact: a.CaseExact}
	if op == store.OpPresent {
		return c, nil
	}
	if value == nil {
		// "eq null" is "not present", "ne null" is "present".
		switch op {
		case store.OpEq:
			return store.Not{Filter: store.Compare{Attr: path, Op: store.OpPresent, CaseExact: a.CaseExact}}, nil
		case store.OpNe:
			return store.Compare{Attr: path, Op: store.OpPresent, CaseExact: a.CaseExact}, nil
		}
		return nil, badRequest(errInvalidFilter, "%s null is meaningless", op)
	}
	ordering := op == store.OpGt || op == store.OpGe || op == store.OpLt || op == store.OpLe
	substr := op == store.OpCo || op == store.OpSw || op == store.OpEw
	switch a.Type {
	case tComplex:
		return nil, badRequest(errInvalidFilter, "%q is complex; compare one of its sub-attributes", path)
	case tBoolean:
		if s, ok := value.(string); ok {
			b, err := strconv.ParseBool(strings.ToLower(s))
			if err != nil {
				return nil, badRequest(errInvalidFilter, "%q is boolean, not %q", path, s)
			}
			c.Value = b
		} else if _, ok := value.(bool); !ok {
			return nil, badRequest(errInvalidFilter, "%q is boolean", path)
		}
		if ordering || substr {
			return nil, badRequest(errInvalidFilter, "%s does not apply to boolean %q", op, path)
		}
	case tDecimal, tInteger:
		if _, ok := value.(float64); !ok || substr {
			return nil, badRequest(errInvalidFilter, "%q is numeric", path)
		}
	case tDateTime:
		s, ok := value.(string)
		if !ok {
			return nil, badRequest(errInvalidFilter, "%q is a date-time", path)
		}
		if !substr {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, badRequest(errInvalidFilter, "%q is not an RFC 3339 date-time", s)
			}
			c.Value = t.UTC().Format(time.RFC3339Nano)
		}
	default:
		if _, ok := value.(string); !ok {
			return nil, badRequest(errInvalidFilter, "%q is a string attribute", path)
		}
	}
	return c, nil
}
