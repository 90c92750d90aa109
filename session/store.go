package session

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/groupgate/groupgate"
)

// MinSecretLen is the shortest session secret accepted (config: at least 32
// bytes), enough entropy for the HMAC key derived from it.
const MinSecretLen = 32

// Store is a gorilla/sessions Store on top of a Backend. The cookie holds
// only the session ID, signed (HMAC-SHA256, not encrypted: the ID is random
// and the record stays server-side); the typed Record is what the backend
// keeps.
//
// Of sessions.Session it uses ID and one entry of Values, reached with
// RecordOf and SetRecord; any other Values entry is refused on Save rather
// than silently dropped. Cookie attributes are always the Store's own
// (HttpOnly, SameSite=Lax, Path=/, Secure when configured), so a handler
// cannot weaken them through Session.Options; Options.MaxAge < 0 still
// means "end this session", as in gorilla.
type Store struct {
	backend Sessions
	codec   *securecookie.SecureCookie
	// macs holds HMAC-SHA256 states keyed with hashKey, so verifying the
	// cookie on every forward-auth request does not rebuild one.
	macs   sync.Pool
	maxAge int64
	name   string
	ttl    time.Duration
	secure bool
	now    func() time.Time
	logger *slog.Logger
}

var _ sessions.Store = (*Store)(nil)

// recordKey is the only key of sessions.Session.Values that Store uses.
type recordKey struct{}

// RecordOf returns the Record held by a gorilla session, nil when none.
func RecordOf(s *sessions.Session) *Record {
	rec, _ := s.Values[recordKey{}].(*Record)
	return rec
}

// SetRecord puts rec in a gorilla session, to be stored by its Save.
func SetRecord(s *sessions.Session, rec *Record) { s.Values[recordKey{}] = rec }

// NewStore returns a Store keeping records in backend and signing cookies
// with a key derived from secret (at least MinSecretLen bytes). It honours
// WithCookieName, WithTTL, WithSecureCookie, WithNow and WithLogger.
func NewStore(backend Sessions, secret []byte, opts ...Option) (*Store, error) {
	if backend == nil {
		return nil, groupgate.Errorf(groupgate.Invalid, "session store needs a backend")
	}
	if len(secret) < MinSecretLen {
		return nil, groupgate.Errorf(groupgate.Invalid, "session secret must be at least %d bytes", MinSecretLen)
	}
	o := buildOptions(opts)
	if o.ttl < time.Second {
		return nil, groupgate.Errorf(groupgate.Invalid, "session ttl must be at least one second")
	}
	if err := (&http.Cookie{Name: o.cookieName, Value: "x"}).Valid(); err != nil {
		return nil, groupgate.WrapError(groupgate.Invalid, err, "invalid session cookie name %q", o.cookieName)
	}
	// Browsers drop a __Host- or __Secure- cookie that is not Secure
	// (RFC 6265bis §4.1.3, prefixes matched without case): nobody could
	// sign in. The Store always sets Path=/ and no Domain, which __Host-
	// also requires.
	if HasSecurePrefix(o.cookieName) && !o.secure {
		return nil, groupgate.Errorf(groupgate.Invalid, "session cookie %q needs a Secure cookie (secure_cookie: true)", o.cookieName)
	}
	// Derive rather than use the secret directly, so the same configured
	// secret can key other purposes without related keys.
	hashKey, err := hkdf.Key(sha256.New, secret, nil, "groupgate session cookie v1", 32)
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "derive session cookie key")
	}
	codec := securecookie.New(hashKey, nil).
		SetSerializer(securecookie.NopEncoder{}).
		MaxAge(int(o.ttl / time.Second))
	st := &Store{
		backend: backend,
		codec:   codec,
		maxAge:  int64(o.ttl / time.Second),
		name:    o.cookieName,
		ttl:     o.ttl,
		secure:  o.secure,
		now:     o.now,
		logger:  o.logger,
	}
	st.macs.New = func() any { return &cookieMAC{h: hmac.New(sha256.New, hashKey)} }
	return st, nil
}

