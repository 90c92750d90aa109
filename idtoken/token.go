package idtoken

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// Subject is the caller a token speaks for, as the session holds them.
type Subject struct {
	// UserID is groupgate's user ID: the token's "sub", stable across
	// identity providers.
	UserID string
	// Username is what X-Auth-Request-User carries.
	Username    string
	Email       string
	Name        string
	Memberships groupgate.Memberships
}

func (s Subject) equal(o Subject) bool {
	return s.UserID == o.UserID && s.Username == o.Username && s.Email == o.Email && s.Name == o.Name &&
		slices.Equal(s.Memberships.Groups, o.Memberships.Groups) &&
		maps.Equal(s.Memberships.OrgRoles, o.Memberships.OrgRoles) &&
		maps.Equal(s.Memberships.RepoRoles, o.Memberships.RepoRoles)
}

func (s Subject) clone() Subject {
	s.Memberships.Groups = slices.Clone(s.Memberships.Groups)
	s.Memberships.OrgRoles = maps.Clone(s.Memberships.OrgRoles)
	s.Memberships.RepoRoles = maps.Clone(s.Memberships.RepoRoles)
	return s
}

// Claims is the token's payload. Role maps are keyed by organization
// name and repository full name ("acme/api"), as the identity headers are.
type Claims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud"`
	IssuedAt int64    `json:"iat"`
	// NotBefore is IssuedAt.
	NotBefore         int64                         `json:"nbf"`
	Expiry            int64                         `json:"exp"`
	PreferredUsername string                        `json:"preferred_username,omitempty"`
	Email             string                        `json:"email,omitempty"`
	Name              string                        `json:"name,omitempty"`
	Groups            []string                      `json:"groups"`
	OrgRoles          map[string]groupgate.OrgRole  `json:"org_roles"`
	RepoRoles         map[string]groupgate.RepoRole `json:"repo_roles"`
	// Truncated is present when the lists above leave something out to
	// keep the header bounded; the whole set is at /whoami.
	Truncated *Truncated `json:"truncated,omitempty"`
}

// Truncated says what a token left out: how many groups, and how many
// organization and repository roles, counted by role. Roles are kept
// highest first, so what is left out is the lowest.
type Truncated struct {
	Groups    int            `json:"groups,omitempty"`
	OrgRoles  map[string]int `json:"org_roles,omitempty"`
	RepoRoles map[string]int `json:"repo_roles,omitempty"`
}

// Audience is "aud": a string when there is one value, else an array
// (RFC 7519 §4.1.3); it reads either.
type Audience []string

// MarshalJSON writes one value as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// cached is a signed token kept for reuse by one session.
type cached struct {
	subj     Subject
	kid      string
	token    string
	issuedAt time.Time
	renewAt  time.Time
}

// Token returns a signed token for subj. The token signed last for the
// same cacheKey (the session ID; "" disables reuse) is returned again
// while the subject and the signing key are unchanged and it has more
// than half of its lifetime left, so that forward-auth signs about once
// per session per half lifetime rather than on every request.
// Unavailable when no key can sign on this replica.
func (i *Issuer) Token(ctx context.Context, cacheKey string, subj Subject) (string, error) {
	now := i.now()
	key, ok := i.signingKey(now)
	if !ok {
		return "", groupgate.Errorf(groupgate.Unavailable, "no identity-token signing key is loaded")
	}
	if cacheKey != "" {
		i.cacheMu.RLock()
		c := i.cache[cacheKey]
		i.cacheMu.RUnlock()
		if c != nil && c.kid == key.id && now.Before(c.renewAt) && !now.Before(c.issuedAt) && c.subj.equal(subj) {
			return c.token, nil
		}
	}
	tok, err := i.sign(key, subj, now)
	if err != nil {
		return "", err
	}
	if cacheKey != "" {
		i.remember(cacheKey, &cached{subj: subj.clone(), kid: key.id, token: tok, issuedAt: now, renewAt: now.Add(i.cfg.TTL / 2)}, now)
	}
	return tok, nil
}

// remember stores c, first dropping entries due for renewal when the
// cache is full, and everything if that is not enough: the cache only
// saves signatures, losing it costs one per session.
func (i *Issuer) remember(key string, c *cached, now time.Time) {
	i.cacheMu.Lock()
	defer i.cacheMu.Unlock()
	if _, ok := i.cache[key]; !ok && len(i.cache) >= i.cacheSize {
		maps.DeleteFunc(i.cache, func(_ string, e *cached) bool { return !now.Before(e.renewAt) })
		if len(i.cache) >= i.cacheSize {
			clear(i.cache)
		}
	}
	i.cache[key] = c
}

