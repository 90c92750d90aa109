package devidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// BackchannelLogoutEvent is the event a logout token carries (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// sidRegistry remembers the session IDs ("sid") the provider put in ID
// tokens, per subject, so that it can later log those sessions out over
// the back channel. The zero value is ready.
type sidRegistry struct {
	mu   sync.Mutex
	sids map[string][]issuedSID // by subject
}

type issuedSID struct {
	sid, clientID string
}

// addSID puts a session ID into the ID token of req: one per login (the
// subject's authentication at this provider), as an OP's session is.
func (s *oidcStorage) addSID(info *oidc.UserInfo, req op.IDTokenRequest) {
	sum := sha256.Sum256([]byte(s.issuer + "\x00" + req.GetSubject() + "\x00" + req.GetClientID() + "\x00" + req.GetAuthTime().Format(time.RFC3339Nano)))
	sid := base64.RawURLEncoding.EncodeToString(sum[:18])
	info.AppendClaims("sid", sid)
	r := &s.sids
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sids == nil {
		r.sids = map[string][]issuedSID{}
	}
	is := issuedSID{sid: sid, clientID: req.GetClientID()}
	if !slices.Contains(r.sids[req.GetSubject()], is) {
		r.sids[req.GetSubject()] = append(r.sids[req.GetSubject()], is)
	}
}

// SessionIDs returns the session IDs ("sid" claims) issued to subject's
// logins at clientID, oldest first.
func (p *OIDCProvider) SessionIDs(subject, clientID string) []string {
	r := &p.storage.sids
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, is := range r.sids[subject] {
		if is.clientID == clientID {
			out = append(out, is.sid)
		}
	}
	return out
}

// LogoutClaims returns the claims of a valid logout token for clientID
// (OpenID Connect Back-Channel Logout 1.0 §2.4): this issuer, the client
// as audience, issued now, valid for two minutes, a fresh jti, the
// back-channel logout event, and subject and sid where not empty. Tests
// change them to forge invalid tokens.
func (p *OIDCProvider) LogoutClaims(clientID, subject, sid string) map[string]any {
	now := p.storage.now()
	c := map[string]any{
		"iss":    p.issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomID(),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if subject != "" {
		c["sub"] = subject
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// SignLogoutToken signs claims as a logout token ("typ": "logout+jwt")
// with the provider's signing key, the one its JWKS publishes.
func (p *OIDCProvider) SignLogoutToken(claims map[string]any) (string, error) {
	k := p.storage.key
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", fmt.Errorf("logout token signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("logout token claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return jws.CompactSerialize()
}

// LogoutUser ends subject's sessions at every client registered with a
// BackchannelLogoutURI, as an OP does when the user signs out there: one
// logout token per session it issued to that client, POSTed as the
// logout_token form parameter (§2.5). It returns how many the clients
// acknowledged with 200; any other answer is an error.
func (p *OIDCProvider) LogoutUser(ctx context.Context, client *http.Client, subject string) (int, error) {
	n := 0
	for _, c := range p.storage.clients {
		uri := c.cfg.BackchannelLogoutURI
		if uri == "" {
			continue
		}
		for _, sid := range p.SessionIDs(subject, c.cfg.ID) {
			tok, err := p.SignLogoutToken(p.LogoutClaims(c.cfg.ID, subject, sid))
			if err != nil {
				return n, err
			}
			if err := PostLogoutToken(ctx, client, uri, tok); err != nil {
				return n, fmt.Errorf("back-channel logout at %s: %w", c.cfg.ID, err)
			}
			n++
		}
	}
	return n, nil
}

// PostLogoutToken sends a logout token to a relying party's back-channel
// logout URI and fails unless it answers 200.
func PostLogoutToken(ctx context.Context, client *http.Client, uri, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", uri, resp.Status)
	}
	return nil
}