// HasSecurePrefix reports whether a cookie name starts with __Host- or
// __Secure-, which browsers match without case (RFC 6265bis §4.1.3).
func HasSecurePrefix(name string) bool {
	for _, p := range []string{"__Host-", "__Secure-"} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// CookieName is the name of the session cookie.
func (s *Store) CookieName() string { return s.name }

// Get returns the session of the request, cached per request by gorilla's
// registry.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session named by the request's cookie, or a new empty
// one when the cookie is missing, tampered with or names no live session.
// A backend failure is returned with an empty session: callers must fail
// closed on the error.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.options(s.ttl)
	sess.IsNew = true
	id, ok := s.cookieID(r, name)
	if !ok {
		return sess, nil
	}
	rec, err := s.backend.Load(r.Context(), id)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	sess.ID = id
	SetRecord(sess, rec)
	sess.IsNew = false
	return sess, nil
}

// Save stores the session's Record and sets the cookie, or ends the session
// when Options.MaxAge < 0. A session without an ID, or whose ID belongs to
// another user than its Record, gets a fresh ID (the old one is deleted).
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		s.expireCookie(w, sess.Name())
		if sess.ID == "" {
			return nil
		}
		if err := s.backend.Delete(ctx, sess.ID); err != nil {
			return err
		}
		sess.ID = ""
		return nil
	}
	rec := RecordOf(sess)
	if rec == nil {
		return groupgate.Errorf(groupgate.Invalid, "session has no record to save")
	}
	for k := range sess.Values {
		if _, ok := k.(recordKey); !ok {
			return groupgate.Errorf(groupgate.Invalid, "session values other than the record are not stored")
		}
	}
	now := s.now()
	if tag, _, ok := splitID(sess.ID); !ok || tag != userTag(rec.UserID) {
		if err := s.rotate(ctx, sess.ID, rec, now); err != nil {
			return err
		}
		sess.ID = rec.ID
	} else {
		rec.ID = sess.ID
		if err := s.backend.Save(ctx, rec); err != nil {
			return err
		}
	}
	sess.IsNew = false
	return s.setCookie(w, sess.Name(), rec, now)
}

// Start begins a login session for rec and sets the cookie. It always
// issues a new session ID, deleting the one the request's cookie named, so
// an ID planted before login is worthless after it (no session fixation).
// Start sets rec.ID and rec.CreatedAt, and caps rec.ExpiresAt at now+TTL
// (a zero ExpiresAt means now+TTL).
func (s *Store) Start(w http.ResponseWriter, r *http.Request, rec *Record) error {
	if rec == nil {
		return groupgate.Errorf(groupgate.Invalid, "no session record")
	}
	old, _ := s.cookieID(r, s.name)
	now := s.now()
	if err := s.rotate(r.Context(), old, rec, now); err != nil {
		return err
	}
	return s.setCookie(w, s.name, rec, now)
}

// rotate deletes oldID (if any) and saves rec as a session beginning now,
// under a fresh ID.
func (s *Store) rotate(ctx context.Context, oldID string, rec *Record, now time.Time) error {
	if oldID != "" {
		if err := s.backend.Delete(ctx, oldID); err != nil {
			return err
		}
	}
	id, err := NewID(rec.UserID)
	if err != nil {
		return err
	}
	rec.ID = id
	rec.CreatedAt = now
	if limit := now.Add(s.ttl); rec.ExpiresAt.IsZero() || rec.ExpiresAt.After(limit) {
		rec.ExpiresAt = limit
	}
	return s.backend.Save(ctx, rec)
}

