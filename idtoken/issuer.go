package idtoken

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// KeyStore keeps the key set; store.SigningKeyStore is it.
type KeyStore interface {
	// ListSigningKeys returns every key, ordered by activation.
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	// UpdateSigningKeys replaces the set by fn's result, serialized with
	// every other call on every replica.
	UpdateSigningKeys(ctx context.Context, fn func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error)
}

// Defaults of Config's zero fields.
const (
	DefaultAlgorithm      = ES256
	DefaultTTL            = 5 * time.Minute
	DefaultRotationPeriod = 24 * time.Hour
	DefaultPublishAhead   = time.Hour
	DefaultMaxGroups      = 50
	DefaultMaxRoles       = 50
	DefaultMaxBytes       = 6 << 10
	// Leeway is how long past a token's expiry its key stays published,
	// for verifiers whose clocks run behind ours.
	Leeway = 2 * time.Minute
	// DefaultCacheSize bounds the tokens kept for reuse, one per session.
	DefaultCacheSize = 10000
)

// Config says what the tokens hold and how keys rotate. Zero fields take
// the defaults above.
type Config struct {
	// Issuer is "iss": groupgate's public URL.
	Issuer string
	// Audience is "aud": who the token is for (the upstream's URL, or names
	// the upstream checks). At least one.
	Audience []string
	// Algorithm is the JWS algorithm of new keys: ES256, ES384, EdDSA or
	// RS256. Keys made under another algorithm keep theirs until they
	// rotate out.
	Algorithm string
	// TTL is a token's lifetime; a token is reused for half of it.
	TTL time.Duration
	// RotationPeriod is how long a key signs before the next one takes
	// over.
	RotationPeriod time.Duration
	// PublishAhead is how long a new key is published before it signs, so
	// that verifiers that cache the key set fetch it in time. Less than
	// RotationPeriod.
	PublishAhead time.Duration
	// MaxGroups and MaxRoles bound the groups and the organization plus
	// repository roles a token lists; beyond them the rest is counted in
	// the "truncated" claim. MaxBytes bounds the whole token: the lists
	// are cut further until it fits.
	MaxGroups int
	MaxRoles  int
	MaxBytes  int
}

func (c *Config) setDefaults() {
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.RotationPeriod <= 0 {
		c.RotationPeriod = DefaultRotationPeriod
	}
	if c.PublishAhead <= 0 {
		c.PublishAhead = DefaultPublishAhead
	}
	if c.MaxGroups <= 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	if c.MaxRoles <= 0 {
		c.MaxRoles = DefaultMaxRoles
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
}

// Check reports every problem of c (after defaults), for configuration
// validation; nil when New would accept it.
func (c Config) Check() []string {
	c.setDefaults()
	var problems []string
	if c.Issuer == "" {
		problems = append(problems, "issuer is required")
	}
	if len(c.Audience) == 0 || slices.Contains(c.Audience, "") {
		problems = append(problems, "audience needs at least one non-empty value")
	}
	if !slices.Contains(Algorithms, c.Algorithm) {
		problems = append(problems, fmt.Sprintf("algorithm %q is not one of %v", c.Algorithm, Algorithms))
	}
	if c.PublishAhead >= c.RotationPeriod {
		problems = append(problems, fmt.Sprintf("publish_ahead (%v) must be shorter than rotation_period (%v)", c.PublishAhead, c.RotationPeriod))
	}
	if c.TTL > c.RotationPeriod {
		problems = append(problems, fmt.Sprintf("ttl (%v) must not be longer than rotation_period (%v)", c.TTL, c.RotationPeriod))
	}
	if c.MaxBytes < 1024 {
		problems = append(problems, fmt.Sprintf("max_bytes must be at least 1024, is %d", c.MaxBytes))
	}
	return problems
}

// retain is how long a key stays published after it stops signing: until
// every token it signed has expired, plus Leeway.
func (c Config) retain() time.Duration { return c.TTL + Leeway }

// Option sets an optional dependency of New.
type Option func(*Issuer)

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithLogger sets the logger (default: discard). Key material is never
// logged.
func WithLogger(l *slog.Logger) Option { return func(i *Issuer) { i.logger = l } }

// WithCacheSize bounds the tokens kept for reuse (default DefaultCacheSize).
func WithCacheSize(n int) Option { return func(i *Issuer) { i.cacheSize = n } }

// Issuer signs identity tokens with the shared key set and serves the
// set's public keys. It is safe for concurrent use.
type Issuer struct {
	st        KeyStore
	aead      cipher.AEAD
	cfg       Config
	now       func() time.Time
	logger    *slog.Logger
	cacheSize int

	state atomic.Pointer[keyState]
	// syncMu makes Sync calls of one replica take turns.
	syncMu stdsync.Mutex

	cacheMu stdsync.RWMutex
	cache   map[string]*cached
}

// keyState is the key set as last read from the store.
type keyState struct {
	keys []loadedKey // by activation
}

// New returns an Issuer over st whose private keys are sealed with a key
// derived from secret (at least 32 bytes; session.secret, the same on
// every replica). Call Sync before the first Token, then Run.
func New(st KeyStore, secret []byte, cfg Config, opts ...Option) (*Issuer, error) {
	cfg.setDefaults()
	if problems := cfg.Check(); len(problems) > 0 {
		return nil, groupgate.Errorf(groupgate.Invalid, "identity token: %v", problems)
	}
	aead, err := newSealer(secret)
	if err != nil {
		return nil, err
	}
	i := &Issuer{st: st, aead: aead, cfg: cfg, now: time.Now, logger: slog.New(slog.DiscardHandler),
		cacheSize: DefaultCacheSize, cache: map[string]*cached{}}
	for _, o := range opts {
		o(i)
	}
	i.state.Store(&keyState{})
	return i, nil
}

// Sync reads the key set, rotates it when due, and makes it the one this
// replica signs with. Rotation is decided again inside the store's
// serialized update, so replicas due at once add one key between them.
func (i *Issuer) Sync(ctx context.Context) error {
	i.syncMu.Lock()
	defer i.syncMu.Unlock()
	keys, err := i.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	loaded := i.loadAll(ctx, keys)
	if _, changed, err := i.plan(keys, loaded, i.now()); err != nil {
		return err
	} else if changed {
		keys, err = i.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			next, _, err := i.plan(cur, i.loadAll(ctx, cur), i.now())
			return next, err
		})
		if err != nil {
			return fmt.Errorf("rotate signing keys: %w", err)
		}
		loaded = i.loadAll(ctx, keys)
	}
	i.state.Store(&keyState{keys: loaded})
	return nil
}

