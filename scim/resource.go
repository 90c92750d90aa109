package scim

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
)

// userDocument returns the stored SCIM document of u with the columns laid
// over it, so that changes made by SSO logins (email, display name) show.
// Users created by a login have no document; one is built from the columns.
func userDocument(u groupgate.User) (document, error) {
	doc := document{}
	if len(u.SCIM) > 0 {
		if err := json.Unmarshal(u.SCIM, &doc); err != nil {
			return nil, groupgate.WrapError(groupgate.Internal, err, "decode stored SCIM document of user %s", u.ID)
		}
	}
	doc["userName"] = u.UserName
	doc["active"] = u.Active
	setString(doc, "externalId", u.ExternalID)
	if u.DisplayName != "" {
		doc["displayName"] = u.DisplayName
	}
	if u.Email != "" {
		emails, _ := doc["emails"].([]any)
		if i := primaryIndex(emails); i < 0 {
			doc["emails"] = []any{map[string]any{"value": u.Email, "primary": true}}
		} else if em := emails[i].(map[string]any); !strings.EqualFold(stringOf(em["value"]), u.Email) {
			em["value"] = u.Email
		}
	}
	return doc, nil
}

// primaryIndex is the index of the primary element, else of the first; -1
// when there is none.
func primaryIndex(list []any) int {
	first := -1
	for i, e := range list {
		em, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if em["primary"] == true {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}

// setString sets a column-backed string attribute, or removes it when it
// is unassigned: RFC 7643 §2.5 and §3.1 say an attribute without a value
// is omitted from a response, not returned as "".
func setString(doc document, k, v string) {
	if v == "" {
		delete(doc, k)
		return
	}
	doc[k] = v
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// applyUserDocument validates doc and writes it into u: the columns
// (userName, email from the primary or first email, displayName, active,
// externalId) and the document itself. A document without active keeps
// the user's current state (new users default to active).
func applyUserDocument(u *groupgate.User, doc document) *Error {
	userName := strings.TrimSpace(stringOf(doc["userName"]))
	if userName == "" {
		return badRequest(errInvalidValue, "userName is required")
	}
	doc["userName"] = userName
	u.UserName = userName
	u.Email = ""
	if emails, _ := doc["emails"].([]any); len(emails) > 0 {
		if i := primaryIndex(emails); i >= 0 {
			u.Email = strings.TrimSpace(stringOf(emails[i].(map[string]any)["value"]))
		}
	}
	u.DisplayName = stringOf(doc["displayName"])
	if u.DisplayName == "" {
		if name, ok := doc["name"].(map[string]any); ok {
			u.DisplayName = stringOf(name["formatted"])
			if u.DisplayName == "" {
				u.DisplayName = strings.TrimSpace(stringOf(name["givenName"]) + " " + stringOf(name["familyName"]))
			}
		}
	}
	if a, ok := doc["active"].(bool); ok {
		u.Active = a
	}
	u.ExternalID = stringOf(doc["externalId"])
	if err := checkLengths(
		lengthCheck{"userName", u.UserName, maxNameLen},
		lengthCheck{"displayName", u.DisplayName, maxNameLen},
		lengthCheck{"externalId", u.ExternalID, maxNameLen},
		lengthCheck{"emails.value", u.Email, maxEmailLen},
	); err != nil {
		return err
	}
	stored := clone(doc).(document)
	delete(stored, "active") // the column is the truth
	b, err := json.Marshal(stored)
	if err != nil {
		return &Error{Status: 500, Detail: "encode SCIM document", Err: err}
	}
	u.SCIM = b
	return nil
}

// groupDocument returns the group's document with its SCIM members.
func groupDocument(g groupgate.Group, members []string) (document, error) {
	doc := document{}
	if len(g.SCIM) > 0 {
		if err := json.Unmarshal(g.SCIM, &doc); err != nil {
			return nil, groupgate.WrapError(groupgate.Internal, err, "decode stored SCIM document of group %s", g.ID)
		}
	}
	doc["displayName"] = g.Name
	setString(doc, "externalId", g.ExternalID)
	delete(doc, "members")
	if members != nil {
		list := make([]any, len(members))
		for i, id := range members {
			list[i] = map[string]any{"value": id}
		}
		setOrDelete(doc, "members", list)
	}
	return doc, nil
}

// applyGroupDocument validates doc, writes it into g and returns the
// member user IDs.
func applyGroupDocument(g *groupgate.Group, doc document) ([]string, *Error) {
	name := stringOf(doc["displayName"])
	if strings.TrimSpace(name) == "" {
		return nil, badRequest(errInvalidValue, "displayName is required")
	}
	g.Name = name
	g.ExternalID = stringOf(doc["externalId"])
	if err := checkLengths(
		lengthCheck{"displayName", g.Name, maxNameLen},
		lengthCheck{"externalId", g.ExternalID, maxNameLen},
	); err != nil {
		return nil, err
	}
	members := []string{}
	list, _ := doc["members"].([]any)
	for _, e := range list {
		em, _ := e.(map[string]any)
		id := stringOf(em["value"])
		if id == "" {
			return nil, badRequest(errInvalidValue, "every member needs a value")
		}
		if t := stringOf(em["type"]); t != "" && !strings.EqualFold(t, "User") {
			return nil, badRequest(errInvalidValue, "member %q: only users can be members (groups do not nest)", id)
		}
		members = append(members, id)
	}
	stored := clone(doc).(document)
	delete(stored, "members") // memberships live in group sets
	b, err := json.Marshal(stored)
	if err != nil {
		return nil, &Error{Status: 500, Detail: "encode SCIM document", Err: err}
	}
	g.SCIM = b
	return members, nil
}

// etag is the weak ETag of a version (RFC 7644 §3.14).
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// etagMatches reports whether an If-Match / If-None-Match header lists the
// version; "*" matches any.
func etagMatches(header string, version int64) bool {
	want := strconv.FormatInt(version, 10)
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if strings.Trim(t, `"`) == want {
			return true
		}
	}
	return false
}

// render turns a document into the JSON object returned to the client.
func render(rt *resourceType, doc document, id string, created, modified time.Time, version int64, location string) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		out[k] = v
	}
	schemas := []any{rt.Core.ID}
	for _, e := range rt.Extensions {
		if _, ok := doc[e.ID]; ok {
			schemas = append(schemas, e.ID)
		}
	}
	out["schemas"] = schemas
	out["id"] = id
	out["meta"] = map[string]any{
		"resourceType": rt.Name,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": modified.UTC().Format(time.RFC3339Nano),
		"location":     location,
		"version":      etag(version),
	}
	return out
}

