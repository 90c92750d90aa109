// Command verifyjwt is an upstream application that trusts groupgate's
// X-Auth-Request-Jwt only after verifying it: signature against the key
// set at groupgate's /.well-known/jwks.json, then iss, aud and exp. It
// answers every request with the verified claims, or 401.
//
//	go run ./examples/verifyjwt -jwks http://127.0.0.1:4180/.well-known/jwks.json \
//	  -issuer http://127.0.0.1:4180 -audience http://127.0.0.1:4180 -listen 127.0.0.1:8080
//
// It uses github.com/go-jose/go-jose/v4; any JOSE library that reads a
// JWKS does the same. The key set is fetched again when a token names a
// key it does not hold (groupgate rotates its keys) and at most every
// -refresh otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims are groupgate's claims beyond the registered ones.
type Claims struct {
	PreferredUsername string            `json:"preferred_username"`
	Email             string            `json:"email"`
	Name              string            `json:"name"`
	Groups            []string          `json:"groups"`
	OrgRoles          map[string]string `json:"org_roles"`
	RepoRoles         map[string]string `json:"repo_roles"`
	// Truncated is set when groupgate left groups or roles out to keep
	// the header small; ask groupgate's /whoami for all of them.
	Truncated json.RawMessage `json:"truncated,omitempty"`
}

// Verifier checks tokens against a JWKS URL.
type Verifier struct {
	JWKSURL  string
	Issuer   string
	Audience string
	// Refresh is the longest a fetched key set is used (default 5m).
	Refresh time.Duration
	Client  *http.Client
	Now     func() time.Time

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// algorithms groupgate may sign with (identity_token.algorithm).
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256}

// Verify returns the claims of raw when it is a token groupgate signed for
// this audience and it has not expired.
func (v *Verifier) Verify(ctx context.Context, raw string) (jwt.Claims, Claims, error) {
	var std jwt.Claims
	var c Claims
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil {
		return std, c, fmt.Errorf("parse: %w", err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return std, c, errors.New("the token names no key")
	}
	key, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return std, c, err
	}
	if err := tok.Claims(key, &std, &c); err != nil {
		return std, c, fmt.Errorf("signature: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	// A minute of leeway for clocks that disagree.
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: now()}, time.Minute); err != nil {
		return std, c, fmt.Errorf("claims: %w", err)
	}
	return std, c, nil
}

// key returns the public key kid, fetching the key set when kid is
// unknown or the set is older than Refresh.
func (v *Verifier) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	refresh := v.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Minute
	}
	if keys := v.keys.Key(kid); len(keys) == 1 && time.Since(v.fetched) < refresh {
		return keys[0], nil
	}
	if err := v.fetch(ctx); err != nil {
		return jose.JSONWebKey{}, err
	}
	keys := v.keys.Key(kid)
	if len(keys) != 1 {
		return jose.JSONWebKey{}, fmt.Errorf("key %q is not in %s (rotated out, or not groupgate's)", kid, v.JWKSURL)
	}
	return keys[0], nil
}

func (v *Verifier) fetch(ctx context.Context) error {
	client := v.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKSURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWKS: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("read JWKS: %w", err)
	}
	v.keys, v.fetched = set, time.Now()
	return nil
}

// Handler answers with the verified identity, or 401.
func (v *Verifier) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		std, c, err := v.Verify(r.Context(), r.Header.Get("X-Auth-Request-Jwt"))
		if err != nil {
			http.Error(w, "not verified: "+err.Error(), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Subject string `json:"sub"`
			Claims
		}{std.Subject, c})
	})
}

func main() {
	v := &Verifier{}
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	flag.StringVar(&v.JWKSURL, "jwks", "http://127.0.0.1:4180/.well-known/jwks.json", "groupgate's JWKS URL")
	flag.StringVar(&v.Issuer, "issuer", "http://127.0.0.1:4180", "groupgate's public_url (the token's iss)")
	flag.StringVar(&v.Audience, "audience", "http://127.0.0.1:4180", "identity_token.audience (default: public_url)")
	flag.DurationVar(&v.Refresh, "refresh", 5*time.Minute, "longest a fetched key set is used")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: v.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("verifying X-Auth-Request-Jwt against %s on %s", v.JWKSURL, *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
