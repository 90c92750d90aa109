package main

import (
	"slices"
	"testing"
)

// trust_email is per provider and off by default: only the providers that
// set it vouch for their emails (sync.WithTrustedEmailProviders).
func TestTrustEmailIsPerProviderAndOffByDefault(t *testing.T) {
	cfg, err := LoadConfig(writeFile(t, "gg.yaml", goodConfig+`  - name: entra
    type: saml
    idp_metadata_xml: "<x/>"
    sp_cert_file: a
    sp_key_file: b
    trust_email: true
  - name: other
    type: oidc
    issuer: https://other.example.com
    client_id: gg
`), envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := trustedEmailProviders(cfg.Providers); !slices.Equal(got, []string{"entra"}) {
		t.Errorf("trusted providers = %v, want [entra]", got)
	}
}
