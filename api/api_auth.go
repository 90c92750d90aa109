package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	"github.com/groupgate/groupgate/sync"
)

// apiTokenPrefix starts every API token (see cmd/groupgate's token
// command); anything else is refused without a store lookup.
const apiTokenPrefix = sync.APITokenPrefix

// tokenTouchEvery throttles TouchToken: last_used is precise to a minute,
// so a busy token does not write at every call.
const tokenTouchEvery = time.Minute

// apiCaller is the authenticated caller of one API request, carried in the
// request context by authenticate.
type apiCaller struct {
	User    groupgate.User
	Admin   bool   // instance admin (config admins)
	TokenID string // empty for cookie authentication
	// TokenExpiresAt is when the caller's token expires (zero: never, or
	// cookie authentication); tokens it creates cannot outlive it.
	TokenExpiresAt time.Time
}

func (c *apiCaller) actor() string { return "user:" + c.User.ID }

type apiCallerKey struct{}

// apiCallerFrom returns the caller authenticate put in ctx. A handler
// reached without it is a wiring bug, answered as unauthenticated.
func apiCallerFrom(ctx context.Context) (*apiCaller, error) {
	c, ok := ctx.Value(apiCallerKey{}).(*apiCaller)
	if !ok {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "authentication required")
	}
	return c, nil
}

// authenticate is HTTP middleware rather than a Connect interceptor: it
// needs the request's cookies, Origin and Sec-Fetch-Site, and it refuses an
// unauthenticated call before the body is read. ew writes the refusal in
// the protocol the client speaks (Connect, gRPC or gRPC-Web).
func (a *API) authenticate(ew *connect.ErrorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.callerOf(r)
		if err != nil {
			_ = ew.Write(w, r, a.toConnectError(r.Context(), r.URL.Path, err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiCallerKey{}, c)))
	})
}

// callerOf authenticates r by bearer token, else by session cookie.
func (a *API) callerOf(r *http.Request) (*apiCaller, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, groupgate.Errorf(groupgate.Unauthenticated, "authorization must be a bearer token")
		}
		return a.tokenCaller(ctx, strings.TrimSpace(token))
	}
	if a.cookie == nil {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "authentication required: send Authorization: Bearer <token>")
	}
	userID, ok, err := a.cookie(r)
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	if !ok {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "authentication required: send Authorization: Bearer <token> or sign in")
	}
	if err := a.checkCSRF(r); err != nil {
		return nil, err
	}
	u, err := a.st.GetUser(ctx, userID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Unauthenticated, err, "session user no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("load session user %s: %w", userID, err)
	}
	return a.newCaller(u, "")
}

// tokenCaller looks the token up by the SHA-256 of the whole string.
func (a *API) tokenCaller(ctx context.Context, token string) (*apiCaller, error) {
	if !strings.HasPrefix(token, apiTokenPrefix) {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "invalid token")
	}
	sum := sha256.Sum256([]byte(token))
	t, err := a.st.GetTokenByHash(ctx, groupgate.TokenAPI, sum[:])
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "invalid token")
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	// The lookup compared hashes in the database; compare again in
	// constant time so that no backend's comparison can be relied upon.
	if subtle.ConstantTimeCompare(t.Hash, sum[:]) != 1 {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "invalid token")
	}
	now := a.now()
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "token expired")
	}
	u, err := a.st.GetUser(ctx, t.UserID)
	if groupgate.IsCode(err, groupgate.NotFound) {
		return nil, groupgate.WrapError(groupgate.Unauthenticated, err, "invalid token")
	}
	if err != nil {
		return nil, fmt.Errorf("load token owner %s: %w", t.UserID, err)
	}
	c, err := a.newCaller(u, t.ID)
	if err != nil {
		return nil, err
	}
	c.TokenExpiresAt = t.ExpiresAt
	if a.touches.due(t.ID, now) {
		// A failed touch loses only a last-used time: log, do not refuse.
		if err := a.st.TouchToken(ctx, t.ID, now); err != nil {
			a.log.WarnContext(ctx, "record token use failed", "token", t.ID, "err", err)
		}
	}
	return c, nil
}

// newCaller makes u the caller. u is an instance admin when an admins:
// entry is its verified email (User.VerifiedEmail: written only by a login
// whose IdP said email_verified or whose provider vouches, never by SCIM
// or the API) spelled alike up to ASCII case, and the account's current
// email is still that address. So a SCIM client rewriting an email, or an
// IdP asserting an address it did not verify, or a look-alike spelling
// (Kelvin sign, fullwidth letters), makes nobody an admin; SCIM moving the
// email away does end it.
func (a *API) newCaller(u groupgate.User, tokenID string) (*apiCaller, error) {
	if !u.Active {
		return nil, groupgate.Errorf(groupgate.Unauthenticated, "account deactivated")
	}
	return &apiCaller{User: u, Admin: a.isAdmin(u), TokenID: tokenID}, nil
}

