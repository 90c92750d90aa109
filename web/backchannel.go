package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
)

// LogoutVerifier verifies OIDC back-channel logout tokens; *broker.Login
// implements it.
type LogoutVerifier interface {
	// VerifyLogout returns the verified token of provider, with the
	// subject found from the sid when the token names only a session.
	// NotFound for a provider without back-channel logout, Invalid for a
	// token that does not verify, Unavailable when keys or the session
	// index cannot be read.
	VerifyLogout(ctx context.Context, provider, raw string) (broker.LogoutToken, error)
}

// BackchannelSessions ends sessions found without a browser and refuses
// replayed tokens across replicas; session.Backend implements it.
type BackchannelSessions interface {
	ListUserSessions(ctx context.Context, userID string) ([]*session.Record, error)
	Delete(ctx context.Context, id string) error
	// Remember reports whether key is fresh, and keeps it until until.
	Remember(ctx context.Context, key string, until time.Time) (bool, error)
}

// BackchannelConfig configures the back-channel logout receiver.
type BackchannelConfig struct {
	// Providers are the OIDC providers whose logout tokens are accepted.
	Providers []string
	// TrustedProxies may tell the client address the rate limit applies
	// to; nil trusts nobody.
	TrustedProxies *TrustedProxies
	// Limits bound the logout requests per client address and in total
	// (per AttemptTTL window); zero fields take DefaultBackchannelLimits'.
	Limits LoginLimits
}

// DefaultBackchannelLimits bound unauthenticated work: each request may
// make the replica fetch the IdP's keys (a token with an unknown key ID),
// so a client gets a burst of 30 and 60 a minute, and one replica serves
// at most 1,200 a minute in all.
var DefaultBackchannelLimits = LoginLimits{PerClientBurst: 30, PerClientPerMinute: 60, MaxLive: 1200, AttemptTTL: time.Minute}

// maxLogoutRequestBytes bounds the form body: one logout token.
const maxLogoutRequestBytes = 64 << 10

// BackchannelLogout receives OpenID Connect Back-Channel Logout 1.0
// requests at /backchannel-logout/NAME: the IdP POSTs a signed logout
// token, and every session it names ends at once on every replica (the
// session backend's delete reaches every replica's cache). Mount it with
// WithMount.
type BackchannelLogout struct {
	cfg      BackchannelConfig
	verifier LogoutVerifier
	users    UserLookup
	sessions BackchannelSessions
	limiter  *loginLimiter
	now      func() time.Time
	logger   *slog.Logger
}

// BackchannelOption sets an optional dependency.
type BackchannelOption func(*BackchannelLogout)

// WithBackchannelLogger sets the logger (discard by default).
func WithBackchannelLogger(l *slog.Logger) BackchannelOption {
	return func(b *BackchannelLogout) { b.logger = l }
}

// WithBackchannelNow sets the clock of the rate limit.
func WithBackchannelNow(now func() time.Time) BackchannelOption {
	return func(b *BackchannelLogout) { b.now = now }
}

// NewBackchannelLogout returns the receiver; verifier, users and sessions
// are required.
func NewBackchannelLogout(cfg BackchannelConfig, verifier LogoutVerifier, users UserLookup, sessions BackchannelSessions, opts ...BackchannelOption) (*BackchannelLogout, error) {
	if verifier == nil || users == nil || sessions == nil {
		return nil, groupgate.Errorf(groupgate.Invalid, "back-channel logout: verifier, user lookup and sessions are required")
	}
	d := DefaultBackchannelLimits
	l := cfg.Limits
	if l.PerClientBurst <= 0 {
		l.PerClientBurst = d.PerClientBurst
	}
	if l.PerClientPerMinute <= 0 {
		l.PerClientPerMinute = d.PerClientPerMinute
	}
	if l.MaxLive <= 0 {
		l.MaxLive = d.MaxLive
	}
	if l.AttemptTTL <= 0 {
		l.AttemptTTL = d.AttemptTTL
	}
	b := &BackchannelLogout{cfg: cfg, verifier: verifier, users: users, sessions: sessions,
		limiter: newLoginLimiter(l), now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// BackchannelLogoutPath is the path of provider's receiver, to register
// at the IdP as backchannel_logout_uri (under public_url).
func BackchannelLogoutPath(provider string) string { return "/backchannel-logout/" + provider }

// Mount registers POST /backchannel-logout/{provider}.
func (b *BackchannelLogout) Mount(mux *http.ServeMux) {
	mux.Handle("/backchannel-logout/{provider}", http.HandlerFunc(b.serve))
	// Deeper paths are groupgate's too: none may reach the application.
	mux.Handle("/backchannel-logout/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		b.fail(w, http.StatusNotFound, "invalid_request", "unknown identity provider")
	}))
}

