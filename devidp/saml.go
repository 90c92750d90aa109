package devidp

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// SAML attribute names the demo IdP asserts; groupgate's SAML provider
// for it is configured with the same names.
const (
	SAMLGroupsAttribute      = "groups"
	SAMLEmailAttribute       = "email"
	SAMLUsernameAttribute    = "username"
	SAMLDisplayNameAttribute = "displayName"
)

// SAMLConfig configures the demo SAML IdP.
type SAMLConfig struct {
	// ServiceProviders are SP metadata documents known in advance, keyed by
	// nothing: the entity ID is read from each. An AuthnRequest from an SP
	// not listed makes the IdP fetch metadata from the issuer, when it is an
	// http(s) URL (groupgate's entity ID is its metadata URL), once.
	ServiceProviders [][]byte
	// Users defaults to Users().
	Users  []User
	Logger *slog.Logger
	// HTTPClient fetches SP metadata (default: 10 s timeout).
	HTTPClient *http.Client
}

// SAMLProvider is the demo SAML IdP, built on github.com/crewjam/saml (a
// separate implementation from groupgate's gosaml2, so logins through it
// are an interoperability check). It signs responses and assertions and
// encrypts assertions when the SP publishes an encryption certificate. It
// keeps no IdP session: every login asks for the password.
//
// crewjam/saml reads the time from its package clock, so this IdP always
// runs on the real clock.
type SAMLProvider struct {
	base    *url.URL
	idp     *saml.IdentityProvider
	users   directory
	logger  *slog.Logger
	client  *http.Client
	handler http.Handler

	mu  sync.Mutex
	sps map[string]*saml.EntityDescriptor
}

// NewSAML returns a demo SAML IdP reachable at baseURL (absolute, no
// trailing slash): metadata at /metadata, SSO at /sso (HTTP-Redirect and
// HTTP-POST), IdP-initiated login at /idp-initiated?sp=ENTITYID.
func NewSAML(baseURL string, cfg SAMLConfig) (*SAMLProvider, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" || strings.HasSuffix(baseURL, "/") {
		return nil, fmt.Errorf("demo SAML IdP: base URL %q must be an absolute URL without a trailing slash", baseURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Users == nil {
		cfg.Users = Users()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	key, err := newSAMLKey()
	if err != nil {
		return nil, fmt.Errorf("demo SAML IdP: %w", err)
	}
	cert, err := selfSignedCert(key, "groupgate demo SAML IdP")
	if err != nil {
		return nil, fmt.Errorf("demo SAML IdP: %w", err)
	}
	p := &SAMLProvider{
		base:   u,
		users:  newDirectory(cfg.Users),
		logger: cfg.Logger,
		client: cfg.HTTPClient,
		sps:    map[string]*saml.EntityDescriptor{},
	}
	for i, b := range cfg.ServiceProviders {
		ed, err := parseSPMetadata(b)
		if err != nil {
			return nil, fmt.Errorf("demo SAML IdP: service provider %d: %w", i, err)
		}
		p.sps[ed.EntityID] = ed
	}
	p.idp = &saml.IdentityProvider{
		Key:                     key,
		Signer:                  key,
		Logger:                  slogPrinter{cfg.Logger},
		Certificate:             cert,
		MetadataURL:             *p.url("/metadata"),
		SSOURL:                  *p.url("/sso"),
		ServiceProviderProvider: p,
		SessionProvider:         p,
		AssertionMaker:          p,
		SignatureMethod:         "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
	}
	mux := http.NewServeMux()
	mux.HandleFunc(u.Path+"/metadata", p.idp.ServeMetadata)
	mux.HandleFunc(u.Path+"/sso", p.idp.ServeSSO)
	mux.HandleFunc(u.Path+"/idp-initiated", p.serveIDPInitiated)
	p.handler = mux
	return p, nil
}

func (p *SAMLProvider) url(path string) *url.URL {
	u := *p.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return &u
}

// ServeHTTP serves the IdP's endpoints.
func (p *SAMLProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// MetadataURL is where the IdP's metadata is served.
func (p *SAMLProvider) MetadataURL() string { return p.url("/metadata").String() }

// Metadata returns the IdP's metadata document.
func (p *SAMLProvider) Metadata() ([]byte, error) {
	b, err := xml.MarshalIndent(p.idp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("demo SAML IdP metadata: %w", err)
	}
	return b, nil
}

// Certificate is the IdP's signing certificate.
func (p *SAMLProvider) Certificate() *x509.Certificate { return p.idp.Certificate }

// Signer is the IdP's signing key, for tests that forge or re-sign
// responses.
func (p *SAMLProvider) Signer() crypto.Signer { return p.idp.Signer }

func parseSPMetadata(b []byte) (*saml.EntityDescriptor, error) {
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		return nil, fmt.Errorf("parse SP metadata: %w", err)
	}
	if ed.EntityID == "" || len(ed.SPSSODescriptors) == 0 {
		return nil, errors.New("parse SP metadata: no entity ID or SPSSODescriptor")
	}
	return &ed, nil
}

// GetServiceProvider implements saml.ServiceProviderProvider.
func (p *SAMLProvider) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	p.mu.Lock()
	ed, ok := p.sps[id]
	p.mu.Unlock()
	if ok {
		return ed, nil
	}
	u, err := url.Parse(id)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, os.ErrNotExist
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, id, nil)
	if err != nil {
		return nil, os.ErrNotExist
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch SP metadata %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, os.ErrNotExist
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch SP metadata %s: %w", id, err)
	}
	ed, err = parseSPMetadata(b)
	if err != nil {
		return nil, err
	}
	if ed.EntityID != id {
		return nil, fmt.Errorf("SP metadata at %s names entity %q", id, ed.EntityID)
	}
	p.mu.Lock()
	p.sps[id] = ed
	p.mu.Unlock()
	return ed, nil
}

