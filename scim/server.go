package scim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	stdsync "sync"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// Store is what the SCIM server reads directly; every write goes through
// the syncer.
type Store interface {
	GetUser(ctx context.Context, id string) (groupgate.User, error)
	GetGroup(ctx context.Context, id string) (groupgate.Group, error)
	GetTokenByHash(ctx context.Context, kind groupgate.TokenKind, hash []byte) (groupgate.Token, error)
	TouchToken(ctx context.Context, id string, at time.Time) error
	store.SCIMStore
}

// Defaults, advertised in /ServiceProviderConfig.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultPageSize      = 100
	MaxPageSize          = 1000
	DefaultBulkMaxOps    = 1000
	touchEvery           = time.Minute
	contentTypeSCIM      = "application/scim+json"
	prefix               = "/scim/v2"
	maxAttributeListSize = 100
)

// Server is the SCIM 2.0 service provider. Mount it at /scim/v2/; it strips
// that prefix itself, and also serves requests without it.
type Server struct {
	st      Store
	sy      *sync.Syncer
	now     func() time.Time
	log     *slog.Logger
	maxBody int64
	match   sync.MatchKey
	baseURL string
	bulkOps int

	users  *resourceType
	groups *resourceType

	touchMu stdsync.Mutex
	touched map[string]time.Time

	// tokens caches verified bearer tokens (tokencache.go); nil when
	// the store gives no token generation.
	tokens *tokenCache
}

// Option configures a Server.
type Option func(*Server)

