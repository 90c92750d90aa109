package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/groupgate/groupgate"
)

// Defaults of Config.
const (
	DefaultBaseURL       = "https://graph.microsoft.com"
	DefaultMaxGroups     = 5000
	DefaultMaxPages      = 50
	DefaultTimeout       = 15 * time.Second
	DefaultMaxBodyBytes  = 4 << 20
	DefaultMaxRetryAfter = 5 * time.Second
	// retries is how often one page is asked again after a 429 or a
	// transient 5xx before the login is refused.
	retries = 2
	// pageSize is $top of the listing; Graph caps directory listings at 999.
	pageSize = 999
)

// Config bounds the Graph calls of one provider.
type Config struct {
	// BaseURL is the Graph service root without the version, such as
	// https://graph.microsoft.com or a national cloud's
	// (https://graph.microsoft.us); DefaultBaseURL when empty. The access
	// token is only ever sent to this origin.
	BaseURL string
	// MaxGroups refuses a user in more groups (DefaultMaxGroups): a
	// truncated list would silently take roles away.
	MaxGroups int
	// MaxPages bounds the @odata.nextLink pages followed (DefaultMaxPages).
	MaxPages int
	// Timeout bounds the whole fetch, every page and retry included
	// (DefaultTimeout).
	Timeout time.Duration
	// MaxBodyBytes bounds one page's body (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxRetryAfter is the longest Retry-After that is waited for
	// (DefaultMaxRetryAfter); a longer one refuses the login at once.
	MaxRetryAfter time.Duration
}

// Option sets an optional dependency of New.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: 30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithLogger sets the logger (slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithWait replaces how a Retry-After is waited for (a timer that stops
// with ctx), so tests need not sleep.
func WithWait(wait func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.wait = wait }
}

// Client reads group memberships from Microsoft Graph. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	base   *url.URL
	http   *http.Client
	logger *slog.Logger
	wait   func(ctx context.Context, d time.Duration) error
}

// New returns a Client; Invalid when the base URL is not an absolute
// http(s) URL.
func New(cfg Config, opts ...Option) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") || base.RawQuery != "" {
		return nil, groupgate.Errorf(groupgate.Invalid, "graph URL %q is not an absolute http(s) URL without a query", cfg.BaseURL)
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = DefaultMaxRetryAfter
	}
	c := &Client{cfg: cfg, base: base, http: &http.Client{Timeout: 30 * time.Second}, logger: slog.Default(), wait: sleep}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the configured Graph service root.
