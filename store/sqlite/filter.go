package sqlite

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/sqlfilter"
)

// The SCIM filter translation is shared with the PostgreSQL backend
// (store/internal/sqlfilter); this file is the SQLite dialect. JSON paths
// are bound "$.\"key\"" parameters for json_extract/json_each over the scim
// column; case-insensitive text uses NOCASE, which folds ASCII letters as
// the case-insensitive unique indexes do, so that those indexes serve it.

type scope = sqlfilter.Resource

const (
	userScope  = sqlfilter.Users
	groupScope = sqlfilter.Groups
)

// translator accumulates the numbered parameters (?1, ?2, ...) of one
// statement, so that fragments can be combined in any order.
type translator struct{ args []any }

// arg binds v for the rest of the statement, such as LIMIT and OFFSET.
func (t *translator) arg(v any) string {
	t.args = append(t.args, v)
	return dialect{}.Placeholder(len(t.args))
}

func (t *translator) where(sc scope, f store.Filter) (cond string, err error) {
	cond, t.args, err = sqlfilter.Where(dialect{}, sc, f, t.args)
	return cond, err
}

func (t *translator) orderBy(sc scope, sortBy string, order store.SortOrder, id, created string) (clause string, err error) {
	clause, t.args, err = sqlfilter.OrderBy(dialect{}, sc, sortBy, order, id, created, t.args)
	return clause, err
}

type dialect struct{}

var (
	_ sqlfilter.Dialect      = dialect{}
	_ sqlfilter.ValueIndexer = dialect{}
)

func (dialect) Placeholder(n int) string     { return "?" + strconv.Itoa(n) }
func (dialect) True() string                 { return "1" }
func (dialect) NotNull(cond string) string   { return "IFNULL(" + cond + ", 0)" }
func (dialect) Document(alias string) string { return alias + ".scim" }

func (dialect) BoolParam(p *sqlfilter.Params, b bool) string { return p.Add(b) }

func (dialect) TimeParam(p *sqlfilter.Params, t time.Time) string { return p.Add(micros(t)) }

func (dialect) Fold(x string, caseExact bool) string {
	if caseExact {
		return x
	}
	return x + " COLLATE NOCASE"
}

func (dialect) TextParam(p *sqlfilter.Params, s string, _ bool) string { return p.Add(s) }

func (dialect) Match(p *sqlfilter.Params, x, pattern string, caseExact bool) string {
	if caseExact {
		// GLOB is LIKE's case-sensitive sibling, with its own wildcards.
		return x + " GLOB " + p.Add(likeToGlob(pattern))
	}
	// LIKE folds ASCII case like NOCASE does.
	return x + " LIKE " + p.Add(pattern) + ` ESCAPE '\'`
}

// jsonPath binds the JSON path of segs.
func jsonPath(p *sqlfilter.Params, segs []string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, s := range segs {
		b.WriteString(`."`)
		b.WriteString(s)
		b.WriteString(`"`)
	}
	return p.Add(b.String())
}

func (dialect) JSON(p *sqlfilter.Params, doc string, segs []string) sqlfilter.JSONValue {
	return jsonValue{doc: doc, path: jsonPath(p, segs)}
}

func (dialect) ArrayExists(p *sqlfilter.Params, doc string, segs []string, alias string, cond func(string) (string, error)) (string, error) {
	path := jsonPath(p, segs)
	// Sub-attributes are read from object elements only: json_each gives
	// other elements as SQL values, which are not JSON text.
	c, err := cond("(CASE WHEN " + alias + ".type = 'object' THEN " + alias + ".value END)")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("(IFNULL(json_type(%[1]s, %[2]s) = 'array', 0) AND EXISTS (SELECT 1 FROM json_each(%[1]s, %[2]s) %[3]s WHERE %[4]s))",
		doc, path, alias, c), nil
}

// SortJSON relies on SQLite's ordering of values: numbers (and booleans as
// 0/1) before text.
// Values: SQLite keeps no such column (a generated column cannot gather
// an array's elements), so value filters read every document.
func (dialect) Values(string, string) string { return "" }

func (dialect) SortJSON(p *sqlfilter.Params, doc string, segs []string, desc bool, id string) string {
	path := jsonPath(p, segs)
	key := "CASE WHEN json_type(" + doc + ", " + path + ") IN ('text', 'integer', 'real', 'true', 'false') THEN json_extract(" + doc + ", " + path + ") END"
	if desc {
		return key + " DESC NULLS FIRST, " + id
	}
	return key + " ASC NULLS LAST, " + id
}

// likeToGlob turns an escaped LIKE pattern using only % wildcards into the
// GLOB pattern with the same meaning.
func likeToGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; ch {
		case '\\':
			i++
			b.WriteString(globLiteral(p[i]))
		case '%':
			b.WriteByte('*')
		default:
			b.WriteString(globLiteral(ch))
		}
	}
	return b.String()
}

// globLiteral is the GLOB pattern matching the byte ch; a byte of a
// multi-byte character stays that byte (string(ch) would encode it as the
// code point ch).
func globLiteral(ch byte) string {
	switch ch {
	case '*', '?', '[':
		return "[" + string(ch) + "]"
	}
	return string([]byte{ch})
}

// jsonValue is the value at the bound path in doc.
type jsonValue struct{ doc, path string }

func (j jsonValue) typ() string { return "json_type(" + j.doc + ", " + j.path + ")" }

func (j jsonValue) val() string { return "json_extract(" + j.doc + ", " + j.path + ")" }

func (j jsonValue) Present() string {
	typ, val := j.typ(), j.val()
	return "(" + typ + " IN ('true', 'false', 'integer', 'real') OR (" + typ + " = 'text' AND " + val + " <> '')" +
		" OR (" + typ + " = 'array' AND json_array_length(" + j.doc + ", " + j.path + ") > 0)" +
		" OR (" + typ + " = 'object' AND " + val + " <> '{}'))"
}

// BoolEq needs no parameter: the JSON type names the boolean.
func (j jsonValue) BoolEq(_ *sqlfilter.Params, v bool) string {
	if v {
		return j.typ() + " = 'true'"
	}
	return j.typ() + " = 'false'"
}

func (j jsonValue) Number(p *sqlfilter.Params, op string, v float64) string {
	return j.typ() + " IN ('integer', 'real') AND " + j.val() + " " + op + " " + p.Add(v)
}

func (j jsonValue) DateTime(p *sqlfilter.Params, op, raw string, _ time.Time) string {
	return j.typ() + " = 'text' AND julianday(" + j.val() + ") " + op + " julianday(" + p.Add(raw) + ")"
}

func (j jsonValue) Text() string { return j.val() }

func (j jsonValue) OnlyText(cond string) string { return j.typ() + " = 'text' AND " + cond }