// GetSession implements saml.SessionProvider with the shared login form:
// the form posts the SAML request back with the credentials.
func (p *SAMLProvider) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	hidden := map[string]string{"RelayState": req.RelayState}
	action := p.url("/sso").String()
	if len(req.RequestBuffer) > 0 {
		hidden["SAMLRequest"] = base64.StdEncoding.EncodeToString(req.RequestBuffer)
	} else {
		// IdP-initiated: post back to the same URL with its query.
		action = r.URL.RequestURI()
	}
	form := loginForm{Title: "Demo SAML IdP — sign in", Action: action, Hidden: hidden}
	if r.Method != http.MethodPost || r.PostForm.Get("username") == "" {
		renderLogin(w, p.logger, http.StatusOK, form)
		return nil
	}
	u, ok := p.users.authenticate(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		form.Username, form.Error = r.PostForm.Get("username"), "Wrong username or password."
		renderLogin(w, p.logger, http.StatusUnauthorized, form)
		return nil
	}
	now := time.Now()
	return &saml.Session{
		ID:           samlID(),
		CreateTime:   now,
		ExpireTime:   now.Add(time.Hour),
		Index:        samlID(),
		NameID:       u.Subject,
		NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		UserName:     u.Username,
		UserEmail:    u.Email,
		Groups:       u.Groups,
	}
}

// MakeAssertion implements saml.AssertionMaker: crewjam's default
// assertion, with the plain attribute names groupgate's demo provider
// reads. A user without groups gets no groups attribute at all.
func (p *SAMLProvider) MakeAssertion(req *saml.IdpAuthnRequest, s *saml.Session) error {
	u, ok := p.users.bySubject(s.NameID)
	if !ok {
		return fmt.Errorf("demo SAML IdP: unknown subject %q", s.NameID)
	}
	attr := func(name string, values ...string) saml.Attribute {
		a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}
		for _, v := range values {
			a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		return a
	}
	s.CustomAttributes = []saml.Attribute{
		attr(SAMLEmailAttribute, u.Email),
		attr(SAMLUsernameAttribute, u.Username),
		attr(SAMLDisplayNameAttribute, u.Name),
	}
	if len(u.Groups) > 0 {
		s.CustomAttributes = append(s.CustomAttributes, attr(SAMLGroupsAttribute, u.Groups...))
	}
	// The default maker would also send Groups as eduPersonAffiliation;
	// groupgate must find groups only where it is told to look.
	s.Groups = nil
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, s); err != nil {
		return fmt.Errorf("demo SAML IdP: make assertion: %w", err)
	}
	return nil
}

// serveIDPInitiated is GET/POST /idp-initiated?sp=ENTITYID&RelayState=URL.
func (p *SAMLProvider) serveIDPInitiated(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p.idp.ServeIDPInitiated(w, r, r.URL.Query().Get("sp"), r.URL.Query().Get("RelayState"))
}

// samlID is an xs:ID (NCName): it must not start with a digit.
func samlID() string { return fmt.Sprintf("id-%x", randomBytes(16)) }

// slogPrinter adapts slog to crewjam's logger.Interface.
type slogPrinter struct{ l *slog.Logger }

func (s slogPrinter) Printf(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s slogPrinter) Print(v ...any)                 { s.l.Info(fmt.Sprint(v...)) }
func (s slogPrinter) Println(v ...any)               { s.l.Info(fmt.Sprint(v...)) }
func (s slogPrinter) Fatal(v ...any)                 { s.l.Error(fmt.Sprint(v...)) }
func (s slogPrinter) Fatalf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...)) }
func (s slogPrinter) Fatalln(v ...any)               { s.l.Error(fmt.Sprint(v...)) }
func (s slogPrinter) Panic(v ...any)                 { s.l.Error(fmt.Sprint(v...)) }
func (s slogPrinter) Panicf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...)) }
func (s slogPrinter) Panicln(v ...any)               { s.l.Error(fmt.Sprint(v...)) }
