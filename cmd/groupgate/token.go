package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/groupgate/groupgate"
)

// Token prefixes make a leaked token recognizable by secret scanners and
// tell API and SCIM tokens apart at a glance.
const (
	apiTokenPrefix  = "gg_"
	scimTokenPrefix = "ggscim_"
)

// newToken returns a bearer token (prefix + 32 random bytes, base64url) and
// the SHA-256 of the whole token string, which is all that is stored.
func newToken(prefix string) (token string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

// hashToken is how a presented bearer token is looked up: the SHA-256 of
// the exact string after "Bearer ".
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func (m *Main) runTokenCreate(ctx context.Context) error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	st, err := m.openStore(ctx, cfg, buildLogger(cfg.Log, m.Stderr, "text"))
	if err != nil {
		return err
	}
	if !strings.Contains(m.user, "@") {
		// A user name names an existing account only: creating one needs
		// an email that admins: and logins can bind to.
		user, err := st.GetUserByUserName(ctx, m.user)
		if groupgate.IsCode(err, groupgate.NotFound) {
			return fmt.Errorf("no user is named %q; pass --user EMAIL to create one", m.user)
		}
		if err != nil {
			return fmt.Errorf("find user %s: %w", m.user, err)
		}
		return m.issueAPIToken(ctx, st, user)
	}
	users, err := st.ListUsersByEmail(ctx, m.user)
	if err != nil {
		return fmt.Errorf("find user %s: %w", m.user, err)
	}
	var user groupgate.User
	switch {
	case len(users) == 0:
		// The operator vouches for the address of an account they create
		// here (a machine user may never sign in): admins: binds to it.
		user, err = st.CreateUser(ctx, groupgate.User{UserName: m.user, Email: m.user, VerifiedEmail: m.user, Active: true})
		if err != nil {
			return fmt.Errorf("create user %s: %w", m.user, err)
		}
		fmt.Fprintf(m.Stderr, "No user had the email %s: created user %s (id %s).\n", m.user, user.UserName, user.ID)
	case len(users) > 1 || !groupgate.SameEmailSpelling(users[0].Email, m.user):
		return fmt.Errorf("find user %s: %d users have this email or a look-alike of it; no token created", m.user, len(users))
	default:
		user = users[0]
	}
	return m.issueAPIToken(ctx, st, user)
}

// issueAPIToken stores a new API token of user and prints it once.
func (m *Main) issueAPIToken(ctx context.Context, st interface {
	CreateToken(context.Context, groupgate.Token) (groupgate.Token, error)
}, user groupgate.User) error {
	token, hash := newToken(apiTokenPrefix)
	t, err := st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, Name: m.tokenName, UserID: user.ID, Hash: hash})
	if err != nil {
		return fmt.Errorf("store API token: %w", err)
	}
	fmt.Fprintf(m.Stderr, "Created API token %q (id %s) for %s (%s). It acts with that user's roles.\n", t.Name, t.ID, user.UserName, user.Email)
	fmt.Fprintln(m.Stderr, "It is shown once, below; only its SHA-256 is stored. Send it as: Authorization: Bearer TOKEN")
	_, err = fmt.Fprintln(m.Stdout, token)
	return err
}

func (m *Main) runSCIMTokenCreate(ctx context.Context) error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	st, err := m.openStore(ctx, cfg, buildLogger(cfg.Log, m.Stderr, "text"))
	if err != nil {
		return err
	}
	token, hash := newToken(scimTokenPrefix)
	t, err := st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Name: m.tokenName, Hash: hash})
	if err != nil {
		return fmt.Errorf("store SCIM token: %w", err)
	}
	fmt.Fprintf(m.Stderr, "Created SCIM token %q (id %s). Paste it into the IdP's SCIM provisioning settings as the bearer token.\n", t.Name, t.ID)
	if !cfg.SCIM.Enabled {
		fmt.Fprintln(m.Stderr, "Note: scim.enabled is false in this configuration; the SCIM endpoint is off until you enable it.")
	}
	fmt.Fprintln(m.Stderr, "It is shown once, below; only its SHA-256 is stored.")
	_, err = fmt.Fprintln(m.Stdout, token)
	return err
}
