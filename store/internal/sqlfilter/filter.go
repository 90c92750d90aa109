package sqlfilter

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Every value travels as a bound parameter; attribute names reach the SQL
// text only as column names from fixed tables, and JSON document paths
// only as bound parameters whose segments passed attrSegments first.
//
// Every condition built is true or false, never NULL, so that NOT and ne
// keep two-valued logic.
//
// ne on an absent attribute: RFC 7644 §3.4.2.2 defines ne as "the
// attribute and operator values are not identical"; an absent attribute is
// not identical to any value, so ne matches it, and ne is exactly
// not (eq). The other operators never match an absent attribute.

// Resource is the SCIM resource type a statement selects.
type Resource int

const (
	// Users selects from "users u".
	Users Resource = iota
	// Groups selects from "groups g".
	Groups
)

// Where returns the SQL condition of f on res (nil selects all), with its
// parameters appended to args.
func Where(d Dialect, res Resource, f store.Filter, args []any) (string, []any, error) {
	sc, err := scopeOf(d, res)
	if err != nil {
		return "", args, err
	}
	t := translator{d: d, p: Params{d: d, args: args}}
	cond, err := t.where(sc, f)
	return cond, t.p.args, err
}

// OrderBy returns the ORDER BY clause for sortBy on res, with its
// parameters appended to args: missing values last when ascending and
// first when descending (RFC 7644 §3.4.2.3), ties by id; without sortBy,
// by created then id.
func OrderBy(d Dialect, res Resource, sortBy string, order store.SortOrder, id, created string, args []any) (string, []any, error) {
	sc, err := scopeOf(d, res)
	if err != nil {
		return "", args, err
	}
	t := translator{d: d, p: Params{d: d, args: args}}
	clause, err := t.orderBy(sc, sortBy, order, id, created)
	return clause, t.p.args, err
}

type colType int

const (
	colString colType = iota
	colBool
	colTime
)

// column is an attribute stored in a table column.
type column struct {
	expr string
	typ  colType
	// optional columns store absence as the empty string.
	optional bool
}

// relation serves a multi-valued attribute from the membership table
// instead of the JSON document: members of a group, groups of a user.
type relation struct {
	// from is the FROM/WHERE of an EXISTS subquery, with %[1]s standing
	// for the subquery's unique alias suffix.
	from string
	// columns are the sub-attributes, with %[1]s as above.
	columns map[string]column
}

// scope is what attribute names resolve to at one level of a filter.
type scope struct {
	columns   map[string]column
	relations map[string]relation
	// doc is the SQL expression of the JSON document; element is set
	// inside a value filter over a JSON array, where doc is the element.
	doc     string
	element bool
	// email is the primary email column, which serves sorting by emails.
	email string
	// values are the Values columns by multi-valued attribute.
	values map[string]string
	// alias is the table alias of the resource's row, for a
	// ValueIndexer; "" inside a value filter.
	alias string
}

func scopeOf(d Dialect, res Resource) (scope, error) {
	switch res {
	case Users:
		return scope{
			columns: map[string]column{
				"id":                {expr: "u.id"},
				"externalId":        {expr: "u.external_id", optional: true},
				"userName":          {expr: "u.user_name"},
				"displayName":       {expr: "u.display_name", optional: true},
				"active":            {expr: "u.active", typ: colBool},
				"meta.created":      {expr: "u.created_at", typ: colTime},
				"meta.lastModified": {expr: "u.updated_at", typ: colTime},
			},
			relations: map[string]relation{
				"groups": {
					from: `group_memberships m%[1]s JOIN groups g%[1]s ON g%[1]s.name = m%[1]s.group_name
					WHERE m%[1]s.user_id = u.id AND m%[1]s.source = 'scim'`,
					columns: map[string]column{
						"value":   {expr: "g%[1]s.id"},
						"display": {expr: "g%[1]s.name"},
					},
				},
			},
			doc:    d.Document("u"),
			email:  "u.email",
			values: map[string]string{"emails": d.Values("u", "emails")},
			alias:  "u",
		}, nil
	case Groups:
		return scope{
			columns: map[string]column{
				"id":                {expr: "g.id"},
				"externalId":        {expr: "g.external_id", optional: true},
				"displayName":       {expr: "g.name"},
				"meta.created":      {expr: "g.created_at", typ: colTime},
				"meta.lastModified": {expr: "g.updated_at", typ: colTime},
			},
			relations: map[string]relation{
				"members": {
					from: `group_memberships m%[1]s JOIN users mu%[1]s ON mu%[1]s.id = m%[1]s.user_id
					WHERE m%[1]s.group_name = g.name AND m%[1]s.source = 'scim'`,
					columns: map[string]column{
						"value":   {expr: "m%[1]s.user_id"},
						"display": {expr: "mu%[1]s.display_name", optional: true},
					},
				},
			},
			doc:   d.Document("g"),
			alias: "g",
		}, nil
	}
	return scope{}, fmt.Errorf("sqlfilter: unknown resource %d", res)
}

