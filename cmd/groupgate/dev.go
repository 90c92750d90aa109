package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/devidp"
)

// What `groupgate dev` runs and seeds.
const (
	devListen       = "127.0.0.1:4180"
	devOIDCPath     = "/devidp/oidc"
	devSAMLPath     = "/devidp/saml"
	devOIDCProvider = "demo-oidc"
	devSAMLProvider = "demo-saml"
	devClientID     = "groupgate-dev"
	devActor        = "groupgate-dev"
	devOrg          = "acme"
	devRepo         = "api"
	devTokenUser    = "alice"
	devRedisPrefix  = "groupgate-dev:"
)

// devMappings are the seeded organization mappings, in print order.
var devMappings = []struct {
	group string
	role  groupgate.OrgRole
}{
	{"eng", groupgate.OrgRoleMember},
	{"platform-admins", groupgate.OrgRoleAdmin},
}

// devRouter serves the demo IdPs under their paths and groupgate
// everywhere else, so that dev needs one port.
type devRouter struct {
	idps map[string]http.Handler // path prefix → IdP
	gate http.Handler
}

func (d devRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for prefix, idp := range d.idps {
		if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
			idp.ServeHTTP(w, r)
			return
		}
	}
	d.gate.ServeHTTP(w, r)
}

// devSetup is what dev knows before wiring groupgate.
type devSetup struct {
	base        string // groupgate's URL, also public_url
	upstreamURL string
	dir         string
	redis       *RedisConfig // nil: in-process sessions
	// The demo SAML IdP's metadata URL and the SP key pair's PEM files.
	samlMetadataURL, spCert, spKey string
}

func (m *Main) runDev(ctx context.Context) error {
	defer m.markReady()
	logger := slog.New(newRepeatLimiter(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}), repeatWindow, time.Now))

	var (
		setup devSetup
		err   error
	)
	if url, ok := m.LookupEnv("REDIS_URL"); ok && url != "" {
		if setup.redis, err = devRedis(url); err != nil {
			return err
		}
		// Registered first, so it runs last: after the server and the
		// session layer have stopped writing.
		m.onClose(func() error { return removeDevKeys(setup.redis) })
	}
	ln, err := listen(m.listen)
	if err != nil {
		return err
	}
	setup.base = "http://" + loopbackHostPort(ln.Addr())

	// Closers run last registered first: the directory goes after the
	// store that lives in it is closed.
	if setup.dir, err = os.MkdirTemp("", "groupgate-dev-"); err != nil {
		_ = ln.Close()
		return fmt.Errorf("create temporary directory: %w", err)
	}
	m.onClose(func() error { return os.RemoveAll(setup.dir) })

	upstream, err := m.startDemoApp(logger.With("component", "demo-app"))
	if err != nil {
		_ = ln.Close()
		return err
	}
	setup.upstreamURL = upstream

	samlIdP, err := devidp.NewSAML(setup.base+devSAMLPath, devidp.SAMLConfig{Logger: logger.With("component", "devidp-saml")})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("demo SAML provider: %w", err)
	}
	setup.samlMetadataURL = samlIdP.MetadataURL()
	if setup.spCert, setup.spKey, err = writeSPKeyPair(setup.dir); err != nil {
		_ = ln.Close()
		return err
	}

	clientSecret := randomSecret()
	cfg, err := devConfig(setup, clientSecret)
	if err != nil {
		_ = ln.Close()
		return err
	}
	pub, err := parsePublicURL(cfg.PublicURL)
	if err != nil {
		_ = ln.Close()
		return err
	}
	idp, err := m.demoOIDC(setup.base+devOIDCPath, devClientID, clientSecret, pub, logger.With("component", "devidp"))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("demo OIDC provider: %w", err)
	}

	gate := &lateHandler{}
	router := devRouter{idps: map[string]http.Handler{devOIDCPath: idp, devSAMLPath: samlIdP}, gate: gate}
	return m.serveOn(ctx, ln, router, cfg.HTTP, logger, func(ctx context.Context) error {
		a, err := m.buildApp(ctx, cfg, logger)
		if err != nil {
			return err
		}
		tokens, err := seedDev(ctx, a)
		if err != nil {
			return err
		}
		gate.set(a.Handler())
		return printDevBanner(m.Stdout, setup, tokens)
	})
}

