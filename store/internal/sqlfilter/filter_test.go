package sqlfilter

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// textDialect renders every construct as plain text, so that tests can
// see what reaches the SQL and what is bound.
type textDialect struct{}

func (textDialect) Placeholder(n int) string                     { return "$" + strconv.Itoa(n) }
func (textDialect) True() string                                 { return "TRUE" }
func (textDialect) NotNull(c string) string                      { return "NN(" + c + ")" }
func (textDialect) Document(a string) string                     { return a + ".doc" }
func (textDialect) BoolParam(p *Params, b bool) string           { return p.Add(b) }
func (textDialect) TimeParam(p *Params, t time.Time) string      { return p.Add(t) }
func (textDialect) Fold(x string, _ bool) string                 { return x }
func (textDialect) TextParam(p *Params, s string, _ bool) string { return p.Add(s) }
func (textDialect) Match(p *Params, x, pat string, _ bool) string {
	return x + " LIKE " + p.Add(pat)
}
func (textDialect) JSON(p *Params, doc string, segs []string) JSONValue {
	return textJSON(doc + "#" + p.Add(segs))
}
func (textDialect) ArrayExists(p *Params, doc string, segs []string, alias string, cond func(string) (string, error)) (string, error) {
	arr := doc + "#" + p.Add(segs)
	c, err := cond(alias)
	return "ANY(" + arr + ", " + c + ")", err
}
func (textDialect) Values(string, string) string { return "" }

func (textDialect) SortJSON(p *Params, doc string, segs []string, _ bool, id string) string {
	return doc + "#" + p.Add(segs) + ", " + id
}

type textJSON string

func (j textJSON) Present() string                               { return "PRESENT(" + string(j) + ")" }
func (j textJSON) BoolEq(p *Params, v bool) string               { return string(j) + " = " + p.Add(v) }
func (j textJSON) Number(p *Params, op string, v float64) string { return string(j) + op + p.Add(v) }
func (j textJSON) DateTime(p *Params, op, raw string, _ time.Time) string {
	return string(j) + op + p.Add(raw)
}
func (j textJSON) Text() string             { return string(j) }
func (j textJSON) OnlyText(c string) string { return c }

func TestWhere(t *testing.T) {
	const evil = `x'); DROP TABLE users; --`
	tests := []struct {
		name    string
		res     Resource
		filter  store.Filter
		invalid bool
		args    int
	}{
		{name: "a string value is bound, never written into the SQL", res: Users,
			filter: store.Compare{Attr: "userName", Op: store.OpEq, Value: evil}, args: 1},
		{name: "a prefix search binds the pattern and both range ends", res: Users,
			filter: store.Compare{Attr: "userName", Op: store.OpSw, Value: evil}, args: 3},
		{name: "a JSON attribute path is bound as validated segments", res: Users,
			filter: store.Compare{Attr: "name.givenName", Op: store.OpEq, Value: evil}, args: 2},
		{name: "an extension URN with dots is one segment", res: Users,
			filter: store.Compare{Attr: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", Op: store.OpEq, Value: "x"}, args: 2},
		{name: "an attribute segment with a quote is refused", res: Users,
			filter: store.Compare{Attr: `name.given"Name`, Op: store.OpEq, Value: "x"}, invalid: true},
		{name: "a value path segment with SQL in it is refused", res: Users,
			filter: store.ValuePath{Attr: "emails') OR 1=1 --", Filter: store.Compare{Attr: "value", Op: store.OpPresent}}, invalid: true},
		{name: "a malformed URN is refused", res: Groups,
			filter: store.Compare{Attr: "urn:'bad:x.y", Op: store.OpPresent}, invalid: true},
		{name: "nested value filters are refused", res: Users,
			filter: store.ValuePath{Attr: "emails", Filter: store.ValuePath{Attr: "x", Filter: nil}}, invalid: true},
		{name: "a boolean column takes only eq with a boolean", res: Users,
			filter: store.Compare{Attr: "active", Op: store.OpGt, Value: true}, invalid: true},
		{name: "a relation's members are matched through the membership table", res: Groups,
			filter: store.Compare{Attr: "members.value", Op: store.OpNe, Value: evil}, args: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cond, args, err := Where(textDialect{}, tt.res, tt.filter, nil)
			if tt.invalid {
				var ge *groupgate.Error
				if !errors.As(err, &ge) || ge.Code != groupgate.Invalid {
					t.Fatalf("error = %v, want an Invalid *groupgate.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Where: %v", err)
			}
			if strings.Contains(cond, "DROP") || strings.Contains(cond, "'x") {
				t.Errorf("a value reached the SQL text: %s", cond)
			}
			if len(args) != tt.args {
				t.Errorf("bound %d parameters (%v), want %d; SQL %s", len(args), args, tt.args, cond)
			}
		})
	}
}

func TestOrderByContinuesTheFilterParameters(t *testing.T) {
	clause, args, err := OrderBy(textDialect{}, Users, "name.familyName", store.Descending, "u.id", "u.created_at", []any{"earlier"})
	if err != nil {
		t.Fatalf("OrderBy: %v", err)
	}
	if len(args) != 2 || !strings.Contains(clause, "$2") {
		t.Errorf("clause %q with args %v, want the sort path bound as $2", clause, args)
	}
	if _, _, err := OrderBy(textDialect{}, Groups, "emails", "", "g.id", "g.created_at", nil); err == nil {
		t.Error("sorting groups by emails succeeded, want an error: only users have a primary email column")
	}
}

// indexDialect is textDialect with a side-table index of values.
type indexDialect struct {
	textDialect
	calls *[]string
}

func (d indexDialect) ValueIndex(p *Params, alias, attr string, op store.CompareOp, folded string) string {
	*d.calls = append(*d.calls, alias+" "+attr+" "+string(op)+" "+folded)
	return "IDX(" + p.Add(folded) + ")"
}

func TestAValueIndexerNarrowsByTheComparisonsEveryMatchRequires(t *testing.T) {
	value := func(op store.CompareOp, v string) store.Filter {
		return store.Compare{Attr: "value", Op: op, Value: v}
	}
	tests := []struct {
		name   string
		filter store.Filter
		calls  []string
	}{
		{"both sides of an and, folded", store.ValuePath{Attr: "emails", Filter: store.And{
			Left:  store.Compare{Attr: "type", Op: store.OpEq, Value: "work"},
			Right: store.And{Left: value(store.OpEw, "@Example.COM"), Right: value(store.OpSw, "Ann")}}},
			[]string{"u emails ew @example.com", "u emails sw ann"}},
		{"an or requires neither side", store.ValuePath{Attr: "emails", Filter: store.Or{
			Left: value(store.OpEq, "a"), Right: value(store.OpEq, "b")}}, nil},
		{"a not requires nothing", store.ValuePath{Attr: "emails", Filter: store.Not{Filter: value(store.OpEq, "a")}}, nil},
		{"gt is no index operator", store.ValuePath{Attr: "emails", Filter: value(store.OpGt, "a")}, nil},
		{"a non-string value", store.ValuePath{Attr: "emails", Filter: store.Compare{Attr: "value", Op: store.OpEq, Value: 1.0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			cond, _, err := Where(indexDialect{calls: &calls}, Users, tt.filter, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(calls, tt.calls) {
				t.Errorf("ValueIndex calls %q, want %q", calls, tt.calls)
			}
			if n := strings.Count(cond, "IDX("); n != len(tt.calls) {
				t.Errorf("%d narrowings in %s, want %d", n, cond, len(tt.calls))
			}
		})
	}
}
