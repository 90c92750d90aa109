package broker

import (
	"context"
	"net/http"
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
}