// startDemoApp serves the demo upstream on a free loopback port until
// Close; only groupgate is meant to reach it.
func (m *Main) startDemoApp(logger *slog.Logger) (string, error) {
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo app: %w", err)
	}
	srv := buildHTTPServer(demoApp(logger), logger, defaultHTTPConfig())
	go func() { _ = srv.Serve(ln) }()
	m.onClose(srv.Close)
	return "http://" + ln.Addr().String(), nil
}

// devConfig is dev's configuration, checked by the rules a file obeys.
func devConfig(s devSetup, clientSecret string) (Config, error) {
	cfg := defaultConfig()
	cfg.Listen = devListen // informational: dev binds its own listener
	cfg.PublicURL = s.base
	cfg.Log = LogConfig{Format: "text", Level: "info"}
	cfg.Store = StoreConfig{Driver: "sqlite", DSN: "file:" + s.dir + "/groupgate.db"}
	cfg.Redis = s.redis
	cfg.Session.Secret = randomSecret()
	// Plain http on loopback: a Secure cookie would work in browsers that
	// treat 127.0.0.1 as a secure context, but not in every HTTP client.
	cfg.Session.SecureCookie = false
	cfg.Admins = []string{devTokenUser + "@example.com"}
	var p ProviderConfig
	p.setDefaults()
	p.Name, p.Type = devOIDCProvider, "oidc"
	p.DisplayName = "Demo OIDC provider"
	p.Issuer = s.base + devOIDCPath
	p.ClientID, p.ClientSecret = devClientID, clientSecret
	p.Scopes = []string{"openid", "email", "profile", "groups"}
	var sp ProviderConfig
	sp.setDefaults()
	sp.Name, sp.Type = devSAMLProvider, "saml"
	sp.DisplayName = "Demo SAML provider"
	sp.IDPMetadataURL = s.samlMetadataURL
	sp.SPEntityID = s.base + "/saml/" + devSAMLProvider + "/metadata"
	sp.SPCertFile, sp.SPKeyFile = s.spCert, s.spKey
	// The demo IdP releases only the demo users' own addresses.
	sp.TrustEmail = true
	cfg.Providers = []ProviderConfig{p, sp}
	cfg.Upstream = s.upstreamURL
	// The third way in, beside logins and the API: dev prints a SCIM token
	// and a push to try.
	cfg.SCIM.Enabled = true
	// dev listens on loopback by default; its metrics stay on that one
	// port (docs/configuration.md, groupgate dev).
	cfg.Metrics.OnMainListener = true
	if err := validateConfig(&cfg, "(groupgate dev)"); err != nil {
		return Config{}, fmt.Errorf("groupgate dev built an invalid configuration: %w", err)
	}
	return cfg, nil
}

// devRedis turns REDIS_URL (redis://[user:password@]host:port/db) into the
// redis section.
func devRedis(raw string) (*RedisConfig, error) {
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	r := &RedisConfig{}
	r.setDefaults()
	r.Addrs = []string{opt.Addr}
	r.Username, r.Password, r.DB = opt.Username, opt.Password, opt.DB
	// A prefix of this run's own: dev's store is a temporary SQLite file,
	// so sessions of an earlier run name users that no longer exist.
	r.KeyPrefix = devRedisPrefix + randomSecret()[:8] + ":"
	return r, nil
}

// removeDevKeys deletes every key of this dev run from Redis, when dev
// stops: what dev created goes with it.
func removeDevKeys(r *RedisConfig) error {
	client := newRedisClient(r, nil)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, r.KeyPrefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := client.Del(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("remove dev keys under %q: %w", r.KeyPrefix, err)
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list dev keys under %q: %w", r.KeyPrefix, err)
	}
	if len(keys) > 0 {
		if err := client.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("remove dev keys under %q: %w", r.KeyPrefix, err)
		}
	}
	return nil
}

// devTokens are the bearer tokens dev prints.
type devTokens struct {
	api  string // alice's API token
	scim string // a SCIM token, as an IdP would hold
}

// seedDev creates the demo organization, repository and mappings, alice
// with an API token, and a SCIM token; it returns the tokens. Mappings go
// through the syncer so that they are audited like API calls.
func seedDev(ctx context.Context, a *app) (devTokens, error) {
	token, err := seedDevData(ctx, a)
	if err != nil {
		return devTokens{}, err
	}
	scimToken, hash := newToken(scimTokenPrefix)
	if _, err := a.store.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenSCIM, Name: "groupgate-dev", Hash: hash}); err != nil {
		return devTokens{}, fmt.Errorf("seed SCIM token: %w", err)
	}
	return devTokens{api: token, scim: scimToken}, nil
}

