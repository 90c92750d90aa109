package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/groupgate/groupgate/devidp"
)

// What `groupgate devidp` runs: dev's demo IdPs on a port of their own, so
// that a `serve` configured like production can log in without a real
// IdP.
const (
	devIdPListen      = "127.0.0.1:4190"
	devIdPPublicURL   = "http://" + devListen
	devIdPOIDCPath    = "/oidc"
	devIdPSAMLPath    = "/saml"
	devIdPClientID    = "groupgate"
	devIdPConfigPerms = 0o600
)

// runDevIdP serves the demo OIDC and SAML IdPs until ctx ends. The OIDC
// client is registered for groupgate at --public-url. With --write-config
// it writes a serve configuration pointing at them (and the SP key pair
// beside it), rewritten each run: the client secret and the IdPs' keys are
// fresh every time.
func (m *Main) runDevIdP(ctx context.Context) error {
	defer m.markReady()
	logger := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pub, err := parsePublicURL(m.publicURL)
	if err != nil {
		return fmt.Errorf("--public-url: %w", err)
	}
	ln, err := listen(m.listen)
	if err != nil {
		return err
	}
	base := "http://" + loopbackHostPort(ln.Addr())
	samlIdP, err := devidp.NewSAML(base+devIdPSAMLPath, devidp.SAMLConfig{Logger: logger.With("component", "devidp-saml")})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("demo SAML provider: %w", err)
	}
	secret := randomSecret()
	oidcIdP, err := m.demoOIDC(base+devIdPOIDCPath, devIdPClientID, secret, pub, logger.With("component", "devidp-oidc"))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("demo OIDC provider: %w", err)
	}
	router := devRouter{idps: map[string]http.Handler{devIdPOIDCPath: oidcIdP, devIdPSAMLPath: samlIdP},
		gate: http.NotFoundHandler()}
	return m.serveOn(ctx, ln, router, defaultHTTPConfig(), logger, func(context.Context) error {
		idps := devIdPs{base: base, public: strings.TrimSuffix(pub.String(), "/"), secret: secret, samlMetadata: samlIdP.MetadataURL()}
		if m.writeConfig != "" {
			if err := writeDevIdPConfig(m.writeConfig, idps); err != nil {
				return err
			}
		}
		return printDevIdPBanner(m.Stdout, idps, m.writeConfig)
	})
}

// devIdPs is what a serve configuration needs to know of the running IdPs.
type devIdPs struct {
	base, public, secret, samlMetadata string
}

// writeDevIdPConfig writes a production-shaped configuration for serve at
// public, logging in through the demo IdPs, with SQLite and an SP key pair
// in the file's directory.
func writeDevIdPConfig(file string, d devIdPs) error {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return fmt.Errorf("--write-config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--write-config: %w", err)
	}
	cert, key, err := writeSPKeyPair(dir)
	if err != nil {
		return err
	}
	u, _ := url.Parse(d.public)
	secure := u.Scheme == "https"
	cfg := fmt.Sprintf(`# Written by groupgate devidp: a serve configuration that logs in through the
# demo identity providers at %[1]s. Rewritten on every devidp run: the OIDC
# client secret and the IdPs' keys are new each time. Everything else is as
# in production (see config.example.yaml for every key).
listen: %[2]s
public_url: %[3]s
store:
  driver: sqlite
  dsn: file:%[4]s
session:
  secret: %[5]s
  # Plain http on loopback: browsers would keep a Secure cookie, scripts not.
  secure_cookie: %[6]t
admins: [alice@example.com]
providers:
  - name: %[7]s
    display_name: Demo OIDC provider
    type: oidc
    issuer: %[1]s%[8]s
    client_id: %[9]s
    client_secret: %[10]s
    scopes: [openid, email, profile, groups]
  - name: %[11]s
    display_name: Demo SAML provider
    type: saml
    idp_metadata_url: %[12]s
    sp_cert_file: %[13]s
    sp_key_file: %[14]s
    # The demo IdP releases only the demo users' own addresses.
    trust_email: true
scim:
  enabled: true
`, d.base, u.Host, d.public, filepath.Join(dir, "groupgate.db"), randomSecret(), secure,
		devOIDCProvider, devIdPOIDCPath, devIdPClientID, d.secret,
		devSAMLProvider, d.samlMetadata, cert, key)
	if err := os.WriteFile(file, []byte(cfg), devIdPConfigPerms); err != nil {
		return fmt.Errorf("--write-config: %w", err)
	}
	return nil
}

func printDevIdPBanner(w io.Writer, d devIdPs, configFile string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\ngroupgate devidp is running: the demo identity providers, for a groupgate at %s.\n\n", d.public)
	fmt.Fprintf(&b, "OIDC: issuer %s%s, client_id %s, client_secret %s\n", d.base, devIdPOIDCPath, devIdPClientID, d.secret)
	fmt.Fprintf(&b, "      redirect URI %s/callback/%s, post-logout redirect URI %s/logged-out\n", d.public, devOIDCProvider, d.public)
	fmt.Fprintf(&b, "SAML: idp_metadata_url %s (any SP is accepted; its metadata is fetched from its entity ID)\n\n", d.samlMetadata)
	b.WriteString("Users:\n")
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
	if configFile != "" {
		fmt.Fprintf(&b, "\nWrote %s (providers %s and %s). In another terminal:\n  groupgate serve --config %s\nthen open %s/login.\n",
			configFile, devOIDCProvider, devSAMLProvider, configFile, d.public)
	} else {
		b.WriteString("\n--write-config FILE writes a serve configuration that uses them.\n")
	}
	b.WriteString("Press Ctrl-C to stop.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
