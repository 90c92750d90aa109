package session_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func newStore(t *testing.T, b session.Sessions, opts ...session.Option) *session.Store {
	t.Helper()
	s, err := session.NewStore(b, secret, opts...)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

func login(userID string) *session.Record {
	return &session.Record{
		UserID:      userID,
		Provider:    "okta",
		Identity:    groupgate.Identity{Provider: "okta", Subject: "s-" + userID, Email: userID + "@example.com", GroupsPresent: true},
		IDToken:     "id-token-" + userID,
		Memberships: groupgate.Memberships{Groups: []string{"eng"}},
	}
}

// start runs Start for a request carrying cookies and returns the cookie set.
func start(t *testing.T, s *session.Store, rec *session.Record, cookies ...*http.Cookie) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/callback/okta", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	if err := s.Start(w, r, rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return onlyCookie(t, w)
}

func onlyCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("response set %d cookies, want 1", len(cs))
	}
	return cs[0]
}

// current is the request's session by Current, checked against
// CurrentView, which finds the cookie and reads the backend its own way
// for the forward-auth path: every test of Current holds for both (a
// disagreement is an error of no code).
func current(s *session.Store, cookies ...*http.Cookie) (*session.Record, error) {
	r := httptest.NewRequest(http.MethodGet, "/auth", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec, err := s.Current(r)
	v, verr := s.CurrentView(r)
	if groupgate.ErrorCodeOf(err) != groupgate.ErrorCodeOf(verr) {
		return nil, fmt.Errorf("Current says %v, CurrentView %v", err, verr)
	}
	if err == nil && !reflect.DeepEqual(rec, v.Record()) {
		return nil, fmt.Errorf("Current says %+v, CurrentView %+v", rec, v.Record())
	}
	return rec, err
}

func TestNewStoreRefusesWeakConfiguration(t *testing.T) {
	b := session.NewMemory()
	tests := []struct {
		name   string
		secret []byte
		opts   []session.Option
	}{
		{"a secret shorter than 32 bytes", []byte("short"), nil},
		{"a TTL under a second", secret, []session.Option{session.WithTTL(time.Millisecond)}},
		{"a cookie name with a space", secret, []session.Option{session.WithCookieName("bad name")}},
	}
	for _, tt := range tests {
		t.Run("it refuses "+tt.name, func(t *testing.T) {
			if _, err := session.NewStore(b, tt.secret, tt.opts...); !groupgate.IsCode(err, groupgate.Invalid) {
				t.Fatalf("NewStore = %v, want Invalid", err)
			}
		})
	}
}

func TestStartSetsASignedIDCookieWithSafeFlags(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := "a plain-HTTP deployment gets a non-Secure cookie"
		if secure {
			name = "secure_cookie marks the cookie Secure"
		}
		t.Run(name, func(t *testing.T) {
			b := session.NewMemory()
			s := newStore(t, b, session.WithTTL(2*time.Hour), session.WithCookieName("_gg"), session.WithSecureCookie(secure))
			rec := login("alice")
			c := start(t, s, rec)
			if c.Name != "_gg" || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure {
				t.Fatalf("cookie %+v: want _gg, Path=/, HttpOnly, SameSite=Lax, Secure=%v", c, secure)
			}
			if c.MaxAge != int((2 * time.Hour).Seconds()) {
				t.Fatalf("cookie Max-Age %d, want the TTL in seconds", c.MaxAge)
			}
			// The cookie carries the ID and nothing of the record.
			for _, leak := range []string{"alice", "okta", "eng", "id-token"} {
				if strings.Contains(c.Value, leak) {
					t.Fatalf("cookie value contains %q", leak)
				}
			}
			if c.Value == rec.ID {
				t.Fatal("cookie carries the bare, unsigned ID")
			}
			got, err := current(s, c)
			if err != nil {
				t.Fatalf("Current: %v", err)
			}
			if got.ID != rec.ID || got.UserID != "alice" || got.IDToken != "id-token-alice" {
				t.Fatalf("Current = %+v, want the started session", got)
			}
			if got.ExpiresAt.Sub(got.CreatedAt) != 2*time.Hour {
				t.Fatalf("session lives %v, want the TTL", got.ExpiresAt.Sub(got.CreatedAt))
			}
		})
	}
}