// sigLen is the signature size of each algorithm, for the size budget.
var sigLen = map[string]int{ES256: 64, ES384: 96, EdDSA: 64, RS256: 256}

// sign builds the claims within the size budget and signs them.
func (i *Issuer) sign(key loadedKey, subj Subject, now time.Time) (string, error) {
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{key.alg, key.id, "JWT"})
	if err != nil {
		return "", fmt.Errorf("encode JWS header: %w", err)
	}
	fixed := b64.EncodedLen(len(header)) + 2 + b64.EncodedLen(sigLen[key.alg])
	maxGroups, maxRoles := i.cfg.MaxGroups, i.cfg.MaxRoles
	var payload []byte
	for {
		c := i.claims(subj, now, maxGroups, maxRoles)
		if payload, err = json.Marshal(c); err != nil {
			return "", fmt.Errorf("encode token claims: %w", err)
		}
		if fixed+b64.EncodedLen(len(payload)) <= i.cfg.MaxBytes || (maxGroups == 0 && maxRoles == 0) {
			// Without lists the rest is bounded by the name limits.
			break
		}
		maxGroups, maxRoles = maxGroups/2, maxRoles/2
	}
	input := make([]byte, 0, fixed+b64.EncodedLen(len(payload)))
	input = b64.AppendEncode(input, header)
	input = append(input, '.')
	input = b64.AppendEncode(input, payload)
	sig, err := key.sign(input)
	if err != nil {
		return "", err
	}
	input = append(input, '.')
	return string(b64.AppendEncode(input, sig)), nil
}

type roleEntry struct {
	org  bool
	name string
	role string
	rank int
}

// claims lists at most maxGroups groups and maxRoles roles (organization
// roles first, then repository roles, each highest first, then by name),
// and counts the rest in Truncated.
func (i *Issuer) claims(subj Subject, now time.Time, maxGroups, maxRoles int) Claims {
	m := subj.Memberships
	c := Claims{
		Issuer: i.cfg.Issuer, Subject: subj.UserID, Audience: i.cfg.Audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(i.cfg.TTL).Unix(),
		PreferredUsername: subj.Username, Email: subj.Email, Name: subj.Name,
		Groups:    []string{},
		OrgRoles:  make(map[string]groupgate.OrgRole, min(len(m.OrgRoles), maxRoles)),
		RepoRoles: make(map[string]groupgate.RepoRole, min(len(m.RepoRoles), maxRoles)),
	}
	var tr Truncated
	groups := m.Groups
	if !slices.IsSorted(groups) {
		groups = slices.Sorted(slices.Values(groups))
	}
	if len(groups) > maxGroups {
		tr.Groups = len(groups) - maxGroups
		groups = groups[:maxGroups]
	}
	c.Groups = append(c.Groups, groups...)

	entries := make([]roleEntry, 0, len(m.OrgRoles)+len(m.RepoRoles))
	for n, r := range m.OrgRoles {
		entries = append(entries, roleEntry{org: true, name: n, role: string(r), rank: sync.OrgRoleRank(r)})
	}
	for n, r := range m.RepoRoles {
		entries = append(entries, roleEntry{name: n, role: string(r), rank: sync.RepoRoleRank(r)})
	}
	slices.SortFunc(entries, func(a, b roleEntry) int {
		if a.org != b.org {
			if a.org {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.rank, a.rank), cmp.Compare(a.name, b.name))
	})
	for j, e := range entries {
		switch {
		case j < maxRoles && e.org:
			c.OrgRoles[e.name] = groupgate.OrgRole(e.role)
		case j < maxRoles:
			c.RepoRoles[e.name] = groupgate.RepoRole(e.role)
		case e.org:
			tr.OrgRoles = count(tr.OrgRoles, e.role)
		default:
			tr.RepoRoles = count(tr.RepoRoles, e.role)
		}
	}
	if tr.Groups > 0 || tr.OrgRoles != nil || tr.RepoRoles != nil {
		c.Truncated = &tr
	}
	return c
}

func count(m map[string]int, role string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[role]++
	return m
}
