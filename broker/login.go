package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/groupgate/groupgate"
)

// ErrAttemptGone is the cause of every refusal of an IdP's answer whose
// login attempt is not there for this browser any more: it expired, was
// already used (a replayed callback or assertion), or was started in
// another browser. Callers test for it with errors.Is to tell the person
// to start again, rather than reading messages.
var ErrAttemptGone = errors.New("the login attempt expired, was already used, or was started in another browser")

// ErrIdPRefused is the cause when the IdP answered with an error instead
// of a login (OIDC "error" on the callback, a SAML status other than
// Success): the person should look at the IdP, not at groupgate.
var ErrIdPRefused = errors.New("the identity provider refused the login")

// DefaultCookiePrefix starts the name of every attempt binding cookie.
const DefaultCookiePrefix = "_groupgate_login_"

// Login runs the redirect-based login pipeline over a set of connectors:
// Begin creates and stores an attempt and returns where to send the browser,
// Finish checks the callback against its attempt and returns the Identity.
type Login struct {
	attempts     AttemptStore
	connectors   map[string]Connector
	ttl          time.Duration
	now          func() time.Time
	logger       *slog.Logger
	cookiePrefix string
	sidTTL       time.Duration
}

// LoginOption configures a Login.
type LoginOption func(*Login)

// WithAttemptTTL sets how long an attempt stays valid (DefaultAttemptTTL).
func WithAttemptTTL(d time.Duration) LoginOption { return func(l *Login) { l.ttl = d } }

// WithNow sets the clock (time.Now).
func WithNow(now func() time.Time) LoginOption { return func(l *Login) { l.now = now } }

// WithLogger sets the logger (slog.Default()).
func WithLogger(logger *slog.Logger) LoginOption { return func(l *Login) { l.logger = logger } }

// WithCookiePrefix sets the prefix of binding cookie names
// (DefaultCookiePrefix).
func WithCookiePrefix(prefix string) LoginOption {
	return func(l *Login) { l.cookiePrefix = prefix }
}

// NewLogin returns a Login over connectors, which must have distinct names.
func NewLogin(attempts AttemptStore, connectors []Connector, opts ...LoginOption) (*Login, error) {
	l := &Login{
		attempts:     attempts,
		connectors:   make(map[string]Connector, len(connectors)),
		ttl:          DefaultAttemptTTL,
		now:          time.Now,
		logger:       slog.Default(),
		cookiePrefix: DefaultCookiePrefix,
		sidTTL:       DefaultSessionIndexTTL,
	}
	for _, opt := range opts {
		opt(l)
	}
	if attempts == nil {
		return nil, fmt.Errorf("new login: no attempt store")
	}
	if l.sidTTL <= 0 {
		return nil, fmt.Errorf("new login: session index lifetime %s is not positive", l.sidTTL)
	}
	if l.ttl <= 0 {
		return nil, fmt.Errorf("new login: attempt lifetime %s is not positive", l.ttl)
	}
	for _, c := range connectors {
		if _, dup := l.connectors[c.Name()]; dup {
			return nil, fmt.Errorf("new login: two providers named %q", c.Name())
		}
		l.connectors[c.Name()] = c
	}
	return l, nil
}

// Connector returns the connector named name, or nil.
func (l *Login) Connector(name string) Connector { return l.connectors[name] }

// BindingCookie is the cookie that ties an attempt to the browser that began
// it. The caller sets it with its own Path and Secure flag, HttpOnly and
// SameSite=Lax (the IdP's redirect back is a top-level GET), and deletes it
// after Finish.
type BindingCookie struct {
	Name    string
	Value   string
	Expires time.Time
}

// Started is what Begin hands back to the HTTP layer.
type Started struct {
	// RedirectURL is the IdP's authorization URL.
	RedirectURL string
	Cookie      BindingCookie
	Attempt     Attempt
}

// CookieName returns the name of the binding cookie of the attempt whose ID
// (OAuth state) is id.
func (l *Login) CookieName(id string) string { return l.cookiePrefix + cookieSuffix(id) }