// translator builds the fragments of one statement.
type translator struct {
	d     Dialect
	p     Params
	alias int
}

func invalidFilter(format string, args ...any) error {
	return groupgate.Errorf(groupgate.Invalid, "filter: "+format, args...)
}

func (t *translator) where(sc scope, f store.Filter) (string, error) {
	switch f := f.(type) {
	case nil:
		return t.d.True(), nil
	case store.And:
		return t.binary(sc, "AND", f.Left, f.Right)
	case store.Or:
		return t.binary(sc, "OR", f.Left, f.Right)
	case store.Not:
		inner, err := t.where(sc, f.Filter)
		if err != nil {
			return "", err
		}
		return "(NOT " + inner + ")", nil
	case store.Compare:
		return t.compare(sc, f)
	case store.ValuePath:
		return t.valuePath(sc, f.Attr, f.Filter)
	default:
		return "", invalidFilter("unknown filter node %T", f)
	}
}

func (t *translator) binary(sc scope, op string, l, r store.Filter) (string, error) {
	if l == nil || r == nil {
		return "", invalidFilter("%s needs two operands", strings.ToLower(op))
	}
	ls, err := t.where(sc, l)
	if err != nil {
		return "", err
	}
	rs, err := t.where(sc, r)
	if err != nil {
		return "", err
	}
	return "(" + ls + " " + op + " " + rs + ")", nil
}

func (t *translator) compare(sc scope, c store.Compare) (string, error) {
	if col, ok := sc.columns[c.Attr]; ok {
		return t.compareColumn(col, c)
	}
	// "members.value" means "some member's value": the relation's
	// any-element semantics.
	head, rest, _ := strings.Cut(c.Attr, ".")
	if _, ok := sc.relations[head]; ok {
		if rest == "" {
			if c.Op == store.OpPresent {
				return t.valuePath(sc, head, nil)
			}
			rest = "value"
		}
		sub := c
		sub.Attr = rest
		if c.Op == store.OpNe {
			// ne keeps meaning not (eq): no member has the value.
			sub.Op = store.OpEq
			cond, err := t.valuePath(sc, head, sub)
			if err != nil {
				return "", err
			}
			return "(NOT " + cond + ")", nil
		}
		return t.valuePath(sc, head, sub)
	}
	if sc.doc == "" {
		return "", invalidFilter("unknown attribute %q", c.Attr)
	}
	segs, err := attrSegments(c.Attr)
	if err != nil {
		return "", err
	}
	return t.compareJSON(t.d.JSON(&t.p, sc.doc, segs), c)
}

// valuePath is EXISTS over the elements of a multi-valued attribute; a nil
// filter asks whether there is any element.
func (t *translator) valuePath(sc scope, attr string, f store.Filter) (string, error) {
	if sc.element || (sc.doc == "" && sc.relations == nil) {
		return "", invalidFilter("value filters cannot nest (%q)", attr)
	}
	t.alias++
	suffix := strconv.Itoa(t.alias)
	if rel, ok := sc.relations[attr]; ok {
		inner := scope{columns: make(map[string]column, len(rel.columns))}
		for name, col := range rel.columns {
			col.expr = fmt.Sprintf(col.expr, suffix)
			inner.columns[name] = col
		}
		cond, err := t.where(inner, f)
		if err != nil {
			return "", err
		}
		return "EXISTS (SELECT 1 FROM " + fmt.Sprintf(rel.from, suffix) + " AND " + cond + ")", nil
	}
	segs, err := attrSegments(attr)
	if err != nil {
		return "", err
	}
	cond, err := t.d.ArrayExists(&t.p, sc.doc, segs, "e"+suffix, func(elem string) (string, error) {
		return t.where(scope{doc: elem, element: true}, f)
	})
	if err != nil {
		return "", err
	}
	// Each narrowing below is implied by the EXISTS (an element whose
	// value matches is in the column or the index), so it only narrows:
	// a search reads the few candidate rows' documents instead of every
	// row's.
	if col := sc.values[attr]; col != "" {
		for _, c := range valueCompares(f) {
			// The pattern's text, between newlines as the pattern says,
			// is in the column.
			cond = "(" + cond + " AND " + t.d.Match(&t.p, col, valuesPattern(c.op, c.folded), true) + ")"
		}
	} else if vi, ok := t.d.(ValueIndexer); ok && sc.alias != "" {
		for _, c := range valueCompares(f) {
			if narrow := vi.ValueIndex(&t.p, sc.alias, attr, c.op, c.folded); narrow != "" {
				cond = "(" + cond + " AND " + narrow + ")"
			}
		}
	}
	return cond, nil
}

