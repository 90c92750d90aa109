package saml

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"
	dsig "github.com/russellhaering/goxmldsig"
)

// maxMetadataBytes bounds an IdP metadata document; Entra's are ~10 KiB.
const maxMetadataBytes = 4 << 20

// idpMetadata is what groupgate needs from an IdP's metadata, immutable
// once parsed so that a refresh swaps it atomically.
type idpMetadata struct {
	entityID    string
	ssoRedirect string
	ssoPost     string
	sloURL      string
	sloBinding  string
	certs       []*x509.Certificate
	fetchedAt   time.Time
}

func (m *idpMetadata) certStore() dsig.X509CertificateStore {
	return &dsig.MemoryX509CertificateStore{Roots: m.certs}
}

// certStoreBehind is the IdP's certificates for a validator whose clock
// runs d behind the real one. gosaml2 has one clock for the assertion's
// time conditions and for goxmldsig's certificate validity check; the
// connector sets it clock_skew behind so that assertions get their
// tolerance, and this store moves each certificate's validity window back
// by the same d, so that "clock within NotBefore..NotAfter" gives the
// answer of the real clock: a key the IdP created or rotated seconds ago
// verifies, and an expired one gets no grace. The copies keep Raw (what
// goxmldsig matches the signature's certificate against) and the key.
func (m *idpMetadata) certStoreBehind(d time.Duration) dsig.X509CertificateStore {
	certs := make([]*x509.Certificate, len(m.certs))
	for i, c := range m.certs {
		cp := *c
		cp.NotBefore, cp.NotAfter = c.NotBefore.Add(-d), c.NotAfter.Add(-d)
		certs[i] = &cp
	}
	return &dsig.MemoryX509CertificateStore{Roots: certs}
}

// parseIDPMetadata reads an EntityDescriptor (or the first IdP in an
// EntitiesDescriptor) and insists on what a login needs: an entity ID, an
// SSO endpoint and at least one signing certificate.
func parseIDPMetadata(b []byte) (*idpMetadata, error) {
	var ed types.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		var set struct {
			Entities []types.EntityDescriptor `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
		}
		if err2 := xml.Unmarshal(b, &set); err2 != nil {
			return nil, fmt.Errorf("parse IdP metadata: %w", err)
		}
		found := false
		for _, e := range set.Entities {
			if e.IDPSSODescriptor != nil {
				ed, found = e, true
				break
			}
		}
		if !found {
			return nil, errors.New("parse IdP metadata: no IDPSSODescriptor in the EntitiesDescriptor")
		}
	}
	d := ed.IDPSSODescriptor
	if d == nil {
		return nil, errors.New("parse IdP metadata: no IDPSSODescriptor")
	}
	m := &idpMetadata{entityID: ed.EntityID}
	if m.entityID == "" {
		return nil, errors.New("parse IdP metadata: no entityID")
	}
	for _, s := range d.SingleSignOnServices {
		switch s.Binding {
		case saml2.BindingHttpRedirect:
			m.ssoRedirect = s.Location
		case saml2.BindingHttpPost:
			m.ssoPost = s.Location
		}
	}
	if m.ssoRedirect == "" && m.ssoPost == "" {
		return nil, errors.New("parse IdP metadata: no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	// Prefer the redirect binding for logout: it needs no page of ours.
	for _, s := range d.SingleLogoutServices {
		if s.Binding == saml2.BindingHttpRedirect || (m.sloURL == "" && s.Binding == saml2.BindingHttpPost) {
			m.sloURL, m.sloBinding = s.Location, s.Binding
		}
	}
	for _, kd := range d.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
			if err != nil {
				return nil, fmt.Errorf("parse IdP metadata: signing certificate is not base64: %w", err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("parse IdP metadata: signing certificate: %w", err)
			}
			m.certs = append(m.certs, c)
		}
	}
	if len(m.certs) == 0 {
		return nil, errors.New("parse IdP metadata: no signing certificate")
	}
	return m, nil
}

// loadMetadata reads the configured source once.
func (c *Connector) loadMetadata(ctx context.Context) (*idpMetadata, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case c.cfg.IDPMetadataXML != "":
		b = []byte(c.cfg.IDPMetadataXML)
	case c.cfg.IDPMetadataFile != "":
		b, err = os.ReadFile(c.cfg.IDPMetadataFile)
		if err != nil {
			return nil, fmt.Errorf("read IdP metadata: %w", err)
		}
	default:
		b, err = c.fetchMetadata(ctx)
		if err != nil {
			return nil, err
		}
	}
	m, err := parseIDPMetadata(b)
	if err != nil {
		return nil, err
	}
	m.fetchedAt = c.now()
	return m, nil
}

func (c *Connector) fetchMetadata(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.IDPMetadataURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata %s: %w", c.cfg.IDPMetadataURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch IdP metadata %s: status %s", c.cfg.IDPMetadataURL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata %s: %w", c.cfg.IDPMetadataURL, err)
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("fetch IdP metadata %s: larger than %d bytes", c.cfg.IDPMetadataURL, maxMetadataBytes)
	}
	return b, nil
}

// Refresh reloads the IdP metadata now. On failure the last good copy
// stays in use and the error is returned (and logged by the refresher).
func (c *Connector) Refresh(ctx context.Context) error {
	m, err := c.loadMetadata(ctx)
	if err != nil {
		return fmt.Errorf("refresh metadata of SAML provider %q: %w", c.name, err)
	}
	c.idp.Store(m)
	return nil
}

// refreshLoop refreshes URL metadata every interval until Close. A ticker
// on the wall clock is right here: it paces network fetches, it judges
// nothing.
func (c *Connector) refreshLoop(ctx context.Context, every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil {
				c.logger.WarnContext(ctx, "SAML metadata refresh failed; keeping the last good copy",
					"provider", c.name, "error", err, "fetched_at", c.idp.Load().fetchedAt)
			}
		}
	}
}