// loadAll parses keys, logging (without key material) those that cannot
// sign here.
func (i *Issuer) loadAll(ctx context.Context, keys []store.SigningKey) []loadedKey {
	out := make([]loadedKey, 0, len(keys))
	for _, k := range keys {
		lk, err := load(i.aead, k)
		if err != nil {
			i.logger.WarnContext(ctx, "identity-token signing key unusable on this replica", "kid", k.ID, "error", err)
		}
		if lk.jwk.Kty == "" {
			continue // not even publishable
		}
		out = append(out, lk)
	}
	return out
}

// plan is the key set as it should be at now, and whether it differs from
// keys: a key that signs now (a new one at once if none can sign here), a
// successor published PublishAhead before the current one's period ends,
// and no key kept longer than retain after it stopped signing.
func (i *Issuer) plan(keys []store.SigningKey, loaded []loadedKey, now time.Time) ([]store.SigningKey, bool, error) {
	usable := map[string]bool{}
	for _, lk := range loaded {
		usable[lk.id] = lk.signer != nil
	}
	next := slices.Clone(keys)
	changed := false
	cur, pending := -1, false
	for j, k := range next {
		if k.ActiveAt.After(now) {
			pending = pending || usable[k.ID]
		} else {
			cur = j
		}
	}
	switch {
	case cur < 0 || !usable[next[cur].ID]:
		// Nothing can sign now (first start, or sealed with another
		// secret): a key that signs at once. Verifiers learn it when they
		// fetch the set for its unknown kid.
		k, err := newKey(i.aead, i.cfg.Algorithm, now)
		if err != nil {
			return nil, false, err
		}
		next, changed = append(next, k), true
	case !pending && !now.Before(next[cur].ActiveAt.Add(i.cfg.RotationPeriod-i.cfg.PublishAhead)):
		at := next[cur].ActiveAt.Add(i.cfg.RotationPeriod)
		if earliest := now.Add(i.cfg.PublishAhead); at.Before(earliest) {
			// Down past the rotation: the successor must still be
			// published for PublishAhead before it signs.
			at = earliest
		}
		k, err := newKey(i.aead, i.cfg.Algorithm, at)
		if err != nil {
			return nil, false, err
		}
		next, changed = append(next, k), true
	}
	store.SortSigningKeys(next)
	// A key retires when its successor starts signing.
	kept := next[:0]
	for j, k := range next {
		if j+1 < len(next) && !next[j+1].ActiveAt.After(now) && now.Sub(next[j+1].ActiveAt) > i.cfg.retain() {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	return kept, changed, nil
}

// Run calls Sync every interval until ctx ends, so that this replica
// learns keys other replicas added and rotates when due. A failed Sync is
// logged; the replica keeps signing with the keys it has.
func (i *Issuer) Run(ctx context.Context) {
	interval := min(time.Minute, i.cfg.PublishAhead/4)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := i.Sync(ctx); err != nil && ctx.Err() == nil {
				i.logger.WarnContext(ctx, "identity-token key sync failed; signing with the keys already loaded", "error", err)
			}
		}
	}
}

// signingKey is the key that signs at now: the latest active one that
// unseals here.
func (i *Issuer) signingKey(now time.Time) (loadedKey, bool) {
	keys := i.state.Load().keys
	for j := len(keys) - 1; j >= 0; j-- {
		if k := keys[j]; !k.activeAt.After(now) && k.signer != nil {
			return k, true
		}
	}
	return loadedKey{}, false
}

// JWKS returns the JSON Web Key Set (RFC 7517 §5) of every key a verifier
// may meet: the next one, the current one and those retired less than a
// token lifetime ago.
func (i *Issuer) JWKS() []byte {
	keys := i.state.Load().keys
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	// Newest first: a verifier that tries keys in order meets the
	// signing key early.
	for j := len(keys) - 1; j >= 0; j-- {
		set.Keys = append(set.Keys, keys[j].jwk)
	}
	out, _ := json.Marshal(set) // strings only: cannot fail
	return out
}

// JWKSHandler serves JWKS at /.well-known/jwks.json. Verifiers may cache
// it for a quarter of PublishAhead (at most five minutes), so that they
// know the next key before it signs.
func (i *Issuer) JWKSHandler() http.Handler {
	maxAge := strconv.Itoa(int(min(5*time.Minute, i.cfg.PublishAhead/4).Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age="+maxAge)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(i.JWKS())
	})
}
