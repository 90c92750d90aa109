package saml

import (
	"context"
	"net/http"

	"github.com/groupgate/groupgate/broker"
)

// Lazy is a SAML provider opened through broker.Lazy: while its IdP's
// metadata URL does not answer, logins and metadata answer Unavailable
// (the sign-in page says so) and the metadata is fetched again on the
// backoff schedule; once read, every call goes to the real Connector,
// whose refresher then keeps the last good metadata through later
// failures. Its lifecycle (Start, Close, Available, Err, Failures) is
// broker.Lazy's.
type Lazy struct {
	*broker.Lazy[*Connector]
}

var _ broker.SAMLConnector = (*Lazy)(nil)

// NewLazy returns provider name, opened by cfg.Open with the other
// arguments once its metadata can be read; call Start.
func NewLazy(cfg Config, name string, attempts broker.AttemptStore, replay ReplayCache, lazyOpts []broker.LazyOption, opts ...Option) *Lazy {
	open := func(ctx context.Context) (*Connector, error) {
		return cfg.Open(ctx, name, attempts, replay, opts...)
	}
	return &Lazy{Lazy: broker.NewLazy(name, open, lazyOpts...)}
}

// Type is "saml".
func (l *Lazy) Type() string { return "saml" }

// Begin delegates; Unavailable while the metadata has not been read.
func (l *Lazy) Begin(ctx context.Context, returnTo string, bindBrowser bool) (Request, error) {
	c, err := l.Get()
	if err != nil {
		return Request{}, err
	}
	return c.Begin(ctx, returnTo, bindBrowser)
}

// HandleResponse delegates; Unavailable while the metadata has not been
// read (without the IdP's certificates no response can verify).
func (l *Lazy) HandleResponse(ctx context.Context, in Response) (Result, error) {
	c, err := l.Get()
	if err != nil {
		return Result{}, err
	}
	return c.HandleResponse(ctx, in)
}

// Metadata delegates; Unavailable until the IdP's metadata was read.
func (l *Lazy) Metadata() ([]byte, error) {
	c, err := l.Get()
	if err != nil {
		return nil, err
	}
	return c.Metadata()
}

// LogoutURL delegates; while the metadata is unread ok is false, so the
// user's groupgate session still ends and the IdP's outlives it.
func (l *Lazy) LogoutURL(ctx context.Context, nameID, sessionIndex, relayState string) (string, bool, error) {
	c, err := l.Get()
	if err != nil {
		return "", false, nil
	}
	return c.LogoutURL(ctx, nameID, sessionIndex, relayState)
}

// HandleLogoutRequest delegates; Unavailable while the metadata is unread
// (no request can verify without the IdP's certificates).
func (l *Lazy) HandleLogoutRequest(ctx context.Context, r *http.Request) (LogoutRequest, error) {
	c, err := l.Get()
	if err != nil {
		return LogoutRequest{}, err
	}
	return c.HandleLogoutRequest(ctx, r)
}

// LogoutResponseURL delegates; ok is false while the metadata is unread.
func (l *Lazy) LogoutResponseURL(inResponseTo, relayState string) (string, bool, error) {
	c, err := l.Get()
	if err != nil {
		return "", false, nil
	}
	return c.LogoutResponseURL(inResponseTo, relayState)
}
