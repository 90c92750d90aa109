package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
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
func (s *Server) bulk(ctx context.Context, req request, body io.Reader) (int, any, http.Header, error) {
	var br bulkRequest
	if err := decodeBody(body, &br); err != nil {
		return 0, nil, nil, err
	}
	if len(br.Operations) > s.bulkOps {
		return 0, nil, nil, &Error{Status: http.StatusRequestEntityTooLarge,
			Detail: "bulk request has " + strconv.Itoa(len(br.Operations)) + " operations; the maximum is " + strconv.Itoa(s.bulkOps)}
	}
	ids := map[string]string{}
	results := []any{}
	failures := 0
	for _, op := range br.Operations {
		if br.FailOnErrors > 0 && failures >= br.FailOnErrors {
			break
		}
		res := map[string]any{"method": op.Method}
		if op.BulkID != "" {
			res["bulkId"] = op.BulkID
		}
		status, obj, hdr, err := s.bulkOne(ctx, req, op, ids)
		if err != nil {
			se := toSCIMError(err)
			failures++
			res["status"] = strconv.Itoa(se.Status)
			res["response"] = se.body()
			results = append(results, res)
			continue
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
	return http.StatusOK, map[string]any{"schemas": []string{URNBulkResponse}, "Operations": results}, nil, nil
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