func seedDevData(ctx context.Context, a *app) (string, error) {
	// The seed follows the rules the API enforces on new names.
	if err := errors.Join(groupgate.ValidateOrganizationName(devOrg), groupgate.ValidateRepositoryName(devRepo)); err != nil {
		return "", fmt.Errorf("seed names: %w", err)
	}
	org, err := a.store.CreateOrganization(ctx, groupgate.Organization{Name: devOrg})
	if err != nil {
		return "", fmt.Errorf("seed organization %s: %w", devOrg, err)
	}
	if _, err := a.store.CreateRepository(ctx, groupgate.Repository{OrganizationID: org.ID, Name: devRepo, Visibility: groupgate.VisibilityPrivate}); err != nil {
		return "", fmt.Errorf("seed repository %s/%s: %w", devOrg, devRepo, err)
	}
	for _, mp := range devMappings {
		if _, err := a.syncer.AddOrgMapping(ctx, devActor, org.ID, mp.group, mp.role); err != nil {
			return "", fmt.Errorf("seed mapping %s → %s %s: %w", mp.group, devOrg, mp.role, err)
		}
	}

	var demo devidp.User
	for _, u := range devidp.Users() {
		if u.Username == devTokenUser {
			demo = u
		}
	}
	// The demo addresses are ours: alice's counts as verified, so that the
	// printed token is an instance admin before her first sign-in.
	user, err := a.store.CreateUser(ctx, groupgate.User{UserName: demo.Username, Email: demo.Email, VerifiedEmail: demo.Email, DisplayName: demo.Name, Active: true})
	if err != nil {
		return "", fmt.Errorf("seed user %s: %w", demo.Username, err)
	}
	// The groups the demo IdP will assert, recorded now, so that the token
	// acts with alice's roles before her first sign-in; her sign-in
	// replaces them with what the IdP actually says.
	if _, err := a.syncer.SetUserGroups(ctx, devActor, user.ID, groupgate.SourceLogin, demo.Groups); err != nil {
		return "", fmt.Errorf("seed groups of %s: %w", demo.Username, err)
	}
	token, hash := newToken(apiTokenPrefix)
	if _, err := a.store.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, Name: "groupgate-dev", UserID: user.ID, Hash: hash}); err != nil {
		return "", fmt.Errorf("seed API token of %s: %w", demo.Username, err)
	}
	return token, nil
}

// devSCIMUser and devSCIMGroup are the printed SCIM example's push: bob
// (an engineer, acme MEMBER through eng) joins platform-admins, which the
// seed maps to acme ADMIN, so his live session becomes ADMIN at once.
const (
	devSCIMUser  = "bob"
	devSCIMGroup = "platform-admins"
)

