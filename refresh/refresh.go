package refresh

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
)

// Provider is one OIDC provider whose sessions are refreshed.
type Provider struct {
	Connector broker.RefreshConnector
	// MaxGroupAge is the oldest a session's groups may get: the refresh
	// is due at three quarters of it, so that a slow or briefly failing
	// IdP still has time.
	MaxGroupAge time.Duration
	// Grace is how long past MaxGroupAge a session whose refreshes fail
	// for a passing reason (IdP unreachable, a 5xx, sync unavailable)
	// lives on with its last groups before it is ended.
	Grace time.Duration
}

// Sessions is where the sessions live; session.Backend implements it.
type Sessions interface {
	Load(ctx context.Context, id string) (*session.Record, error)
	Delete(ctx context.Context, id string) error
}

// Accounts applies a refreshed identity as a login would (*sync.Syncer):
// the group set from the login source is replaced and every live session
// of the user, on every replica, gets the new snapshot.
type Accounts interface {
	Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error)
}

// Refresher refreshes the groups of OIDC sessions. Every replica runs one
// (Run); the lease in Redis makes sure that one session is refreshed by
// one replica at a time. It is safe for concurrent use.
type Refresher struct {
	store     Store
	seal      sealer
	sessions  Sessions
	accounts  Accounts
	providers map[string]Provider

	now         func() time.Time
	logger      *slog.Logger
	lease       time.Duration
	interval    time.Duration
	concurrency int
	batch       int64

	registerer prometheus.Registerer
	outcomes   *prometheus.CounterVec
}

// Option sets an optional parameter of New.
type Option func(*Refresher)

// WithNow sets the clock that judges when refreshes are due and when
// grace ends (time.Now); it should be the session backend's.
func WithNow(now func() time.Time) Option { return func(r *Refresher) { r.now = now } }

// WithLogger sets the logger (discard).
func WithLogger(l *slog.Logger) Option { return func(r *Refresher) { r.logger = l } }

// WithLease sets how long a refresh lease lasts before it must be renewed
// (DefaultLease); it is renewed every third of that while the refresh
// runs.
func WithLease(d time.Duration) Option { return func(r *Refresher) { r.lease = d } }

// WithInterval sets how often Run looks for due sessions
// (DefaultInterval).
func WithInterval(d time.Duration) Option { return func(r *Refresher) { r.interval = d } }

// WithConcurrency bounds the refreshes one replica runs at once
// (DefaultConcurrency).
func WithConcurrency(n int) Option { return func(r *Refresher) { r.concurrency = n } }

// Defaults of the options.
const (
	DefaultLease       = 30 * time.Second
	DefaultInterval    = 5 * time.Second
	DefaultConcurrency = 4
)

// New returns a Refresher keeping its state in store and sealing refresh
// tokens with a key derived from secret (session.secret).
func New(store Store, secret []byte, sessions Sessions, accounts Accounts, providers map[string]Provider, opts ...Option) (*Refresher, error) {
	if store == nil || sessions == nil || accounts == nil {
		return nil, errors.New("new refresher: store, sessions and accounts are required")
	}
	if len(secret) < session.MinSecretLen {
		return nil, fmt.Errorf("new refresher: secret must be at least %d bytes", session.MinSecretLen)
	}
	seal, err := newSealer(secret)
	if err != nil {
		return nil, fmt.Errorf("new refresher: %w", err)
	}
	r := &Refresher{
		store: store, seal: seal, sessions: sessions, accounts: accounts,
		providers:   make(map[string]Provider, len(providers)),
		now:         time.Now,
		logger:      slog.New(slog.DiscardHandler),
		lease:       DefaultLease,
		interval:    DefaultInterval,
		concurrency: DefaultConcurrency,
		batch:       100,
	}
	for _, o := range opts {
		o(r)
	}
	for name, p := range providers {
		if p.Connector == nil || p.MaxGroupAge <= 0 || p.Grace < 0 {
			return nil, fmt.Errorf("new refresher: provider %q needs a connector, a positive max_group_age and a grace not below zero", name)
		}
		r.providers[name] = p
	}
	if r.lease < 3*time.Millisecond || r.interval <= 0 || r.concurrency < 1 {
		return nil, errors.New("new refresher: lease, interval and concurrency must be positive")
	}
	if err := r.registerMetrics(); err != nil {
		return nil, fmt.Errorf("new refresher: %w", err)
	}
	return r, nil
}

// Enabled reports whether sessions of provider are refreshed.
func (r *Refresher) Enabled(provider string) bool {
	_, ok := r.providers[provider]
	return ok
}

