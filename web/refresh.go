package web

import (
	"context"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

// SessionRefresher keeps what an OIDC session needs to have its groups
// refreshed from the IdP; *refresh.Refresher implements it. Its state
// lives beside the session, never in the record.
type SessionRefresher interface {
	// Started keeps the refresh token of the new session rec (a no-op
	// for providers that are not refreshed or logins without one).
	// Unavailable when it cannot be stored.
	Started(ctx context.Context, rec *session.Record, refreshToken string) error
	// Ended forgets the refresh state of session id.
	Ended(ctx context.Context, id string) error
}

// WithSessionRefresh keeps the refresh tokens of OIDC logins in r, and
// forgets them at logout.
func WithSessionRefresh(r SessionRefresher) Option { return func(s *Server) { s.refresh = r } }

// startRefresh hands a new session's refresh token to the refresher. When
// it cannot be kept, the session is ended and the login fails: a session
// whose groups could never be refreshed would outlive the operator's
// max_group_age.
func (f loginFinisher) startRefresh(ctx context.Context, rec *session.Record, refreshToken string) error {
	if f.refresh == nil {
		return nil
	}
	err := f.refresh.Started(ctx, rec, refreshToken)
	if err == nil {
		return nil
	}
	if f.deps.SessionBackend != nil {
		if derr := f.deps.SessionBackend.Delete(ctx, rec.ID); derr != nil {
			f.logger.ErrorContext(ctx, "end a session whose refresh token could not be kept", "error", derr)
		}
	}
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
