package sync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Audit actions of bearer tokens and sessions: changes that move no
// access, written here so that the Connect API and the admin console log
// them alike.
const (
	ActionTokenCreate     = "token.create"
	ActionTokenDelete     = "token.delete"
	ActionSCIMTokenCreate = "scim_token.create"
	ActionSCIMTokenDelete = "scim_token.delete"
	ActionSessionsRevoke  = "sessions.revoke"
)

// Token prefixes: an API token starts with APITokenPrefix, a SCIM token
// with SCIMTokenPrefix, so a leaked one is recognizable (secret scanners)
// and the wrong kind is refused without a store lookup.
const (
	APITokenPrefix  = "gg_"
	SCIMTokenPrefix = "ggscim_"
)

// NewTokenSecret returns a new bearer secret with prefix (256 random
// bits) and the SHA-256 hash the store keeps instead of it.
func NewTokenSecret(prefix string) (secret string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	return secret, sum[:]
}

// tokenView is a token as the audit log shows it: never its hash.
type tokenView struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	Name      string `json:"name"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func viewToken(t groupgate.Token) tokenView {
	v := tokenView{ID: t.ID, UserID: t.UserID, Name: t.Name}
	if !t.ExpiresAt.IsZero() {
		v.ExpiresAt = t.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	return v
}

// CreateAPIToken stores t (Kind, UserID, Name and ExpiresAt set by the
// caller, who checked them) with a new secret, audited in one transaction,
// and returns the secret, which is shown once and never stored.
// ResourceExhausted when the owner already holds max live tokens at now.
func (s *Syncer) CreateAPIToken(ctx context.Context, actor string, t groupgate.Token, now time.Time, max int) (string, groupgate.Token, error) {
	secret, hash := NewTokenSecret(APITokenPrefix)
	t.Kind, t.Hash = groupgate.TokenAPI, hash
	var out groupgate.Token
	err := s.st.InTx(ctx, func(tx store.Store) error {
		created, err := tx.CreateAPIToken(ctx, t, now, max)
		if err != nil {
			return fmt.Errorf("create token for %s: %w", t.UserID, err)
		}
		out = created
		return s.audit(ctx, tx, actor, ActionTokenCreate, "token", created.ID, nil, viewToken(created))
	})
	if err != nil {
		return "", groupgate.Token{}, err
	}
	return secret, out, nil
}

// DeleteAPIToken deletes userID's API token id, audited. NotFound when
// userID holds no such token: nobody deletes another user's token.
func (s *Syncer) DeleteAPIToken(ctx context.Context, actor, userID, id string) error {
	return s.deleteToken(ctx, actor, groupgate.TokenAPI, userID, id)
}

// CreateSCIMToken stores t (Name and ExpiresAt set by the caller) as a
// SCIM token with a new secret, audited, and returns the secret.
func (s *Syncer) CreateSCIMToken(ctx context.Context, actor string, t groupgate.Token) (string, groupgate.Token, error) {
	secret, hash := NewTokenSecret(SCIMTokenPrefix)
	t.Kind, t.Hash, t.UserID = groupgate.TokenSCIM, hash, ""
	var out groupgate.Token
	err := s.st.InTx(ctx, func(tx store.Store) error {
		created, err := tx.CreateToken(ctx, t)
		if err != nil {
			return fmt.Errorf("create SCIM token: %w", err)
		}
		out = created
		return s.audit(ctx, tx, actor, ActionSCIMTokenCreate, "scim_token", created.ID, nil, viewToken(created))
	})
	if err != nil {
		return "", groupgate.Token{}, err
	}
	return secret, out, nil
}

// DeleteSCIMToken deletes SCIM token id, audited: the IdP pushing with it
// is refused from then on. NotFound when there is no such SCIM token.
func (s *Syncer) DeleteSCIMToken(ctx context.Context, actor, id string) error {
	return s.deleteToken(ctx, actor, groupgate.TokenSCIM, "", id)
}

func (s *Syncer) deleteToken(ctx context.Context, actor string, kind groupgate.TokenKind, userID, id string) error {
	noun, action, target := "token", ActionTokenDelete, "token"
	if kind == groupgate.TokenSCIM {
		noun, action, target = "SCIM token", ActionSCIMTokenDelete, "scim_token"
	}
	return s.st.InTx(ctx, func(tx store.Store) error {
		ts, err := tx.ListTokens(ctx, kind, userID)
		if err != nil {
			return fmt.Errorf("list %ss: %w", noun, err)
		}
		for _, t := range ts {
			if t.ID != id {
				continue
			}
			if err := tx.DeleteToken(ctx, id); err != nil {
				return fmt.Errorf("delete %s %s: %w", noun, id, err)
			}
			return s.audit(ctx, tx, actor, action, target, id, viewToken(t), nil)
		}
		return groupgate.Errorf(groupgate.NotFound, "no %s %q", noun, id)
	})
}

// AuditSessionsRevoked records that actor ended n sessions of userID
// (the sessions live in the session backend, outside the store).
func (s *Syncer) AuditSessionsRevoked(ctx context.Context, actor, userID string, n int) error {
	return s.st.InTx(ctx, func(tx store.Store) error {
		return s.audit(ctx, tx, actor, ActionSessionsRevoke, "user", userID, nil, map[string]int{"revoked": n})
	})
}
