package main

import (
	"errors"
	"strings"
	"testing"
)

func TestGraphConfig(t *testing.T) {
	const samlProvider = `  - name: entra-saml
    type: saml
    idp_metadata_xml: "<x/>"
    sp_cert_file: sp.crt
    sp_key_file: sp.key
`
	tests := []struct {
		name     string
		provider string
		want     []string // problem substrings; none: valid
	}{
		{"an OIDC provider enables overage with an empty graph block", `    graph: {}
`, nil},
		{"an OIDC provider may name a national cloud and bounds", `    graph:
      url: https://graph.microsoft.us
      max_groups: 2000
      timeout: 5s
`, nil},
		{"an OIDC provider takes no application credential", `    graph:
      client_id: app
      client_secret: s
`, []string{"providers[0].graph.client_id: not a key of oidc providers", "providers[0].graph.client_secret: not a key of oidc providers"}},
		{"a graph URL must be absolute", `    graph:
      url: graph.microsoft.com
`, []string{"providers[0].graph.url"}},
		{"an unknown graph key is refused", `    graph:
      tenant: x
`, []string{"providers[0].graph.tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("gg.yaml", []byte(goodConfig+tt.provider), envFrom(nil))
			checkProblems(t, err, tt.want)
			if err == nil && cfg.Providers[0].Graph.URL == "" {
				t.Error("the graph URL has no default")
			}
		})
	}

	samlTests := []struct {
		name  string
		graph string
		want  []string
	}{
		{"a SAML provider with a client credential", `    graph:
      tenant_id: contoso.onmicrosoft.com
      client_id: app
      client_secret: ${GRAPH_SECRET}
`, nil},
		{"a SAML provider needs the credential", `    graph:
      url: https://graph.microsoft.com
`, []string{"graph.client_id: required", "graph.client_secret: required", "graph.tenant_id: required"}},
	}
	for _, tt := range samlTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("gg.yaml", []byte(goodConfig+samlProvider+tt.graph), envFrom(map[string]string{"GRAPH_SECRET": "s3cret"}))
			checkProblems(t, err, tt.want)
			if err == nil && cfg.Providers[1].Graph.ClientSecret != "s3cret" {
				t.Error("the client secret was not expanded from the environment")
			}
		})
	}
}

func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected problems:\n%v", err)
		}
		return
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a ConfigError", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems do not mention %q:\n%v", w, err)
		}
	}
}
