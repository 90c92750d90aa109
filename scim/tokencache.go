package scim

import (
	"context"
	"crypto/subtle"
	stdsync "sync"
	"time"

	"github.com/groupgate/groupgate"
)

// A SCIM create was two round trips, the token lookup and the insert
// (issue 15). Verified tokens are therefore kept for tokenCacheTTL, keyed
// by the SHA-256 of the secret (the secret itself is never kept):
//   - a revocation on this replica is seen at once: the store's token
//     generation moves when a deletion commits and drops every entry;
//   - one on another replica is seen within tokenCacheTTL;
//   - expiry is checked on every request against the token's ExpiresAt,
//     cached or not.
// Only successful lookups are kept, so a bad token always reaches the
// store.

// tokenCacheTTL bounds how long a revocation made on another replica can
// go unseen here.
const tokenCacheTTL = 2 * time.Second

// maxCachedTokens bounds the cache; an IdP holds one or two tokens.
const maxCachedTokens = 64

// tokenGenerations is a store that says when a token was deleted through
// it (store/postgres, whose lookup is a network round trip; SQLite reads
// its own file and gets no cache).
type tokenGenerations interface {
	TokenGeneration() int64
}

type tokenCache struct {
	gens tokenGenerations

	mu      stdsync.Mutex
	gen     int64
	entries map[[32]byte]cachedToken
}

type cachedToken struct {
	tok groupgate.Token
	at  time.Time
}

func newTokenCache(g tokenGenerations) *tokenCache {
	return &tokenCache{gens: g, entries: map[[32]byte]cachedToken{}}
}

// get returns the token cached for sum if it was verified less than
// tokenCacheTTL before now and no token was deleted since.
func (c *tokenCache) get(sum [32]byte, now time.Time) (groupgate.Token, bool) {
	gen := c.gens.TokenGeneration()
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		clear(c.entries)
		c.gen = gen
		return groupgate.Token{}, false
	}
	e, ok := c.entries[sum]
	if !ok || now.Sub(e.at) >= tokenCacheTTL || now.Before(e.at) {
		return groupgate.Token{}, false
	}
	return e.tok, true
}

// put keeps tok, found when the generation was gen: a deletion that
// committed after gen was read may have removed it, and then it is not
// kept.
func (c *tokenCache) put(sum [32]byte, tok groupgate.Token, gen int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || gen != c.gens.TokenGeneration() {
		return
	}
	if len(c.entries) >= maxCachedTokens {
		clear(c.entries)
	}
	c.entries[sum] = cachedToken{tok: tok, at: now}
}

// lookupToken finds the SCIM token whose secret hashes to sum, from the
// cache or the store; NotFound errors become Unauthenticated.
func (s *Server) lookupToken(ctx context.Context, sum [32]byte, now time.Time) (groupgate.Token, error) {
	var gen int64
	if s.tokens != nil {
		if tok, ok := s.tokens.get(sum, now); ok && subtle.ConstantTimeCompare(tok.Hash, sum[:]) == 1 {
			return tok, nil
		}
		// Read before the lookup: a deletion committing during it moves
		// the generation, and put then drops the result.
		gen = s.tokens.gens.TokenGeneration()
	}
	tok, err := s.st.GetTokenByHash(ctx, groupgate.TokenSCIM, sum[:])
	if groupgate.IsCode(err, groupgate.NotFound) {
		return groupgate.Token{}, groupgate.WrapError(groupgate.Unauthenticated, err, "bad token")
	}
	if err != nil {
		return groupgate.Token{}, err
	}
	if s.tokens != nil && subtle.ConstantTimeCompare(tok.Hash, sum[:]) == 1 && tok.Kind == groupgate.TokenSCIM {
		s.tokens.put(sum, tok, gen, now)
	}
	return tok, nil
}
