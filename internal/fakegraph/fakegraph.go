// Package fakegraph is a local stand-in for Microsoft Graph, for tests of
// group-overage handling: it serves the group-membership calls groupgate
// makes (transitiveMemberOf with @odata.nextLink paging, getMemberObjects)
// and the client-credentials token endpoint of Entra ID, in Graph's JSON
// shapes, with its failure modes (401, 429 with Retry-After, 5xx) on
// demand. Only tests import it.
package fakegraph

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Graph is the fake. Create it with New and serve it with httptest; Base
// must then be set to the server's URL (the root that groupgate's graph
// URL names).
type Graph struct {
	// Base is the absolute URL the fake is reached at, used to build
	// nextLinks.
	Base string
	// PageSize is how many objects one transitiveMemberOf page holds
	// (default 2, so that a handful of groups spans several pages).
	PageSize int
	// Authenticate maps a user's bearer token to the user's object ID; nil
	// accepts no user token.
	Authenticate func(r *http.Request, token string) (userID string, ok bool)
	// ClientID and ClientSecret are the application that may get an app
	// token at /{tenant}/oauth2/v2.0/token.
	ClientID, ClientSecret string

	mu        sync.Mutex
	groups    map[string][]string
	appTokens map[string]bool
	failures  []Failure
	calls     []string
	tokenReqs int
}

// Failure is an answer the fake gives instead of the real one.
type Failure struct {
	Status     int
	RetryAfter string
	Code       string
}

// New returns a fake whose users (object ID → group object IDs) are groups.
func New(groups map[string][]string) *Graph {
	return &Graph{PageSize: 2, groups: groups, appTokens: map[string]bool{}}
}

// FailNext makes the next calls (one per Failure, in order) fail.
func (g *Graph) FailNext(f ...Failure) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures = append(g.failures, f...)
}

// Calls returns the method and path of every Graph call so far.
func (g *Graph) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// TokenRequests counts the client-credentials token requests.
func (g *Graph) TokenRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokenReqs
}

func (g *Graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		g.token(w, r)
		return
	}
	g.mu.Lock()
	g.calls = append(g.calls, r.Method+" "+r.URL.Path)
	var fail *Failure
	if len(g.failures) > 0 {
		f := g.failures[0]
		g.failures = g.failures[1:]
		fail = &f
	}
	g.mu.Unlock()
	if fail != nil {
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		code := fail.Code
		if code == "" {
			code = http.StatusText(fail.Status)
		}
		writeError(w, fail.Status, code, "injected failure")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	g.mu.Lock()
	app := g.appTokens[token]
	g.mu.Unlock()
	me := ""
	if !app {
		if g.Authenticate == nil {
			writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
			return
		}
		if me, ok = g.Authenticate(r, token); !ok {
			writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
			return
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		writeError(w, http.StatusBadRequest, "BadRequest", "Invalid version.")
		return
	}
	seg := strings.Split(rest, "/")
	var user string
	switch {
	case seg[0] == "me" && me != "":
		user, seg = me, seg[1:]
	case seg[0] == "users" && len(seg) > 1:
		user, seg = seg[1], seg[2:]
		// A user token may read only its own user here.
		if !app && user != me {
			writeError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment.")
		return
	}
	g.mu.Lock()
	groups, known := g.groups[user]
	g.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist.", user))
		return
	}
	switch {
	case r.Method == http.MethodPost && len(seg) == 1 && seg[0] == "getMemberObjects":
		writeJSON(w, map[string]any{
			"@odata.context": g.Base + "/v1.0/$metadata#Collection(Edm.String)",
			"value":          groups,
		})
	case r.Method == http.MethodGet && len(seg) == 2 && seg[0] == "transitiveMemberOf" && seg[1] == "microsoft.graph.group":
		g.list(w, r, groups)
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", "Unsupported segment type.")
	}
}

// list answers one page of transitiveMemberOf, the skip token being the
// offset of the page.
func (g *Graph) list(w http.ResponseWriter, r *http.Request, groups []string) {
	q := r.URL.Query()
	size := g.PageSize
	if top, err := strconv.Atoi(q.Get("$top")); err == nil && top > 0 && top < size {
		size = top
	}
	from := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(groups) {
			writeError(w, http.StatusBadRequest, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
			return
		}
		from = n
	}
	to := min(from+size, len(groups))
	value := make([]map[string]any, 0, to-from)
	for _, id := range groups[from:to] {
		value = append(value, map[string]any{"@odata.type": "#microsoft.graph.group", "id": id})
	}
	out := map[string]any{
		"@odata.context": g.Base + "/v1.0/$metadata#directoryObjects(id)",
		"value":          value,
	}
	if to < len(groups) {
		next, _ := url.Parse(g.Base + r.URL.Path)
		nq := url.Values{}
		for k, v := range q {
			if k != "$skiptoken" {
				nq[k] = v
			}
		}
		nq.Set("$skiptoken", strconv.Itoa(to))
		next.RawQuery = nq.Encode()
		out["@odata.nextLink"] = next.String()
	}
	writeJSON(w, out)
}

// token is the client-credentials grant of the Microsoft identity
// platform's v2.0 token endpoint.
func (g *Graph) token(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.tokenReqs++
	g.mu.Unlock()
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if g.ClientID == "" || subtle.ConstantTimeCompare([]byte(id), []byte(g.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(g.ClientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("scope") != g.Base+"/.default" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "app-" + hex.EncodeToString(b[:])
	g.mu.Lock()
	g.appTokens[tok] = true
	g.mu.Unlock()
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in Graph's error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"request-id": "00000000-0000-0000-0000-000000000000", "date": "2026-12-04T00:00:00"},
	}})
}

func writeOAuthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": "AADSTS: " + code})
}

// UserInfo authenticates user tokens at an OIDC provider's UserInfo
// endpoint, as Graph checks tokens its own issuer signed: the token's
// user is the "sub" the endpoint answers with.
func UserInfo(client *http.Client, userinfoURL string) func(r *http.Request, token string) (string, bool) {
	return func(r *http.Request, token string) (string, bool) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, userinfoURL, nil)
		if err != nil {
			return "", false
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		var info struct {
			Sub string `json:"sub"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil || info.Sub == "" {
			return "", false
		}
		return info.Sub, true
	}
}