// Started keeps the refresh token of a new session rec, sealed, and
// schedules its first refresh. Sessions of providers that are not
// refreshed, and logins that brought no refresh token, are skipped. When
// the state cannot be stored, the session is ended and the error
// returned: a session whose groups could never be refreshed would outlive
// max_group_age.
func (r *Refresher) Started(ctx context.Context, rec *session.Record, refreshToken string) error {
	p, ok := r.providers[rec.Provider]
	if !ok || refreshToken == "" {
		return nil
	}
	now := r.now()
	st := state{
		Provider: rec.Provider, Subject: rec.Identity.Subject, UserID: rec.UserID,
		Token: r.seal.seal(rec.ID, refreshToken), FetchedAt: now, ExpiresAt: rec.ExpiresAt,
	}
	if _, err := r.put(ctx, rec.ID, st, dueAt(now, p), false); err != nil {
		if derr := r.sessions.Delete(ctx, rec.ID); derr != nil {
			r.logger.ErrorContext(ctx, "end a session whose refresh token could not be kept", "user_id", rec.UserID, "error", derr)
		}
		return err
	}
	return nil
}

// Ended forgets the refresh state of session id (a logout). Sessions that
// end another way (SCIM, back-channel logout, expiry) lose it when their
// refresh comes due and finds them gone, or with the session's expiry.
func (r *Refresher) Ended(ctx context.Context, id string) error { return r.forget(ctx, id) }

// dueAt is when groups fetched at fetched are to be refreshed.
func dueAt(fetched time.Time, p Provider) time.Time {
	return fetched.Add(p.MaxGroupAge * 3 / 4)
}

// retryAfter is the wait after a refresh that failed for a passing
// reason: a few tries within the grace, never hammering the IdP.
func retryAfter(p Provider) time.Duration {
	return min(max(p.Grace/5, time.Second), time.Minute)
}

// Outcome is what one refresh attempt did.
type Outcome string

// Outcomes of RefreshSession.
const (
	// Refreshed: the IdP answered and the user's sessions have the new
	// groups.
	Refreshed Outcome = "refreshed"
	// NotDue: the groups are fresh enough (another replica refreshed).
	NotDue Outcome = "not_due"
	// Busy: another replica holds the session's lease.
	Busy Outcome = "busy"
	// Gone: the session or its state no longer exists; the state is
	// forgotten.
	Gone Outcome = "gone"
	// Kept: the refresh failed for a passing reason within the grace;
	// the session keeps its groups and is tried again soon.
	Kept Outcome = "kept"
	// Ended: the refresh failed for good, or the grace ran out: the
	// session is ended.
	Ended Outcome = "ended"
)

// Run refreshes due sessions every interval until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "session refresh", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce refreshes the sessions due now, at most the configured number
// at once, and returns what each attempt did, by outcome.
func (r *Refresher) RunOnce(ctx context.Context) (map[Outcome]int, error) {
	ids, err := r.dueIDs(ctx, r.now(), r.batch)
	if err != nil {
		return nil, err
	}
	out := map[Outcome]int{}
	var (
		mu   stdsync.Mutex
		wg   stdsync.WaitGroup
		errs []error
		sem  = make(chan struct{}, r.concurrency)
	)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o, err := r.RefreshSession(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[o]++
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// RefreshSession refreshes session id if it is due, under its lease. An
// error means nothing could be decided (Redis or the session store did
// not answer); the session is tried again on the next run.
func (r *Refresher) RefreshSession(ctx context.Context, id string) (o Outcome, err error) {
	defer func() { r.count(o, err) }()
	l, ok, err := r.acquire(ctx, id)
	if err != nil || !ok {
		return Busy, err
	}
	// The lease is renewed while the refresh runs, however slow the IdP;
	// if it is lost (Redis failed over, this process stalled), the work
	// is cancelled rather than finished beside another replica.
	ctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ok, err := r.renew(ctx, l); err != nil || !ok {
					cancel(fmt.Errorf("refresh lease lost: %v", err))
					return
				}
			}
		}
	}()
	defer func() {
		cancel(nil)
		<-renewed
		// Released even when ctx ended, so that the next run need not
		// wait out the lease.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := r.release(rctx, l); err != nil {
			r.logger.WarnContext(rctx, "release refresh lease", "error", err)
		}
	}()
	return r.refreshLocked(ctx, id)
}

