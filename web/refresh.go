package web

import (
	"context"
	"net/http"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// SessionRefresher keeps what an OIDC session needs to have its groups
// refreshed from the IdP; *refresh.Refresher implements it. Its state
// lives beside the session, never in the record.
type SessionRefresher interface {
	// Started keeps the refresh token of the new session rec (a no-op
	// for providers that are not refreshed or logins without one). When
	// it cannot be stored it ends the session and returns Unavailable.
	Started(ctx context.Context, rec *session.Record, refreshToken string) error
	// Ended forgets the refresh state of session id.
	Ended(ctx context.Context, id string) error
}

// WithSessionRefresh keeps the refresh tokens of OIDC logins in r, and
// forgets them at logout.
func WithSessionRefresh(r SessionRefresher) Option { return func(s *Server) { s.refresh = r } }

// startRefresh hands a new session's refresh token to the refresher.
// When it cannot be kept, the refresher has ended the session, and the
// login fails with the cookie expired.
func (f loginFinisher) startRefresh(w http.ResponseWriter, r *http.Request, rec *session.Record, refreshToken string) error {
	if f.refresh == nil {
		return nil
	}
	err := f.refresh.Started(r.Context(), rec, refreshToken)
	if err == nil {
		return nil
	}
	_ = f.deps.Sessions.End(w, r)
	return groupgate.WrapError(groupgate.Unavailable, err, "cannot finish the login right now; try again")
}

// endRefresh forgets the refresh state of a session that logged out. A
// failure is only logged: the state is dropped anyway when its refresh
// comes due and finds no session, or when it expires with the session.
func (s *Server) endRefresh(ctx context.Context, id string) {
	if s.refresh == nil {
		return
	}
	if err := s.refresh.Ended(ctx, id); err != nil {
		s.logger.WarnContext(ctx, "forget refresh state at logout", "error", err)
	}
}