func TestCookiesThatAreNotOursAreNoSession(t *testing.T) {
	b := session.NewMemory()
	s := newStore(t, b)
	rec := login("alice")
	good := start(t, s, rec)

	other, err := session.NewStore(b, bytes.Repeat([]byte("x"), 40))
	if err != nil {
		t.Fatal(err)
	}
	forged := start(t, other, login("mallory"))

	flip := []byte(good.Value)
	flip[len(flip)/2] ^= 1
	tests := []struct {
		name  string
		value string
	}{
		{"a cookie with one character changed", string(flip)},
		{"the bare session ID without a signature", rec.ID},
		{"a cookie signed with another secret", forged.Value},
		{"an empty cookie", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is no session", func(t *testing.T) {
			c := &http.Cookie{Name: s.CookieName(), Value: tt.value}
			if _, err := current(s, c); !groupgate.IsCode(err, groupgate.Unauthenticated) {
				t.Fatalf("Current = %v, want Unauthenticated", err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(c)
			sess, err := s.Get(r, s.CookieName())
			if err != nil || !sess.IsNew || session.RecordOf(sess) != nil {
				t.Fatalf("Get = %+v, %v; want a new empty session", sess, err)
			}
		})
	}
	t.Run("no cookie at all is no session", func(t *testing.T) {
		if _, err := current(s); !groupgate.IsCode(err, groupgate.Unauthenticated) {
			t.Fatalf("Current = %v, want Unauthenticated", err)
		}
	})
}

func TestEveryLoginIssuesANewIDAndDropsTheOldOne(t *testing.T) {
	b := session.NewMemory()
	s := newStore(t, b)
	first := login("alice")
	c1 := start(t, s, first)
	second := login("alice")
	c2 := start(t, s, second, c1)
	if first.ID == second.ID || c1.Value == c2.Value {
		t.Fatal("a second login reused the session ID")
	}
	if _, err := current(s, c1); !groupgate.IsCode(err, groupgate.Unauthenticated) {
		t.Fatalf("the pre-login session still works: %v", err)
	}
	if _, err := b.Load(t.Context(), first.ID); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Fatalf("the pre-login session is still stored: %v", err)
	}
	if got, err := current(s, c2); err != nil || got.ID != second.ID {
		t.Fatalf("Current after the second login = %v, %v", got, err)
	}
	// A different user logging in from the same browser gets their own ID.
	c3 := start(t, s, login("bob"), c2)
	if got, err := current(s, c3); err != nil || got.UserID != "bob" {
		t.Fatalf("Current after bob's login = %v, %v", got, err)
	}
	if recs, _ := b.ListUserSessions(t.Context(), "alice"); len(recs) != 0 {
		t.Fatalf("alice still has %d sessions after bob took over the browser", len(recs))
	}
}

func TestEndDeletesTheSessionServerSideAndExpiresTheCookie(t *testing.T) {
	b := session.NewMemory()
	s := newStore(t, b)
	rec := login("alice")
	c := start(t, s, rec)

	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(c)
	w := httptest.NewRecorder()
	if err := s.End(w, r); err != nil {
		t.Fatalf("End: %v", err)
	}
	if gone := onlyCookie(t, w); gone.MaxAge >= 0 || gone.Value != "" {
		t.Fatalf("End set cookie %+v, want it expired", gone)
	}
	if _, err := b.Load(t.Context(), rec.ID); !groupgate.IsCode(err, groupgate.NotFound) {
		t.Fatalf("session still stored after End: %v", err)
	}
	// A copy of the old cookie replayed after logout is worthless.
	if _, err := current(s, c); !groupgate.IsCode(err, groupgate.Unauthenticated) {
		t.Fatalf("old cookie after End: %v", err)
	}
	t.Run("ending without a session is harmless", func(t *testing.T) {
		w := httptest.NewRecorder()
		if err := s.End(w, httptest.NewRequest(http.MethodGet, "/logout", nil)); err != nil {
			t.Fatalf("End: %v", err)
		}
	})
}

