package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/groupgate/groupgate"
)

// Record is what the server keeps for one login session. The cookie carries
// only ID; everything else stays server-side.
type Record struct {
	ID       string             `json:"id"`
	UserID   string             `json:"user_id"`
	Provider string             `json:"provider"`
	Identity groupgate.Identity `json:"identity"`
	// IDToken is the raw OIDC ID token, kept for RP-initiated logout's
	// id_token_hint; empty for SAML logins.
	IDToken     string                `json:"id_token,omitempty"`
	Memberships groupgate.Memberships `json:"memberships"`
	CreatedAt   time.Time             `json:"created_at"`
	ExpiresAt   time.Time             `json:"expires_at"`

	// IDPSessionID is the ID token's "sid", the IdP session this login
	// belongs to, which an OIDC back-channel logout may name; empty when
	// the IdP sent none.
	IDPSessionID string `json:"idp_sid,omitempty"`
}

// Every method below returns *groupgate.Error codes: NotFound for an absent
// or expired entry, Invalid for a value the contract refuses, Unavailable
// when the backend cannot be reached (never a silent empty result), Internal
// otherwise.

// Sessions is the per-session part of a Backend: what the forward-auth hot
// path and login/logout need.
type Sessions interface {
	// Save creates or overwrites rec. rec.ID must come from NewID(rec.UserID)
	// and rec.ExpiresAt must be in the future (Invalid otherwise); the backend
	// forgets the record at ExpiresAt.
	Save(ctx context.Context, rec *Record) error
	// Load returns the record; NotFound when absent, expired or when id is
	// not a well-formed session ID (cookies are attacker-controlled).
	Load(ctx context.Context, id string) (*Record, error)
	// Delete removes the record; deleting an absent one is not an error.
	Delete(ctx context.Context, id string) error
}

// UserSessions acts on all live sessions of one user at once: listing them,
// ending them (SCIM deactivation) and rewriting their membership snapshot
// (mapping and group-set changes that must take effect immediately).
type UserSessions interface {
	// ListUserSessions returns the live sessions of userID, oldest first.
	ListUserSessions(ctx context.Context, userID string) ([]*Record, error)
	// DeleteUserSessions ends every session of userID and returns how many
	// live ones there were.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// SetMemberships replaces the snapshot of every live session of userID,
	// keeping each session's expiry, and returns how many it rewrote. It is
	// unordered: a writer racing another (on any replica) should take a
	// generation and use SetMembershipsIf instead.
	SetMemberships(ctx context.Context, userID string, m groupgate.Memberships) (int, error)
	// NextGenerations takes, for each user, the next value of the user's
	// generation counter, shared by every replica: values only grow, so a
	// value taken later is larger. A writer takes it after the change it
	// propagates has committed and before it reads the store.
	NextGenerations(ctx context.Context, userIDs []string) (map[string]int64, error)
	// Generation reads the user's generation counter without taking one:
	// the last value NextGenerations handed out, or 0 when the counter is
	// unknown (never taken, expired, or lost).
	Generation(ctx context.Context, userID string) (int64, error)
	// SetMembershipsIf is SetMemberships done atomically only while gen is
	// still the user's latest generation. applied is false when a later
	// generation was taken: that writer read a newer state and will write
	// it, so skipping is not an error. n is how many sessions it rewrote.
	SetMembershipsIf(ctx context.Context, userID string, gen int64, m groupgate.Memberships) (applied bool, n int, err error)
	// SetMembershipsIfBatch is SetMembershipsIf for many users at once,
	// each user's write checked and applied on its own (never all or
	// nothing), in a few round trips instead of a few per user. It returns
	// one result per write, in order; a user's failure is in its result's
	// Err, and err is set only when no write could be attempted.
	SetMembershipsIfBatch(ctx context.Context, writes []SnapshotWrite) ([]SnapshotResult, error)
}

// SnapshotWrite is one user's snapshot for SetMembershipsIfBatch: the
// memberships read under generation Gen. It (like SnapshotResult) is an
// alias of an unnamed struct so that a consumer (sync) can spell the same
// type in its own interface without importing this package.
type SnapshotWrite = struct {
	UserID      string
	Gen         int64
	Memberships groupgate.Memberships
}

// SnapshotResult is what SetMembershipsIf would have returned for one
// write of a batch.
type SnapshotResult = struct {
	Applied  bool
	Sessions int
	Err      error
}

// Attempts keeps login attempts (state, nonce, PKCE verifier, SAML request
// ID) between the redirect to the IdP and the callback, on any replica.
type Attempts interface {
	// PutAttempt stores value under key for ttl (Invalid when ttl <= 0).
	PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// TakeAttempt returns the value and deletes it atomically, so an attempt
	// is used at most once; NotFound when absent, taken or expired.
	TakeAttempt(ctx context.Context, key string) ([]byte, error)
}