// valueCompare is a string comparison of an element's "value" that a
// value filter requires, its operand folded as Fold folds.
type valueCompare struct {
	op     store.CompareOp
	folded string
}

// valueCompares are the eq, sw, ew and co comparisons of "value" with a
// string that every element matching f satisfies: those of the top-level
// and-chain (an or or a not requires none of its operands).
func valueCompares(f store.Filter) []valueCompare {
	switch f := f.(type) {
	case store.And:
		return append(valueCompares(f.Left), valueCompares(f.Right)...)
	case store.Compare:
		s, ok := f.Value.(string)
		if !ok || !strings.EqualFold(f.Attr, "value") {
			return nil
		}
		switch f.Op {
		case store.OpEq, store.OpSw, store.OpEw, store.OpCo:
			return []valueCompare{{op: f.Op, folded: FoldASCII(s)}}
		}
	}
	return nil
}

// valuesPattern is the LIKE pattern over a Values column that every row
// with an element whose value compares with folded by op matches.
func valuesPattern(op store.CompareOp, folded string) string {
	s := escapeLike(folded)
	switch op {
	case store.OpEq:
		return "%\n" + s + "\n%"
	case store.OpSw:
		return "%\n" + s + "%"
	case store.OpEw:
		return "%" + s + "\n%"
	}
	return "%" + s + "%"
}

// FoldASCII lowercases ASCII letters only, as Fold does in both backends;
// a backend's own index of values folds them with it.
func FoldASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (t *translator) compareColumn(col column, c store.Compare) (string, error) {
	x := col.expr
	guard := t.d.True()
	if col.optional {
		guard = x + " <> ''"
	}
	if c.Op == store.OpPresent {
		return "(" + guard + ")", nil
	}
	if c.Op == store.OpNe {
		eq := c
		eq.Op = store.OpEq
		cond, err := t.compareColumn(col, eq)
		if err != nil {
			return "", err
		}
		return "(NOT " + cond + ")", nil
	}
	if c.Value == nil && c.Op == store.OpEq {
		return "(NOT (" + guard + "))", nil
	}
	switch col.typ {
	case colBool:
		b, ok := c.Value.(bool)
		if !ok || c.Op != store.OpEq {
			return "", invalidFilter("%s supports only eq/ne/pr with true or false", c.Attr)
		}
		return "(" + x + " = " + t.d.BoolParam(&t.p, b) + ")", nil
	case colTime:
		s, ok := c.Value.(string)
		if !ok {
			return "", invalidFilter("%s needs a date-time value", c.Attr)
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return "", invalidFilter("%s: %q is not an RFC 3339 date-time", c.Attr, s)
		}
		op, ok := orderOps[c.Op]
		if !ok {
			return "", invalidFilter("operator %s does not apply to date-time %s", c.Op, c.Attr)
		}
		return "(" + x + " " + op + " " + t.d.TimeParam(&t.p, tm) + ")", nil
	}
	s, ok := c.Value.(string)
	if !ok {
		return "", invalidFilter("%s needs a string value", c.Attr)
	}
	cond, err := t.stringCond(x, s, c)
	if err != nil {
		return "", err
	}
	return "(" + guard + " AND " + cond + ")", nil
}

// orderOps are the operators that compare by order; eq is one of them.
var orderOps = map[store.CompareOp]string{
	store.OpEq: "=", store.OpGt: ">", store.OpGe: ">=", store.OpLt: "<", store.OpLe: "<=",
}

// stringCond compares the text x with s by c's operator (not ne or pr).
func (t *translator) stringCond(x, s string, c store.Compare) (string, error) {
	lx := t.d.Fold(x, c.CaseExact)
	if op, ok := orderOps[c.Op]; ok {
		return lx + " " + op + " " + t.d.TextParam(&t.p, s, c.CaseExact), nil
	}
	var pattern string
	switch c.Op {
	case store.OpCo:
		pattern = "%" + escapeLike(s) + "%"
	case store.OpSw:
		pattern = escapeLike(s) + "%"
	case store.OpEw:
		pattern = "%" + escapeLike(s)
	default:
		return "", invalidFilter("unknown operator %q", c.Op)
	}
	match := t.d.Match(&t.p, x, pattern, c.CaseExact)
	if c.Op == store.OpSw {
		// A range in the same collation lets an index narrow a prefix
		// search whatever plan a prepared statement gets: every string
		// starting with s sorts between s and s followed by the greatest
		// code point.
		return "(" + lx + " >= " + t.d.TextParam(&t.p, s, c.CaseExact) + " AND " +
			lx + " < " + t.d.TextParam(&t.p, s+"\U0010FFFF", c.CaseExact) + " AND " + match + ")", nil
	}
	return match, nil
}