func (c *Client) BaseURL() string { return c.base.String() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Target names whose groups to read.
type Target struct {
	// endpoint is the overage link the IdP sent, if any.
	endpoint string
	// user is a user object ID; "" with me set means the token's user.
	user string
	me   bool
}

// Me reads the groups of the user the (delegated) access token is for.
func Me() Target { return Target{me: true} }

// User reads the groups of the user with object ID id (an application
// token with User.Read.All or GroupMember.Read.All is needed).
func User(id string) Target { return Target{user: id} }

// Link reads the groups the IdP's overage link names: the
// _claim_sources endpoint of an ID token, or the SAML groups.link
// attribute. A link on the configured Graph origin is called as it is
// (getMemberObjects, POST); any other (the retired graph.windows.net) is
// reduced to the user ID it names, whose groups are then listed on the
// configured origin, so the token never leaves it. orMe says what to do
// with a link that names no user: read the token's own user (OIDC), or
// refuse (SAML, whose application token has no user).
func Link(endpoint string, orMe bool) Target { return Target{endpoint: endpoint, me: orMe} }

// OrUser names the user whose groups to list when the link names none
// (SAML: Entra's objectidentifier attribute).
func (t Target) OrUser(id string) Target {
	if id != "" {
		t.user, t.me = id, false
	}
	return t
}

// request is one call: the first page, or a nextLink.
type request struct {
	method string
	url    *url.URL
	body   []byte
}

// first resolves t into the first call.
func (c *Client) first(t Target) (request, error) {
	user, me := t.user, t.me
	if t.endpoint != "" {
		u, err := url.Parse(t.endpoint)
		if err == nil && c.sameOrigin(u) && isMemberAction(u.Path) {
			// The action's body (Graph v1.0 directoryObject:
			// getMemberObjects): every group, security-enabled or not, as
			// the token's groups claim would have listed.
			return request{method: http.MethodPost, url: u, body: []byte(`{"securityEnabledOnly":false}`)}, nil
		}
		if err == nil {
			if id := userFromLink(u.Path); id != "" {
				user, me = id, false
			}
		}
	}
	var who string
	switch {
	case user != "":
		who = "users/" + url.PathEscape(user)
	case me:
		who = "me"
	default:
		return request{}, groupgate.Errorf(groupgate.Forbidden,
			"the identity provider's group link names no user whose groups Microsoft Graph could list")
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1.0/" + who + "/transitiveMemberOf/microsoft.graph.group"
	u.RawPath = ""
	u.RawQuery = "$select=id&$top=" + strconv.Itoa(pageSize)
	return request{method: http.MethodGet, url: &u}, nil
}

func isMemberAction(p string) bool {
	return strings.HasSuffix(p, "/getMemberObjects") || strings.HasSuffix(p, "/getMemberGroups")
}

// userFromLink returns the user ID of a link path such as
// /{tenant}/users/{id}/getMemberObjects, or "".
func userFromLink(p string) string {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	for i := 0; i+2 < len(seg); i++ {
		if seg[i] == "users" && isMemberAction("/"+seg[i+2]) && validUserID(seg[i+1]) {
			return seg[i+1]
		}
	}
	return ""
}

func validUserID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func (c *Client) sameOrigin(u *url.URL) bool {
	return u.Scheme == c.base.Scheme && strings.EqualFold(u.Host, c.base.Host) &&
		strings.HasPrefix(u.Path, c.base.Path+"/")
}

// MemberGroups returns the object IDs of every group the target is a
// member of, transitively, sorted and without duplicates, read with the
// bearer token.
//
// Errors are *groupgate.Error, never a partial list: Unavailable when
// Graph cannot be reached, keeps answering 429 or 5xx, answers something
// unreadable or too large, or the time runs out; Forbidden when Graph
// refuses the token (401, 403) or the user is in more groups than
// MaxGroups.
func (c *Client) MemberGroups(ctx context.Context, token string, t Target) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.first(t)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for page := 0; ; page++ {
		if page == c.cfg.MaxPages {
			return nil, groupgate.Errorf(groupgate.Forbidden,
				"you are in more groups than groupgate reads from Microsoft Graph (more than %d pages); ask the administrator to assign fewer groups to this application", c.cfg.MaxPages)
		}
		p, err := c.fetch(ctx, token, req)
		if err != nil {
			return nil, err
		}
		for _, id := range p.IDs {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		if len(out) > c.cfg.MaxGroups {
			return nil, groupgate.Errorf(groupgate.Forbidden,
				"you are in more than %d groups, more than groupgate reads from Microsoft Graph; ask the administrator to assign fewer groups to this application", c.cfg.MaxGroups)
		}
		if p.NextLink == "" {
			break
		}
		next, err := url.Parse(p.NextLink)
		if err != nil || !c.sameOrigin(next) {
			return nil, groupgate.Errorf(groupgate.Unavailable,
				"Microsoft Graph pointed the next page of your groups elsewhere than %s; try again later", c.base.Host)
		}
		// OData next links (OData v4 protocol §11.2.5.7) are followed with
		// GET whatever the first request was.
		req = request{method: http.MethodGet, url: next}
	}
	slices.Sort(out)
	return out, nil
}

// graphError is Graph's error body (Graph REST "Error responses").
type graphError struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

// fetch makes one call, retrying 429 and transient 5xx answers as their
// Retry-After asks.
func (c *Client) fetch(ctx context.Context, token string, r request) (Page, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), bytes.NewReader(r.body))
		if err != nil {
			return Page{}, groupgate.WrapError(groupgate.Internal, err, "cannot build the Microsoft Graph request")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if r.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return Page{}, groupgate.WrapError(groupgate.Unavailable, err,
				"Microsoft Graph cannot be reached to read your groups; try again later")
		}
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
		resp.Body.Close()
		status := resp.StatusCode
		switch {
		case status == http.StatusOK:
			if readErr != nil {
				return Page{}, groupgate.WrapError(groupgate.Unavailable, readErr, "Microsoft Graph's answer was cut off; try again later")
			}
			if int64(len(body)) > c.cfg.MaxBodyBytes {
				return Page{}, groupgate.Errorf(groupgate.Unavailable, "Microsoft Graph's answer is larger than groupgate accepts (%d bytes)", c.cfg.MaxBodyBytes)
			}
			p, err := ParsePage(body)
			if err != nil {
				return Page{}, groupgate.WrapError(groupgate.Unavailable, err, "Microsoft Graph's answer about your groups is unreadable; try again later")
			}
			return p, nil
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return Page{}, groupgate.WrapError(groupgate.Forbidden, fmt.Errorf("graph answered %d %s", status, errorCode(body)),
				"Microsoft Graph refused to list your groups (HTTP %d); ask the administrator to grant groupgate's application the GroupMember.Read.All permission", status)
		case status == http.StatusTooManyRequests || status >= 500:
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now(), attempt)
			if attempt >= retries || !ok || wait > c.cfg.MaxRetryAfter {
				return Page{}, groupgate.WrapError(groupgate.Unavailable, fmt.Errorf("graph answered %d %s", status, errorCode(body)),
					"Microsoft Graph is busy or failing (HTTP %d) and your groups cannot be read; try again later", status)
			}
			c.logger.InfoContext(ctx, "Microsoft Graph asked to retry", "status", status, "wait", wait, "attempt", attempt+1)
			if err := c.wait(ctx, wait); err != nil {
				return Page{}, groupgate.WrapError(groupgate.Unavailable, err, "Microsoft Graph took too long to list your groups; try again later")
			}
		default:
			return Page{}, groupgate.WrapError(groupgate.Unavailable, fmt.Errorf("graph answered %d %s", status, errorCode(body)),
				"Microsoft Graph could not list your groups (HTTP %d)", status)
		}
	}
}