// Current returns the record of the request's session. No cookie, a
// tampered one or a session that is gone is Unauthenticated; a backend that
// cannot be reached is Unavailable (fail closed, never "no session").
func (s *Store) Current(r *http.Request) (*Record, error) {
	id, ok := s.cookieID(r, s.name)
	if !ok {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "not signed in")
	}
	rec, err := s.backend.Load(r.Context(), id)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Unauthenticated, err, "session expired or ended")
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// CurrentView is Current for a reader that changes nothing, the
// forward-auth hot path: with the local cache in front of the backend, a
// hit is the cache entry's View itself, and finding it allocates nothing
// (no cookie slice, no ID string, no copy of the record). The same errors
// as Current.
func (s *Store) CurrentView(r *http.Request) (*View, error) {
	var buf [cookieBufLen]byte
	id, ok := s.cookieIDBytes(r, s.name, &buf)
	if !ok {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "not signed in")
	}
	var (
		v   *View
		err error
	)
	// The concrete type, not an interface: through an interface the ID's
	// buffer would escape to the heap.
	if c, isCache := s.backend.(*Cache); isCache {
		v, err = c.loadView(r.Context(), id)
	} else {
		var rec *Record
		if rec, err = s.backend.Load(r.Context(), string(id)); err == nil {
			v = &View{rec: rec}
		}
	}
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Unauthenticated, err, "session expired or ended")
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// End deletes the request's session server-side and expires the cookie.
// The cookie is expired even when the backend fails, and the failure is
// returned so the caller can tell the user the session may still be live.
func (s *Store) End(w http.ResponseWriter, r *http.Request) error {
	s.expireCookie(w, s.name)
	id, ok := s.cookieID(r, s.name)
	if !ok {
		return nil
	}
	return s.backend.Delete(r.Context(), id)
}

func (s *Store) options(maxAge time.Duration) *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		Secure:   s.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// cookieID returns the verified session ID carried by the request, if any.
func (s *Store) cookieID(r *http.Request, name string) (string, bool) {
	var buf [cookieBufLen]byte
	id, ok := s.cookieIDBytes(r, name, &buf)
	return string(id), ok
}

// cookieIDBytes is cookieID writing the ID into buf.
func (s *Store) cookieIDBytes(r *http.Request, name string, buf *[cookieBufLen]byte) ([]byte, bool) {
	// Another site that can set cookies for this host (a sibling
	// subdomain, a plain-http answer) can plant a second cookie of the same
	// name with a longer Path, which browsers send first (RFC 6265 §5.4):
	// cookie tossing, to log the victim in as the attacker. Two session
	// cookies are no session at all, whichever is ours.
	value, n := cookieNamed(r, name)
	if n != 1 {
		if n > 1 {
			s.logger.DebugContext(r.Context(), "session cookie rejected", slog.String("reason", "sent more than once"))
		}
		return nil, false
	}
	id, reason := s.verifyCookie(buf, name, value, time.Now())
	if reason != "" {
		s.logger.DebugContext(r.Context(), "session cookie rejected", slog.String("reason", reason))
		return nil, false
	}
	return id, true
}

// maxCookiesScanned is net/http's default bound on the cookies it parses
// in a request (GODEBUG httpcookiemaxnum); above it cookieNamed asks
// net/http, whatever the bound is set to.
const maxCookiesScanned = 3000

// cookieNamed returns the value of the cookies called name that the
// request carries and how many there are, exactly as r.CookiesNamed(name)
// finds them (len and the last one's Value), but without allocating the
// slice and a Cookie for each, since forward-auth looks on every request.
// name must be a valid cookie name (NewStore checks it), so that matching
// it stands in for net/http's token check.
func cookieNamed(r *http.Request, name string) (value string, n int) {
	lines := r.Header["Cookie"]
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookiesScanned {
		cs := r.CookiesNamed(name)
		if len(cs) == 0 {
			return "", 0
		}
		return cs[len(cs)-1].Value, len(cs)
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			if textproto.TrimString(k) != name {
				continue
			}
			// net/http's cookie-value check, looser than RFC 6265 §4.1.1
			// (it lets space and comma through): optionally quoted,
			// printable ASCII but DQUOTE, semicolon and backslash.
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !validCookieValue(v) {
				continue
			}
			value = v
			n++
		}
	}
	return value, n
}