func (a *API) isAdmin(u groupgate.User) bool { return a.admins.IsAdmin(u) }

// checkCSRF guards cookie-authenticated calls: a cookie is an ambient
// credential that browsers attach to cross-site requests, and that
// forward-auth upstreams may see. Every such call, reads included, must
// come from a browser page at groupgate's own origin (or an origin the
// wiring allowed, WithAllowedOrigins):
//   - a Connect-Protocol-Version (Connect) or X-Grpc-Web (gRPC-Web) header:
//     a cross-site page can only send such a header after a CORS
//     preflight, which this server never approves, and an HTML form cannot
//     send it at all;
//   - an Origin header naming this origin or an allowed one. Browsers send
//     Origin on every POST (Fetch standard, "append a request Origin
//     header"), which every call from a page is; a call without one is not
//     from a browser page, and "null" (sandboxed frames, data: URLs) is
//     no origin;
//   - Sec-Fetch-Site, when the browser sends it, agreeing: "same-origin"
//     for this origin (Fetch Metadata, W3C).
//
// Bearer tokens are not ambient credentials and need none of this.
func (a *API) checkCSRF(r *http.Request) error {
	if r.Header.Get("Connect-Protocol-Version") == "" && r.Header.Get("X-Grpc-Web") == "" {
		return groupgate.Errorf(groupgate.Forbidden,
			"cookie-authenticated calls need the Connect-Protocol-Version header (cross-site request protection)")
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return groupgate.Errorf(groupgate.Forbidden,
			"cookie-authenticated calls are accepted only from groupgate's own pages (no Origin header); use a bearer token")
	}
	if a.allowedOrigin(origin) {
		return nil
	}
	if !sameOrigin(r, origin) {
		return groupgate.Errorf(groupgate.Forbidden, "cross-origin cookie-authenticated call refused")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return groupgate.Errorf(groupgate.Forbidden, "cross-site cookie-authenticated call refused")
	}
	return nil
}

// allowedOrigin: one of WithAllowedOrigins.
func (a *API) allowedOrigin(origin string) bool {
	_, ok := a.origins[strings.ToLower(strings.TrimRight(origin, "/"))]
	return ok
}

// sameOrigin: origin names the host the request was sent to.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// tokenTouches remembers when each token's use was last written.
type tokenTouches struct {
	mu   stdsync.Mutex
	last map[string]time.Time
}

// maxTokenTouches bounds the throttle's memory; old entries go first.
const maxTokenTouches = 10_000

func newTokenTouches() *tokenTouches { return &tokenTouches{last: map[string]time.Time{}} }

// due reports whether a use of id at now should be written, and if so
// records it.
func (t *tokenTouches) due(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[id]; ok && now.Sub(last) < tokenTouchEvery {
		return false
	}
	if len(t.last) >= maxTokenTouches {
		for k, v := range t.last {
			if now.Sub(v) >= tokenTouchEvery {
				delete(t.last, k)
			}
		}
	}
	t.last[id] = now
	return true
}

// Authority. Every decision below is made by sync's helpers on the
// caller's resolved access; instance admins act as OWNER everywhere.

func (a *API) callerAccess(ctx context.Context, c *apiCaller) (sync.Access, error) {
	acc, err := a.syncer.Resolve(ctx, c.User.ID)
	if err != nil {
		return sync.Access{}, fmt.Errorf("resolve access of %s: %w", c.User.ID, err)
	}
	return acc, nil
}

// callerOrgRole is the caller's effective role on the organization, OWNER
// for instance admins.
func (a *API) callerOrgRole(ctx context.Context, c *apiCaller, orgID string) (groupgate.OrgRole, error) {
	if c.Admin {
		return groupgate.OrgRoleOwner, nil
	}
	acc, err := a.callerAccess(ctx, c)
	if err != nil {
		return "", err
	}
	return acc.OrgRole(orgID), nil
}

// requireOrgAdmin: ADMIN or OWNER of the organization.
func (a *API) requireOrgAdmin(ctx context.Context, c *apiCaller, org groupgate.Organization) error {
	if c.Admin {
		return nil
	}
	acc, err := a.callerAccess(ctx, c)
	if err != nil {
		return err
	}
	if !sync.CanAdminOrg(acc, org.ID) {
		return groupgate.Errorf(groupgate.Forbidden, "you need the ADMIN or OWNER role on organization %q", org.Name)
	}
	return nil
}