// ReplayGuard remembers SAML assertion IDs so an assertion is accepted once.
type ReplayGuard interface {
	// Remember records key until the given time and reports whether it was
	// fresh; false means it was seen before and not yet forgotten. Callers
	// pass the assertion's NotOnOrAfter plus their allowed clock skew; a time
	// not after now is Invalid.
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// Backend is everything a session store provides, the union of the small
// interfaces above; consumers should ask for the piece they use.
type Backend interface {
	Sessions
	UserSessions
	Attempts
	ReplayGuard
	// Ping reports whether the backend is reachable (Unavailable if not), for
	// readiness checks.
	Ping(ctx context.Context) error
}

const (
	tagBytes    = 16
	randomBytes = 32
)

var b64 = base64.RawURLEncoding

// userTag is the part of a session ID, and of every Redis key, that names
// the user without revealing the user ID.
func userTag(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	return b64.EncodeToString(sum[:tagBytes])
}

// NewID returns a fresh, unguessable session ID for userID.
func NewID(userID string) (string, error) {
	if userID == "" {
		return "", groupgate.Errorf(groupgate.Invalid, "session needs a user ID")
	}
	var r [randomBytes]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", groupgate.WrapError(groupgate.Internal, err, "generate session ID")
	}
	return userTag(userID) + "." + b64.EncodeToString(r[:]), nil
}

// splitID returns the user tag and random part of a well-formed session ID.
// It takes the ID as bytes too, so that the forward-auth path can check a
// decoded cookie without making it a string.
func splitID[S string | []byte](id S) (tag, random S, ok bool) {
	dot := -1
	for i := 0; i < len(id); i++ {
		if id[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return tag, random, false
	}
	tag, random = id[:dot], id[dot+1:]
	if len(tag) != b64.EncodedLen(tagBytes) || len(random) != b64.EncodedLen(randomBytes) {
		return tag[:0], random[:0], false
	}
	if !isBase64URL(tag) || !isBase64URL(random) {
		return tag[:0], random[:0], false
	}
	return tag, random, true
}

func isBase64URL[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkRecord enforces Save's preconditions, shared by every backend.
func checkRecord(rec *Record, now time.Time) error {
	if rec == nil {
		return groupgate.Errorf(groupgate.Invalid, "no session record")
	}
	if rec.UserID == "" {
		return groupgate.Errorf(groupgate.Invalid, "session has no user ID")
	}
	tag, _, ok := splitID(rec.ID)
	if !ok || tag != userTag(rec.UserID) {
		return groupgate.Errorf(groupgate.Invalid, "session ID was not issued for this user")
	}
	if !rec.ExpiresAt.After(now) {
		return groupgate.Errorf(groupgate.Invalid, "session already expired")
	}
	return nil
}

func notFound(id string) error {
	return groupgate.Errorf(groupgate.NotFound, "no session %s", redactID(id))
}

// redactID keeps session IDs, which are bearer credentials, out of messages
// and logs: the user tag identifies the user's sessions without the secret.
func redactID(id string) string {
	if tag, _, ok := splitID(id); ok {
		return tag + ".…"
	}
	return "(malformed)"
}

// roundTrip returns a copy of rec as Redis would give it back: passing
// through the encoding normalises what it does not keep (monotonic clock
// readings, time zones, empty maps), so every backend answers alike.
func roundTrip(rec *Record) (*Record, error) {
	b, err := encodeRecord(rec)
	if err != nil {
		return nil, err
	}
	return decodeRecord(b)
}

// roundTripMemberships is roundTrip for a membership snapshot alone.
func roundTripMemberships(m groupgate.Memberships) (groupgate.Memberships, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return groupgate.Memberships{}, groupgate.WrapError(groupgate.Internal, err, "encode memberships")
	}
	var out groupgate.Memberships
	if err := json.Unmarshal(b, &out); err != nil {
		return groupgate.Memberships{}, groupgate.WrapError(groupgate.Internal, err, "decode memberships")
	}
	return out, nil
}

// cloneRecord copies rec deeply enough that callers may change the copy
// without touching a record a backend or cache keeps.
func cloneRecord(rec *Record) *Record {
	out := *rec
	out.Identity.Groups = slices.Clone(rec.Identity.Groups)
	out.Memberships = cloneMemberships(rec.Memberships)
	return &out
}

func cloneMemberships(m groupgate.Memberships) groupgate.Memberships {
	return groupgate.Memberships{
		Groups:    slices.Clone(m.Groups),
		OrgRoles:  maps.Clone(m.OrgRoles),
		RepoRoles: maps.Clone(m.RepoRoles),
	}
}

// Option configures a backend or a Store. Options that do not apply to what
// is being built are ignored.
type Option func(*options)

type options struct {
	now        func() time.Time
	logger     *slog.Logger
	sweepEvery time.Duration

	cookieName string
	ttl        time.Duration
	secure     bool
}

func buildOptions(opts []Option) options {
	o := options{
		now:        time.Now,
		logger:     slog.New(slog.DiscardHandler),
		sweepEvery: time.Minute,
		cookieName: "_groupgate",
		ttl:        12 * time.Hour,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithNow injects the clock that judges expiry (tests move it).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger for events worth an operator's attention.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithSweepInterval sets how often, by the injected clock, the in-process
// backend drops expired entries (it sweeps lazily during writes).
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweepEvery = d } }

// WithCookieName sets the Store's cookie name (default "_groupgate").
func WithCookieName(name string) Option { return func(o *options) { o.cookieName = name } }

// WithTTL sets how long a Store session lives (default 12h).
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithSecureCookie marks the Store's cookie Secure (HTTPS only).
func WithSecureCookie(secure bool) Option { return func(o *options) { o.secure = secure } }
