package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/claims"
)

// Where the groups claim is read from.
const (
	GroupsFromIDToken  = "id_token"
	GroupsFromUserInfo = "userinfo"
)

// defaultScopes are requested when Config.Scopes is empty.
func defaultScopes() []string {
	return []string{zoidc.ScopeOpenID, zoidc.ScopeEmail, zoidc.ScopeProfile}
}

// Config describes one OIDC provider.
type Config struct {
	// Issuer must equal the "issuer" of the provider's discovery document.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes default to openid, email, profile; "openid" is added when
	// missing.
	Scopes []string
	// RedirectURL is groupgate's callback URL registered at the provider.
	RedirectURL string
	// GroupsClaim, UsernameClaim, EmailClaim and NameClaim name the claims
	// (exact name, else a dotted path); empty takes package claims' defaults.
	GroupsClaim   string
	UsernameClaim string
	EmailClaim    string
	NameClaim     string
	// GroupsFrom is GroupsFromIDToken (default) or GroupsFromUserInfo; with
	// the latter, the UserInfo claims are laid over the ID token's.
	GroupsFrom string
	// Filter hides groups outside the configured lists; nil allows all.
	Filter *claims.Filter
}

// Option sets an optional dependency of Open.
type Option func(*options)

type options struct {
	httpClient *http.Client
	graph      *graph.Client
	now        func() time.Time
}

// WithNow sets the clock that judges logout tokens (time.Now).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithGraph resolves Entra ID's group overage: when an ID token carries
// "_claim_names"/"_claim_sources" or "hasgroups" instead of the groups,
// they are read from Microsoft Graph with the login's access token.
// Without it such a login is refused.
func WithGraph(g *graph.Client) Option { return func(o *options) { o.graph = g } }

// WithHTTPClient sets the client for every call to the provider
// (discovery, keys, token, UserInfo). The default has a 30 s timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

type connector struct {
	name       string
	cfg        Config
	rp         rp.RelyingParty
	claimOpts  claims.OIDCOptions
	authMethod zoidc.AuthMethod
	logger     *slog.Logger
	graph      *graph.Client
	now        func() time.Time
}

var (
	_ broker.CallbackConnector = (*connector)(nil)
	_ broker.LogoutConnector   = (*connector)(nil)
)

// Open discovers the provider and returns its connector, named name.
func (c Config) Open(ctx context.Context, name string, logger *slog.Logger, opts ...Option) (broker.CallbackConnector, error) {
	o := options{httpClient: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("open OIDC provider %q: %w", name, err)
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = defaultScopes()
	}
	if !slices.Contains(scopes, zoidc.ScopeOpenID) {
		scopes = append([]string{zoidc.ScopeOpenID}, scopes...)
	}

	// rp runs discovery too, but does not expose the document; the auth
	// method must be known before the relying party is built.
	disc, err := client.Discover(ctx, c.Issuer, o.httpClient)
	if err != nil {
		return nil, fmt.Errorf("open OIDC provider %q: discover %s: %w", name, c.Issuer, discoveryError(err))
	}
	style, method, err := authStyle(disc.TokenEndpointAuthMethodsSupported)
	if err != nil {
		return nil, fmt.Errorf("open OIDC provider %q: %w", name, err)
	}
	if c.GroupsFrom == GroupsFromUserInfo && disc.UserinfoEndpoint == "" {
		return nil, fmt.Errorf("open OIDC provider %q: groups_from is userinfo but the provider has no userinfo_endpoint", name)
	}
	party, err := rp.NewRelyingPartyOIDC(ctx, c.Issuer, c.ClientID, c.ClientSecret, c.RedirectURL, scopes,
		rp.WithHTTPClient(o.httpClient),
		rp.WithAuthStyle(style),
		rp.WithVerifierOpts(rp.WithNonce(nonceFromContext)),
		rp.WithSigningAlgsFromDiscovery(),
	)
	if err != nil {
		return nil, fmt.Errorf("open OIDC provider %q: %w", name, discoveryError(err))
	}
	logger.Info("OIDC provider ready", "provider", name, "issuer", c.Issuer, "client_auth", method,
		"end_session", party.GetEndSessionEndpoint() != "")
	return &connector{
		name:       name,
		cfg:        c,
		rp:         party,
		authMethod: method,
		logger:     logger,
		graph:      o.graph,
		now:        o.now,
		claimOpts: claims.OIDCOptions{
			GroupsClaim:   c.GroupsClaim,
			UsernameClaim: c.UsernameClaim,
			EmailClaim:    c.EmailClaim,
			NameClaim:     c.NameClaim,
			Filter:        c.Filter,
		},
	}, nil
}