// printDevBanner tells a person what to open and how to sign in. The API
// token is alone on the line after "API token for alice:", the SCIM token
// on the line after "SCIM token", for scripts; the SCIM example is the
// indented block after "SCIM example", runnable with bash (curl and jq).
func printDevBanner(w io.Writer, s devSetup, tokens devTokens) error {
	token := tokens.api
	var b strings.Builder
	fmt.Fprintf(&b, "\ngroupgate dev is running. Open %s/ in a browser.\n\n", s.base)
	b.WriteString("Pick the demo OIDC or SAML provider, then sign in at its form as one of:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  user\tpassword\tIdP groups")
	for _, u := range devidp.Users() {
		groups := strings.Join(u.Groups, ", ")
		if groups == "" {
			groups = "(none)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.Username, u.Password, groups)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "(%s refuses carol: a SAML login without groups is refused by design.)\n", devSAMLProvider)
	fmt.Fprintf(&b, "\nSeeded: organization %s, repository %s/%s, group mappings", devOrg, devOrg, devRepo)
	for i, mp := range devMappings {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s → %s %s", sep, mp.group, devOrg, mp.role)
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "After sign-in you land on the demo app (%s), which groupgate proxies,\nadding the X-Auth-Request-* headers it shows. %s/whoami shows your roles.\n\n", s.upstreamURL, s.base)

	fmt.Fprintf(&b, "API token for %s (instance admin):\n%s\n", devTokenUser, token)
	fmt.Fprintf(&b, "  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n", token)
	fmt.Fprintf(&b, "    -d '{\"name\":\"%s\"}' %s/buf.alpha.registry.v1alpha1.OrganizationService/GetOrganizationByName\n\n", devOrg, s.base)

	writeDevSCIMExample(&b, s.base, tokens.scim)
	fmt.Fprintf(&b, "Admin UI: %s/admin/ (sign in as alice, an instance admin; anyone signed in sees their own access there).\n\n", s.base)

	fmt.Fprintf(&b, "Identity providers (the login page offers both): %s (OIDC at %s%s, client %s), %s (SAML at %s%s)\n",
		devOIDCProvider, s.base, devOIDCPath, devClientID, devSAMLProvider, s.base, devSAMLPath)
	fmt.Fprintf(&b, "Store: SQLite in %s (deleted on exit)\n", s.dir)
	if s.redis != nil {
		fmt.Fprintf(&b, "Sessions: Redis at %s (REDIS_URL), keys under %q, read through the local cache\n", s.redis.Addrs[0], s.redis.KeyPrefix)
	} else {
		b.WriteString("Sessions: in-process (set REDIS_URL=redis://host:port/db for Redis)\n")
	}
	b.WriteString("Cookies are not marked Secure: this is plain http on loopback. In production use https and session.secure_cookie: true.\n")
	b.WriteString("Press Ctrl-C to stop.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// loopbackHostPort is addr as a browser should type it: an unspecified
// address (0.0.0.0, ::) becomes 127.0.0.1.
func loopbackHostPort(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// randomSecret is 32 random bytes, base64url: 43 characters.
func randomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeSPKeyPair writes a fresh SP certificate and key (PEM) into dir for
// the demo SAML provider and returns their paths.
func writeSPKeyPair(dir string) (certFile, keyFile string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generate SP key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "groupgate dev SP"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create SP certificate: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "sp.crt"), filepath.Join(dir, "sp.key")
	files := []struct {
		path, kind string
		der        []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)}}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der})
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return certFile, keyFile, nil
}

// writeDevSCIMExample prints the SCIM token and a push a newcomer can
// paste: provision bob, then make him a member of platform-admins.
func writeDevSCIMExample(b *strings.Builder, base, token string) {
	var bob devidp.User
	for _, u := range devidp.Users() {
		if u.Username == devSCIMUser {
			bob = u
		}
	}
	fmt.Fprintf(b, "SCIM 2.0 is on at %s/scim/v2 (what Okta or Entra ID push users and groups to). SCIM token:\n%s\n", base, token)
	fmt.Fprintf(b, "SCIM example: sign in as %s (acme MEMBER through eng), then push him into %s (mapped to acme ADMIN)\n", bob.Username, devSCIMGroup)
	b.WriteString("and reload the demo app: his session is acme ADMIN at once, without signing in again (needs curl and jq).\n")
	fmt.Fprintf(b, "  SCIM=%s/scim/v2; SCIM_TOKEN=%s\n", base, token)
	fmt.Fprintf(b, "  %s=$(curl -sS --fail-with-body -H \"Authorization: Bearer $SCIM_TOKEN\" -H 'Content-Type: application/scim+json' \\\n", strings.ToUpper(bob.Username))
	fmt.Fprintf(b, "    -d '{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"%s\",\"emails\":[{\"value\":\"%s\",\"primary\":true}],\"active\":true}' \\\n", bob.Username, bob.Email)
	b.WriteString("    \"$SCIM/Users\" | jq -r .id)\n")
	b.WriteString("  curl -sS --fail-with-body -H \"Authorization: Bearer $SCIM_TOKEN\" -H 'Content-Type: application/scim+json' \\\n")
	fmt.Fprintf(b, "    -d '{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"displayName\":\"%s\",\"members\":[{\"value\":\"'$%s'\"}]}' \\\n", devSCIMGroup, strings.ToUpper(bob.Username))
	b.WriteString("    \"$SCIM/Groups\"\n\n")
}

// demoOIDC is the embedded demo OIDC provider at issuer with one client
// that signs in to groupgate at pub (dev, and devidp standing alone).
func (m *Main) demoOIDC(issuer, clientID, secret string, pub *url.URL, logger *slog.Logger) (*devidp.OIDCProvider, error) {
	return devidp.NewOIDC(issuer, devidp.OIDCConfig{
		Clients: []devidp.OIDCClient{{
			ID:                     clientID,
			Secret:                 secret,
			RedirectURIs:           []string{callbackURL(pub, devOIDCProvider)},
			PostLogoutRedirectURIs: []string{signedOutURL(pub)},
		}},
		Now:    m.Now,
		Logger: logger,
	})
}
