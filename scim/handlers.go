package scim

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// listParams are the query parameters of a list or the fields of a
// SearchRequest (RFC 7644 §3.4.2, §3.4.3).
type listParams struct {
	Schemas            []string `json:"schemas"`
	Filter             string   `json:"filter"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	badNumber          string
}

func listParamsFromQuery(q map[string][]string) listParams {
	get := func(k string) string {
		for qk, v := range q {
			if strings.EqualFold(qk, k) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	p := listParams{Filter: get("filter"), SortBy: get("sortBy"), SortOrder: get("sortOrder")}
	for _, k := range []string{"startIndex", "count"} {
		if v := get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				p.badNumber = k
				continue
			}
			if k == "startIndex" {
				p.StartIndex = &n
			} else {
				p.Count = &n
			}
		}
	}
	if v := get("attributes"); v != "" {
		p.Attributes = []string{v}
	}
	if v := get("excludedAttributes"); v != "" {
		p.ExcludedAttributes = []string{v}
	}
	return p
}

func (s *Server) search(ctx context.Context, req request, rts []*resourceType, body io.Reader) (int, any, http.Header, error) {
	var p listParams
	if err := decodeBody(body, &p); err != nil {
		return 0, nil, nil, err
	}
	return s.list(ctx, req, rts, p)
}

// list answers a list or search over one resource type, or over users
// then groups for a search at the root.
func (s *Server) list(ctx context.Context, req request, rts []*resourceType, p listParams) (int, any, http.Header, error) {
	if p.badNumber != "" {
		return 0, nil, nil, badRequest(errInvalidValue, "%s must be an integer", p.badNumber)
	}
	start := 1
	if p.StartIndex != nil && *p.StartIndex > 1 {
		start = *p.StartIndex
	}
	count := DefaultPageSize
	if p.Count != nil {
		count = min(max(*p.Count, 0), MaxPageSize)
	}
	order := store.Ascending
	switch strings.ToLower(p.SortOrder) {
	case "", "ascending":
	case "descending":
		order = store.Descending
	default:
		return 0, nil, nil, badRequest(errInvalidValue, "sortOrder must be ascending or descending")
	}
	if len(p.Attributes) > maxAttributeListSize || len(p.ExcludedAttributes) > maxAttributeListSize {
		return 0, nil, nil, badRequest(errInvalidValue, "too many attributes")
	}

	type plan struct {
		rt     *resourceType
		filter store.Filter
		sortBy string
	}
	var plans []plan
	var firstErr *Error
	for _, rt := range rts {
		pl := plan{rt: rt}
		if p.Filter != "" {
			f, err := parseFilter(rt, p.Filter)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			pl.filter = f
		}
		if p.SortBy != "" {
			r, ok := rt.resolve(p.SortBy)
			if !ok {
				if len(rts) == 1 {
					return 0, nil, nil, badRequest(errInvalidValue, "cannot sort by %q", p.SortBy)
				}
			} else {
				pl.sortBy = r.canonical()
				if r.attr.Multi && r.sub == nil {
					pl.sortBy += ".value" // RFC 7644 §3.4.2.3: the primary or first value
				}
			}
		}
		plans = append(plans, pl)
	}
	if len(plans) == 0 {
		return 0, nil, nil, firstErr
	}

	offset, remaining := start-1, count
	total := 0
	resources := []any{}
	for _, pl := range plans {
		proj, perr := parseProjection(pl.rt, p.Attributes, p.ExcludedAttributes)
		if perr != nil {
			return 0, nil, nil, perr
		}
		q := store.Query{Filter: pl.filter, SortBy: pl.sortBy, SortOrder: order, Offset: offset, Limit: max(remaining, 1)}
		n, err := s.queryPage(ctx, req, pl.rt, q, proj, remaining > 0, &resources)
		if err != nil {
			return 0, nil, nil, err
		}
		total += n
		got := len(resources)
		remaining = count - got
		offset = max(0, offset-n)
	}
	return http.StatusOK, map[string]any{
		"schemas":      []string{URNListResponse},
		"totalResults": total,
		"startIndex":   start,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}, nil, nil
}

// queryPage runs one store query and appends the rendered resources (when
// keep) to out; it returns the total the filter matches.
func (s *Server) queryPage(ctx context.Context, req request, rt *resourceType, q store.Query, proj projection, keep bool, out *[]any) (int, error) {
	if rt == s.users {
		users, total, err := s.st.QueryUsers(ctx, q)
		if err != nil {
			return 0, queryError(err)
		}
		if keep {
			for _, u := range users {
				obj, err := s.renderUser(req, u, proj)
				if err != nil {
					return 0, err
				}
				*out = append(*out, obj)
			}
		}
		return total, nil
	}
	groups, total, err := s.st.QueryGroups(ctx, q)
	if err != nil {
		return 0, queryError(err)
	}
	if keep {
		for _, g := range groups {
			obj, err := s.renderGroup(ctx, req, g, nil, proj)
			if err != nil {
				return 0, err
			}
			*out = append(*out, obj)
		}
	}
	return total, nil
}

// queryError turns the store's Invalid (a filter it cannot apply) into
// invalidFilter.
func queryError(err error) error {
	if groupgate.IsCode(err, groupgate.Invalid) {
		return &Error{Status: http.StatusBadRequest, ScimType: errInvalidFilter, Detail: groupgate.ErrorMessageOf(err), Err: err}
	}
	return err
}

func (s *Server) renderUser(req request, u groupgate.User, proj projection) (map[string]any, error) {
	doc, err := userDocument(u)
	if err != nil {
		return nil, err
	}
	return proj.apply(render(s.users, doc, u.ID, u.CreatedAt, u.UpdatedAt, u.Version, s.location(req, s.users, u.ID))), nil
}

// renderGroup renders g; members are loaded unless the projection drops
// them (Entra asks for excludedAttributes=members) or given.
func (s *Server) renderGroup(ctx context.Context, req request, g groupgate.Group, members []string, proj projection) (map[string]any, error) {
	if members == nil && proj.wants("members") {
		var err error
		members, err = s.st.ListGroupMembersBySource(ctx, g.Name, groupgate.SourceSCIM)
		if err != nil {
			return nil, err
		}
	}
	if !proj.wants("members") {
		members = nil
	}
	doc, err := groupDocument(g, members)
	if err != nil {
		return nil, err
	}
	if list, ok := doc["members"].([]any); ok {
		for _, e := range list {
			em := e.(map[string]any)
			em["$ref"] = s.location(req, s.users, stringOf(em["value"]))
			em["type"] = "User"
		}
	}
	return proj.apply(render(s.groups, doc, g.ID, g.CreatedAt, g.UpdatedAt, g.Version, s.location(req, s.groups, g.ID))), nil
}

func projectionFromQuery(rt *resourceType, q map[string][]string) (projection, *Error) {
	p := listParamsFromQuery(q)
	return parseProjection(rt, p.Attributes, p.ExcludedAttributes)
}

func (s *Server) create(ctx context.Context, req request, rt *resourceType, q map[string][]string, body io.Reader) (int, any, http.Header, error) {
	proj, perr := projectionFromQuery(rt, q)
	if perr != nil {
		return 0, nil, nil, perr
	}
	var raw map[string]any
	if err := decodeBody(body, &raw); err != nil {
		return 0, nil, nil, err
	}
	doc, nerr := normalize(rt, raw)
	if nerr != nil {
		return 0, nil, nil, nerr
	}
	if rt == s.users {
		u := groupgate.User{Active: true}
		if err := applyUserDocument(&u, doc); err != nil {
			return 0, nil, nil, err
		}
		created, err := s.sy.SCIMCreateUser(ctx, req.actor, u, s.match)
		if err != nil {
			return 0, nil, nil, err
		}
		obj, err := s.renderUser(req, created, proj)
		if err != nil {
			return 0, nil, nil, err
		}
		return http.StatusCreated, obj, resourceHeaders(s.location(req, rt, created.ID), created.Version), nil
	}
	var g groupgate.Group
	members, gerr := applyGroupDocument(&g, doc)
	if gerr != nil {
		return 0, nil, nil, gerr
	}
	created, final, err := s.sy.SCIMCreateGroup(ctx, req.actor, g, members)
	if err != nil {
		return 0, nil, nil, err
	}
	obj, err := s.renderGroup(ctx, req, created, final, proj)
	if err != nil {
		return 0, nil, nil, err
	}
	return http.StatusCreated, obj, resourceHeaders(s.location(req, rt, created.ID), created.Version), nil
}

// errUnchanged aborts the write of an update that changes nothing: RFC
// 7644 §3.5.2 says such a PATCH SHALL NOT change meta.version or
// meta.lastModified, and a PUT of the resource as it is keeps them too.
// Nothing is written, audited or pushed then.
var errUnchanged = errors.New("the update changes nothing")

// sameUser reports whether two states of a user render the same resource.
func sameUser(a, b groupgate.User) (bool, error) {
	da, err := userDocument(a)
	if err != nil {
		return false, err
	}
	db, err := userDocument(b)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(da, db), nil
}

// sameGroup reports whether two states of a group, with their member
// IDs, render the same resource.
func sameGroup(a groupgate.Group, am []string, b groupgate.Group, bm []string) (bool, error) {
	am, bm = slices.Clone(am), slices.Clone(bm)
	slices.Sort(am)
	slices.Sort(bm)
	if !slices.Equal(am, slices.Compact(bm)) {
		return false, nil
	}
	da, err := groupDocument(a, nil)
	if err != nil {
		return false, err
	}
	db, err := groupDocument(b, nil)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(da, db), nil
}

func resourceHeaders(location string, version int64) http.Header {
	h := http.Header{}
	h.Set("Location", location)
	h.Set("ETag", etag(version))
	return h
}

// preconditionFailed is the 412 of a failed If-Match (RFC 7644 §3.14).
func checkIfMatch(h http.Header, version int64) *Error {
	if v := h.Get("If-Match"); v != "" && !etagMatches(v, version) {
		return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed: its version is " + etag(version)}
	}
	return nil
}

// resource handles GET, PUT, PATCH and DELETE of one user or group.
func (s *Server) resource(ctx context.Context, req request, rt *resourceType, id, method string, q map[string][]string, h http.Header, body io.Reader) (int, any, http.Header, error) {
	proj, perr := projectionFromQuery(rt, q)
	if perr != nil {
		return 0, nil, nil, perr
	}
	isUser := rt == s.users
	switch method {
	case http.MethodGet:
		var obj map[string]any
		var version int64
		if isUser {
			u, err := s.st.GetUser(ctx, id)
			if err != nil {
				return 0, nil, nil, err
			}
			version = u.Version
			if inm := h.Get("If-None-Match"); inm != "" && etagMatches(inm, version) {
				return http.StatusNotModified, nil, http.Header{"Etag": {etag(version)}}, nil
			}
			if obj, err = s.renderUser(req, u, proj); err != nil {
				return 0, nil, nil, err
			}
		} else {
			g, err := s.st.GetGroup(ctx, id)
			if err != nil {
				return 0, nil, nil, err
			}
			version = g.Version
			if inm := h.Get("If-None-Match"); inm != "" && etagMatches(inm, version) {
				return http.StatusNotModified, nil, http.Header{"Etag": {etag(version)}}, nil
			}
			if obj, err = s.renderGroup(ctx, req, g, nil, proj); err != nil {
				return 0, nil, nil, err
			}
		}
		return http.StatusOK, obj, resourceHeaders(s.location(req, rt, id), version), nil

	case http.MethodPut, http.MethodPatch:
		var update func(doc document) (document, *Error)
		if method == http.MethodPut {
			var raw map[string]any
			if err := decodeBody(body, &raw); err != nil {
				return 0, nil, nil, err
			}
			doc, err := normalize(rt, raw)
			if err != nil {
				return 0, nil, nil, err
			}
			update = func(document) (document, *Error) { return clone(doc).(document), nil }
		} else {
			var pr patchRequest
			if err := decodeBody(body, &pr); err != nil {
				return 0, nil, nil, err
			}
			update = func(cur document) (document, *Error) { return applyPatch(rt, cur, pr) }
		}
		if isUser {
			var unchanged groupgate.User
			u, err := s.sy.SCIMUpdateUser(ctx, req.actor, id, func(u *groupgate.User) error {
				if err := checkIfMatch(h, u.Version); err != nil {
					return err
				}
				cur, err := userDocument(*u)
				if err != nil {
					return err
				}
				next, serr := update(cur)
				if serr != nil {
					return serr
				}
				before := *u
				if serr := applyUserDocument(u, next); serr != nil {
					return serr
				}
				if same, err := sameUser(before, *u); err != nil || same {
					unchanged = before
					return cmp.Or(err, errUnchanged)
				}
				return nil
			})
			if errors.Is(err, errUnchanged) {
				u, err = unchanged, nil
			}
			if err != nil {
				return 0, nil, nil, err
			}
			obj, err := s.renderUser(req, u, proj)
			if err != nil {
				return 0, nil, nil, err
			}
			return http.StatusOK, obj, resourceHeaders(s.location(req, rt, id), u.Version), nil
		}
		var (
			unchangedGroup   groupgate.Group
			unchangedMembers []string
		)
		g, members, err := s.sy.SCIMUpdateGroup(ctx, req.actor, id, func(g *groupgate.Group, members []string) ([]string, error) {
			if err := checkIfMatch(h, g.Version); err != nil {
				return nil, err
			}
			cur, err := groupDocument(*g, members)
			if err != nil {
				return nil, err
			}
			next, serr := update(cur)
			if serr != nil {
				return nil, serr
			}
			before := *g
			out, serr := applyGroupDocument(g, next)
			if serr != nil {
				return nil, serr
			}
			if same, err := sameGroup(before, members, *g, out); err != nil || same {
				unchangedGroup, unchangedMembers = before, members
				return nil, cmp.Or(err, errUnchanged)
			}
			return out, nil
		})
		if errors.Is(err, errUnchanged) {
			g, members, err = unchangedGroup, unchangedMembers, nil
		}
		if err != nil {
			return 0, nil, nil, err
		}
		obj, err := s.renderGroup(ctx, req, g, members, proj)
		if err != nil {
			return 0, nil, nil, err
		}
		return http.StatusOK, obj, resourceHeaders(s.location(req, rt, id), g.Version), nil

	case http.MethodDelete:
		if isUser {
			if h.Get("If-Match") != "" {
				u, err := s.st.GetUser(ctx, id)
				if err != nil {
					return 0, nil, nil, err
				}
				if err := checkIfMatch(h, u.Version); err != nil {
					return 0, nil, nil, err
				}
			}
			if err := s.sy.SCIMDeleteUser(ctx, req.actor, id); err != nil {
				return 0, nil, nil, err
			}
			return http.StatusNoContent, nil, nil, nil
		}
		if h.Get("If-Match") != "" {
			g, err := s.st.GetGroup(ctx, id)
			if err != nil {
				return 0, nil, nil, err
			}
			if err := checkIfMatch(h, g.Version); err != nil {
				return 0, nil, nil, err
			}
		}
		if err := s.sy.SCIMDeleteGroup(ctx, req.actor, id); err != nil {
			return 0, nil, nil, err
		}
		return http.StatusNoContent, nil, nil, nil
	}
	return 0, nil, nil, &Error{Status: http.StatusMethodNotAllowed, Detail: method + " is not allowed on a resource"}
}
