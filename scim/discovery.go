package scim

import (
	"net/http"
	"strings"
)

// serviceProviderConfig tells what this server does (RFC 7643 §5); each
// "supported" flag is backed by code and tests.
func (s *Server) serviceProviderConfig(req request) map[string]any {
	return map[string]any{
		"schemas":          []string{URNSPConfig},
		"documentationUri": "https://github.com/groupgate/groupgate/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": s.bulkOps, "maxPayloadSize": s.maxBody},
		"filter":           map[string]any{"supported": true, "maxResults": MaxPageSize},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "Bearer token",
			"description": "A SCIM token created with `groupgate scim-token create`, sent as Authorization: Bearer <token>.",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": req.base + "/ServiceProviderConfig"},
	}
}

func (s *Server) resourceTypeJSON(req request, rt *resourceType) map[string]any {
	exts := []any{}
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	out := map[string]any{
		"schemas":     []string{URNResourceType},
		"id":          rt.Name,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Core.Description,
		"schema":      rt.Core.ID,
		"meta":        map[string]any{"resourceType": "ResourceType", "location": req.base + "/ResourceTypes/" + rt.Name},
	}
	if len(exts) > 0 {
		out["schemaExtensions"] = exts
	}
	return out
}

func listOf(items []any) map[string]any {
	return map[string]any{"schemas": []string{URNListResponse}, "totalResults": len(items), "startIndex": 1, "itemsPerPage": len(items), "Resources": items}
}

func (s *Server) resourceTypes(req request, rest []string) (int, any, http.Header, error) {
	all := []*resourceType{s.users, s.groups}
	if len(rest) == 0 {
		items := []any{}
		for _, rt := range all {
			items = append(items, s.resourceTypeJSON(req, rt))
		}
		return http.StatusOK, listOf(items), nil, nil
	}
	if len(rest) == 1 {
		for _, rt := range all {
			if strings.EqualFold(rest[0], rt.Name) {
				return http.StatusOK, s.resourceTypeJSON(req, rt), nil, nil
			}
		}
	}
	return 0, nil, nil, &Error{Status: http.StatusNotFound, Detail: "no such resource type"}
}

func attrJSON(a *attribute) map[string]any {
	out := map[string]any{
		"name": a.Name, "type": a.Type, "multiValued": a.Multi, "description": a.Description,
		"required": a.Required, "caseExact": a.CaseExact, "mutability": a.Mutability,
		"returned": a.Returned, "uniqueness": a.Uniqueness,
	}
	if len(a.RefTypes) > 0 {
		out["referenceTypes"] = a.RefTypes
	}
	if len(a.Canonical) > 0 {
		out["canonicalValues"] = a.Canonical
	}
	if len(a.Sub) > 0 {
		subs := []any{}
		for _, s := range a.Sub {
			subs = append(subs, attrJSON(s))
		}
		out["subAttributes"] = subs
	}
	return out
}

func schemaJSON(req request, sc *schema) map[string]any {
	attrs := []any{}
	for _, a := range sc.Attrs {
		attrs = append(attrs, attrJSON(a))
	}
	return map[string]any{
		"schemas": []string{URNSchema}, "id": sc.ID, "name": sc.Name, "description": sc.Description,
		"attributes": attrs,
		"meta":       map[string]any{"resourceType": "Schema", "location": req.base + "/Schemas/" + sc.ID},
	}
}

func (s *Server) schemas(req request, rest []string) (int, any, http.Header, error) {
	all := []*schema{s.users.Core, s.users.Extensions[0], s.groups.Core}
	if len(rest) == 0 {
		items := []any{}
		for _, sc := range all {
			items = append(items, schemaJSON(req, sc))
		}
		return http.StatusOK, listOf(items), nil, nil
	}
	id := strings.Join(rest, "/")
	for _, sc := range all {
		if strings.EqualFold(id, sc.ID) {
			return http.StatusOK, schemaJSON(req, sc), nil, nil
		}
	}
	return 0, nil, nil, &Error{Status: http.StatusNotFound, Detail: "no such schema"}
}
