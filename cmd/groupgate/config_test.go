package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goodConfig is the smallest valid file; cases below break one thing.
const goodConfig = `listen: 127.0.0.1:0
session:
  secret: 0123456789abcdef0123456789abcdef
providers:
  - name: okta
    type: oidc
    issuer: https://idp.example.com
    client_id: gg
`

func envFrom(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// runCLI runs Main as main() would and returns the exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := NewMain()
	m.Stdout, m.Stderr = &out, &errOut
	m.LookupEnv = envFrom(env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.ParseFlags(ctx, args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	code = report(&errOut, err)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheckAcceptsGoodFiles(t *testing.T) {
	t.Run("the minimal file passes", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "config", "check", "--config", writeFile(t, "c.yaml", goodConfig))
		if code != 0 || strings.TrimSpace(out) != "ok" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and ok", code, out, errOut)
		}
	})
	t.Run("config.example.yaml passes with its variables set", func(t *testing.T) {
		env := map[string]string{
			"SESSION_SECRET":     strings.Repeat("s", 48),
			"REDIS_PASSWORD":     "redis-pass",
			"OKTA_CLIENT_SECRET": "okta-secret",
		}
		code, out, errOut := runCLI(t, env, "config", "check", "--config", "../../config.example.yaml")
		if code != 0 || strings.TrimSpace(out) != "ok" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and ok", code, out, errOut)
		}
	})
	t.Run("config.example.yaml fails naming the variable when one is unset", func(t *testing.T) {
		env := map[string]string{"SESSION_SECRET": strings.Repeat("s", 48), "REDIS_PASSWORD": "x"}
		code, _, errOut := runCLI(t, env, "config", "check", "--config", "../../config.example.yaml")
		if code != 1 || !strings.Contains(errOut, "OKTA_CLIENT_SECRET") || !strings.Contains(errOut, "providers[0].client_secret") {
			t.Fatalf("exit %d, stderr %q; want 1 naming OKTA_CLIENT_SECRET", code, errOut)
		}
	})
}