// Begin starts a login at provider. returnTo must already be validated
// against the allowed hosts: broker carries it, it does not judge it.
// Errors are *groupgate.Error: NotFound for an unknown provider, Invalid
// for one that does not log in by redirect, Unavailable when the attempt
// cannot be stored.
func (l *Login) Begin(ctx context.Context, provider, returnTo string) (Started, error) {
	conn, err := l.callbackConnector(provider)
	if err != nil {
		return Started{}, err
	}
	a := NewAttempt(provider, returnTo, l.now(), l.ttl)
	target, err := conn.LoginURL(ctx, a)
	if err != nil {
		return Started{}, fmt.Errorf("begin login at %q: %w", provider, err)
	}
	b, err := a.encode()
	if err != nil {
		return Started{}, err
	}
	if err := l.attempts.PutAttempt(ctx, a.ID, b, l.ttl); err != nil {
		return Started{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot start the login right now; try again")
	}
	return Started{
		RedirectURL: target,
		Cookie:      BindingCookie{Name: l.CookieName(a.ID), Value: a.ID, Expires: a.ExpiresAt},
		Attempt:     a,
	}, nil
}

// Result is a finished login.
type Result struct {
	Identity groupgate.Identity
	Tokens   Tokens
	// ReturnTo is the attempt's return URL, as given to Begin.
	ReturnTo string
	// CookieName is the binding cookie to delete.
	CookieName string
}

// Finish completes the login that r, the IdP's callback to provider, belongs
// to. The attempt is named by r's "state" parameter, must be presented with
// its binding cookie, and is consumed whatever the outcome, so a callback
// cannot be replayed. Errors are *groupgate.Error: Invalid when the callback
// does not belong to a live attempt of this browser and provider, and
// whatever the connector returns.
func (l *Login) Finish(ctx context.Context, provider string, r *http.Request) (Result, error) {
	conn, err := l.callbackConnector(provider)
	if err != nil {
		return Result{}, err
	}
	state := r.FormValue("state")
	if !validID(state) {
		return Result{}, groupgate.Errorf(groupgate.Invalid, "the login callback carries no valid state; start the login again")
	}
	name := l.CookieName(state)
	cookie, err := r.Cookie(name)
	if err != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(state)) != 1 {
		return Result{}, groupgate.WrapError(groupgate.Invalid, ErrAttemptGone,
			"this login was not started in this browser, or took too long; start the login again")
	}
	b, err := l.attempts.TakeAttempt(ctx, state)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return Result{}, groupgate.WrapError(groupgate.Invalid, fmt.Errorf("%w: %w", ErrAttemptGone, err), "the login attempt has expired or was already used; start the login again")
	}
	if err != nil {
		return Result{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot finish the login right now; try again")
	}
	a, err := decodeAttempt(b)
	if err != nil {
		return Result{}, groupgate.WrapError(groupgate.Internal, err, "the login attempt is unreadable; start the login again")
	}
	// The store's TTL is the first line; the attempt's own expiry, read with
	// our clock, makes the limit exact whatever the store's granularity.
	if !l.now().Before(a.ExpiresAt) {
		return Result{}, groupgate.WrapError(groupgate.Invalid, ErrAttemptGone, "the login attempt has expired; start the login again")
	}
	if subtle.ConstantTimeCompare([]byte(a.ID), []byte(state)) != 1 {
		return Result{}, groupgate.Errorf(groupgate.Invalid, "the login state does not match; start the login again")
	}
	if a.Provider != provider {
		return Result{}, groupgate.Errorf(groupgate.Invalid, "this login was started with another identity provider; start the login again")
	}
	id, tokens, err := conn.HandleCallback(ctx, r, a)
	if err != nil {
		l.logger.InfoContext(ctx, "login refused", "provider", provider, "error", err)
		return Result{}, fmt.Errorf("finish login at %q: %w", provider, err)
	}
	l.rememberSession(ctx, provider, id, tokens.SessionID)
	return Result{Identity: id, Tokens: tokens, ReturnTo: a.ReturnTo, CookieName: name}, nil
}

// LogoutURL returns the IdP's end-session URL for provider, with ok false
// when the provider has none (the caller shows its own signed-out page).
func (l *Login) LogoutURL(ctx context.Context, provider, idTokenHint, postLogoutRedirect string) (string, bool, error) {
	c, ok := l.connectors[provider]
	if !ok {
		return "", false, groupgate.Errorf(groupgate.NotFound, "unknown identity provider %q", provider)
	}
	lc, ok := c.(LogoutConnector)
	if !ok {
		return "", false, nil
	}
	return lc.LogoutURL(ctx, idTokenHint, postLogoutRedirect)
}

func (l *Login) callbackConnector(provider string) (CallbackConnector, error) {
	c, ok := l.connectors[provider]
	if !ok {
		return nil, groupgate.Errorf(groupgate.NotFound, "unknown identity provider %q", provider)
	}
	cc, ok := c.(CallbackConnector)
	if !ok {
		return nil, groupgate.Errorf(groupgate.Invalid, "identity provider %q does not log in by redirect", provider)
	}
	return cc, nil
}
