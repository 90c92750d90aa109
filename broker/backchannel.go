package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/groupgate/groupgate"
)

// BackchannelLogoutEvent is the member of a logout token's "events" claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// DefaultSessionIndexTTL is how long the IdP session ID of a login is
// remembered for back-channel logout when WithSessionIndexTTL is not set;
// set it to the session lifetime.
const DefaultSessionIndexTTL = 12 * time.Hour

// LogoutToken is a verified back-channel logout request: the IdP asks to
// end the sessions of Subject, or of its session SessionID, or both.
type LogoutToken struct {
	// Subject is "sub"; when the token carries only "sid", VerifyLogout
	// fills it from the login that received that sid.
	Subject string
	// SessionID is "sid", the IdP's session; empty means every session of
	// Subject at this provider.
	SessionID string
	// JTI is the token's unique ID, which the caller must accept once.
	JTI string
	// Until is when the token stops being acceptable (its exp, or its iat
	// plus the accepted age): the replay record must last that long.
	Until time.Time
}

// BackchannelConnector verifies logout tokens (OpenID Connect
// Back-Channel Logout 1.0 §2.6): signature by the provider's keys, iss,
// aud, iat and exp, the logout event, a sub or sid, and no nonce. It does
// not judge replay: the caller remembers the jti across replicas.
type BackchannelConnector interface {
	// VerifyLogoutToken returns the verified token. Errors are
	// *groupgate.Error: Invalid for a token that does not verify,
	// Unavailable when the provider's keys cannot be read.
	VerifyLogoutToken(ctx context.Context, raw string) (LogoutToken, error)
}

// WithSessionIndexTTL sets how long the IdP session ID ("sid") of each
// login is remembered, so that a logout token naming only the sid finds
// its subject (DefaultSessionIndexTTL). Use the session lifetime.
func WithSessionIndexTTL(d time.Duration) LoginOption {
	return func(l *Login) { l.sidTTL = d }
}

// sessionIndexKey is the attempt-store key of provider's session sid:
// hashed, since both are the IdP's strings.
func sessionIndexKey(provider, sid string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + sid))
	return "bcl-sid:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// rememberSession records which subject provider's session sid belongs
// to. A failure only weakens a later sid-only logout, so it is logged,
// not returned.
func (l *Login) rememberSession(ctx context.Context, provider string, id groupgate.Identity, sid string) {
	if sid == "" || len(sid) > 1024 {
		return
	}
	if err := l.attempts.PutAttempt(ctx, sessionIndexKey(provider, sid), []byte(id.Subject), l.sidTTL); err != nil {
		l.logger.WarnContext(ctx, "cannot remember the IdP session of a login for back-channel logout", "provider", provider, "error", err)
	}
}

// VerifyLogout verifies a back-channel logout token of provider and, for
// a token that names only a session, finds the subject of the login that
// received it. Errors are *groupgate.Error: NotFound for an unknown
// provider or one that does not take back-channel logout, Invalid for a
// token that does not verify, Unavailable when the provider's keys or
// the session index cannot be read.
func (l *Login) VerifyLogout(ctx context.Context, provider, raw string) (LogoutToken, error) {
	c, ok := l.connectors[provider]
	if !ok {
		return LogoutToken{}, groupgate.Errorf(groupgate.NotFound, "unknown identity provider %q", provider)
	}
	bc, ok := c.(BackchannelConnector)
	if !ok {
		return LogoutToken{}, groupgate.Errorf(groupgate.NotFound, "identity provider %q does not take back-channel logout", provider)
	}
	tok, err := bc.VerifyLogoutToken(ctx, raw)
	if err != nil {
		return LogoutToken{}, fmt.Errorf("verify logout token of %q: %w", provider, err)
	}
	if tok.Subject == "" {
		b, err := l.attempts.TakeAttempt(ctx, sessionIndexKey(provider, tok.SessionID))
		switch {
		case groupgate.IsCode(err, groupgate.NotFound):
			// No login of ours holds that session: nothing to end.
		case err != nil:
			return LogoutToken{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot look up the session to log out")
		default:
			tok.Subject = string(b)
		}
	}
	return tok, nil
}

var _ BackchannelConnector = (*LazyConnector)(nil)

// VerifyLogoutToken delegates; Unavailable while the provider is not
// open, Invalid when it does not take back-channel logout.
func (c *LazyConnector) VerifyLogoutToken(ctx context.Context, raw string) (LogoutToken, error) {
	conn, err := c.Get()
	if err != nil {
		return LogoutToken{}, err
	}
	bc, ok := conn.(BackchannelConnector)
	if !ok {
		return LogoutToken{}, groupgate.Errorf(groupgate.Invalid, "identity provider %q does not take back-channel logout", c.Name())
	}
	return bc.VerifyLogoutToken(ctx, raw)
}
