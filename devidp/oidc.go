package devidp

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
	scopeGroups   = "groups"
	groupsClaim   = "groups"
)

// OIDCClient is a relying party registered at the demo OIDC provider.
type OIDCClient struct {
	ID     string
	Secret string
	// RedirectURIs must contain the redirect_uri of every authorization
	// request exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the allowed post_logout_redirect_uri values.
	PostLogoutRedirectURIs []string
	// AuthMethod is oidc.AuthMethodBasic (client_secret_basic, the default)
	// or oidc.AuthMethodPost (client_secret_post). The token endpoint
	// refuses a client that authenticates the other way, so a test proves
	// which one a relying party used.
	AuthMethod oidc.AuthMethod
	// BackchannelLogoutURI, when set, receives logout tokens from
	// LogoutUser (OpenID Connect Back-Channel Logout 1.0).
	BackchannelLogoutURI string
	// IDTokenLifetime defaults to one hour. A negative lifetime issues ID
	// tokens that are already expired, for testing relying parties.
	IDTokenLifetime time.Duration
}

// OIDCConfig configures the demo OIDC provider.
type OIDCConfig struct {
	Clients []OIDCClient
	// GroupsOnlyInUserInfo leaves the "groups" claim out of the ID token;
	// the UserInfo endpoint always carries it (for users with groups).
	GroupsOnlyInUserInfo bool
	// Overage, when set, sends Entra-style group overage claims (see
	// Overage) for users in many groups.
	Overage *Overage
	// TokenAuthMethods, when set, replaces the discovery document's
	// token_endpoint_auth_methods_supported, to test relying parties that
	// pick their client authentication from discovery.
	TokenAuthMethods []oidc.AuthMethod
	// Users defaults to Users().
	Users []User
	// Now is the clock of auth requests, access tokens and logins
	// (time.Now). op stamps ID tokens with the real time: use a client's
	// IDTokenLifetime to test expiry.
	Now    func() time.Time
	Logger *slog.Logger
}

// OIDCProvider is the demo OpenID Provider, an http.Handler serving
// discovery, authorize, token, userinfo, keys, end_session and the login
// form under its issuer URL's path.
type OIDCProvider struct {
	issuer       string
	storage      *oidcStorage
	provider     *op.Provider
	logger       *slog.Logger
	handler      http.Handler
	authOverride []byte // JSON of TokenAuthMethods; nil: keep op's
}

// NewOIDC returns a demo OIDC provider for issuer, an absolute URL without
// a trailing slash where the returned handler will be reachable (it strips
// the issuer's path itself). Plain http issuers are allowed: this is a
// development IdP.
func NewOIDC(issuer string, cfg OIDCConfig) (*OIDCProvider, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" || strings.HasSuffix(issuer, "/") {
		return nil, fmt.Errorf("demo OIDC provider: issuer %q must be an absolute URL without a trailing slash", issuer)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = Users()
	}
	key, err := newRSAKey()
	if err != nil {
		return nil, fmt.Errorf("demo OIDC provider: %w", err)
	}
	s := &oidcStorage{
		issuer:          issuer,
		now:             cfg.Now,
		users:           newDirectory(cfg.Users),
		clients:         make(map[string]*oidcClient, len(cfg.Clients)),
		groupsInIDToken: !cfg.GroupsOnlyInUserInfo,
		overage:         cfg.Overage,
		key:             key,
		requests:        map[string]*authRequest{},
		codes:           map[string]string{},
		tokens:          map[string]accessToken{},
	}
	for _, c := range cfg.Clients {
		switch c.AuthMethod {
		case "":
			c.AuthMethod = oidc.AuthMethodBasic
		case oidc.AuthMethodBasic, oidc.AuthMethodPost:
		default:
			return nil, fmt.Errorf("demo OIDC provider: client %q: auth method %q not supported", c.ID, c.AuthMethod)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("demo OIDC provider: client %q registered twice", c.ID)
		}
		s.clients[c.ID] = &oidcClient{issuer: issuer, cfg: c}
	}

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, scopeGroups},
		SupportedClaims:          slices.Concat(op.DefaultSupportedClaims, []string{groupsClaim}),
	}
	provider, err := op.NewProvider(opCfg, s, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("demo OIDC provider: %w", err)
	}
	p := &OIDCProvider{issuer: issuer, storage: s, provider: provider, logger: cfg.Logger}
	if cfg.TokenAuthMethods != nil {
		p.authOverride, err = json.Marshal(cfg.TokenAuthMethods)
		if err != nil {
			return nil, fmt.Errorf("demo OIDC provider: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle(loginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(p.login))
	mux.HandleFunc(loggedOutPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "You are signed out of the demo identity provider.")
	})
	mux.Handle(oidc.DiscoveryEndpoint, p.rewriteDiscovery(provider))
	mux.Handle(provider.TokenEndpoint().Relative(), p.enforceClientAuth(provider))
	mux.Handle("/", provider)
	p.handler = mux
	if prefix := u.EscapedPath(); prefix != "" {
		p.handler = http.StripPrefix(prefix, mux)
	}
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *OIDCProvider) Issuer() string { return p.issuer }

