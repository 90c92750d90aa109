package scim

import "strings"

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	URNUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	URNListResponse   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	URNSearchRequest  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	URNPatchOp        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	URNError          = "urn:ietf:params:scim:api:messages:2.0:Error"
	URNBulkRequest    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	URNBulkResponse   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	URNSPConfig       = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	URNResourceType   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	URNSchema         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// Attribute types (RFC 7643 §2.3).
const (
	tString    = "string"
	tBoolean   = "boolean"
	tDecimal   = "decimal"
	tInteger   = "integer"
	tDateTime  = "dateTime"
	tReference = "reference"
	tComplex   = "complex"
	tBinary    = "binary"
)

// Mutability values (RFC 7643 §7).
const (
	mReadWrite = "readWrite"
	mReadOnly  = "readOnly"
	mImmutable = "immutable"
	mWriteOnly = "writeOnly"
)

// attribute is one attribute definition of a schema; the /Schemas endpoint
// is generated from these, so what we advertise is what we enforce.
type attribute struct {
	Name        string
	Type        string
	Multi       bool
	Required    bool
	CaseExact   bool
	Mutability  string
	Returned    string // always, never, default, request
	Uniqueness  string // none, server, global
	Description string
	RefTypes    []string
	Canonical   []string
	Sub         []*attribute
}