// requireRepoAdmin: ADMIN on the repository, or ADMIN/OWNER of its
// organization.
func (a *API) requireRepoAdmin(ctx context.Context, c *apiCaller, repo groupgate.Repository) error {
	if c.Admin {
		return nil
	}
	acc, err := a.callerAccess(ctx, c)
	if err != nil {
		return err
	}
	if !sync.CanAdminRepo(acc, repo) {
		return groupgate.Errorf(groupgate.Forbidden, "you need the ADMIN role on repository %q", repo.FullName())
	}
	return nil
}

// requireOrgRole: any role on the organization (listing its members and
// groups).
func (a *API) requireOrgRole(ctx context.Context, c *apiCaller, org groupgate.Organization) error {
	r, err := a.callerOrgRole(ctx, c, org.ID)
	if err != nil {
		return err
	}
	if sync.OrgRoleRank(r) == 0 {
		return groupgate.Errorf(groupgate.Forbidden, "you have no role on organization %q", org.Name)
	}
	return nil
}

// requireRepoRole: any role on the repository, directly or through its
// organization.
func (a *API) requireRepoRole(ctx context.Context, c *apiCaller, repo groupgate.Repository) error {
	if c.Admin {
		return nil
	}
	acc, err := a.callerAccess(ctx, c)
	if err != nil {
		return err
	}
	if sync.RepoRoleRank(acc.RepoRole(repo)) == 0 && sync.OrgRoleRank(acc.OrgRole(repo.OrganizationID)) == 0 {
		return groupgate.Errorf(groupgate.Forbidden, "you have no role on repository %q", repo.FullName())
	}
	return nil
}

// requireInstanceAdmin: one of the configured admins.
func requireInstanceAdmin(c *apiCaller) error {
	if !c.Admin {
		return groupgate.Errorf(groupgate.Forbidden, "only instance admins may do this")
	}
	return nil
}

// apiAuthnService answers who the caller is.
type apiAuthnService struct {
	api *API
	registryv1alpha1connect.UnimplementedAuthnServiceHandler
}

func (s *apiAuthnService) GetCurrentUser(ctx context.Context, _ *connect.Request[v1.GetCurrentUserRequest]) (*connect.Response[v1.GetCurrentUserResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.GetCurrentUserResponse{User: apiUser(c.User)}), nil
}

// GetCurrentUserSubject answers the subject the caller's identity provider
// knows them by: that of their first linked login (the account's origin;
// later links were joined to it). A user no login has reached yet (made by
// SCIM or the CLI) has none: failed_precondition.
func (s *apiAuthnService) GetCurrentUserSubject(ctx context.Context, _ *connect.Request[v1.GetCurrentUserSubjectRequest]) (*connect.Response[v1.GetCurrentUserSubjectResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := s.api.st.ListIdentities(ctx, c.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list identities of %s: %w", c.User.ID, err)
	}
	if len(ids) == 0 {
		return nil, groupgate.Errorf(groupgate.FailedPrecondition, "user %s has not logged in through an identity provider", c.User.ID)
	}
	first := slices.MinFunc(ids, func(a, b groupgate.UserIdentity) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return connect.NewResponse(&v1.GetCurrentUserSubjectResponse{Subject: first.Subject}), nil
}

// apiUser is u as the BSR shows a user; groupgate's accounts are personal
// ones, machine accounts included (the BSR's user types are not tracked).
func apiUser(u groupgate.User) *v1.User {
	return &v1.User{
		Id:          u.ID,
		CreateTime:  apiTime(u.CreatedAt),
		UpdateTime:  apiTime(u.UpdatedAt),
		Username:    u.UserName,
		Deactivated: !u.Active,
		UserType:    v1.UserType_USER_TYPE_PERSONAL,
	}
}

// ggAuthnService is groupgate.v1.AuthnService: the caller with email and
// display name, which the BSR's User does not carry.
type ggAuthnService struct{ api *API }

func (s *ggAuthnService) GetCurrentUser(ctx context.Context, _ *connect.Request[gg.GetCurrentUserRequest]) (*connect.Response[gg.GetCurrentUserResponse], error) {
	c, err := apiCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	u := c.User
	return connect.NewResponse(&gg.GetCurrentUserResponse{User: &gg.User{
		Id: u.ID, CreateTime: apiTime(u.CreatedAt), UpdateTime: apiTime(u.UpdatedAt),
		Username: u.UserName, Email: u.Email, DisplayName: u.DisplayName, Deactivated: !u.Active,
	}}), nil
}