func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// cookieMAC is an HMAC-SHA256 state keyed for the cookie with scratch
// space for the message and the sum, reused through Store.macs.
type cookieMAC struct {
	h   hash.Hash
	msg []byte
	sum []byte
}

// Limits of the cookie format: securecookie's own bound on a value, and
// the most a signed session ID can take (stack buffers up to that size).
const (
	maxCookieLen = 4096
	cookieBufLen = 256
)

// verifyCookie checks a value made by s.codec.Encode, as codec.Decode
// would: base64url of "date|base64url(ID)|HMAC-SHA256(name|date|base64url(ID))",
// the date in Unix seconds no older than the TTL. Like securecookie, the
// age is judged by the wall clock that stamped it, not the injected one.
// It does the same checks without securecookie's per-call allocations
// (a new HMAC, three buffers), since forward-auth runs it on every request.
// reason is empty when the value is good.
// The ID is written into dst, so that forward-auth can look it up without
// making it a string.
func (s *Store) verifyCookie(dst *[cookieBufLen]byte, name, value string, wall time.Time) (id []byte, reason string) {
	if len(value) > maxCookieLen {
		return nil, "value too long"
	}
	// The buffers stay on the stack as long as nothing derived from them
	// reaches an interface (the hash gets copies through cookieMAC.msg).
	var src [cookieBufLen * 4 / 3]byte
	var outer [cookieBufLen]byte
	var enc []byte
	if len(value) <= len(src) {
		enc = src[:copy(src[:], value)]
	} else {
		enc = []byte(value)
	}
	raw := outer[:0]
	if n := base64.URLEncoding.DecodedLen(len(enc)); n > len(outer) {
		raw = make([]byte, n)
	}
	n, err := base64.URLEncoding.Decode(raw[:cap(raw)], enc)
	if err != nil {
		return nil, "not base64"
	}
	raw = raw[:n]
	date, rest, ok := bytes.Cut(raw, []byte("|"))
	if !ok {
		return nil, "malformed"
	}
	encID, mac, ok := bytes.Cut(rest, []byte("|"))
	if !ok {
		return nil, "malformed"
	}
	m := s.macs.Get().(*cookieMAC)
	m.msg = append(append(append(m.msg[:0], name...), '|'), raw[:len(date)+1+len(encID)]...)
	m.h.Reset()
	m.h.Write(m.msg)
	m.sum = m.h.Sum(m.sum[:0])
	good := hmac.Equal(mac, m.sum)
	s.macs.Put(m)
	if !good {
		return nil, "bad signature"
	}
	t, err := strconv.ParseInt(string(date), 10, 64)
	if err != nil {
		return nil, "bad timestamp"
	}
	if s.maxAge != 0 && t < wall.UTC().Unix()-s.maxAge {
		return nil, "expired"
	}
	if base64.URLEncoding.DecodedLen(len(encID)) > len(dst) {
		return nil, "session ID too long"
	}
	n, err = base64.URLEncoding.Decode(dst[:], encID)
	if err != nil {
		return nil, "not base64"
	}
	id = dst[:n]
	if _, _, ok := splitID(id); !ok {
		return nil, "malformed session ID"
	}
	return id, ""
}

func (s *Store) setCookie(w http.ResponseWriter, name string, rec *Record, now time.Time) error {
	value, err := s.codec.Encode(name, []byte(rec.ID))
	if err != nil {
		return groupgate.WrapError(groupgate.Internal, err, "sign session cookie")
	}
	// The cookie lives as long as the session, so the browser drops it when
	// the server does.
	http.SetCookie(w, sessions.NewCookie(name, value, s.options(rec.ExpiresAt.Sub(now))))
	return nil
}

func (s *Store) expireCookie(w http.ResponseWriter, name string) {
	opts := s.options(0)
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(name, "", opts))
}
