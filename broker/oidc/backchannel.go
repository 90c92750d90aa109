package oidc

import (
	"context"
	"math"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

// Bounds of an acceptable logout token.
const (
	// maxLogoutTokenBytes bounds the token before any work is done on it.
	maxLogoutTokenBytes = 16 << 10
	// logoutTokenMaxAge is how old a token's iat may be: a logout token is
	// sent when the IdP session ends, not kept for later.
	logoutTokenMaxAge = 5 * time.Minute
	// logoutClockSkew is allowed between the IdP's clock and ours.
	logoutClockSkew = time.Minute
	maxClaimLength  = 1024
)

var _ broker.BackchannelConnector = (*connector)(nil)

// signatureAlg receives the algorithm CheckSignature verified with.
type signatureAlg struct{ alg jose.SignatureAlgorithm }

func (s *signatureAlg) SetSignatureAlgorithm(a jose.SignatureAlgorithm) { s.alg = a }

// VerifyLogoutToken validates a back-channel logout token as OpenID
// Connect Back-Channel Logout 1.0 §2.6 asks: a JWS signed by a key of the
// provider's JWKS with an algorithm of its discovery document, iss the
// configured issuer, aud holding our client ID (and azp, if any, equal to
// it), iat within the accepted window and exp not passed, an "events"
// object with the back-channel logout event, a sub or a sid, a jti, and no
// nonce (which would make it an ID token). Replay of the jti is the
// caller's to refuse.
func (c *connector) VerifyLogoutToken(ctx context.Context, raw string) (broker.LogoutToken, error) {
	invalid := func(format string, args ...any) (broker.LogoutToken, error) {
		return broker.LogoutToken{}, groupgate.Errorf(groupgate.Invalid, "the logout token "+format, args...)
	}
	if raw == "" || len(raw) > maxLogoutTokenBytes {
		return invalid("is missing or larger than %d bytes", maxLogoutTokenBytes)
	}
	var claims map[string]any
	payload, err := zoidc.ParseToken(raw, &claims)
	if err != nil || claims == nil {
		return invalid("is not a JWT")
	}
	v := c.rp.IDTokenVerifier()
	if err := zoidc.CheckSignature(ctx, raw, payload, &signatureAlg{}, v.SupportedSignAlgs, v.KeySet); err != nil {
		return broker.LogoutToken{}, groupgate.WrapError(groupgate.Invalid, err, "the logout token's signature does not verify with the identity provider's keys")
	}
	if iss, _ := claims["iss"].(string); iss != c.cfg.Issuer {
		return invalid("was issued by another issuer")
	}
	if !audienceHolds(claims, c.cfg.ClientID) {
		return invalid("is meant for another client (aud or azp)")
	}
	now := c.now()
	iat, ok := numericDate(claims["iat"])
	switch {
	case !ok:
		return invalid("has no iat")
	case iat.After(now.Add(logoutClockSkew)):
		return invalid("was issued in the future; check the clocks")
	case iat.Before(now.Add(-logoutTokenMaxAge - logoutClockSkew)):
		return invalid("is too old (issued %s ago)", now.Sub(iat).Round(time.Second))
	}
	until := iat.Add(logoutTokenMaxAge + logoutClockSkew)
	if _, present := claims["exp"]; present {
		exp, ok := numericDate(claims["exp"])
		if !ok {
			return invalid("has a malformed exp")
		}
		if !now.Add(-logoutClockSkew).Before(exp) {
			return invalid("has expired")
		}
		until = maxTime(until, exp.Add(logoutClockSkew))
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[broker.BackchannelLogoutEvent].(map[string]any); !ok {
		return invalid("does not carry the back-channel logout event")
	}
	// §2.4: a logout token must not hold a nonce, so that an ID token
	// can never pass for one.
	if _, present := claims["nonce"]; present {
		return invalid("carries a nonce")
	}
	sub, subOK := optionalString(claims["sub"])
	sid, sidOK := optionalString(claims["sid"])
	if !subOK || !sidOK || (sub == "" && sid == "") {
		return invalid("names neither a subject nor a session (sub, sid)")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" || len(jti) > maxClaimLength {
		return invalid("has no usable jti")
	}
	return broker.LogoutToken{Subject: sub, SessionID: sid, JTI: jti, Until: until}, nil
}

// audienceHolds applies the ID token's audience rules (OpenID Connect Core
// §3.1.3.7 steps 3 and 5): aud, a string or an array, holds clientID, and
// azp, when present, is clientID.
func audienceHolds(claims map[string]any, clientID string) bool {
	if azp, present := claims["azp"]; present && azp != clientID {
		return false
	}
	switch aud := claims["aud"].(type) {
	case string:
		return aud == clientID
	case []any:
		for _, a := range aud {
			if a == clientID {
				return true
			}
		}
	}
	return false
}

// numericDate reads a JWT NumericDate (RFC 7519 §2): seconds since the
// epoch, possibly fractional.
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// optionalString reads an optional string claim; ok is false for a value
// that is present but not a bounded string.
func optionalString(v any) (string, bool) {
	if v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok && len(s) <= maxClaimLength
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sessionID is the "sid" claim of verified ID token claims, or "".
func sessionID(idClaims map[string]any) string {
	sid, _ := idClaims["sid"].(string)
	if len(sid) > maxClaimLength {
		return ""
	}
	return sid
}