// WithNow sets the clock.
func WithNow(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithMaxBodyBytes caps request bodies (default 1 MiB); larger ones get 413.
func WithMaxBodyBytes(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithMatchKey sets which attribute makes a SCIM user the same person as
// an SSO-created user (default sync.MatchEmail).
func WithMatchKey(k sync.MatchKey) Option { return func(s *Server) { s.match = k } }

// WithBaseURL sets the absolute URL of the SCIM root used in meta.location
// ("https://sso.example.com/scim/v2"); by default it is derived from the
// request.
func WithBaseURL(u string) Option {
	return func(s *Server) { s.baseURL = strings.TrimSuffix(u, "/") }
}

// WithBulkMaxOperations sets the advertised and enforced Bulk operation
// limit (default 1000).
func WithBulkMaxOperations(n int) Option { return func(s *Server) { s.bulkOps = n } }

// NewServer returns the SCIM server reading st and writing through sy.
func NewServer(st Store, sy *sync.Syncer, opts ...Option) *Server {
	s := &Server{
		st: st, sy: sy,
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
		maxBody: DefaultMaxBodyBytes,
		match:   sync.MatchEmail,
		bulkOps: DefaultBulkMaxOps,
		users:   userType(),
		groups:  groupType(),
		touched: map[string]time.Time{},
	}
	if g, ok := st.(tokenGenerations); ok {
		s.tokens = newTokenCache(g)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// request is the per-request scope.
type request struct {
	actor string
	base  string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if p, ok := strings.CutPrefix(path, prefix); ok {
		path = p
	}
	path = strings.Trim(path, "/")
	tok, err := s.authenticate(r)
	if err != nil && !groupgate.IsCode(err, groupgate.Unauthenticated) {
		// The token could not be checked (the store is down): a 401 would
		// tell the IdP its token is bad; 503 tells it to retry.
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Detail: "a valid SCIM bearer token is required", Err: err})
		return
	}
	if r.ContentLength > s.maxBody {
		s.writeError(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Detail: "request body too large"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	req := request{actor: "scim:" + tok.ID, base: s.base(r)}
	status, body, hdr, err := s.route(r.Context(), req, r.Method, path, r.URL.Query(), r.Header, r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	s.writeJSON(w, status, body)
}

func (s *Server) base(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + prefix
}

// authenticate checks the bearer token against the stored SCIM tokens by
// the SHA-256 of the secret.
func (s *Server) authenticate(r *http.Request) (groupgate.Token, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return groupgate.Token{}, groupgate.Errorf(groupgate.Unauthenticated, "no bearer token")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	now := s.now()
	tok, err := s.lookupToken(r.Context(), sum, now)
	if err != nil {
		return groupgate.Token{}, err
	}
	// The lookup is by hash already; compare again in constant time so
	// that a backend that matched loosely can never let a token through.
	if subtle.ConstantTimeCompare(tok.Hash, sum[:]) != 1 || tok.Kind != groupgate.TokenSCIM {
		return groupgate.Token{}, groupgate.Errorf(groupgate.Unauthenticated, "bad token")
	}
	if !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt) {
		return groupgate.Token{}, groupgate.Errorf(groupgate.Unauthenticated, "token expired")
	}
	s.touch(r.Context(), tok.ID, now)
	return tok, nil
}

// touch records token use at most once a minute per token and replica.
func (s *Server) touch(ctx context.Context, id string, now time.Time) {
	s.touchMu.Lock()
	last, ok := s.touched[id]
	if ok && now.Sub(last) < touchEvery {
		s.touchMu.Unlock()
		return
	}
	s.touched[id] = now
	s.touchMu.Unlock()
	if err := s.st.TouchToken(ctx, id, now); err != nil {
		s.log.WarnContext(ctx, "record SCIM token use", "token", id, "err", err)
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.log.Error("encode SCIM response", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"schemas":["`+URNError+`"],"status":"500","detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", contentTypeSCIM)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	se := toSCIMError(err)
	if se.Status >= 500 {
		s.log.ErrorContext(r.Context(), "SCIM request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.DebugContext(r.Context(), "SCIM request refused", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.writeJSON(w, se.Status, se.body())
}

// decodeBody reads a JSON object body. A body with a NUL character
// anywhere is refused: no store can keep it (see containsNUL).
func decodeBody(body io.Reader, v any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest(errInvalidSyntax, "cannot read the request body: %v", err)
	}
	if containsNUL(raw) {
		return badRequest(errInvalidValue, "the request body contains a NUL character (\\u0000)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest(errInvalidSyntax, "request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return badRequest(errInvalidSyntax, "request body has trailing data")
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
	}
	return nil
}

// route dispatches one request; Bulk calls it once per operation.
func (s *Server) route(ctx context.Context, req request, method, path string, q map[string][]string, h http.Header, body io.Reader) (int, any, http.Header, error) {
	seg := strings.Split(path, "/")
	first := strings.ToLower(seg[0])
	switch {
	case first == "users" || first == "groups":
		rt := s.users
		if first == "groups" {
			rt = s.groups
		}
		switch {
		case len(seg) == 1 && method == http.MethodGet:
			return s.list(ctx, req, []*resourceType{rt}, listParamsFromQuery(q))
		case len(seg) == 1 && method == http.MethodPost:
			return s.create(ctx, req, rt, q, body)
		case len(seg) == 2 && seg[1] == ".search" && method == http.MethodPost:
			return s.search(ctx, req, []*resourceType{rt}, body)
		case len(seg) == 2:
			return s.resource(ctx, req, rt, seg[1], method, q, h, body)
		}
	case first == ".search" && len(seg) == 1 && method == http.MethodPost:
		return s.search(ctx, req, []*resourceType{s.users, s.groups}, body)
	case first == "me":
		return 0, nil, nil, &Error{Status: http.StatusNotImplemented, Detail: "/Me is not supported: SCIM clients here are IdPs, not users"}
	case first == "bulk" && len(seg) == 1 && method == http.MethodPost:
		return s.bulk(ctx, req, body)
	case first == "serviceproviderconfig" && len(seg) == 1 && method == http.MethodGet:
		return http.StatusOK, s.serviceProviderConfig(req), nil, nil
	case first == "resourcetypes" && method == http.MethodGet:
		return s.resourceTypes(req, seg[1:])
	case first == "schemas" && method == http.MethodGet:
		return s.schemas(req, seg[1:])
	}
	if len(seg) <= 2 && (first == "users" || first == "groups" || first == ".search" || first == "bulk" ||
		first == "serviceproviderconfig" || first == "resourcetypes" || first == "schemas") {
		return 0, nil, nil, &Error{Status: http.StatusMethodNotAllowed, Detail: method + " is not allowed here"}
	}
	return 0, nil, nil, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"}
}

func (s *Server) location(req request, rt *resourceType, id string) string {
	return req.base + rt.Endpoint + "/" + id
}