// projection applies attributes / excludedAttributes (RFC 7644 §3.4.2.5).
type projection struct {
	include []resolved
	exclude []resolved
}

func parseProjection(rt *resourceType, attributes, excluded []string) (projection, *Error) {
	var p projection
	for _, list := range []struct {
		in  []string
		out *[]resolved
	}{{attributes, &p.include}, {excluded, &p.exclude}} {
		for _, s := range list.in {
			for _, part := range strings.Split(s, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				r, ok := rt.resolve(part)
				if !ok {
					// Unknown attributes select nothing; IdPs ask for
					// attributes of extensions we do not have.
					continue
				}
				*list.out = append(*list.out, r)
			}
		}
	}
	return p, nil
}

// wants reports whether the projection returns the attribute at all; used
// to skip loading group members when they are excluded.
func (p projection) wants(name string) bool {
	for _, r := range p.exclude {
		if r.ext == nil && r.sub == nil && r.attr.Name == name {
			return false
		}
	}
	if len(p.include) == 0 {
		return true
	}
	for _, r := range p.include {
		if r.ext == nil && r.attr.Name == name {
			return true
		}
	}
	return false
}

func (p projection) apply(obj map[string]any) map[string]any {
	if len(p.include) > 0 {
		out := map[string]any{"schemas": obj["schemas"], "id": obj["id"]}
		for _, r := range p.include {
			src, dst := obj, out
			if r.ext != nil {
				s, _ := obj[r.ext.ID].(map[string]any)
				if s == nil {
					continue
				}
				d, _ := out[r.ext.ID].(map[string]any)
				if d == nil {
					d = map[string]any{}
					out[r.ext.ID] = d
				}
				src, dst = s, d
			}
			v, ok := src[r.attr.Name]
			if !ok {
				continue
			}
			if r.sub == nil {
				dst[r.attr.Name] = v
				continue
			}
			dst[r.attr.Name] = pickSub(v, dst[r.attr.Name], r.sub.Name)
		}
		obj = out
	}
	for _, r := range p.exclude {
		if r.attr.Returned == "always" {
			continue
		}
		m := obj
		if r.ext != nil {
			m, _ = obj[r.ext.ID].(map[string]any)
			if m == nil {
				continue
			}
		}
		if r.sub == nil {
			delete(m, r.attr.Name)
			continue
		}
		switch v := m[r.attr.Name].(type) {
		case map[string]any:
			delete(v, r.sub.Name)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					delete(em, r.sub.Name)
				}
			}
		}
	}
	return obj
}

// pickSub copies one sub-attribute of v (complex or multi-valued) into
// what was already picked.
func pickSub(v, picked any, sub string) any {
	switch x := v.(type) {
	case map[string]any:
		p, _ := picked.(map[string]any)
		if p == nil {
			p = map[string]any{}
		}
		if sv, ok := x[sub]; ok {
			p[sub] = sv
		}
		return p
	case []any:
		p, _ := picked.([]any)
		if len(p) != len(x) {
			p = make([]any, len(x))
			for i := range p {
				p[i] = map[string]any{}
			}
		}
		for i, e := range x {
			if em, ok := e.(map[string]any); ok {
				if sv, ok := em[sub]; ok {
					p[i].(map[string]any)[sub] = sv
				}
			}
		}
		return p
	}
	return picked
}
