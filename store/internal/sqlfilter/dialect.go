package sqlfilter

import (
	"time"

	"github.com/groupgate/groupgate/store"
)

// Dialect is what differs between SQL backends: parameter syntax, boolean
// literals, text collation and the JSON document functions. Its methods
// add parameters through p, so that numbering stays in statement order.
type Dialect interface {
	// Placeholder is the text of the nth (1-based) bound parameter.
	Placeholder(n int) string
	// True is a condition that always holds.
	True() string
	// NotNull turns a condition that may be NULL into false when it is.
	NotNull(cond string) string
	// Document is the JSON document column of the table aliased alias.
	Document(alias string) string
	// BoolParam and TimeParam bind a value compared with a boolean or a
	// timestamp column.
	BoolParam(p *Params, b bool) string
	TimeParam(p *Params, t time.Time) string
	// Fold is the text x as compared: case-folded (ASCII letters only)
	// unless caseExact, in byte order otherwise.
	Fold(x string, caseExact bool) string
	// TextParam binds s to be compared with Fold(x, caseExact).
	TextParam(p *Params, s string, caseExact bool) string
	// Match matches x against an escaped LIKE pattern whose only wildcard
	// is %.
	Match(p *Params, x, pattern string, caseExact bool) string
	// JSON is the value at the path segs (validated) in doc.
	JSON(p *Params, doc string, segs []string) JSONValue
	// ArrayExists holds when the value at segs in doc is an array with an
	// element for which cond, given the element's expression as a
	// document, holds; alias is unique within the statement.
	ArrayExists(p *Params, doc string, segs []string, alias string, cond func(elem string) (string, error)) (string, error)
	// Values is a column of the table aliased alias holding the text of
	// every string "value" of the multi-valued attribute attr of the
	// document, each between newlines, folded as Fold folds ("\nA\nB\n"
	// folded); "" when the backend keeps no such column. It lets an index
	// narrow a value filter before the document is read (valuePrefilter).
	Values(alias, attr string) string
	// SortJSON is the ORDER BY list for the value at segs in doc: values
	// present first ascending and last descending, ties by id.
	SortJSON(p *Params, doc string, segs []string, desc bool, id string) string
}

// ValueIndexer is a Dialect whose backend keeps an index of the string
// "value"s of a multi-valued attribute outside the row (a side table),
// instead of a Values column.
type ValueIndexer interface {
	// ValueIndex is a condition on the row aliased alias that holds for
	// every row with an element of attr whose value compares with folded
	// (folded by FoldASCII) by op: eq, sw, ew or co. It may hold for
	// other rows too (the document is still checked), and is never NULL.
	// "" when the backend keeps no index for attr or op.
	ValueIndex(p *Params, alias, attr string, op store.CompareOp, folded string) string
}

// JSONValue is a value in a JSON document; its conditions may be NULL
// where the value's JSON type does not fit.
type JSONValue interface {
	// Present holds for a value that is not null, "", [] or {}.
	Present() string
	// BoolEq holds for the JSON boolean v.
	BoolEq(p *Params, v bool) string
	// Number compares a JSON number with v by the SQL operator op.
	Number(p *Params, op string, v float64) string
	// DateTime compares a JSON string holding a date-time with the
	// RFC 3339 value raw (parsed as t) chronologically by op.
	DateTime(p *Params, op, raw string, t time.Time) string
	// Text is the value as text, for Fold and Match.
	Text() string
	// OnlyText restricts cond, a condition on Text, to JSON strings.
	OnlyText(cond string) string
}

// Params accumulates the bound parameters of one statement.
type Params struct {
	d    Dialect
	args []any
}

// Add binds v and returns its placeholder.
func (p *Params) Add(v any) string {
	p.args = append(p.args, v)
	return p.d.Placeholder(len(p.args))
}
