package store

// A Filter is a SCIM filter (RFC 7644 §3.4.2.2) already parsed and resolved
// against the resource schema by package scim, which the backends translate
// to SQL so that filtering never loads every row.
//
// Attribute paths use the canonical names of the schema (package scim
// normalizes case and URN prefixes before building a Filter):
//   - top-level attributes of the core schema: "id", "externalId",
//     "userName", "displayName", "active", "meta.created",
//     "meta.lastModified" — stored in columns;
//   - any other attribute is read from the resource's SCIM JSON document at
//     the same path, e.g. "name.givenName", "title", or, for an extension,
//     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber"
//     (URN as the first path element, then the attribute);
//   - for groups, "members.value" / ValuePath{Attr: "members"} match the
//     IDs of users with an "scim" membership of the group.
type Filter interface{ isFilter() }

// CompareOp is a SCIM attribute operator.
type CompareOp string

const (
	OpEq      CompareOp = "eq"
	OpNe      CompareOp = "ne"
	OpCo      CompareOp = "co"
	OpSw      CompareOp = "sw"
	OpEw      CompareOp = "ew"
	OpPresent CompareOp = "pr"
	OpGt      CompareOp = "gt"
	OpGe      CompareOp = "ge"
	OpLt      CompareOp = "lt"
	OpLe      CompareOp = "le"
)

// And matches when both sides match.
type And struct{ Left, Right Filter }

// Or matches when either side matches.
type Or struct{ Left, Right Filter }

// Not matches when Filter does not.
type Not struct{ Filter Filter }

// Compare tests one attribute. Value is a string, bool, float64, or nil for
// OpPresent; date-time attributes carry RFC 3339 strings. CaseExact is set
// from the schema (userName is not case-exact; id and externalId are).
type Compare struct {
	Attr      string
	Op        CompareOp
	Value     any
	CaseExact bool
}

// ValuePath matches when at least one element of the multi-valued
// attribute Attr (e.g. "emails") satisfies Filter, whose Compare.Attr
// names sub-attributes of that element ("type", "value"). A plain Compare
// on "emails.value" is turned into a ValuePath by package scim, which gives
// multi-valued attributes their "any value matches" meaning.
type ValuePath struct {
	Attr   string
	Filter Filter
}

func (And) isFilter()       {}
func (Or) isFilter()        {}
func (Not) isFilter()       {}
func (Compare) isFilter()   {}
func (ValuePath) isFilter() {}

// SortOrder of a query.
type SortOrder string

const (
	Ascending  SortOrder = "ascending"
	Descending SortOrder = "descending"
)

// Query selects a page of users or groups. A nil Filter selects all. SortBy
// is an attribute path as in Compare ("" keeps the stable default order,
// creation then ID); ties are broken by ID so paging is stable.
type Query struct {
	Filter    Filter
	SortBy    string
	SortOrder SortOrder
	Offset    int
	Limit     int
}
