package broker

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/groupgate/groupgate"
)

// Connector is one configured identity provider. What else it can do is found
// by type assertion (CallbackConnector, LogoutConnector, ...).
type Connector interface {
	// Name is the provider's configured name, unique in one instance; it
	// appears in URLs (/callback/NAME) and in every Identity it returns.
	Name() string
	// Type is the protocol, such as "oidc" or "saml".
	Type() string
}

// CallbackConnector logs people in by redirecting the browser to the IdP and
// handling the IdP's redirect back (OAuth 2.0 / OIDC code flow).
type CallbackConnector interface {
	Connector
	// LoginURL returns the IdP URL that starts a login for attempt; it must
	// send attempt.State(), and use attempt.Nonce and attempt.PKCEVerifier
	// when the protocol has them.
	LoginURL(ctx context.Context, attempt Attempt) (string, error)
	// HandleCallback finishes the login that attempt started from the IdP's
	// callback request. Errors are *groupgate.Error: Invalid for a callback
	// that does not match the attempt, Unauthenticated when the IdP refused
	// the login or its answer does not verify, Unavailable when the IdP
	// cannot be reached.
	HandleCallback(ctx context.Context, r *http.Request, attempt Attempt) (groupgate.Identity, Tokens, error)
}

// SAMLConnector logs people in by SAML 2.0 Web Browser SSO (SAML profiles
// §4.1): the browser carries an AuthnRequest to the IdP and brings the IdP's
// answer back as a cross-site POST to the ACS (Dex's SAMLConnector). That
// POST carries no SameSite=Lax cookie, so the connector keeps its own
// attempts, found by the ID of the request the response answers. Whatever
// the protocol, a verified login ends in the same finish step of the
// caller: Identity, then account sync, session and redirect.
type SAMLConnector interface {
	Connector
	// Begin starts an SP-initiated login that returns to returnTo, which
	// the caller validated. With bindBrowser the response is accepted only
	// from the browser that presents the SAMLRequest's BindingToken in the
	// binding cookie (saml.BindingCookieName of the request ID). Errors are
	// *groupgate.Error: Unavailable when the attempt cannot be stored,
	// Internal when the request cannot be built.
	Begin(ctx context.Context, returnTo string, bindBrowser bool) (SAMLRequest, error)
	// HandleResponse verifies the IdP's POST to the ACS and consumes the
	// attempt it answers, only once the response verifies and the browser
	// binding checks out. Errors are *groupgate.Error: Invalid for a
	// response of no live attempt of this browser (or an unwanted
	// IdP-initiated one) or one already used, Unauthenticated for one that
	// does not verify, Forbidden when it carries no groups, Unavailable
	// when the attempt store or replay cache cannot be reached.
	HandleResponse(ctx context.Context, in SAMLResponse) (SAMLResult, error)
}

// SAML bindings of the AuthnRequest (SAML bindings §3.4, §3.5).
const (
	SAMLBindingRedirect = "redirect"
	SAMLBindingPost     = "post"
)

// SAMLRequest is how to send the browser to the IdP.
type SAMLRequest struct {
	// RequestID is the AuthnRequest's ID, which the response's
	// InResponseTo names.
	RequestID string
	// Binding is SAMLBindingRedirect (go to RedirectURL) or
	// SAMLBindingPost (auto-submit a form with Form to PostURL).
	Binding     string
	RedirectURL string
	PostURL     string
	Form        url.Values
	// BindingToken, when Begin was asked to bind, is the value of the
	// SameSite=None; Secure binding cookie.
	BindingToken string
	ExpiresAt    time.Time
}

// SAMLResponse is what the ACS received.
type SAMLResponse struct {
	SAMLResponse string
	RelayState   string
	// Cookie returns the request's cookie of that name; nil means none.
	Cookie func(name string) (string, bool)
}

// SAMLResult is a verified SAML login.
type SAMLResult struct {
	Identity groupgate.Identity
	// ReturnTo is the attempt's return URL; for an IdP-initiated login,
	// the RelayState, which the caller must validate like any rd.
	ReturnTo     string
	IDPInitiated bool
	// RequestID is the answered AuthnRequest; the caller deletes its
	// binding cookie. Empty for IdP-initiated logins.
	RequestID    string
	SessionIndex string
}

// Result is the login in the form every protocol finishes with.
func (r SAMLResult) Result() Result {
	return Result{Identity: r.Identity, ReturnTo: r.ReturnTo}
}

// LogoutConnector can end the user's session at the IdP as well
// (RP-initiated logout).
type LogoutConnector interface {
	// LogoutURL returns where to send the browser so that the IdP ends its
	// session and then returns to postLogoutRedirect; ok is false when the
	// IdP offers no such endpoint.
	LogoutURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (url string, ok bool, err error)
}

// Tokens are what the IdP issued at login. groupgate keeps the ID token only
// as the id_token_hint of a later logout; it never forwards them.
type Tokens struct {
	IDToken     string
	AccessToken string
	// Expiry of the access token; zero when the IdP did not say.
	Expiry time.Time
	// SessionID is the ID token's "sid", the IdP's session, which a
	// back-channel logout may name; empty when the IdP sent none.
	SessionID string
}
