package saml

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/oauth2"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/claims"
)

// Defaults.
const (
	DefaultClockSkew       = 90 * time.Second
	DefaultMetadataRefresh = time.Hour
)

// Bindings of the AuthnRequest.
const (
	BindingRedirect = broker.SAMLBindingRedirect
	BindingPost     = broker.SAMLBindingPost
)

// Config describes one SAML IdP and groupgate's SP at it. Exactly one of
// IDPMetadataFile, IDPMetadataURL and IDPMetadataXML is set.
type Config struct {
	IDPMetadataFile string
	IDPMetadataURL  string
	IDPMetadataXML  string
	// MetadataRefresh is how often URL metadata is fetched again
	// (DefaultMetadataRefresh); the last good copy stays on failure.
	MetadataRefresh time.Duration

	// EntityID is the SP entity ID, conventionally MetadataURL.
	EntityID string
	// ACSURL is the absolute /saml/NAME/acs URL, checked against every
	// response's Destination and Recipient.
	ACSURL string
	// SLOURL is the absolute /saml/NAME/slo URL; empty disables SLO.
	SLOURL string
	// KeyPair is the SP's key and certificate: signs AuthnRequests and
	// LogoutRequests, decrypts encrypted assertions, published in the SP
	// metadata for both uses.
	KeyPair tls.Certificate

	// Binding of the AuthnRequest: BindingRedirect (default) or
	// BindingPost.
	Binding           string
	SignAuthnRequests bool
	// AllowIDPInitiated accepts responses that answer no AuthnRequest of
	// ours. Off by default: such responses cannot be bound to a browser.
	AllowIDPInitiated bool
	// RequireSignedResponseAndAssertion requires both signatures; by
	// default either one suffices (SAML profiles §4.1.3.5).
	RequireSignedResponseAndAssertion bool
	// ClockSkew is allowed on NotBefore and NotOnOrAfter
	// (DefaultClockSkew).
	ClockSkew time.Duration

	// Attribute names and the group filter, as in claims.SAMLOptions.
	GroupsAttribute   string
	GroupsDelimiter   string
	UsernameAttribute string
	EmailAttribute    string
	NameAttribute     string
	Filter            *claims.Filter
}