func TestAnExpiredSessionIsNoSession(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	b := session.NewMemory(session.WithNow(clock))
	s := newStore(t, b, session.WithNow(clock), session.WithTTL(time.Hour))
	c := start(t, s, login("alice"))
	now = now.Add(time.Hour)
	if _, err := current(s, c); !groupgate.IsCode(err, groupgate.Unauthenticated) {
		t.Fatalf("Current after the TTL = %v, want Unauthenticated", err)
	}
}

func TestAnUnreachableBackendFailsClosed(t *testing.T) {
	down := unreachableRedis(t)
	// Sign a valid cookie with a working backend, then read it through the
	// broken one: the answer must be an error, never "no session".
	c := start(t, newStore(t, session.NewMemory()), login("alice"))
	s := newStore(t, down)
	if _, err := current(s, c); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("Current = %v, want Unavailable", err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	if _, err := s.New(r, s.CookieName()); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("New = %v, want Unavailable", err)
	}
	if err := s.Start(httptest.NewRecorder(), r, login("alice")); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("Start = %v, want Unavailable", err)
	}
	w := httptest.NewRecorder()
	if err := s.End(w, r); !groupgate.IsCode(err, groupgate.Unavailable) {
		t.Fatalf("End = %v, want Unavailable (the session may still be live)", err)
	}
	if onlyCookie(t, w).MaxAge >= 0 {
		t.Fatal("End kept the cookie although the backend failed")
	}
}

func TestTheGorillaInterfaceStoresOnlyTheTypedRecord(t *testing.T) {
	b := session.NewMemory()
	s := newStore(t, b)
	var store sessions.Store = s

	// A new session saved through gorilla gets an ID and a cookie.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, err := store.Get(r, s.CookieName())
	if err != nil || !sess.IsNew {
		t.Fatalf("Get on a fresh request = %+v, %v", sess, err)
	}
	session.SetRecord(sess, login("alice"))
	w := httptest.NewRecorder()
	if err := sess.Save(r, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
	c := onlyCookie(t, w)
	if sess.ID == "" {
		t.Fatal("Save left the session without an ID")
	}

	// The next request finds it through the cookie.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	sess, err = store.Get(r, s.CookieName())
	if err != nil || sess.IsNew {
		t.Fatalf("Get with the cookie = %+v, %v", sess, err)
	}
	rec := session.RecordOf(sess)
	if rec == nil || rec.UserID != "alice" || rec.ID != sess.ID {
		t.Fatalf("record %+v, want alice's session %s", rec, sess.ID)
	}

	t.Run("values other than the record are refused", func(t *testing.T) {
		sess.Values["flash"] = "hello"
		defer delete(sess.Values, "flash")
		if err := sess.Save(r, httptest.NewRecorder()); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("Save with an extra value = %v, want Invalid", err)
		}
	})
	t.Run("a session without a record cannot be saved", func(t *testing.T) {
		empty := sessions.NewSession(s, s.CookieName())
		if err := s.Save(r, httptest.NewRecorder(), empty); !groupgate.IsCode(err, groupgate.Invalid) {
			t.Fatalf("Save = %v, want Invalid", err)
		}
	})
	t.Run("a record changed to another user moves to a fresh ID", func(t *testing.T) {
		moved := sessions.NewSession(s, s.CookieName())
		moved.ID = sess.ID
		other := *rec
		other.UserID = "bob"
		session.SetRecord(moved, &other)
		if err := s.Save(r, httptest.NewRecorder(), moved); err != nil {
			t.Fatalf("Save: %v", err)
		}
		if moved.ID == sess.ID {
			t.Fatal("the ID was kept across users")
		}
		if _, err := b.Load(t.Context(), sess.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("old ID still stored: %v", err)
		}
		if err := b.Delete(t.Context(), moved.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MaxAge below zero ends the session", func(t *testing.T) {
		rec2 := login("carol")
		c := start(t, s, rec2)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(c)
		sess, err := s.New(r, s.CookieName())
		if err != nil || sess.IsNew {
			t.Fatalf("New = %+v, %v", sess, err)
		}
		sess.Options.MaxAge = -1
		w := httptest.NewRecorder()
		if err := s.Save(r, w, sess); err != nil {
			t.Fatalf("Save: %v", err)
		}
		if onlyCookie(t, w).MaxAge >= 0 {
			t.Fatal("cookie not expired")
		}
		if _, err := b.Load(t.Context(), rec2.ID); !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("session still stored: %v", err)
		}
	})
}

