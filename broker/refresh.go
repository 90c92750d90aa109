package broker

import (
	"context"
	"errors"

	"github.com/groupgate/groupgate"
)

// ErrRefreshRejected is the cause when the IdP refused a refresh token
// (OAuth 2.0 invalid_grant, RFC 6749 §5.2: expired, revoked, or issued to
// someone else) or answered for another subject: no retry can help, and
// the session it belongs to must end.
var ErrRefreshRejected = errors.New("the identity provider refused the refresh token")

// RefreshConnector re-reads a signed-in person's identity from the IdP
// with the refresh token issued at login (the refresh_token grant, RFC
// 6749 §6 and OIDC Core §12), so that group changes at the IdP reach a
// session without a new login.
type RefreshConnector interface {
	// Refresh redeems refreshToken and returns the identity the IdP now
	// asserts, read and filtered exactly as at login, and the refresh
	// token to keep (the IdP's new one when it rotates them, else the
	// same). Errors are *groupgate.Error: Unauthenticated wrapping
	// ErrRefreshRejected when the IdP refused the grant or names another
	// subject than subject, Unavailable when the IdP cannot be reached or
	// fails, Unauthenticated otherwise (an answer that does not verify).
	Refresh(ctx context.Context, refreshToken, subject string) (groupgate.Identity, string, error)
}

var _ RefreshConnector = (*LazyConnector)(nil)

// Refresh delegates; Unavailable while the provider is not open, Invalid
// when its protocol cannot refresh.
func (c *LazyConnector) Refresh(ctx context.Context, refreshToken, subject string) (groupgate.Identity, string, error) {
	conn, err := c.Get()
	if err != nil {
		return groupgate.Identity{}, "", err
	}
	rc, ok := conn.(RefreshConnector)
	if !ok {
		return groupgate.Identity{}, "", groupgate.Errorf(groupgate.Invalid, "identity provider %q cannot refresh sessions", c.Name())
	}
	return rc.Refresh(ctx, refreshToken, subject)
}