// logoutError is the error body of §2.8, in OAuth 2.0's shape.
type logoutError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// serve answers per OpenID Connect Back-Channel Logout 1.0 §2.8: 200 once
// the sessions have ended, 400 with a JSON error when the token is bad or
// the logout failed; never cached.
func (b *BackchannelLogout) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	ctx := r.Context()
	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		b.fail(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if ok, _, retry := b.limiter.admit(clientKey(ClientIP(r, b.cfg.TrustedProxies)), b.now()); !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, int(retry.Seconds()+0.5))))
		b.fail(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many logout requests; retry later")
		return
	}
	provider := r.PathValue("provider")
	if !slices.Contains(b.cfg.Providers, provider) {
		b.fail(w, http.StatusNotFound, "invalid_request", "unknown identity provider")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutRequestBytes)
	if err := r.ParseForm(); err != nil {
		b.fail(w, http.StatusBadRequest, "invalid_request", "the request body is not a form of acceptable size")
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		b.fail(w, http.StatusBadRequest, "invalid_request", "logout_token is missing (POST it as a form parameter)")
		return
	}
	tok, err := b.verifier.VerifyLogout(ctx, provider, raw)
	if err != nil {
		b.logger.InfoContext(ctx, "back-channel logout refused", "provider", provider, "error", err)
		code := "invalid_request"
		if groupgate.IsCode(err, groupgate.Unavailable) {
			code = "temporarily_unavailable"
		}
		b.fail(w, http.StatusBadRequest, code, groupgate.ErrorMessageOf(err))
		return
	}
	// A jti is accepted once on any replica (§2.6 step 7): the record
	// lives in the shared session backend as long as the token could be.
	fresh, err := b.sessions.Remember(ctx, replayKey(provider, tok.JTI), tok.Until)
	if err != nil {
		b.logger.WarnContext(ctx, "back-channel logout: replay record", "provider", provider, "error", err)
		b.fail(w, http.StatusBadRequest, "temporarily_unavailable", "the logout cannot be recorded right now")
		return
	}
	if !fresh {
		b.logger.InfoContext(ctx, "back-channel logout refused: token replayed", "provider", provider)
		b.fail(w, http.StatusBadRequest, "invalid_request", "the logout token was already used")
		return
	}
	n, userID, err := b.end(ctx, provider, tok)
	if err != nil {
		b.logger.WarnContext(ctx, "back-channel logout failed", "provider", provider, "error", err)
		b.fail(w, http.StatusBadRequest, "temporarily_unavailable", "the sessions cannot be ended right now")
		return
	}
	b.logger.InfoContext(ctx, "back-channel logout", "provider", provider, "user_id", userID, "sessions", n, "by_sid", tok.SessionID != "")
	w.WriteHeader(http.StatusOK)
}

// end deletes the live sessions that provider started for the token's
// subject; when the token names a sid, only that IdP session's (and any
// whose login recorded no sid). Sessions
// of other providers stay: this IdP speaks only for its own logins.
func (b *BackchannelLogout) end(ctx context.Context, provider string, tok broker.LogoutToken) (n int, userID string, err error) {
	if tok.Subject == "" {
		// A sid no login of ours received: nothing to end.
		return 0, "", nil
	}
	user, err := b.users.GetUserByIdentity(ctx, provider, tok.Subject)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("find the user of a %s subject: %w", provider, err)
	}
	recs, err := b.sessions.ListUserSessions(ctx, user.ID)
	if err != nil {
		return 0, user.ID, fmt.Errorf("list sessions of %s: %w", user.ID, err)
	}
	for _, rec := range recs {
		if rec.Provider != provider || rec.Identity.Subject != tok.Subject {
			continue
		}
		// A session whose login carried no sid (an IdP that puts it in
		// logout tokens only, or a session older than this field) cannot
		// be told apart: it ends too, the safe side.
		if tok.SessionID != "" && rec.IDPSessionID != "" && rec.IDPSessionID != tok.SessionID {
			continue
		}
		if err := b.sessions.Delete(ctx, rec.ID); err != nil {
			return n, user.ID, fmt.Errorf("end a session of %s: %w", user.ID, err)
		}
		n++
	}
	return n, user.ID, nil
}

func replayKey(provider, jti string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + jti))
	return "bcl-jti:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (b *BackchannelLogout) fail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(logoutError{Error: code, Description: desc})
}