func (p *OIDCProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// login shows the username/password form for an auth request (GET) and
// checks it (POST); on success the browser goes back to op's authorize
// callback, which issues the code.
func (p *OIDCProvider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("id")
	form := loginForm{Title: "Sign in to the demo OIDC provider", Action: p.issuer + loginPath, Hidden: map[string]string{"id": id}}
	if _, err := p.storage.AuthRequestByID(r.Context(), id); err != nil {
		http.Error(w, "unknown or expired authorization request; start the login again", http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodGet:
		renderLogin(w, p.logger, http.StatusOK, form)
	case http.MethodPost:
		username := r.PostForm.Get("username")
		u, ok := p.storage.users.authenticate(username, r.PostForm.Get("password"))
		if !ok {
			p.logger.InfoContext(r.Context(), "demo OIDC login failed", "username", username)
			form.Username, form.Error = username, "Wrong username or password."
			renderLogin(w, p.logger, http.StatusUnauthorized, form)
			return
		}
		if err := p.storage.completeLogin(id, u); err != nil {
			http.Error(w, "unknown or expired authorization request; start the login again", http.StatusBadRequest)
			return
		}
		p.logger.InfoContext(r.Context(), "demo OIDC login", "username", u.Username)
		http.Redirect(w, r, op.AuthCallbackURL(p.provider)(r.Context(), id), http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// enforceClientAuth refuses a token request whose client authenticates
// another way than it is registered for. op itself accepts either, but real
// IdPs do not (Okta, Entra ID), and tests must see which one was used.
func (p *OIDCProvider) enforceClientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the form does not parse")
			return
		}
		clientID, used := r.PostForm.Get("client_id"), oidc.AuthMethodNone
		if id, _, ok := r.BasicAuth(); ok {
			// RFC 6749 §2.3.1: credentials are form-encoded before Basic.
			if unescaped, err := url.QueryUnescape(id); err == nil {
				clientID = unescaped
			}
			used = oidc.AuthMethodBasic
		} else if r.PostForm.Get("client_secret") != "" {
			used = oidc.AuthMethodPost
		}
		if c, ok := p.storage.clients[clientID]; ok && used != c.cfg.AuthMethod {
			w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client",
				fmt.Sprintf("client authenticated with %s but is registered for %s", used, c.cfg.AuthMethod))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rewriteDiscovery serves op's discovery document, with the token endpoint's
// authentication methods replaced when the configuration says so.
func (p *OIDCProvider) rewriteDiscovery(next http.Handler) http.Handler {
	if p.authOverride == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		var doc map[string]json.RawMessage
		if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &doc) != nil {
			rec.copyTo(w)
			return
		}
		doc["token_endpoint_auth_methods_supported"] = p.authOverride
		b, err := json.Marshal(doc)
		if err != nil {
			http.Error(w, "discovery", http.StatusInternalServerError)
			return
		}
		rec.body.Reset()
		rec.body.Write(b)
		rec.header.Del("Content-Length")
		rec.copyTo(w)
	})
}

type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
