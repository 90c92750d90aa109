package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
)

// bulkRequest is a BulkRequest message (RFC 7644 §3.7).
type bulkRequest struct {
	Schemas      []string        `json:"schemas"`
	FailOnErrors int             `json:"failOnErrors"`
	Operations   []bulkOperation `json:"Operations"`
}

type bulkOperation struct {
	Method  string `json:"method"`
	BulkID  string `json:"bulkId"`
	Version string `json:"version"`
	Path    string `json:"path"`
	Data    any    `json:"data"`
}

// bulk runs the operations in order. "bulkId:<id>" in a path or in data
// refers to the resource an earlier POST with that bulkId created; a
// reference to a bulkId not yet created fails that operation (operations
// are not reordered). After failOnErrors failures the rest is skipped.
//
// Consecutive POSTs of new users are written with one commit where the
// store can (SCIMCreateUsers, issue 15): each is answered 201 only once
// that commit is made, and the first that is not a plain insert (an
// adoption, a conflict) goes alone, as it would in a one-by-one run, before
// the batch goes on. So the answers, their order and what is committed
// are those of running the operations one by one.
func (s *Server) bulk(ctx context.Context, req request, body io.Reader) (int, any, http.Header, error) {
	var br bulkRequest
	if err := decodeBody(body, &br); err != nil {
		return 0, nil, nil, err
	}
	ops := br.Operations
	if len(ops) > s.bulkOps {
		return 0, nil, nil, &Error{Status: http.StatusRequestEntityTooLarge,
			Detail: "bulk request has " + strconv.Itoa(len(ops)) + " operations; the maximum is " + strconv.Itoa(s.bulkOps)}
	}
	ids := map[string]string{}
	results := []any{}
	failures := 0
	add := func(op bulkOperation, status int, obj any, hdr http.Header, err error) {
		res := map[string]any{"method": op.Method}
		if op.BulkID != "" {
			res["bulkId"] = op.BulkID
		}
		if err != nil {
			se := toSCIMError(err)
			failures++
			res["status"] = strconv.Itoa(se.Status)
			res["response"] = se.body()
			results = append(results, res)
			return
		}
		res["status"] = strconv.Itoa(status)
		if loc := hdr.Get("Location"); loc != "" {
			res["location"] = loc
		}
		if v := hdr.Get("ETag"); v != "" {
			res["version"] = v
		}
		if m, ok := obj.(map[string]any); ok && op.BulkID != "" && strings.EqualFold(op.Method, http.MethodPost) {
			if id, ok := m["id"].(string); ok {
				ids[op.BulkID] = id
			}
		}
		results = append(results, res)
	}

	batching := true
	// run holds the users of ops[runStart:runStart+len(run)], prepared
	// and not yet written; limit caps the next batch, halved to what went
	// through after a refusal and doubled after a full batch, so that a
	// request of clashes does not send its remainder again and again.
	var run []groupgate.User
	runStart, limit := 0, len(ops)
	for i := 0; i < len(ops); {
		if br.FailOnErrors > 0 && failures >= br.FailOnErrors {
			break
		}
		if batching {
			if i < runStart || i >= runStart+len(run) {
				run, runStart = s.bulkUserRun(req, ops[i:], ids), i
			}
			pending := run[i-runStart:]
			if len(pending) >= 2 {
				pending = pending[:max(2, min(limit, len(pending)))]
				created, err := s.sy.SCIMCreateUsers(ctx, req.actor, pending, s.match)
				switch {
				case err != nil:
					// Nothing of it is committed (a store without batches,
					// a cancelled request, a deadlock): the rest goes one
					// by one, which answers each as it would alone.
					batching = false
				case len(created) == len(pending):
					limit = 2 * len(pending)
				default:
					limit = len(created)
				}
				for _, u := range created {
					obj, err := s.renderUser(req, u, projection{})
					if err != nil {
						add(ops[i], 0, nil, nil, err)
					} else {
						add(ops[i], http.StatusCreated, obj, resourceHeaders(s.location(req, s.users, u.ID), u.Version), nil)
					}
					i++
				}
				if err == nil && len(created) == len(pending) {
					continue
				}
				// ops[i] is the one the batch stopped before: it needs
				// the full create.
			}
		}
		status, obj, hdr, err := s.bulkOne(ctx, req, ops[i], ids)
		add(ops[i], status, obj, hdr, err)
		i++
	}
	return http.StatusOK, map[string]any{"schemas": []string{URNBulkResponse}, "Operations": results}, nil, nil
}

