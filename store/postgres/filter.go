package postgres

import (
	"fmt"
	"strconv"
	"time"

	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/internal/sqlfilter"
)

// The SCIM filter translation is shared with the SQLite backend
// (store/internal/sqlfilter); this file is the PostgreSQL dialect. JSON
// paths are text[] parameters over the jsonb scim_doc column; text
// compares in the "C" collation (byte order) and lower() folds ASCII
// letters only, as the SQLite backend does, so both give the same answers.

type scope = sqlfilter.Resource

const (
	userScope  = sqlfilter.Users
	groupScope = sqlfilter.Groups
)

// translator accumulates the parameters of one statement.
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

var _ sqlfilter.Dialect = dialect{}

func (dialect) Placeholder(n int) string     { return "$" + strconv.Itoa(n) }
func (dialect) True() string                 { return "true" }
func (dialect) NotNull(cond string) string   { return "COALESCE(" + cond + ", false)" }
func (dialect) Document(alias string) string { return alias + ".scim_doc" }

func (dialect) BoolParam(p *sqlfilter.Params, b bool) string {
	return p.Add(b) + "::boolean"
}

func (dialect) TimeParam(p *sqlfilter.Params, t time.Time) string {
	return p.Add(t) + "::timestamptz"
}

// Fold is lower(x) for case-insensitive comparison, which the lower(...)
// indexes serve.
func (dialect) Fold(x string, caseExact bool) string {
	if caseExact {
		return x
	}
	return "lower(" + x + ")"
}

func (dialect) TextParam(p *sqlfilter.Params, s string, caseExact bool) string {
	if caseExact {
		return p.Add(s) + "::text"
	}
	// In "C" lower() folds ASCII letters only, as the document side does;
	// the database's own collation would turn É into é and miss ÉVE.
	return "lower(" + p.Add(s) + `::text COLLATE "C")`
}

func (d dialect) Match(p *sqlfilter.Params, x, pattern string, caseExact bool) string {
	return d.Fold(x, caseExact) + " LIKE " + d.TextParam(p, pattern, caseExact) + ` ESCAPE '\'`
}

func (dialect) JSON(p *sqlfilter.Params, doc string, segs []string) sqlfilter.JSONValue {
	return jsonValue("(" + doc + " #> " + p.Add(segs) + "::text[])")
}

func (dialect) ArrayExists(p *sqlfilter.Params, doc string, segs []string, alias string, cond func(string) (string, error)) (string, error) {
	arr := "(" + doc + " #> " + p.Add(segs) + "::text[])"
	c, err := cond(alias + ".v")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(%[1]s) = 'array' THEN %[1]s ELSE '[]'::jsonb END) %[2]s(v) WHERE %[3]s)",
		arr, alias, c), nil
}

// Values is the column migration 0008 keeps, with its trigram index, for
// the emails of users.
func (dialect) Values(alias, attr string) string {
	if alias == "u" && attr == "emails" {
		return "u.emails_values"
	}
	return ""
}

// SortJSON sorts numbers (and booleans as 0/1) before strings, as SQLite
// orders them.
func (dialect) SortJSON(p *sqlfilter.Params, doc string, segs []string, desc bool, id string) string {
	j := "(" + doc + " #> " + p.Add(segs) + "::text[])"
	typ := "jsonb_typeof(" + j + ")"
	num := "CASE " + typ + " WHEN 'number' THEN (" + j + " #>> '{}')::numeric WHEN 'boolean' THEN CASE WHEN " + j + " = 'true'::jsonb THEN 1 ELSE 0 END END"
	text := "CASE WHEN " + typ + " = 'string' THEN " + j + ` #>> '{}' END COLLATE "C"`
	present := "COALESCE(" + typ + " IN ('string', 'number', 'boolean'), false)"
	if desc {
		return present + " ASC, " + num + " DESC NULLS FIRST, " + text + " DESC, " + id
	}
	return present + " DESC, " + num + " ASC NULLS LAST, " + text + " ASC, " + id
}

// jsonValue is a parenthesized jsonb expression.
type jsonValue string

func (j jsonValue) typ() string { return "jsonb_typeof" + string(j) }

func (j jsonValue) Present() string {
	typ, s := j.typ(), string(j)
	return "(" + typ + " IN ('boolean', 'number') OR (" + typ + ` = 'string' AND ` + s + ` <> '""'::jsonb)` +
		" OR (" + typ + " = 'array' AND " + s + " <> '[]'::jsonb) OR (" + typ + " = 'object' AND " + s + " <> '{}'::jsonb))"
}

func (j jsonValue) BoolEq(p *sqlfilter.Params, v bool) string {
	return string(j) + " = " + p.Add(strconv.FormatBool(v)) + "::jsonb"
}

func (j jsonValue) Number(p *sqlfilter.Params, op string, v float64) string {
	return "(CASE WHEN " + j.typ() + " = 'number' THEN (" + string(j) + " #>> '{}')::numeric END) " + op + " " + p.Add(v) + "::numeric"
}

func (j jsonValue) DateTime(p *sqlfilter.Params, op, _ string, t time.Time) string {
	return "groupgate_scim_time(" + j.Text() + ") " + op + " " + p.Add(t) + "::timestamptz"
}

// Text is NULL for anything but a JSON string.
func (j jsonValue) Text() string {
	return "(CASE WHEN " + j.typ() + " = 'string' THEN " + string(j) + ` #>> '{}' END) COLLATE "C"`
}

func (jsonValue) OnlyText(cond string) string { return cond }