// ReplayCache remembers assertion IDs; session.Backend implements it.
type ReplayCache interface {
	// Remember records key until the given time and reports whether it was
	// fresh (false: seen before and not yet forgotten).
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// SCIMGroupsFunc reports whether SCIM holds the groups of the user the
// identity names; it lets an Entra group-overage login through.
type SCIMGroupsFunc func(ctx context.Context, id groupgate.Identity) (bool, error)

// Option sets an optional dependency of Open.
type Option func(*Connector)

// WithHTTPClient sets the client that fetches URL metadata (30 s timeout
// by default).
func WithHTTPClient(c *http.Client) Option { return func(k *Connector) { k.client = c } }

// WithNow sets the clock that judges assertion validity (time.Now).
func WithNow(now func() time.Time) Option { return func(k *Connector) { k.now = now } }

// WithLogger sets the logger (slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(k *Connector) { k.logger = l } }

// WithAttemptTTL sets how long a user may take at the IdP
// (broker.DefaultAttemptTTL).
func WithAttemptTTL(d time.Duration) Option { return func(k *Connector) { k.ttl = d } }

// WithGraph resolves Entra ID's group overage (the groups.link attribute)
// by listing the user's groups from Microsoft Graph with an application
// token from ts (client credentials). It takes precedence over
// WithSCIMGroups.
func WithGraph(g *graph.Client, ts oauth2.TokenSource) Option {
	return func(k *Connector) { k.graph, k.graphToken = g, ts }
}

// WithSCIMGroups lets an overage login through when f says SCIM holds the
// user's groups.
func WithSCIMGroups(f SCIMGroupsFunc) Option { return func(k *Connector) { k.scimGroups = f } }

// Connector is one SAML IdP. It is safe for concurrent use; Close stops the
// metadata refresher.
type Connector struct {
	name       string
	cfg        Config
	attempts   broker.AttemptStore
	replay     ReplayCache
	client     *http.Client
	now        func() time.Time
	logger     *slog.Logger
	ttl        time.Duration
	scimGroups SCIMGroupsFunc
	graph      *graph.Client
	graphToken oauth2.TokenSource
	cert       *x509.Certificate
	claimOpts  claims.SAMLOptions

	idp    atomic.Pointer[idpMetadata]
	cancel context.CancelFunc
	done   chan struct{}
}

var _ broker.SAMLConnector = (*Connector)(nil)

// Open loads the IdP metadata and returns the connector named name. For URL
// metadata it starts a refresher that Close stops.
func (cfg Config) Open(ctx context.Context, name string, attempts broker.AttemptStore, replay ReplayCache, opts ...Option) (*Connector, error) {
	c := &Connector{
		name:     name,
		cfg:      cfg,
		attempts: attempts,
		replay:   replay,
		client:   &http.Client{Timeout: 30 * time.Second},
		now:      time.Now,
		logger:   slog.Default(),
		ttl:      broker.DefaultAttemptTTL,
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	if c.cfg.ClockSkew == 0 {
		c.cfg.ClockSkew = DefaultClockSkew
	}
	if c.cfg.MetadataRefresh <= 0 {
		c.cfg.MetadataRefresh = DefaultMetadataRefresh
	}
	if c.cfg.Binding == "" {
		c.cfg.Binding = BindingRedirect
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("open SAML provider %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(cfg.KeyPair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("open SAML provider %q: SP certificate: %w", name, err)
	}
	c.cert = cert
	c.claimOpts = claims.SAMLOptions{
		GroupsAttribute:   cfg.GroupsAttribute,
		Delimiter:         cfg.GroupsDelimiter,
		UsernameAttribute: cfg.UsernameAttribute,
		EmailAttribute:    cfg.EmailAttribute,
		NameAttribute:     cfg.NameAttribute,
		Filter:            cfg.Filter,
	}
	m, err := c.loadMetadata(ctx)
	if err != nil {
		if cfg.IDPMetadataURL != "" {
			// The IdP may answer later (broker.Lazy retries); a file or
			// inline document is the configuration's to fix.
			err = groupgate.WrapError(groupgate.Unavailable, err, "the identity provider's metadata cannot be read")
		}
		return nil, fmt.Errorf("open SAML provider %q: %w", name, err)
	}
	c.idp.Store(m)
	if c.cfg.Binding == BindingRedirect && m.ssoRedirect == "" {
		c.logger.Info("IdP offers no HTTP-Redirect SSO endpoint; using HTTP-POST", "provider", name)
		c.cfg.Binding = BindingPost
	}
	if c.cfg.Binding == BindingPost && m.ssoPost == "" {
		return nil, fmt.Errorf("open SAML provider %q: binding is post but the IdP offers no HTTP-POST SSO endpoint", name)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	if cfg.IDPMetadataURL != "" {
		go c.refreshLoop(loopCtx, c.cfg.MetadataRefresh)
	} else {
		close(c.done)
	}
	c.logger.Info("SAML provider ready", "provider", name, "idp", m.entityID, "binding", c.cfg.Binding,
		"slo", m.sloURL != "", "idp_initiated", cfg.AllowIDPInitiated)
	return c, nil
}

// Close stops the metadata refresher and waits for it.
func (c *Connector) Close() error {
	c.cancel()
	<-c.done
	return nil
}

func (c *Connector) validate() error {
	var problems []error
	sources := 0
	for _, s := range []string{c.cfg.IDPMetadataFile, c.cfg.IDPMetadataURL, c.cfg.IDPMetadataXML} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		problems = append(problems, errors.New("exactly one of idp_metadata_file, idp_metadata_url and inline idp_metadata is required"))
	}
	if c.cfg.EntityID == "" {
		problems = append(problems, errors.New("sp_entity_id is required"))
	}
	for _, u := range []struct{ name, v string }{{"ACS URL", c.cfg.ACSURL}, {"SLO URL", c.cfg.SLOURL}} {
		if u.v == "" && u.name == "SLO URL" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || !p.IsAbs() {
			problems = append(problems, fmt.Errorf("%s %q is not an absolute URL", u.name, u.v))
		}
	}
	if len(c.cfg.KeyPair.Certificate) == 0 || c.cfg.KeyPair.PrivateKey == nil {
		problems = append(problems, errors.New("an SP key pair is required"))
	}
	switch c.cfg.Binding {
	case BindingRedirect, BindingPost:
	default:
		problems = append(problems, fmt.Errorf("binding %q is neither %s nor %s", c.cfg.Binding, BindingRedirect, BindingPost))
	}
	if c.cfg.ClockSkew < 0 || c.cfg.ClockSkew > 10*time.Minute {
		problems = append(problems, fmt.Errorf("clock skew %s is outside 0..10m", c.cfg.ClockSkew))
	}
	if c.attempts == nil || c.replay == nil {
		problems = append(problems, errors.New("an attempt store and a replay cache are required"))
	}
	return errors.Join(problems...)
}

func (c *Connector) Name() string { return c.name }
func (c *Connector) Type() string { return "saml" }

// IDPEntityID is the IdP's entity ID from its current metadata.
func (c *Connector) IDPEntityID() string { return c.idp.Load().entityID }

// serviceProvider builds a gosaml2 SP for one operation over the current
// metadata, with its clock at now. A fresh value per call keeps the
// refreshed metadata and the injected clock out of shared mutable state.
func (c *Connector) serviceProvider(m *idpMetadata, now time.Time) *saml2.SAMLServiceProvider {
	sp := &saml2.SAMLServiceProvider{
		IdentityProviderSSOURL:      m.ssoRedirect,
		IdentityProviderSSOBinding:  saml2.BindingHttpRedirect,
		IdentityProviderSLOURL:      m.sloURL,
		IdentityProviderSLOBinding:  m.sloBinding,
		IdentityProviderIssuer:      m.entityID,
		AssertionConsumerServiceURL: c.cfg.ACSURL,
		ServiceProviderSLOURL:       c.cfg.SLOURL,
		ServiceProviderIssuer:       c.cfg.EntityID,
		SignAuthnRequests:           c.cfg.SignAuthnRequests,
		SignAuthnRequestsAlgorithm:  dsig.RSASHA256SignatureMethod,
		AudienceURI:                 c.cfg.EntityID,
		IDPCertificateStore:         m.certStore(),
		Clock:                       dsig.NewFakeClockAt(now),
		// A 1 MiB body limit in front already; this bounds DEFLATE bombs.
		MaximumDecompressedBodySize: 1 << 20,
	}
	if c.cfg.Binding == BindingPost {
		sp.IdentityProviderSSOURL = m.ssoPost
		sp.IdentityProviderSSOBinding = saml2.BindingHttpPost
	}
	// gosaml2 decrypts only with the SPKeyStore field; SetSPKeyStore alone
	// would leave encrypted assertions unreadable.
	sp.SPKeyStore = dsig.TLSCertKeyStore(c.cfg.KeyPair)
	return sp
}

// pending is a login in progress, stored under its AuthnRequest ID.
type pending struct {
	RequestID string    `json:"request_id"`
	Provider  string    `json:"provider"`
	ReturnTo  string    `json:"return_to"`
	Binding   string    `json:"binding,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// attemptKey is where the attempt for requestID is stored: apart from OIDC
// ones in the shared store, and, for an attempt bound to the browser, under
// the hash of its binding token too, so that only the bound browser's
// cookie can name (and so consume) it.
func attemptKey(requestID, bindingToken string) string {
	if bindingToken == "" {
		return "saml:" + requestID
	}
	sum := sha256.Sum256([]byte(bindingToken))
	return "saml:" + requestID + ":" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// BindingCookieName is the name of the cookie that binds the attempt with
// requestID to the browser, for callers that set one.
func BindingCookieName(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "_groupgate_saml_" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// Request, Response and Result are the broker's SAML types: the
// connector implements broker.SAMLConnector.
type (
	Request  = broker.SAMLRequest
	Response = broker.SAMLResponse
	Result   = broker.SAMLResult
)

// Begin starts an SP-initiated login that returns to returnTo (already
// validated by the caller). With bindBrowser the ACS will require the
// binding cookie. Errors are *groupgate.Error: Unavailable when the
// attempt cannot be stored, Internal when the request cannot be built.
func (c *Connector) Begin(ctx context.Context, returnTo string, bindBrowser bool) (Request, error) {
	now := c.now()
	m := c.idp.Load()
	sp := c.serviceProvider(m, now)
	doc, err := sp.BuildAuthRequestDocumentNoSig()
	if c.cfg.Binding == BindingPost && c.cfg.SignAuthnRequests {
		// POST carries the signature in the XML; Redirect signs the query.
		doc, err = sp.BuildAuthRequestDocument()
	}
	if err != nil {
		return Request{}, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML request")
	}
	p := pending{
		RequestID: doc.Root().SelectAttrValue("ID", ""),
		Provider:  c.name,
		ReturnTo:  returnTo,
		CreatedAt: now,
		ExpiresAt: now.Add(c.ttl),
	}
	if p.RequestID == "" {
		return Request{}, groupgate.Errorf(groupgate.Internal, "the SAML request has no ID")
	}
	if bindBrowser {
		p.Binding = randomToken()
	}
	req := Request{RequestID: p.RequestID, Binding: c.cfg.Binding, BindingToken: p.Binding, ExpiresAt: p.ExpiresAt}
	switch c.cfg.Binding {
	case BindingPost:
		b, err := doc.WriteToBytes()
		if err != nil {
			return Request{}, groupgate.WrapError(groupgate.Internal, err, "cannot encode the SAML request")
		}
		req.PostURL = m.ssoPost
		req.Form = url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(b)}}
	default:
		req.RedirectURL, err = sp.BuildAuthURLRedirect("", doc)
		if err != nil {
			return Request{}, groupgate.WrapError(groupgate.Internal, err, "cannot build the SAML redirect")
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return Request{}, groupgate.WrapError(groupgate.Internal, err, "encode SAML login attempt")
	}
	if err := c.attempts.PutAttempt(ctx, attemptKey(p.RequestID, p.Binding), b, c.ttl); err != nil {
		return Request{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot start the login right now; try again")
	}
	return req, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// HandleResponse verifies an ACS POST and returns the identity. Every
// refusal is a *groupgate.Error: Invalid for a response that belongs to no
// live attempt of this browser (or an unwanted IdP-initiated one) or was
// already used, Unauthenticated for one that does not verify (signature,
// issuer, audience, destination, recipient, time), Forbidden (wrapping
// claims.ErrNoGroups) when it carries no groups, Unavailable when the
// attempt store or replay cache cannot be reached.
func (c *Connector) HandleResponse(ctx context.Context, in Response) (Result, error) {
	res, err := c.handleResponse(ctx, in)
	if err != nil {
		c.logger.InfoContext(ctx, "SAML login refused", "provider", c.name, "error", err)
		return Result{}, fmt.Errorf("SAML login at %q: %w", c.name, err)
	}
	return res, nil
}

func (c *Connector) handleResponse(ctx context.Context, in Response) (Result, error) {
	if in.SAMLResponse == "" {
		return Result{}, groupgate.Errorf(groupgate.Invalid, "the request carries no SAML response")
	}
	raw, err := base64.StdEncoding.DecodeString(in.SAMLResponse)
	if err != nil {
		return Result{}, groupgate.WrapError(groupgate.Invalid, err, "the SAML response is not base64")
	}
	unverified, err := inspect(raw)
	if err != nil {
		return Result{}, err
	}

	// The request ID is read before verification only to choose the
	// path; the attempt itself is consumed below, once the response
	// verified and the browser binding checked out, so that nobody who
	// merely knows a request ID can burn a pending login.
	requestID := unverified.InResponseTo
	if requestID == "" && !c.cfg.AllowIDPInitiated {
		return Result{}, groupgate.Errorf(groupgate.Invalid,
			"this identity provider may not start logins on its own (IdP-initiated login is off); start the login here")
	}

	now := c.now()
	m := c.idp.Load()
	// gosaml2 compares NotOnOrAfter without tolerance; its clock runs
	// ClockSkew behind so that our own checks below are the binding ones.
	// Its clock also judges the IdP certificate's validity, which must not
	// get the skew: certStoreBehind moves the certificates' windows back
	// by the same amount, so they are judged at the real time.
	sp := c.serviceProvider(m, now.Add(-c.cfg.ClockSkew))
	sp.IDPCertificateStore = m.certStoreBehind(c.cfg.ClockSkew)
	resp, err := sp.ValidateEncodedResponse(in.SAMLResponse)
	if err != nil {
		return Result{}, groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML response does not verify")
	}
	if c.cfg.RequireSignedResponseAndAssertion {
		if err := c.requireBothSignatures(sp, raw, resp.SignatureValidated); err != nil {
			return Result{}, err
		}
	}
	if len(resp.Assertions) != 1 {
		return Result{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML response must carry exactly one assertion, it has %d", len(resp.Assertions))
	}
	a := resp.Assertions[0]
	if !resp.SignatureValidated && !a.SignatureValidated {
		return Result{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML response is not signed by the identity provider")
	}
	// SAML bindings §3.5.5.2: a signed response must name its destination.
	if resp.Destination != c.cfg.ACSURL && (resp.Destination != "" || resp.SignatureValidated) {
		return Result{}, groupgate.Errorf(groupgate.Unauthenticated, "the SAML response is addressed to %q, not to this service", resp.Destination)
	}
	if err := c.checkAssertion(a, requestID, now); err != nil {
		return Result{}, err
	}
	if resp.InResponseTo != requestID {
		return Result{}, groupgate.Errorf(groupgate.Invalid, "the SAML response answers another login")
	}
	var p *pending
	if requestID != "" {
		p, err = c.takeAttempt(ctx, requestID, in.Cookie)
		if err != nil {
			return Result{}, err
		}
	}

	nameID := a.Subject.NameID.Value
	until, _ := time.Parse(time.RFC3339, a.Conditions.NotOnOrAfter)
	fresh, err := c.replay.Remember(ctx, "saml:"+c.name+":"+a.ID, until.Add(c.cfg.ClockSkew))
	if err != nil {
		return Result{}, groupgate.WrapError(groupgate.Unavailable, err, "cannot check the SAML assertion right now; try again")
	}
	if !fresh {
		return Result{}, groupgate.WrapError(groupgate.Invalid, broker.ErrAttemptGone, "this SAML assertion was already used; start the login again")
	}

	attrs := map[string][]string{}
	if a.AttributeStatement != nil {
		for _, at := range a.AttributeStatement.Attributes {
			for _, v := range at.Values {
				attrs[at.Name] = append(attrs[at.Name], v.Value)
			}
		}
	}
	id, err := c.identity(ctx, nameID, attrs)
	if err != nil {
		return Result{}, err
	}
	res := Result{Identity: id, IDPInitiated: p == nil}
	if p != nil {
		res.ReturnTo, res.RequestID = p.ReturnTo, p.RequestID
	} else {
		res.ReturnTo = in.RelayState
	}
	if a.AuthnStatement != nil {
		res.SessionIndex = a.AuthnStatement.SessionIndex
	}
	return res, nil
}

// takeAttempt consumes the attempt the response answers, which the caller
// has verified. A bound attempt is stored under a key that includes the
// hash of its binding token (attemptKey), so the key is computed from the
// browser's cookie: a post without the cookie, or with a wrong one, names
// no attempt and consumes nothing.
func (c *Connector) takeAttempt(ctx context.Context, requestID string, cookie func(string) (string, bool)) (*pending, error) {
	var token string
	if cookie != nil {
		token, _ = cookie(BindingCookieName(requestID))
	}
	b, err := c.attempts.TakeAttempt(ctx, attemptKey(requestID, token))
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Invalid, fmt.Errorf("%w: %w", broker.ErrAttemptGone, err),
			"the SAML response answers no pending login (it expired, was already used, or was not started in this browser); start the login again")
	}
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Unavailable, err, "cannot finish the login right now; try again")
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "the login attempt is unreadable; start the login again")
	}
	if p.Provider != c.name || p.RequestID != requestID {
		return nil, groupgate.Errorf(groupgate.Invalid, "this login was started with another identity provider; start the login again")
	}
	if !c.now().Before(p.ExpiresAt) {
		return nil, groupgate.WrapError(groupgate.Invalid, broker.ErrAttemptGone, "the login attempt has expired; start the login again")
	}
	// The key already matched the token's hash; compare the token itself
	// too, in constant time, so the check does not rest on the key alone.
	if subtle.ConstantTimeCompare([]byte(token), []byte(p.Binding)) != 1 {
		return nil, groupgate.WrapError(groupgate.Invalid, broker.ErrAttemptGone, "this login was not started in this browser; start the login again")
	}
	return &p, nil
}

// checkAssertion applies the rules gosaml2 leaves to its caller or only
// reports as warnings: audience (SAML core §2.5.1.4), validity window with
// skew (§2.5.1.2), bearer confirmation recipient and InResponseTo
// (profiles §4.1.4.3).
func (c *Connector) checkAssertion(a samlAssertion, requestID string, now time.Time) error {
	if a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) == "" {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion names no subject")
	}
	cond := a.Conditions
	if cond == nil {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion has no conditions")
	}
	if len(cond.AudienceRestrictions) == 0 {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion is not restricted to an audience")
	}
	for _, ar := range cond.AudienceRestrictions {
		ok := false
		for _, au := range ar.Audiences {
			ok = ok || au.Value == c.cfg.EntityID
		}
		if !ok {
			return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion is meant for another service (audience is not %q)", c.cfg.EntityID)
		}
	}
	notBefore, err1 := time.Parse(time.RFC3339, cond.NotBefore)
	notOnOrAfter, err2 := time.Parse(time.RFC3339, cond.NotOnOrAfter)
	if err := errors.Join(err1, err2); err != nil {
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML assertion's validity period is missing or malformed")
	}
	if now.Add(c.cfg.ClockSkew).Before(notBefore) {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion is not valid yet (NotBefore %s); check the clocks", notBefore.UTC().Format(time.RFC3339))
	}
	if !now.Add(-c.cfg.ClockSkew).Before(notOnOrAfter) {
		return groupgate.WrapError(groupgate.Unauthenticated, broker.ErrAttemptGone, "the SAML assertion has expired (NotOnOrAfter %s); start the login again", notOnOrAfter.UTC().Format(time.RFC3339))
	}
	sc := a.Subject.SubjectConfirmation
	if sc == nil || sc.SubjectConfirmationData == nil {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion has no bearer confirmation")
	}
	if sc.SubjectConfirmationData.Recipient != c.cfg.ACSURL {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML assertion's recipient is not this service")
	}
	irt := sc.SubjectConfirmationData.InResponseTo
	switch {
	case requestID == "" && irt != "":
		return groupgate.Errorf(groupgate.Invalid, "the SAML assertion answers a login that is not pending here")
	case requestID != "" && irt != requestID:
		return groupgate.Errorf(groupgate.Invalid, "the SAML assertion answers another login (InResponseTo does not match)")
	}
	return nil
}

// requireBothSignatures checks, for a response whose own signature held,
// that its assertion is signed too: it validates again with the response
// signature removed, which makes gosaml2 demand a signed assertion.
func (c *Connector) requireBothSignatures(sp *saml2.SAMLServiceProvider, raw []byte, responseSigned bool) error {
	if !responseSigned {
		return groupgate.Errorf(groupgate.Unauthenticated, "the SAML response itself must be signed (require_signed_response_and_assertion)")
	}
	stripped, err := stripResponseSignature(raw)
	if err != nil {
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML response does not verify")
	}
	resp, err := sp.ValidateEncodedResponse(base64.StdEncoding.EncodeToString(stripped))
	if err != nil || len(resp.Assertions) != 1 || !resp.Assertions[0].SignatureValidated {
		return groupgate.WrapError(groupgate.Unauthenticated, err, "the SAML assertion must be signed as well as the response (require_signed_response_and_assertion)")
	}
	return nil
}

// EntraObjectIDAttribute is the user's object ID in an Entra assertion.
const EntraObjectIDAttribute = "http://schemas.microsoft.com/identity/claims/objectidentifier"

// identity turns the verified attributes into an Identity. An Entra group
// overage is resolved through Microsoft Graph when WithGraph is set, else
// passes only when SCIM holds the user's groups.
func (c *Connector) identity(ctx context.Context, nameID string, attrs map[string][]string) (groupgate.Identity, error) {
	id, err := claims.FromSAML(c.name, nameID, attrs, c.claimOpts)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, claims.ErrGroupOverage) {
		return groupgate.Identity{}, err
	}
	if c.graph != nil {
		return c.graphIdentity(ctx, nameID, attrs)
	}
	// Read the rest of the identity as if the groups were there, then ask
	// SCIM; the link itself is never followed.
	probe := make(map[string][]string, len(attrs)+1)
	for k, v := range attrs {
		if k != claims.EntraGroupsLinkAttribute {
			probe[k] = v
		}
	}
	groupsAttr := c.claimOpts.GroupsAttribute
	if groupsAttr == "" {
		groupsAttr = claims.DefaultGroupsAttribute
	}
	probe[groupsAttr] = []string{"overage-probe"}
	opts := c.claimOpts
	opts.Delimiter, opts.Filter = "", nil
	who, perr := claims.FromSAML(c.name, nameID, probe, opts)
	if perr != nil || c.scimGroups == nil {
		c.logger.InfoContext(ctx, "SAML group overage refused: SCIM does not provide this user's groups", "provider", c.name)
		return groupgate.Identity{}, err
	}
	who.Groups, who.GroupsPresent = nil, false
	held, serr := c.scimGroups(ctx, who)
	if serr != nil {
		return groupgate.Identity{}, groupgate.WrapError(groupgate.Unavailable, serr, "cannot check the user's groups right now; try again")
	}
	if !held {
		c.logger.InfoContext(ctx, "SAML group overage refused: SCIM holds no groups for this user", "provider", c.name, "email", who.Email)
		return groupgate.Identity{}, err
	}
	c.logger.InfoContext(ctx, "SAML group overage: using the groups SCIM holds", "provider", c.name, "email", who.Email)
	return who, nil
}

// graphIdentity lists the groups of an overage assertion's user from
// Microsoft Graph (the user the groups.link names, else the
// objectidentifier attribute) and reads the identity as if the assertion
// had carried them. Graph not answering refuses the login.
func (c *Connector) graphIdentity(ctx context.Context, nameID string, attrs map[string][]string) (groupgate.Identity, error) {
	target := graph.Link(firstNonBlank(attrs[claims.EntraGroupsLinkAttribute]), false).OrUser(firstNonBlank(attrs[EntraObjectIDAttribute]))
	groups, err := c.graph.AppMemberGroups(ctx, c.graphToken, target)
	if err != nil {
		c.logger.WarnContext(ctx, "SAML group overage: Microsoft Graph did not list the groups", "provider", c.name, "error", err)
		return groupgate.Identity{}, fmt.Errorf("read groups of an overage login at %q from Microsoft Graph: %w", c.name, err)
	}
	resolved := make(map[string][]string, len(attrs)+1)
	for k, v := range attrs {
		if k != claims.EntraGroupsLinkAttribute {
			resolved[k] = v
		}
	}
	groupsAttr := c.claimOpts.GroupsAttribute
	if groupsAttr == "" {
		groupsAttr = claims.DefaultGroupsAttribute
	}
	resolved[groupsAttr] = groups
	opts := c.claimOpts
	// Graph lists one object ID per value; nothing to split.
	opts.Delimiter = ""
	c.logger.InfoContext(ctx, "SAML group overage: groups read from Microsoft Graph", "provider", c.name, "groups", len(groups))
	return claims.FromSAML(c.name, nameID, resolved, opts)
}

func firstNonBlank(vs []string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// Metadata returns the SP metadata document: entity ID, ACS (HTTP-POST),
// SLO when configured, and the SP certificate for signing and encryption.
func (c *Connector) Metadata() ([]byte, error) {
	sp := c.serviceProvider(c.idp.Load(), c.now())
	var (
		ed  any
		err error
	)
	if c.cfg.SLOURL != "" {
		// gosaml2 reads this argument as a time.Duration, not hours.
		ed, err = sp.MetadataWithSLO(int64(7 * 24 * time.Hour))
	} else {
		ed, err = sp.Metadata()
	}
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "cannot build the SP metadata")
	}
	b, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "cannot encode the SP metadata")
	}
	return append([]byte(xml.Header), b...), nil
}