// Cookie tossing: a site that can set cookies for the application's host
// (a sibling subdomain, a plain-http response) plants its own session
// cookie, with a longer Path so that browsers send it first (RFC 6265
// §5.4). Whichever comes first, two session cookies are no session.
func TestTwoSessionCookiesAreNoSession(t *testing.T) {
	b := session.NewMemory()
	s := newStore(t, b)
	victim := start(t, s, login("alice"))
	tossed := start(t, s, login("mallory"))
	junk := &http.Cookie{Name: s.CookieName(), Value: "junk"}
	for _, tt := range []struct {
		name    string
		cookies []*http.Cookie
	}{
		{"a planted session before the user's", []*http.Cookie{tossed, victim}},
		{"a planted session after the user's", []*http.Cookie{victim, tossed}},
		{"a bad cookie before a good one", []*http.Cookie{junk, victim}},
		{"the same good cookie twice", []*http.Cookie{victim, victim}},
	} {
		t.Run(tt.name+" is no session", func(t *testing.T) {
			if rec, err := current(s, tt.cookies...); !groupgate.IsCode(err, groupgate.Unauthenticated) {
				t.Fatalf("Current = %+v, %v; want Unauthenticated", rec, err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, c := range tt.cookies {
				r.AddCookie(c)
			}
			sess, err := s.Get(r, s.CookieName())
			if err != nil || !sess.IsNew || session.RecordOf(sess) != nil {
				t.Fatalf("Get = %+v, %v; want a new empty session", sess, err)
			}
		})
	}
	t.Run("one session cookie among other cookies is the session", func(t *testing.T) {
		rec, err := current(s, &http.Cookie{Name: "app", Value: "1"}, victim, &http.Cookie{Name: s.CookieName() + "x", Value: "2"})
		if err != nil || rec.UserID != "alice" {
			t.Fatalf("Current = %+v, %v; want alice's session", rec, err)
		}
	})
}

// A __Host- cookie (RFC 6265bis §4.1.3.2) is one browsers accept only when
// Secure, Path=/ and without Domain, so no other host can set or shadow it.
func TestHostPrefixedCookie(t *testing.T) {
	b := session.NewMemory()
	t.Run("the cookie is Secure, Path=/ and host-only", func(t *testing.T) {
		s := newStore(t, b, session.WithCookieName("__Host-groupgate"), session.WithSecureCookie(true))
		c := start(t, s, login("alice"))
		if c.Name != "__Host-groupgate" || !c.Secure || c.Path != "/" || c.Domain != "" {
			t.Fatalf("cookie %+v: want __Host-groupgate, Secure, Path=/, no Domain", c)
		}
		if rec, err := current(s, c); err != nil || rec.UserID != "alice" {
			t.Fatalf("Current = %+v, %v", rec, err)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/logout", nil)
		r.AddCookie(c)
		if err := s.End(w, r); err != nil {
			t.Fatal(err)
		}
		if e := onlyCookie(t, w); e.Name != "__Host-groupgate" || !e.Secure || e.Path != "/" || e.MaxAge >= 0 {
			t.Fatalf("logout cookie %+v: want an expired __Host- cookie a browser accepts", e)
		}
	})
	for _, name := range []string{"__Host-groupgate", "__Secure-groupgate", "__host-groupgate"} {
		t.Run(name+" without Secure is refused", func(t *testing.T) {
			if _, err := session.NewStore(b, secret, session.WithCookieName(name), session.WithSecureCookie(false)); !groupgate.IsCode(err, groupgate.Invalid) {
				t.Fatalf("NewStore = %v, want Invalid: browsers drop such a cookie", err)
			}
		})
	}
}