func (r *Refresher) refreshLocked(ctx context.Context, id string) (Outcome, error) {
	st, ok, err := r.get(ctx, id)
	if err != nil {
		return "", err
	}
	p, known := r.providers[st.Provider]
	if !ok || !known {
		return Gone, r.forget(ctx, id)
	}
	rec, err := r.sessions.Load(ctx, id)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return Gone, r.forget(ctx, id)
	}
	if err != nil {
		return "", fmt.Errorf("load session: %w", err)
	}
	now := r.now()
	// Read again under the lease: a replica that held it just before may
	// have refreshed, and the refresh token it used is spent.
	if due := dueAt(st.FetchedAt, p); now.Before(due) {
		_, err := r.put(ctx, id, st, due, true)
		return NotDue, err
	}
	log := r.logger.With("provider", st.Provider, "user_id", st.UserID, "session", session.IDHint(id))
	token, err := r.seal.open(id, st.Token)
	if err != nil {
		// Sealed with another session secret: no refresh is possible.
		log.WarnContext(ctx, "session refresh: refresh token unreadable; ending the session", "error", err)
		return r.end(ctx, id)
	}
	ident, next, err := p.Connector.Refresh(ctx, token, st.Subject)
	if err == nil && next != token {
		// Keep the rotated token at once: the old one is spent whatever
		// happens next.
		st.Token = r.seal.seal(id, next)
		if _, perr := r.put(ctx, id, st, now.Add(retryAfter(p)), true); perr != nil {
			return "", perr
		}
	}
	if err == nil {
		err = r.apply(ctx, rec, ident)
	}
	switch {
	case err == nil:
		st.FetchedAt = now
		if _, err := r.put(ctx, id, st, dueAt(now, p), true); err != nil {
			return "", err
		}
		log.InfoContext(ctx, "session refreshed")
		return Refreshed, nil
	case final(err):
		log.InfoContext(ctx, "session refresh refused; ending the session", "error", err)
		return r.end(ctx, id)
	case !now.Before(st.FetchedAt.Add(p.MaxGroupAge + p.Grace)):
		log.WarnContext(ctx, "session refresh failing past its grace; ending the session", "error", err)
		return r.end(ctx, id)
	default:
		log.WarnContext(ctx, "session refresh failed; keeping the session within its grace", "error", err,
			"groups_fetched_at", st.FetchedAt, "grace_ends", st.FetchedAt.Add(p.MaxGroupAge+p.Grace))
		// The last try falls on the grace's end, not after it.
		next := now.Add(retryAfter(p))
		if end := st.FetchedAt.Add(p.MaxGroupAge + p.Grace); next.After(end) {
			next = end
		}
		if _, err := r.put(ctx, id, st, next, true); err != nil {
			return "", err
		}
		return Kept, nil
	}
}

// errOtherUser is the cause when a refreshed identity belongs to another
// account than the session's.
var errOtherUser = errors.New("the refreshed identity belongs to another account")

// apply hands the refreshed identity to sync as a login: the user's
// login-sourced groups are replaced and every live session of theirs is
// rewritten, on every replica.
func (r *Refresher) apply(ctx context.Context, rec *session.Record, ident groupgate.Identity) error {
	user, _, err := r.accounts.Login(ctx, ident)
	if err != nil {
		return fmt.Errorf("apply refreshed identity: %w", err)
	}
	if user.ID != rec.UserID {
		return groupgate.WrapError(groupgate.Forbidden, errOtherUser, "the refreshed identity belongs to another account")
	}
	return nil
}

// final reports whether a refresh failure ends the session at once: the
// IdP refused the grant (invalid_grant: the refresh token expired or was
// revoked, so the IdP has withdrawn this login), or the account may no
// longer sign in (deactivated, unlinkable). Anything else may pass.
func final(err error) bool {
	return errors.Is(err, broker.ErrRefreshRejected) ||
		groupgate.IsCode(err, groupgate.Forbidden) || groupgate.IsCode(err, groupgate.Conflict) ||
		groupgate.IsCode(err, groupgate.Invalid)
}

// end ends session id on every replica and forgets its state.
func (r *Refresher) end(ctx context.Context, id string) (Outcome, error) {
	if err := r.sessions.Delete(ctx, id); err != nil {
		return "", fmt.Errorf("end session: %w", err)
	}
	return Ended, r.forget(ctx, id)
}

func randomToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// The store's operations with the refresher's clock and lease.

func (r *Refresher) put(ctx context.Context, id string, st state, due time.Time, onlyIfKept bool) (bool, error) {
	return r.store.put(ctx, id, st, due, r.now(), onlyIfKept)
}

func (r *Refresher) get(ctx context.Context, id string) (state, bool, error) {
	return r.store.get(ctx, id)
}

func (r *Refresher) forget(ctx context.Context, id string) error { return r.store.forget(ctx, id) }

func (r *Refresher) dueIDs(ctx context.Context, now time.Time, n int64) ([]string, error) {
	return r.store.dueIDs(ctx, now, n)
}

func (r *Refresher) acquire(ctx context.Context, id string) (lease, bool, error) {
	return r.store.acquire(ctx, id, r.lease)
}

func (r *Refresher) renew(ctx context.Context, l lease) (bool, error) {
	return r.store.renew(ctx, l, r.lease)
}

func (r *Refresher) release(ctx context.Context, l lease) error { return r.store.release(ctx, l) }
