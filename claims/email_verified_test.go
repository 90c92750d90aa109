package claims

import (
	"testing"
)

// OpenID Connect Core 1.0 §5.1: email_verified is a boolean; some IdPs
// (older Cognito, some ADFS setups) send the string "true". Anything else,
// including absence, is unverified: only a verified email may link a login
// to an existing account.
func TestFromOIDCEmailVerified(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]any
		opts   OIDCOptions
		want   bool
	}{
		{"true is verified", map[string]any{"email": "a@example.com", "email_verified": true}, OIDCOptions{}, true},
		{"the string true is verified", map[string]any{"email": "a@example.com", "email_verified": "true"}, OIDCOptions{}, true},
		{"the string TRUE with spaces is verified", map[string]any{"email": "a@example.com", "email_verified": " TRUE "}, OIDCOptions{}, true},
		{"false is not", map[string]any{"email": "a@example.com", "email_verified": false}, OIDCOptions{}, false},
		{"the string false is not", map[string]any{"email": "a@example.com", "email_verified": "false"}, OIDCOptions{}, false},
		{"a number is not", map[string]any{"email": "a@example.com", "email_verified": 1.0}, OIDCOptions{}, false},
		{"a missing claim is not", map[string]any{"email": "a@example.com"}, OIDCOptions{}, false},
		{"no email is never verified", map[string]any{"email_verified": true}, OIDCOptions{}, false},
		{"the explicit default email claim keeps it", map[string]any{"email": "a@example.com", "email_verified": true}, OIDCOptions{EmailClaim: "email"}, true},
		// email_verified speaks of the "email" claim only: an address read
		// from another claim (upn, a custom one) is not covered by it.
		{"an email read from another claim is not verified by email_verified",
			map[string]any{"email": "a@example.com", "upn": "b@example.com", "email_verified": true}, OIDCOptions{EmailClaim: "upn"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := map[string]any{"sub": "s"}
			for k, v := range tt.claims {
				c[k] = v
			}
			id, err := FromOIDC("p", c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if id.EmailVerified != tt.want {
				t.Errorf("EmailVerified = %v, want %v", id.EmailVerified, tt.want)
			}
		})
	}
}

func TestFromSAMLNeverSaysEmailVerified(t *testing.T) {
	id, err := FromSAML("p", "n", map[string][]string{
		"email": {"a@example.com"}, "groups": {"eng"}, "email_verified": {"true"},
	}, SAMLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified {
		t.Error("a SAML attribute made the email verified; only the provider's trust_email may")
	}
}