// bulkUserRun prepares the users of the POSTs of new users that ops starts
// with, as create would, up to the first operation that is anything else:
// another method or path, data that create refuses (that operation then
// fails one by one, exactly as it does alone), a reference to a bulkId of
// the run itself (its id is known only once the run is written) or a
// bulkId used before.
func (s *Server) bulkUserRun(req request, ops []bulkOperation, ids map[string]string) []groupgate.User {
	var run []groupgate.User
	seen := map[string]bool{}
	for _, op := range ops {
		if !strings.EqualFold(op.Method, http.MethodPost) || op.BulkID == "" || seen[op.BulkID] {
			break
		}
		if _, used := ids[op.BulkID]; used {
			break
		}
		u, ok := s.bulkUser(op, ids)
		if !ok {
			break
		}
		seen[op.BulkID] = true
		run = append(run, u)
	}
	return run
}

// bulkUser is the user a POST /Users operation creates, read as bulkOne
// and create read it; ok is false when they would refuse it or the
// operation is not one.
func (s *Server) bulkUser(op bulkOperation, ids map[string]string) (groupgate.User, bool) {
	path, err := resolveBulkIDs(op.Path, ids)
	if err != nil || !strings.EqualFold(strings.Trim(path, "/"), "users") {
		return groupgate.User{}, false
	}
	data, err := resolveBulkData(op.Data, ids)
	if err != nil {
		return groupgate.User{}, false
	}
	var body []byte
	if data != nil {
		if body, err = json.Marshal(data); err != nil {
			return groupgate.User{}, false
		}
	}
	var raw map[string]any
	if err := decodeBody(bytes.NewReader(body), &raw); err != nil {
		return groupgate.User{}, false
	}
	doc, nerr := normalize(s.users, raw)
	if nerr != nil {
		return groupgate.User{}, false
	}
	u := groupgate.User{Active: true}
	if aerr := applyUserDocument(&u, doc); aerr != nil {
		return groupgate.User{}, false
	}
	return u, true
}

func (s *Server) bulkOne(ctx context.Context, req request, op bulkOperation, ids map[string]string) (int, any, http.Header, error) {
	method := strings.ToUpper(op.Method)
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return 0, nil, nil, badRequest(errInvalidSyntax, "bulk method must be POST, PUT, PATCH or DELETE")
	}
	if method == http.MethodPost && op.BulkID == "" {
		return 0, nil, nil, badRequest(errInvalidSyntax, "a bulk POST needs a bulkId")
	}
	path, err := resolveBulkIDs(op.Path, ids)
	if err != nil {
		return 0, nil, nil, err
	}
	data, err := resolveBulkData(op.Data, ids)
	if err != nil {
		return 0, nil, nil, err
	}
	path = strings.Trim(path, "/")
	seg := strings.Split(path, "/")
	first := strings.ToLower(seg[0])
	if (first != "users" && first != "groups") || len(seg) > 2 || (method == http.MethodPost) != (len(seg) == 1) {
		return 0, nil, nil, badRequest(errInvalidPath, "bulk path %q must be /Users or /Groups[/id]", op.Path)
	}
	var body []byte
	if data != nil {
		if body, err = json.Marshal(data); err != nil {
			return 0, nil, nil, badRequest(errInvalidSyntax, "bad data")
		}
	}
	h := http.Header{}
	if op.Version != "" {
		h.Set("If-Match", op.Version)
	}
	return s.route(ctx, req, method, path, nil, h, bytes.NewReader(body))
}

func resolveBulkIDs(s string, ids map[string]string) (string, error) {
	for {
		i := strings.Index(s, "bulkId:")
		if i < 0 {
			return s, nil
		}
		j := i + len("bulkId:")
		k := j
		for k < len(s) && s[k] != '/' && s[k] != '"' && s[k] != ' ' {
			k++
		}
		id, ok := ids[s[j:k]]
		if !ok {
			return "", &Error{Status: http.StatusConflict, ScimType: errInvalidValue, Detail: "unresolved reference bulkId:" + s[j:k]}
		}
		s = s[:i] + id + s[k:]
	}
}

func resolveBulkData(v any, ids map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "bulkId:") {
			return resolveBulkIDs(x, ids)
		}
		return x, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolveBulkData(e, ids)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolveBulkData(e, ids)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