// errorCode is the code of a Graph error body, for logs: never the
// message, which may quote the request.
func errorCode(body []byte) string {
	var e graphError
	if json.Unmarshal(body, &e) != nil || len(e.Error.Code) > 64 {
		return ""
	}
	return e.Error.Code
}

// retryAfter reads Retry-After (RFC 9110 §10.2.3: seconds or an HTTP
// date); without one, a short backoff. ok is false for a value that is
// neither.
func retryAfter(v string, now time.Time, attempt int) (time.Duration, bool) {
	if v == "" {
		return time.Duration(200<<attempt) * time.Millisecond, true
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// ClientCredentials is an application's credential at Entra ID, for the
// OAuth 2.0 client credentials grant (RFC 6749 §4.4) that reads groups
// when no user token is at hand (SAML).
type ClientCredentials struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// TokenURL defaults to
	// https://login.microsoftonline.com/{TenantID}/oauth2/v2.0/token.
	TokenURL string
}

// TokenSource returns a cached source of application tokens for this
// client's Graph, with scope {BaseURL}/.default.
func (c *Client) TokenSource(cc ClientCredentials) oauth2.TokenSource {
	tokenURL := cc.TokenURL
	if tokenURL == "" {
		tokenURL = "https://login.microsoftonline.com/" + url.PathEscape(cc.TenantID) + "/oauth2/v2.0/token"
	}
	cfg := clientcredentials.Config{
		ClientID:     cc.ClientID,
		ClientSecret: cc.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       []string{c.base.String() + "/.default"},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	// The context only carries the HTTP client; each token request is
	// bounded by that client's timeout.
	return cfg.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, c.http))
}

// AppMemberGroups is MemberGroups with an application token from ts.
// Unavailable when no token can be had.
func (c *Client) AppMemberGroups(ctx context.Context, ts oauth2.TokenSource, t Target) ([]string, error) {
	tok, err := ts.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The body may echo request details; keep only the status.
			err = fmt.Errorf("token endpoint answered %d %s", re.Response.StatusCode, re.ErrorCode)
		}
		return nil, groupgate.WrapError(groupgate.Unavailable, err,
			"groupgate cannot get a Microsoft Graph token to read your groups; try again later")
	}
	return c.MemberGroups(ctx, tok.AccessToken, t)
}