func TestConfigCheckReportsProblemWithKeyAndLine(t *testing.T) {
	// Each file marks the line the problem must be reported on with "# <-".
	tests := []struct {
		name string
		file string
		path string // key path the message must name
		msg  string // part of the message
	}{
		{"an unknown top-level key", goodConfig + "listne: 1 # <-\n", "listne", "unknown key"},
		{"an unknown nested key", strings.Replace(goodConfig, "session:\n", "session:\n  secrte: x # <-\n", 1), "session.secrte", "unknown key"},
		{"an unknown key inside a provider", goodConfig + "    client_idd: x # <-\n", "providers[0].client_idd", "unknown key"},
		{"a duplicate key", goodConfig + "listen: 127.0.0.1:1 # <-\n", "listen", "duplicate key"},
		{"a missing session secret", "session: # <-\n  ttl: 1h\n" + goodConfig[strings.Index(goodConfig, "providers"):], "session.secret", "required"},
		{"a session secret shorter than 32 bytes", strings.Replace(goodConfig, "0123456789abcdef0123456789abcdef", "too-short # <-", 1), "session.secret", "at least 32 bytes"},
		{"a bad duration", strings.Replace(goodConfig, "session:\n", "session:\n  ttl: 12 hours # <-\n", 1), "session.ttl", "not a duration"},
		{"a negative duration", strings.Replace(goodConfig, "session:\n", "session:\n  ttl: -1h # <-\n", 1), "session.ttl", "negative"},
		{"a provider without a name", strings.Replace(goodConfig, "  - name: okta\n    type: oidc\n", "  - type: oidc # <-\n", 1), "providers[0].name", "required"},
		{"a provider without a type", strings.Replace(goodConfig, "    type: oidc\n", "", 1), "providers[0].type", "required"},
		{"a provider of unknown type", strings.Replace(goodConfig, "type: oidc", "type: ldap # <-", 1), "providers[0].type", "unknown provider type"},
		{"an oidc provider without issuer", strings.Replace(goodConfig, "    issuer: https://idp.example.com\n", "", 1), "providers[0].issuer", "required"},
		{"an oidc provider without client_id", strings.Replace(goodConfig, "    client_id: gg\n", "", 1), "providers[0].client_id", "required"},
		{"an issuer that is not a URL", strings.Replace(goodConfig, "https://idp.example.com", "idp.example.com # <-", 1), "providers[0].issuer", "not an absolute http(s) URL"},
		{"a duplicate provider name", goodConfig + "  - name: okta # <-\n    type: oidc\n    issuer: https://b.example.com\n    client_id: b\n", "providers[1].name", "duplicate provider name"},
		{"a saml key on an oidc provider", goodConfig + "    groups_attribute: memberOf # <-\n", "providers[0].groups_attribute", "not a key of oidc providers"},
		{"an oidc key on a saml provider", goodConfig + "  - name: entra\n    type: saml\n    idp_metadata_url: https://login.example.com/md\n    sp_cert_file: sp.pem\n    sp_key_file: sp.key\n    groups_claim: groups # <-\n", "providers[1].groups_claim", "not a key of saml providers"},
		{"a saml provider without metadata", goodConfig + "  - name: entra # <-\n    type: saml\n    sp_cert_file: sp.pem\n    sp_key_file: sp.key\n", "providers[1]", "idp_metadata_file, idp_metadata_url, idp_metadata_xml is required"},
		{"a saml provider with two metadata sources", goodConfig + "  - name: entra\n    type: saml\n    sp_cert_file: sp.pem\n    sp_key_file: sp.key\n    idp_metadata_file: md.xml\n    idp_metadata_url: https://login.example.com/md # <-\n", "providers[1].idp_metadata_url", "only one of"},
		{"a saml cert without its key", goodConfig + "  - name: entra # <-\n    type: saml\n    idp_metadata_file: md.xml\n    sp_cert_file: sp.pem\n", "providers[1]", "sp_cert_file and sp_key_file are required"},
		{"a bad groups_from", goodConfig + "    groups_from: access_token # <-\n", "providers[0].groups_from", "not one of"},
		{"an include regex that does not compile", goodConfig + "groups:\n  include: [\"^eng-\", \"(unclosed\"] # <-\n", "groups.include[1]", "does not compile"},
		{"an exclude regex that does not compile", goodConfig + "groups:\n  exclude:\n    - \"[a-\" # <-\n", "groups.exclude[0]", "does not compile"},
		{"a public_url that is not a URL", goodConfig + "public_url: not a url # <-\n", "public_url", "not an absolute http(s) URL"},
		{"an upstream without scheme", goodConfig + "upstream: 127.0.0.1:9999 # <-\n", "upstream", "not an absolute http(s) URL"},
		{"an unknown store driver", goodConfig + "store:\n  driver: mysql # <-\n", "store.driver", "not one of sqlite, postgres"},
		{"an unset environment variable", strings.Replace(goodConfig, "client_id: gg", "client_id: ${NOPE_NOT_SET} # <-", 1), "providers[0].client_id", "NOPE_NOT_SET is not set"},
		{"a redis section without addresses", goodConfig + "redis: # <-\n  password: x\n", "redis.addrs", "required"},
		{"a redis address without port", goodConfig + "redis:\n  addrs: [localhost] # <-\n", "redis.addrs[0]", "not host:port"},
		{"a local cache ttl that is not a duration", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  local_cache:\n    ttl: soon # <-\n", "redis.local_cache.ttl", "not a duration"},
		{"a local cache ttl over the 5m maximum", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  local_cache:\n    ttl: 6m # <-\n", "redis.local_cache.ttl", "at most 5m0s"},
		{"a zero local cache ttl", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  local_cache:\n    enabled: true\n    ttl: 0s # <-\n", "redis.local_cache.ttl", "must be positive"},
		{"a local cache of no entries", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  local_cache:\n    size: 0 # <-\n", "redis.local_cache.size", "at least 1"},
		{"an unknown record encoding", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  record_encoding: protobuf # <-\n", "redis.record_encoding", "binary or json"},
		{"an unknown local cache key", goodConfig + "redis:\n  addrs: [127.0.0.1:6379]\n  local_cache:\n    max_entries: 5 # <-\n", "redis.local_cache.max_entries", "unknown key"},
		{"a trusted proxy that is not an IP or CIDR", goodConfig + "trusted_proxies: [10.0.0.0/8, proxy.local] # <-\n", "trusted_proxies[1]", "neither an IP address nor a CIDR"},
		{"an unknown log format", goodConfig + "log:\n  format: xml # <-\n", "log.format", "not one of json, text"},
		{"a bad body limit", goodConfig + "scim:\n  body_limit: 1 MiBs # <-\n", "scim.body_limit", "unknown unit"},
		{"a bad scim match key", goodConfig + "scim:\n  match_key: phone # <-\n", "scim.match_key", "not one of"},
		{"a bad boolean", goodConfig + "scim:\n  enabled: yes please # <-\n", "scim.enabled", "not true or false"},
		{"a list where a mapping belongs", goodConfig + "store: [sqlite] # <-\n", "store", "must be a mapping"},
		{"a mapping where a list belongs", goodConfig + "admins: # <-\n  alice: x\n", "admins", "must be a list"},
		{"no provider at all", goodConfig[:strings.Index(goodConfig, "providers")] + "providers: [] # <-\n", "providers", "at least one provider"},
		{"a __Host- cookie that is not Secure", strings.Replace(goodConfig, "session:\n", "session:\n  secure_cookie: false\n  cookie_name: __Host-gg # <-\n", 1), "session.cookie_name", "needs secure_cookie: true"},
		{"a YAML syntax error", "listen: 127.0.0.1:0\nlog: format: json # <-\n", "(yaml)", "mapping values are not allowed"},
	}
	for _, tt := range tests {
		t.Run("reports "+tt.name, func(t *testing.T) {
			line := markedLine(t, tt.file)
			path := writeFile(t, "groupgate.yaml", tt.file)
			code, out, errOut := runCLI(t, nil, "config", "check", "--config", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			prefix := path + ":" + strconv.Itoa(line) + ": " + tt.path + ": "
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if !slices.ContainsFunc(lines, func(l string) bool {
				return strings.HasPrefix(l, prefix) && strings.Contains(l, tt.msg)
			}) {
				t.Fatalf("no line starts with %q and mentions %q:\n%s", prefix, tt.msg, errOut)
			}
			// One problem per file: the other keys are good, and a bad value
			// is not reported twice.
			if len(lines) != 1 {
				t.Errorf("got %d lines, want 1:\n%s", len(lines), errOut)
			}
		})
	}
}

// markedLine returns the 1-based line holding "# <-", or 1 when the file
// marks none (problems about an absent top-level key).
func markedLine(t *testing.T, file string) int {
	t.Helper()
	for i, l := range strings.Split(file, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	// Cases that remove a key expect the problem on the parent's line.
	return 5
}

func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	file := `listen: nope
public_url: ftp://x
session:
  secret: short
  ttl: forever
  colour: blue
providers:
  - name: a
    type: oidc
  - name: a
    type: nope
groups:
  include: ["("]
store:
  driver: mongo
`
	_, err := ParseConfig("f.yaml", []byte(file), envFrom(nil))
	ce, ok := err.(*ConfigError)
	if !ok {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	want := []string{
		"f.yaml:1: listen:", "f.yaml:2: public_url:", "f.yaml:4: session.secret:", "f.yaml:5: session.ttl:",
		"f.yaml:6: session.colour: unknown key", "f.yaml:8: providers[0].issuer: required", "f.yaml:8: providers[0].client_id: required",
		"f.yaml:10: providers[1].name: duplicate", "f.yaml:11: providers[1].type: unknown provider type",
		"f.yaml:13: groups.include[0]:", "f.yaml:15: store.driver:",
	}
	got := ce.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ce.Problems), len(want), got)
	}
}

func TestConfigDefaultsAndExpansion(t *testing.T) {
	file := `session:
  secret: ${SECRET}
redis:
  addrs: ["${REDIS_HOST:-127.0.0.1}:6379"]
providers:
  - name: okta
    type: oidc
    issuer: https://idp.example.com
    client_id: $${literal}
  - name: entra
    type: saml
    idp_metadata_file: md/entra.xml
    sp_cert_file: sp.crt
    sp_key_file: sp.key
`
	cfg, err := ParseConfig("/etc/groupgate/groupgate.yaml", []byte(file), envFrom(map[string]string{"SECRET": strings.Repeat("x", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen defaults to loopback 4180", cfg.Listen, "127.0.0.1:4180"},
		{"public_url defaults to the listen address", cfg.PublicURL, "http://127.0.0.1:4180"},
		{"the store defaults to a SQLite file", cfg.Store, StoreConfig{Driver: "sqlite", DSN: "file:groupgate.db"}},
		{"sessions last 12h", cfg.Session.TTL.D(), 12 * time.Hour},
		{"the secure cookie is __Host-groupgate", cfg.Session.CookieName, "__Host-groupgate"},
		{"the cookie is secure", cfg.Session.SecureCookie, true},
		{"the secret comes from the environment", cfg.Session.Secret, strings.Repeat("x", 32)},
		{"an unset variable with a default takes the default", cfg.Redis.Addrs[0], "127.0.0.1:6379"},
		{"redis keys are prefixed groupgate:", cfg.Redis.KeyPrefix, "groupgate:"},
		{"redis sessions have the local cache on, 1m, 200000 entries", cfg.Redis.LocalCache, LocalCacheConfig{Enabled: true, TTL: Duration(time.Minute), Size: 200_000}},
		{"$${ writes a literal ${", cfg.Providers[0].ClientID, "${literal}"},
		{"oidc groups come from the groups claim of the ID token", cfg.Providers[0].GroupsClaim + "/" + cfg.Providers[0].GroupsFrom, "groups/id_token"},
		{"the SAML entity ID derives from public_url", cfg.Providers[1].SPEntityID, "http://127.0.0.1:4180/saml/entra/metadata"},
		{"a relative metadata file is relative to the config file", cfg.Providers[1].IDPMetadataFile, "/etc/groupgate/md/entra.xml"},
		{"scim body_limit is 1MiB", cfg.SCIM.BodyLimit, ByteSize(1 << 20)},
		{"log is JSON at info", cfg.Log, LogConfig{Format: "json", Level: "info"}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestConfigLocalCache(t *testing.T) {
	redis := "redis:\n  addrs: [127.0.0.1:6379]\n"
	tests := []struct {
		name  string
		extra string
		want  *LocalCacheConfig // nil: no redis section
	}{
		{"without redis there is no local cache", "", nil},
		{"enabled: false turns it off and keeps the other defaults", redis + "  local_cache:\n    enabled: false\n",
			&LocalCacheConfig{Enabled: false, TTL: Duration(time.Minute), Size: 200_000}},
		{"ttl and size are taken as written", redis + "  local_cache:\n    ttl: 500ms\n    size: 42\n",
			&LocalCacheConfig{Enabled: true, TTL: Duration(500 * time.Millisecond), Size: 42}},
		{"the 5m maximum itself is accepted", redis + "  local_cache: {ttl: 5m}\n",
			&LocalCacheConfig{Enabled: true, TTL: Duration(5 * time.Minute), Size: 200_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("c.yaml", []byte(goodConfig+tt.extra), envFrom(nil))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == nil && cfg.Redis != nil:
				t.Fatalf("redis = %+v, want none", cfg.Redis)
			case tt.want != nil && (cfg.Redis == nil || cfg.Redis.LocalCache != *tt.want):
				t.Fatalf("redis = %+v, want local_cache %+v", cfg.Redis, *tt.want)
			}
		})
	}
	t.Run("dev's REDIS_URL gets the same defaults", func(t *testing.T) {
		r, err := devRedis("redis://127.0.0.1:6379/3")
		if err != nil {
			t.Fatal(err)
		}
		if want := (LocalCacheConfig{Enabled: true, TTL: Duration(time.Minute), Size: 200_000}); r.LocalCache != want || r.DB != 3 {
			t.Fatalf("got %+v", r)
		}
	})
}

func TestExpandEnv(t *testing.T) {
	env := envFrom(map[string]string{"A": "alpha", "EMPTY": ""})
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"a plain value is unchanged", "plain $dollar", "plain $dollar", ""},
		{"a set variable is substituted", "x${A}y", "xalphay", ""},
		{"a default is used when unset", "${NOPE:-dflt}", "dflt", ""},
		{"a default is used when empty", "${EMPTY:-dflt}", "dflt", ""},
		{"an empty default is allowed", "${NOPE:-}", "", ""},
		{"a set but empty variable without default is empty", "${EMPTY}", "", ""},
		{"values are not expanded twice", "$${A}", "${A}", ""},
		{"every unset variable is named", "${X1}${X2}", "", "X1, X2 is not set"},
		{"an unterminated reference is refused", "${A", "", "unterminated"},
		{"a bad name is refused", "${1A}", "", "not a valid environment variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandEnv(tt.in, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("providers: [{name: a, type: saml, idp_metadata_xml: x}]\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any input yields a config or a ConfigError; never a panic.
		_, err := ParseConfig("f.yaml", data, envFrom(nil))
		if err != nil {
			if _, ok := err.(*ConfigError); !ok {
				t.Fatalf("err %T, want *ConfigError", err)
			}
		}
	})
}

func TestConfigAnchorsAndAliases(t *testing.T) {
	t.Run("a merge key copies keys that the mapping does not write itself", func(t *testing.T) {
		file := goodConfig + `  - &corp
    name: corp
    type: oidc
    issuer: https://corp.example.com
    client_id: one
  - <<: *corp
    name: corp2
`
		cfg, err := ParseConfig("f.yaml", []byte(file), envFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.Providers[2]
		if p.Name != "corp2" || p.Issuer != "https://corp.example.com" || p.ClientID != "one" {
			t.Fatalf("merged provider = %+v", p)
		}
	})
	t.Run("more alias uses than the limit are refused", func(t *testing.T) {
		// The limit is what stops exponential ("billion laughs") expansion.
		var b strings.Builder
		b.WriteString(goodConfig + "admins: [&a a@example.com")
		for range maxAliases + 1 {
			b.WriteString(", *a")
		}
		b.WriteString("]\n")
		_, err := ParseConfig("f.yaml", []byte(b.String()), envFrom(nil))
		if err == nil || !strings.Contains(err.Error(), "alias uses") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestConfigRefusesPlainHTTPForIdPKeys: an IdP's signing keys (OIDC
// discovery and JWKS, SAML metadata) fetched over plain http can be
// swapped by anyone on the path, who then signs their own logins. Only
// loopback hosts (tests, `groupgate dev`) or an explicit
// allow_insecure_http may use http.
func TestConfigRefusesPlainHTTPForIdPKeys(t *testing.T) {
	saml := func(url, extra string) string {
		return goodConfig + "  - name: entra\n    type: saml\n    sp_cert_file: sp.pem\n    sp_key_file: sp.key\n    idp_metadata_url: " + url + extra + "\n"
	}
	refused := []struct {
		name, file, path string
	}{
		{"an http OIDC issuer on a remote host", strings.Replace(goodConfig, "https://idp.example.com", "http://idp.example.com # <-", 1), "providers[0].issuer"},
		{"an http OIDC issuer on a private address", strings.Replace(goodConfig, "https://idp.example.com", "http://10.0.0.7:8080/realms/x # <-", 1), "providers[0].issuer"},
		{"an HTTP issuer in upper case", strings.Replace(goodConfig, "https://idp.example.com", "HTTP://idp.example.com # <-", 1), "providers[0].issuer"},
		{"an http issuer on a name that only starts like localhost", strings.Replace(goodConfig, "https://idp.example.com", "http://localhost.evil.com # <-", 1), "providers[0].issuer"},
		{"http SAML metadata on a remote host", saml("http://login.example.com/md # <-", ""), "providers[1].idp_metadata_url"},
		{"allow_insecure_http: false", saml("http://login.example.com/md # <-", "\n    allow_insecure_http: false"), "providers[1].idp_metadata_url"},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			line := markedLine(t, tt.file)
			path := writeFile(t, "groupgate.yaml", tt.file)
			code, _, errOut := runCLI(t, nil, "config", "check", "--config", path)
			prefix := path + ":" + strconv.Itoa(line) + ": " + tt.path + ": "
			if code != 1 || !strings.HasPrefix(errOut, prefix) || !strings.Contains(errOut, "allow_insecure_http") {
				t.Fatalf("exit %d, stderr %q; want 1 and a line starting %q naming allow_insecure_http", code, errOut, prefix)
			}
		})
	}
	accepted := []struct{ name, file string }{
		{"an https issuer", goodConfig},
		{"an http issuer on 127.0.0.1", strings.Replace(goodConfig, "https://idp.example.com", "http://127.0.0.1:5556/dex", 1)},
		{"an http issuer on another 127/8 address", strings.Replace(goodConfig, "https://idp.example.com", "http://127.0.0.2:5556", 1)},
		{"an http issuer on [::1]", strings.Replace(goodConfig, "https://idp.example.com", "http://[::1]:5556", 1)},
		{"an http issuer on localhost", strings.Replace(goodConfig, "https://idp.example.com", "http://localhost:5556", 1)},
		{"an http issuer with allow_insecure_http", strings.Replace(goodConfig, "https://idp.example.com", "http://idp.example.com\n    allow_insecure_http: true", 1)},
		{"http SAML metadata on loopback", saml("http://127.0.0.1:8080/md", "")},
		{"http SAML metadata with allow_insecure_http", saml("http://login.example.com/md", "\n    allow_insecure_http: true")},
	}
	for _, tt := range accepted {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			if _, err := ParseConfig("c.yaml", []byte(tt.file), envFrom(nil)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigLoginLimits(t *testing.T) {
	t.Run("the defaults are web's", func(t *testing.T) {
		cfg, err := ParseConfig("c.yaml", []byte(goodConfig), envFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		want := LoginLimitsConfig{PerClientBurst: 60, PerClientPerMinute: 30, MaxLiveAttempts: 10_000}
		if cfg.LoginLimits != want {
			t.Fatalf("login_limits = %+v, want %+v", cfg.LoginLimits, want)
		}
	})
	t.Run("values are taken as written", func(t *testing.T) {
		cfg, err := ParseConfig("c.yaml", []byte(goodConfig+"login_limits:\n  per_client_burst: 5\n  per_client_per_minute: 2\n  max_live_attempts: 100\n"), envFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		if want := (LoginLimitsConfig{PerClientBurst: 5, PerClientPerMinute: 2, MaxLiveAttempts: 100}); cfg.LoginLimits != want {
			t.Fatalf("login_limits = %+v, want %+v", cfg.LoginLimits, want)
		}
	})
	for _, key := range []string{"per_client_burst", "per_client_per_minute", "max_live_attempts"} {
		t.Run(key+" of 0 is refused with its line", func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(goodConfig+"login_limits:\n  "+key+": 0\n"), envFrom(nil))
			if err == nil || !strings.Contains(err.Error(), "c.yaml:10: login_limits."+key+": must be at least 1") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// The session cookie defaults to the __Host- prefix whenever it is Secure,
// so a sibling subdomain cannot plant one (cookie tossing); browsers drop
// a __Host- cookie without Secure, so a plain-http setup keeps the old name.
func TestSessionCookieNameDefault(t *testing.T) {
	for _, tt := range []struct {
		name    string
		session string
		want    string
	}{
		{"secure_cookie by default gives __Host-groupgate", "", "__Host-groupgate"},
		{"secure_cookie: true gives __Host-groupgate", "  secure_cookie: true\n", "__Host-groupgate"},
		{"secure_cookie: false gives _groupgate", "  secure_cookie: false\n", "_groupgate"},
		{"an explicit name is kept", "  cookie_name: gg_session\n", "gg_session"},
		{"an explicit __Secure- name with secure_cookie is kept", "  cookie_name: __Secure-gg\n", "__Secure-gg"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := strings.Replace(goodConfig, "session:\n", "session:\n"+tt.session, 1)
			cfg, err := ParseConfig("g.yaml", []byte(file), envFrom(nil))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Session.CookieName != tt.want {
				t.Fatalf("cookie_name = %q, want %q", cfg.Session.CookieName, tt.want)
			}
		})
	}
}

func TestConfigAPITokens(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(goodConfig), envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := APITokensConfig{
		SessionMaxLifetime: Duration(24 * time.Hour),
		DefaultLifetime:    Duration(30 * 24 * time.Hour),
		MaxLifetime:        Duration(90 * 24 * time.Hour),
		MaxPerUser:         100,
	}
	if cfg.API.Tokens != want {
		t.Errorf("defaults %+v, want %+v", cfg.API.Tokens, want)
	}
	cfg, err = ParseConfig("c.yaml", []byte(goodConfig+"api:\n  tokens:\n    session_max_lifetime: 1h\n    max_per_user: 5\n"), envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Tokens.SessionMaxLifetime.D() != time.Hour || cfg.API.Tokens.MaxPerUser != 5 || cfg.API.Tokens.MaxLifetime != want.MaxLifetime {
		t.Errorf("tokens %+v", cfg.API.Tokens)
	}

	for _, tt := range []struct{ name, extra, path, msg string }{
		{"a zero session lifetime", "api:\n  tokens:\n    session_max_lifetime: 0s # <-\n", "api.tokens.session_max_lifetime", "must be positive"},
		{"a default longer than the maximum", "api:\n  tokens:\n    max_lifetime: 24h\n    default_lifetime: 48h # <-\n", "api.tokens.default_lifetime", "longer than api.tokens.max_lifetime"},
		{"no token per user", "api:\n  tokens:\n    max_per_user: 0 # <-\n", "api.tokens.max_per_user", "at least 1"},
	} {
		t.Run("reports "+tt.name, func(t *testing.T) {
			file := goodConfig + tt.extra
			path := writeFile(t, "groupgate.yaml", file)
			code, _, errOut := runCLI(t, nil, "config", "check", "--config", path)
			prefix := path + ":" + strconv.Itoa(markedLine(t, file)) + ": " + tt.path + ": "
			if code != 1 || !strings.HasPrefix(errOut, prefix) || !strings.Contains(errOut, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q ... %q", code, errOut, prefix, tt.msg)
			}
		})
	}
}

func TestConfigUpstreamRoutesAndIdentityToken(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(goodConfig), envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if it := cfg.IdentityToken; !it.Enabled || it.Algorithm != "ES256" || it.TTL.D() != 5*time.Minute || it.MaxBytes != 6<<10 {
		t.Errorf("identity_token defaults %+v, want on, ES256, 5m, 6KiB", it)
	}
	withUpstream := goodConfig + "upstream: http://127.0.0.1:9999\n"
	cfg, err = ParseConfig("c.yaml", []byte(withUpstream+"upstream_routes:\n  - path_prefix: /releases\n    org: acme\n    min_role: ORGANIZATION_ROLE_WRITER\n  - path_prefix: /api\n    repo: acme/api\n"), envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.UpstreamRoutes) != 2 || cfg.UpstreamRoutes[1].Repo != "acme/api" {
		t.Errorf("upstream_routes = %+v", cfg.UpstreamRoutes)
	}

	for _, tt := range []struct{ name, file, path, msg string }{
		{"routes without an upstream", goodConfig + "upstream_routes: # <-\n  - path_prefix: /x\n    group: eng\n", "upstream_routes", "needs upstream"},
		{"an unknown role", withUpstream + "upstream_routes:\n  - path_prefix: /x\n    org: acme\n    min_role: SUPERUSER # <-\n", "upstream_routes[0].min_role", "unknown organization role"},
		{"a repository role on an organization", withUpstream + "upstream_routes:\n  - path_prefix: /x\n    org: acme\n    min_role: WRITE # <-\n", "upstream_routes[0].min_role", "unknown organization role"},
		{"a relative prefix", withUpstream + "upstream_routes:\n  - path_prefix: x # <-\n    group: eng\n", "upstream_routes[0].path_prefix", "must start with /"},
		{"a repeated prefix", withUpstream + "upstream_routes:\n  - path_prefix: /x\n    group: eng\n  - path_prefix: /x # <-\n    group: ops\n", "upstream_routes[1].path_prefix", "is also upstream_routes[0]"},
		{"a route requiring nothing", withUpstream + "upstream_routes:\n  - path_prefix: /x # <-\n", "upstream_routes[0]", "requires nothing"},
		{"a repository without its organization", withUpstream + "upstream_routes:\n  - path_prefix: /x\n    repo: api # <-\n", "upstream_routes[0].repo", "full name"},
		{"an unknown algorithm", goodConfig + "identity_token:\n  algorithm: HS256 # <-\n", "identity_token.algorithm", "not one of"},
		{"publish_ahead not shorter than the rotation", goodConfig + "identity_token:\n  rotation_period: 1h\n  publish_ahead: 1h # <-\n", "identity_token.publish_ahead", "shorter than rotation_period"},
		{"a tiny byte bound", goodConfig + "identity_token:\n  max_bytes: 100 # <-\n", "identity_token.max_bytes", "at least 1KiB"},
	} {
		t.Run("reports "+tt.name, func(t *testing.T) {
			path := writeFile(t, "groupgate.yaml", tt.file)
			code, _, errOut := runCLI(t, nil, "config", "check", "--config", path)
			prefix := path + ":" + strconv.Itoa(markedLine(t, tt.file)) + ": " + tt.path + ": "
			if code != 1 || !strings.HasPrefix(errOut, prefix) || !strings.Contains(errOut, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q ... %q", code, errOut, prefix, tt.msg)
			}
		})
	}
	t.Run("a disabled token is not checked", func(t *testing.T) {
		if _, err := ParseConfig("c.yaml", []byte(goodConfig+"identity_token:\n  enabled: false\n  algorithm: HS256\n"), envFrom(nil)); err != nil {
			t.Fatal(err)
		}
	})
}