func (a *attribute) sub(name string) *attribute {
	for _, s := range a.Sub {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// schema is a core or extension schema.
type schema struct {
	ID          string
	Name        string
	Description string
	Attrs       []*attribute
}

func (s *schema) attr(name string) *attribute {
	for _, a := range s.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

func str(name string, opts ...func(*attribute)) *attribute {
	a := &attribute{Name: name, Type: tString, Mutability: mReadWrite, Returned: "default", Uniqueness: "none"}
	for _, o := range opts {
		o(a)
	}
	return a
}

func typ(t string) func(*attribute)  { return func(a *attribute) { a.Type = t } }
func multi(a *attribute)             { a.Multi = true }
func required(a *attribute)          { a.Required = true }
func caseExact(a *attribute)         { a.CaseExact = true }
func readOnly(a *attribute)          { a.Mutability = mReadOnly }
func immutable(a *attribute)         { a.Mutability = mImmutable }
func desc(d string) func(*attribute) { return func(a *attribute) { a.Description = d } }
func refs(r ...string) func(*attribute) {
	return func(a *attribute) { a.Type = tReference; a.RefTypes = r; a.CaseExact = true }
}
func canonical(v ...string) func(*attribute) { return func(a *attribute) { a.Canonical = v } }
func subs(s ...*attribute) func(*attribute) {
	return func(a *attribute) { a.Type = tComplex; a.Sub = s }
}

// multiValued builds the common value/display/type/primary shape of
// RFC 7643 §2.4.
func multiValued(name, d string, types ...string) *attribute {
	return str(name, multi, desc(d), subs(
		str("value"), str("display"), str("type", canonical(types...)), str("primary", typ(tBoolean)),
	))
}

// The schemas. They are built by functions, not package variables, so that
// no package-level state exists; the server builds them once.
func userSchema() *schema {
	return &schema{ID: URNUser, Name: "User", Description: "User Account", Attrs: []*attribute{
		str("userName", required, func(a *attribute) { a.Uniqueness = "server" }, desc("Unique identifier for the User, used to sign in; case-insensitive.")),
		str("name", desc("The components of the user's real name."), subs(
			str("formatted"), str("familyName"), str("givenName"), str("middleName"),
			str("honorificPrefix"), str("honorificSuffix"))),
		str("displayName"), str("nickName"), str("profileUrl", refs("external")),
		str("title"), str("userType"), str("preferredLanguage"), str("locale"), str("timezone"),
		str("active", typ(tBoolean), desc("false ends every session of the user and refuses their logins.")),
		str("password", func(a *attribute) { a.Mutability = mWriteOnly; a.Returned = "never" }, desc("Accepted and discarded: groupgate never authenticates with passwords.")),
		multiValued("emails", "Email addresses; the primary (else the first) is the user's email.", "work", "home", "other"),
		multiValued("phoneNumbers", "Phone numbers.", "work", "home", "mobile", "fax", "pager", "other"),
		multiValued("ims", "Instant messaging addresses."),
		multiValued("photos", "URLs of photos.", "photo", "thumbnail"),
		str("addresses", multi, subs(str("formatted"), str("streetAddress"), str("locality"), str("region"),
			str("postalCode"), str("country"), str("type", canonical("work", "home", "other")), str("primary", typ(tBoolean)))),
		str("groups", multi, readOnly, desc("Groups the user belongs to (read-only; change membership on the Group)."), subs(
			str("value", readOnly), str("$ref", refs("Group"), readOnly), str("display", readOnly), str("type", readOnly))),
		multiValued("entitlements", "Entitlements."),
		multiValued("roles", "Roles (informational; groupgate roles come from group mappings)."),
		multiValued("x509Certificates", "Certificates."),
	}}
}

func enterpriseSchema() *schema {
	return &schema{ID: URNEnterpriseUser, Name: "EnterpriseUser", Description: "Enterprise User", Attrs: []*attribute{
		str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
		str("manager", subs(str("value"), str("$ref", refs("User")), str("displayName", readOnly))),
	}}
}

func groupSchema() *schema {
	return &schema{ID: URNGroup, Name: "Group", Description: "Group", Attrs: []*attribute{
		str("displayName", required, func(a *attribute) { a.Uniqueness = "server" }, caseExact,
			desc("The group name as the IdP sends it in tokens; mappings refer to it.")),
		str("members", multi, desc("Users in the group (groups cannot be nested)."), subs(
			str("value", immutable, caseExact), str("$ref", refs("User"), immutable), str("display", readOnly),
			str("type", immutable, canonical("User")))),
	}}
}

// commonAttrs are id, externalId and meta (RFC 7643 §3.1), shared by every
// resource type.
func commonAttrs() []*attribute {
	return []*attribute{
		str("id", readOnly, caseExact, func(a *attribute) { a.Returned = "always"; a.Uniqueness = "server" }),
		str("externalId", caseExact),
		str("meta", readOnly, subs(
			str("resourceType", readOnly, caseExact), str("created", typ(tDateTime), readOnly),
			str("lastModified", typ(tDateTime), readOnly), str("location", refs("uri"), readOnly),
			str("version", readOnly, caseExact))),
	}
}

// resourceType binds an endpoint to its core schema and extensions.
type resourceType struct {
	Name       string
	Endpoint   string
	Core       *schema
	Extensions []*schema
	common     []*attribute
}

// resolved is an attribute path resolved against a resource type.
type resolved struct {
	ext  *schema // nil for the core schema
	attr *attribute
	sub  *attribute // nil when the path names the attribute itself
}

// canonical returns the canonical path: "name.givenName", or for an
// extension "urn:…:User.employeeNumber" (store.Filter's convention).
func (r resolved) canonical() string {
	p := r.attr.Name
	if r.sub != nil {
		p += "." + r.sub.Name
	}
	if r.ext != nil {
		p = r.ext.ID + "." + p
	}
	return p
}

// target is the attribute the path finally names.
func (r resolved) target() *attribute {
	if r.sub != nil {
		return r.sub
	}
	return r.attr
}

// schemaByURN finds the core schema or an extension by URN,
// case-insensitively.
func (rt *resourceType) schemaByURN(urn string) *schema {
	if strings.EqualFold(urn, rt.Core.ID) {
		return rt.Core
	}
	for _, e := range rt.Extensions {
		if strings.EqualFold(urn, e.ID) {
			return e
		}
	}
	return nil
}

// splitURN splits "urn:…:User:name.givenName" into the schema it names
// and the rest. It returns a nil schema when path has no known URN prefix;
// when path is exactly a URN the rest is "".
func (rt *resourceType) splitURN(path string) (*schema, string) {
	if !strings.HasPrefix(strings.ToLower(path), "urn:") {
		return nil, path
	}
	for _, s := range append([]*schema{rt.Core}, rt.Extensions...) {
		if len(path) >= len(s.ID) && strings.EqualFold(path[:len(s.ID)], s.ID) {
			rest := path[len(s.ID):]
			if rest == "" {
				return s, ""
			}
			if rest[0] == ':' {
				return s, rest[1:]
			}
		}
	}
	return nil, path
}

// resolve resolves "attr", "attr.sub", with or without a schema URN
// prefix, case-insensitively. ok is false for an unknown attribute.
func (rt *resourceType) resolve(path string) (resolved, bool) {
	s, rest := rt.splitURN(path)
	if strings.HasPrefix(strings.ToLower(path), "urn:") && s == nil {
		return resolved{}, false
	}
	if rest == "" {
		return resolved{}, false
	}
	name, subName, hasSub := strings.Cut(rest, ".")
	var a *attribute
	var ext *schema
	switch {
	case s == nil || s == rt.Core:
		a = rt.Core.attr(name)
		if a == nil {
			for _, c := range rt.common {
				if strings.EqualFold(c.Name, name) {
					a = c
				}
			}
		}
	default:
		ext, a = s, s.attr(name)
	}
	if a == nil {
		return resolved{}, false
	}
	r := resolved{ext: ext, attr: a}
	if hasSub {
		if r.sub = a.sub(subName); r.sub == nil || strings.Contains(subName, ".") {
			return resolved{}, false
		}
	}
	return r, true
}

func userType() *resourceType {
	return &resourceType{Name: "User", Endpoint: "/Users", Core: userSchema(), Extensions: []*schema{enterpriseSchema()}, common: commonAttrs()}
}

func groupType() *resourceType {
	return &resourceType{Name: "Group", Endpoint: "/Groups", Core: groupSchema(), common: commonAttrs()}
}