// escapeLike escapes LIKE's wildcards and the escape character itself.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// compareJSON compares the JSON value j. The value's JSON type must fit
// the filter value's type: strings compare as text (date-times,
// recognized by the filter value parsing as RFC 3339, chronologically),
// numbers numerically, booleans by identity.
func (t *translator) compareJSON(j JSONValue, c store.Compare) (string, error) {
	var cond string
	switch {
	case c.Op == store.OpPresent:
		cond = j.Present()
	case c.Op == store.OpNe:
		eq := c
		eq.Op = store.OpEq
		inner, err := t.compareJSON(j, eq)
		if err != nil {
			return "", err
		}
		return "(NOT " + inner + ")", nil
	case c.Value == nil:
		if c.Op != store.OpEq {
			return "", invalidFilter("operator %s needs a value", c.Op)
		}
		cond = "NOT " + j.Present()
	default:
		switch v := c.Value.(type) {
		case bool:
			if c.Op != store.OpEq {
				return "", invalidFilter("operator %s does not apply to booleans", c.Op)
			}
			cond = j.BoolEq(&t.p, v)
		case float64:
			op, ok := orderOps[c.Op]
			if !ok {
				return "", invalidFilter("operator %s does not apply to numbers", c.Op)
			}
			cond = j.Number(&t.p, op, v)
		case string:
			if op, ok := orderOps[c.Op]; ok && c.Op != store.OpEq {
				if tm, err := time.Parse(time.RFC3339Nano, v); err == nil {
					cond = j.DateTime(&t.p, op, v, tm)
					break
				}
			}
			sc, err := t.stringCond(j.Text(), v, c)
			if err != nil {
				return "", err
			}
			cond = j.OnlyText(sc)
		default:
			return "", invalidFilter("unsupported value type %T", c.Value)
		}
	}
	return t.d.NotNull(cond), nil
}

var (
	segmentPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_$-]*$`)
	urnPattern     = regexp.MustCompile(`^urn:[A-Za-z0-9][A-Za-z0-9:._-]*$`)
)

// attrSegments splits an attribute path into JSON keys: an extension URN
// (which contains dots, as in "2.0") is one key, then the attribute and
// sub-attribute. Every key must look like a SCIM name, so that nothing
// else can reach a JSON path.
func attrSegments(attr string) ([]string, error) {
	var segs []string
	rest := attr
	if len(attr) > 4 && strings.EqualFold(attr[:4], "urn:") {
		colon := strings.LastIndex(attr, ":")
		urn := attr
		rest = ""
		if dot := strings.Index(attr[colon:], "."); dot >= 0 {
			urn, rest = attr[:colon+dot], attr[colon+dot+1:]
		}
		if !urnPattern.MatchString(urn) {
			return nil, invalidFilter("invalid schema URN in %q", attr)
		}
		segs = append(segs, urn)
		if rest == "" {
			return segs, nil
		}
	}
	for s := range strings.SplitSeq(rest, ".") {
		if !segmentPattern.MatchString(s) {
			return nil, invalidFilter("invalid attribute path %q", attr)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

func (t *translator) orderBy(sc scope, sortBy string, order store.SortOrder, id, created string) (string, error) {
	if sortBy == "" {
		// sortOrder applies only with sortBy (RFC 7644 §3.4.2.3).
		return "ORDER BY " + created + ", " + id, nil
	}
	desc := false
	switch order {
	case "", store.Ascending:
	case store.Descending:
		desc = true
	default:
		return "", invalidFilter("unknown sort order %q", order)
	}
	var key string
	head, _, _ := strings.Cut(sortBy, ".")
	if col, ok := sc.columns[sortBy]; ok {
		key = col.expr
		if col.optional {
			key = "NULLIF(" + key + ", '')"
		}
		if col.typ == colString && sortBy != "id" && sortBy != "externalId" {
			key = t.d.Fold(key, false)
		}
	} else if _, ok := sc.relations[head]; ok {
		return "", invalidFilter("cannot sort by %q", sortBy)
	} else if sortBy == "emails" || sortBy == "emails.value" {
		if sc.email == "" {
			return "", invalidFilter("cannot sort by %q", sortBy)
		}
		// The primary email is a column.
		key = "NULLIF(" + sc.email + ", '')"
	} else {
		segs, err := attrSegments(sortBy)
		if err != nil {
			return "", err
		}
		return "ORDER BY " + t.d.SortJSON(&t.p, sc.doc, segs, desc, id), nil
	}
	if desc {
		return "ORDER BY " + key + " DESC NULLS FIRST, " + id, nil
	}
	return "ORDER BY " + key + " ASC NULLS LAST, " + id, nil
}
