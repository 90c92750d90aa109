package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// DefaultAttemptTTL is how long a user may take at the IdP before the login
// attempt expires.
const DefaultAttemptTTL = 10 * time.Minute

// AttemptStore keeps login attempts between the redirect to the IdP and the
// callback. Implementations must be safe for concurrent use and shared by
// every replica that may receive the callback.
type AttemptStore interface {
	// PutAttempt stores value under key for ttl.
	PutAttempt(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// TakeAttempt returns the value stored under key and deletes it in one
	// step, so that an attempt is used at most once. It returns a
	// *groupgate.Error with code NotFound when key is absent, already taken
	// or expired.
	TakeAttempt(ctx context.Context, key string) ([]byte, error)
}

// Attempt is one login in progress. It is stored server-side; only its ID
// travels through the browser (as the OAuth state and in the binding
// cookie).
type Attempt struct {
	// ID is 32 random bytes, base64url without padding: the store key and
	// the OAuth state.
	ID       string `json:"id"`
	Provider string `json:"provider"`
	// Nonce binds the ID token to this attempt (OIDC Core §3.1.2.1).
	Nonce string `json:"nonce"`
	// PKCEVerifier is the RFC 7636 code_verifier; connectors send its S256
	// challenge with the authorization request and the verifier with the
	// token request.
	PKCEVerifier string `json:"pkce_verifier"`
	// ReturnTo is the validated URL ("rd") to send the user to after login.
	ReturnTo  string    `json:"return_to"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// State is the value sent to the IdP as the OAuth "state" parameter.
func (a Attempt) State() string { return a.ID }

// idBytes is the entropy of attempt IDs, nonces and PKCE verifiers.
const idBytes = 32

// encodedIDLen is the length of an attempt ID: base64url of idBytes.
var encodedIDLen = base64.RawURLEncoding.EncodedLen(idBytes)

func randomToken() string {
	b := make([]byte, idBytes)
	// crypto/rand.Read never fails (it crashes the program instead) since
	// Go 1.24.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAttempt returns a fresh attempt for provider with random ID, nonce and
// PKCE verifier (43 characters, as RFC 7636 §4.1 asks), expiring ttl after
// now.
func NewAttempt(provider, returnTo string, now time.Time, ttl time.Duration) Attempt {
	return Attempt{
		ID:           randomToken(),
		Provider:     provider,
		Nonce:        randomToken(),
		PKCEVerifier: randomToken(),
		ReturnTo:     returnTo,
		CreatedAt:    now,
		ExpiresAt:    now.Add(ttl),
	}
}

func (a Attempt) encode() ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode login attempt: %w", err)
	}
	return b, nil
}

func decodeAttempt(b []byte) (Attempt, error) {
	var a Attempt
	if err := json.Unmarshal(b, &a); err != nil {
		return Attempt{}, fmt.Errorf("decode login attempt: %w", err)
	}
	return a, nil
}

// validID reports whether s has the shape of an attempt ID, so that garbage
// from a query string never reaches the store or a cookie name.
func validID(s string) bool {
	if len(s) != encodedIDLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == idBytes
}

// cookieSuffix derives the binding cookie's name suffix from an attempt ID.
// A hash rather than the ID itself keeps the name short and the value the
// only place the whole ID appears.
func cookieSuffix(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}