// discoveryError marks a discovery document that could not be read (no
// answer, an error status, not JSON) Unavailable: the IdP may answer
// later, and broker.Lazy retries it. Anything else, such as an issuer
// that does not match the configured one, is left as is: a configuration
// error that no retry fixes.
func discoveryError(err error) error {
	if errors.Is(err, zoidc.ErrDiscoveryFailed) {
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider's discovery document cannot be read")
	}
	return err
}

func (c Config) validate() error {
	var problems []error
	if c.Issuer == "" {
		problems = append(problems, errors.New("issuer is required"))
	}
	if c.ClientID == "" {
		problems = append(problems, errors.New("client_id is required"))
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || !u.IsAbs() {
		problems = append(problems, fmt.Errorf("redirect URL %q is not an absolute URL", c.RedirectURL))
	}
	switch c.GroupsFrom {
	case "", GroupsFromIDToken, GroupsFromUserInfo:
	default:
		problems = append(problems, fmt.Errorf("groups_from %q is neither %s nor %s", c.GroupsFrom, GroupsFromIDToken, GroupsFromUserInfo))
	}
	return errors.Join(problems...)
}

// authStyle picks the client authentication from the discovery document.
// rp leaves it to x/oauth2's auto-detection, which sends the secret one way
// and retries the other after a failure: a wasted round trip, and a code
// that some providers burn on the first attempt. OIDC Discovery §3: an
// absent list means client_secret_basic.
func authStyle(supported []zoidc.AuthMethod) (oauth2.AuthStyle, zoidc.AuthMethod, error) {
	switch {
	case len(supported) == 0 || slices.Contains(supported, zoidc.AuthMethodBasic):
		return oauth2.AuthStyleInHeader, zoidc.AuthMethodBasic, nil
	case slices.Contains(supported, zoidc.AuthMethodPost):
		return oauth2.AuthStyleInParams, zoidc.AuthMethodPost, nil
	default:
		return 0, "", fmt.Errorf("the provider's token endpoint supports neither client_secret_basic nor client_secret_post (it offers %v)", supported)
	}
}

func (c *connector) Name() string { return c.name }
func (c *connector) Type() string { return "oidc" }

// LoginURL returns the authorization URL for attempt: code flow, the
// attempt's state and nonce, and the S256 challenge of its PKCE verifier
// (RFC 7636 §4.2), sent whether or not the provider advertises PKCE, since
// providers ignore parameters they do not know.
func (c *connector) LoginURL(_ context.Context, a broker.Attempt) (string, error) {
	if a.Nonce == "" || a.PKCEVerifier == "" {
		return "", groupgate.Errorf(groupgate.Internal, "login attempt without nonce or PKCE verifier")
	}
	return rp.AuthURL(a.State(), c.rp,
		rp.WithCodeChallenge(zoidc.NewSHACodeChallenge(a.PKCEVerifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", a.Nonce)),
	), nil
}

// nonceKey carries the attempt's nonce to rp's ID token verifier, which
// reads the expected nonce from the context.
type nonceKey struct{}

func nonceFromContext(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey{}).(string)
	return n
}

// oauthErrorCode matches the error codes of RFC 6749 §4.1.2.1 and OIDC
// Core §3.1.2.6, the only part of an error callback shown to the user.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// HandleCallback redeems the code of the provider's callback r, verifies
// the ID token (signature, issuer, audience, expiry, nonce) and builds the
// Identity from its claims, or from the UserInfo claims laid over them.
func (c *connector) HandleCallback(ctx context.Context, r *http.Request, a broker.Attempt) (groupgate.Identity, broker.Tokens, error) {
	if e := r.FormValue("error"); e != "" {
		if !oauthErrorCode.MatchString(e) {
			e = "unknown error"
		}
		return groupgate.Identity{}, broker.Tokens{}, groupgate.WrapError(groupgate.Unauthenticated,
			fmt.Errorf("%w: provider error %q: %s", broker.ErrIdPRefused, r.FormValue("error"), r.FormValue("error_description")),
			"the identity provider refused the login (%s)", e)
	}
	if subtle.ConstantTimeCompare([]byte(r.FormValue("state")), []byte(a.State())) != 1 {
		return groupgate.Identity{}, broker.Tokens{}, groupgate.Errorf(groupgate.Invalid, "the login state does not match; start the login again")
	}
	code := r.FormValue("code")
	if code == "" {
		return groupgate.Identity{}, broker.Tokens{}, groupgate.Errorf(groupgate.Invalid, "the identity provider's callback carries no code")
	}

	ctx = context.WithValue(ctx, nonceKey{}, a.Nonce)
	tokens, err := rp.CodeExchange[*zoidc.IDTokenClaims](ctx, code, c.rp, rp.WithCodeVerifier(a.PKCEVerifier))
	if err != nil {
		return groupgate.Identity{}, broker.Tokens{}, exchangeError(err)
	}
	idClaims, err := toMap(tokens.IDTokenClaims)
	if err != nil {
		return groupgate.Identity{}, broker.Tokens{}, groupgate.WrapError(groupgate.Internal, err, "cannot read the ID token's claims")
	}
	if c.cfg.GroupsFrom == GroupsFromUserInfo {
		info, err := rp.Userinfo[*zoidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.GetSubject(), c.rp)
		if err != nil {
			return groupgate.Identity{}, broker.Tokens{}, userInfoError(err)
		}
		infoClaims, err := toMap(info)
		if err != nil {
			return groupgate.Identity{}, broker.Tokens{}, groupgate.WrapError(groupgate.Internal, err, "cannot read the UserInfo claims")
		}
		if idClaims, err = claims.MergeUserInfo(idClaims, infoClaims); err != nil {
			return groupgate.Identity{}, broker.Tokens{}, err
		}
	}
	id, err := claims.FromOIDC(c.name, idClaims, c.claimOpts)
	if errors.Is(err, claims.ErrGroupOverage) && c.graph != nil {
		id, err = c.overageIdentity(ctx, idClaims, tokens.AccessToken)
	}
	if err != nil {
		return groupgate.Identity{}, broker.Tokens{}, fmt.Errorf("identity from %q claims: %w", c.name, err)
	}
	return id, broker.Tokens{IDToken: tokens.IDToken, AccessToken: tokens.AccessToken, Expiry: tokens.Expiry, SessionID: sessionID(idClaims)}, nil
}

// overageIdentity reads the groups an overage ID token left out from
// Microsoft Graph, with the user's access token, and builds the identity
// as if the token had carried them. A Graph that cannot answer refuses
// the login: an empty group set would silently take every group-derived
// role away.
func (c *connector) overageIdentity(ctx context.Context, idClaims map[string]any, accessToken string) (groupgate.Identity, error) {
	groupsClaim := c.claimOpts.GroupsClaim
	if groupsClaim == "" {
		groupsClaim = claims.DefaultGroupsClaim
	}
	link := claims.OverageLink(idClaims, groupsClaim)
	groups, err := c.graph.MemberGroups(ctx, accessToken, graph.Link(link, true))
	if err != nil {
		c.logger.WarnContext(ctx, "group overage: Microsoft Graph did not list the groups", "provider", c.name, "error", err)
		return groupgate.Identity{}, fmt.Errorf("read groups of an overage login at %q from Microsoft Graph: %w", c.name, err)
	}
	resolved := make(map[string]any, len(idClaims))
	for k, v := range idClaims {
		if k != "_claim_names" && k != "_claim_sources" && k != "hasgroups" {
			resolved[k] = v
		}
	}
	values := make([]any, len(groups))
	for i, g := range groups {
		values[i] = g
	}
	resolved[groupsClaim] = values
	c.logger.InfoContext(ctx, "group overage: groups read from Microsoft Graph", "provider", c.name, "groups", len(groups), "graph", c.graph.BaseURL())
	return claims.FromOIDC(c.name, resolved, c.claimOpts)
}

// exchangeError classifies a failed code exchange: the provider refused the
// code or client (token endpoint error), could not be reached, or sent an ID
// token that does not verify.
func exchangeError(err error) error {
	var retrieve *oauth2.RetrieveError
	var transport *url.Error
	switch {
	case errors.As(err, &retrieve):
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider did not accept the login; start the login again")
	case errors.As(err, &transport):
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider cannot be reached; try again")
	case errors.Is(err, rp.ErrMissingIDToken):
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider sent no ID token")
	default:
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider's ID token is not valid for this login")
	}
}

func userInfoError(err error) error {
	var transport *url.Error
	if errors.As(err, &transport) {
		return groupgate.WrapError(groupgate.Unavailable, err, "the identity provider's UserInfo endpoint cannot be reached; try again")
	}
	return groupgate.WrapError(groupgate.Unauthenticated, err, "the identity provider's UserInfo answer is not usable")
}

// toMap turns verified claims into the generic map package claims reads;
// zitadel's types marshal their extra claims alongside the standard ones.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal claims: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("unmarshal claims: %w", err)
	}
	return m, nil
}

// LogoutURL builds the RP-initiated logout URL (OpenID Connect RP-Initiated
// Logout 1.0 §2) for the browser to visit. rp.EndSession would call the
// endpoint from the server instead, which cannot end the session that lives
// in the browser's cookies at the provider.
func (c *connector) LogoutURL(_ context.Context, idTokenHint, postLogoutRedirect string) (string, bool, error) {
	endpoint := c.rp.GetEndSessionEndpoint()
	if endpoint == "" {
		return "", false, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, groupgate.WrapError(groupgate.Internal, err, "the identity provider's end_session_endpoint is not a URL")
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), true, nil
}
