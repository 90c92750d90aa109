package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/groupgate/groupgate"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	gg "github.com/groupgate/groupgate/gen/groupgate/v1"
	ggconnect "github.com/groupgate/groupgate/gen/groupgate/v1/groupgatev1connect"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// Paging and size defaults of the Connect API.
const (
	DefaultBodyLimit   = 1 << 20
	defaultAPIPageSize = 100
	maxAPIPageSize     = 1000
)

// Sessions is what the API needs from the session backend: listing and
// ending a user's live sessions (AdminService).
type Sessions interface {
	ListUserSessions(ctx context.Context, userID string) ([]*session.Record, error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// CookieAuth returns the user signed in by the request's session cookie. ok
// is false when the request carries no usable session; err is for a
// backend that cannot answer (the call then fails closed as unavailable).
// The wiring adapts (*session.Store).Current to it.
type CookieAuth func(r *http.Request) (userID string, ok bool, err error)

// SessionCookieAuth adapts the browser session store to CookieAuth: no
// session is "not signed in", a backend failure stays an error (fail
// closed).
func SessionCookieAuth(s *session.Store) CookieAuth {
	return func(r *http.Request) (string, bool, error) {
		rec, err := s.Current(r)
		switch {
		case groupgate.IsCode(err, groupgate.Unauthenticated):
			return "", false, nil
		case err != nil:
			return "", false, err
		}
		return rec.UserID, true, nil
	}
}

// API serves the Connect API: OrganizationService, RepositoryService,
// AuthnService, TokenService, AccessService and AdminService. It
// authenticates callers and checks authority with sync's helpers; every
// change that moves access goes through the Syncer.
type API struct {
	st        store.Store
	syncer    *sync.Syncer
	sessions  Sessions
	cookie    CookieAuth
	admins    sync.Admins
	origins   map[string]struct{}
	bodyLimit int64
	now       func() time.Time
	log       *slog.Logger
	touches   *tokenTouches
	tokens    TokenPolicy
}

// Option configures an API.
type Option func(*API)

// WithAdmins sets the instance admins by email: they may create
// organizations and act as OWNER of every one. An entry names the account
// whose verified email (the address a login proved; see newCaller) is that
// address, up to ASCII case.
func WithAdmins(emails []string) Option {
	return func(a *API) { a.admins = a.admins.With(emails) }
}

// WithSessions enables AdminService's ListSessions and RevokeSessions.
func WithSessions(s Sessions) Option { return func(a *API) { a.sessions = s } }

// WithCookieAuth accepts the browser session cookie besides bearer
// tokens, for the admin UI.
func WithCookieAuth(f CookieAuth) Option { return func(a *API) { a.cookie = f } }

// WithAllowedOrigins adds origins ("https://admin.example.com") whose
// cookie-authenticated calls are accepted besides same-origin ones.
func WithAllowedOrigins(origins []string) Option {
	return func(a *API) {
		for _, o := range origins {
			a.origins[strings.ToLower(strings.TrimRight(o, "/"))] = struct{}{}
		}
	}
}

// WithBodyLimit bounds a request message (api.body_limit).
func WithBodyLimit(n int64) Option { return func(a *API) { a.bodyLimit = n } }

// WithNow sets the clock (token expiry, last-use throttling).
func WithNow(now func() time.Time) Option { return func(a *API) { a.now = now } }

// WithLogger sets the logger; internal errors are logged with their
// cause, which callers never see.
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// New returns the Connect API over st, writing access changes through
// syncer.
func New(st store.Store, syncer *sync.Syncer, opts ...Option) *API {
	a := &API{
		st:        st,
		syncer:    syncer,
		admins:    sync.NewAdmins(nil),
		origins:   map[string]struct{}{},
		bodyLimit: DefaultBodyLimit,
		tokens:    DefaultTokenPolicy(),
		now:       time.Now,
		log:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(a)
	}
	a.touches = newTokenTouches()
	return a
}

// Mount registers every service on mux under
// /buf.alpha.registry.v1alpha1.<Service>/ (the BSR's) and
// /groupgate.v1.<Service>/ (groupgate's own), each behind authentication.
func (a *API) Mount(mux *http.ServeMux) {
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(int(a.bodyLimit)),
		connect.WithCodec(apiStrictJSON{}),
		connect.WithInterceptors(a.errorInterceptor(), apiNoNUL()),
	}
	ew := connect.NewErrorWriter(opts...)
	mounted := map[string]bool{}
	mount := func(path string, h http.Handler) {
		mounted[path] = true
		mux.Handle(path, onlyServed(ew, a.authenticate(ew, h)))
	}
	mount(registryv1alpha1connect.NewOrganizationServiceHandler(&apiOrgService{api: a}, opts...))
	mount(registryv1alpha1connect.NewRepositoryServiceHandler(&apiRepoService{api: a}, opts...))
	mount(registryv1alpha1connect.NewAuthnServiceHandler(&apiAuthnService{api: a}, opts...))
	mount(registryv1alpha1connect.NewTokenServiceHandler(&apiTokenService{api: a}, opts...))
	mount(registryv1alpha1connect.NewSCIMTokenServiceHandler(&apiSCIMTokenService{api: a}, opts...))
	// groupgate's own services (package groupgate.v1).
	mount(ggconnect.NewAccessServiceHandler(&apiAccessService{api: a}, opts...))
	mount(ggconnect.NewAdminServiceHandler(&apiAdminService{api: a}, opts...))
	mount(ggconnect.NewOrganizationServiceHandler(&apiOrgService{api: a}, opts...))
	mount(ggconnect.NewRepositoryServiceHandler(&ggRepoService{&apiRepoService{api: a}}, opts...))
	mount(ggconnect.NewAuthnServiceHandler(&ggAuthnService{api: a}, opts...))
	mount(ggconnect.NewTokenServiceHandler(&ggTokenService{api: a}, opts...))
	// The rest of the BSR's package is groupgate's too: unimplemented.
	for _, name := range bsrServices {
		if path := "/" + BSRPackage + "." + name + "/"; !mounted[path] {
			mux.Handle(path, unimplemented(ew))
		}
	}
}

// apiStrictJSON replaces connect's JSON codec, which discards unknown
// fields and unknown enum names: "role_override":"REPOSITORY_ROLE_BOSS" or a
// misspelled "role_overide" would then silently map a group with the
// default role. Here both are invalid_argument, naming the problem.
type apiStrictJSON struct{}

func (apiStrictJSON) Name() string { return "json" }

func (apiStrictJSON) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", v)
	}
	return protojson.Marshal(m)
}

func (apiStrictJSON) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("unmarshal into %T: not a protobuf message", v)
	}
	if len(b) == 0 {
		return nil // Connect GET requests of messages without fields
	}
	return protojson.Unmarshal(b, m)
}

// apiErrorCodes is the one table from groupgate error codes to Connect
// codes. A code missing here is Internal.
var apiErrorCodes = map[groupgate.ErrorCode]connect.Code{
	groupgate.NotFound:           connect.CodeNotFound,
	groupgate.Conflict:           connect.CodeAlreadyExists,
	groupgate.Invalid:            connect.CodeInvalidArgument,
	groupgate.FailedPrecondition: connect.CodeFailedPrecondition,
	groupgate.Forbidden:          connect.CodePermissionDenied,
	groupgate.Unauthenticated:    connect.CodeUnauthenticated,
	groupgate.Unavailable:        connect.CodeUnavailable,
	groupgate.ResourceExhausted:  connect.CodeResourceExhausted,
}

// toConnectError turns err into a *connect.Error whose message is safe to
// show: the *groupgate.Error message for known codes, a generic text for
// everything else (the cause is logged, never sent).
func (a *API) toConnectError(ctx context.Context, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	code, ok := apiErrorCodes[groupgate.ErrorCodeOf(err)]
	if !ok {
		a.log.ErrorContext(ctx, "api call failed", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	if code == connect.CodeUnavailable {
		a.log.WarnContext(ctx, "api call failed: dependency unavailable", "procedure", procedure, "err", err)
	}
	return connect.NewError(code, errors.New(groupgate.ErrorMessageOf(err)))
}

// errorInterceptor maps every handler error through the table, so that
// handlers return plain errors.
func (a *API) errorInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if err != nil {
				return nil, a.toConnectError(ctx, req.Spec().Procedure, err)
			}
			return resp, nil
		}
	}
}

// apiNoNUL refuses, as Invalid, a request with a NUL character in any
// string field, however deep: no name, ID or note holds one, PostgreSQL
// cannot store one in text, and SQLite would keep it where C strings and
// log lines cut it. One check here, for every procedure, rather than one
// per field.
func apiNoNUL() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if m, ok := req.Any().(proto.Message); ok {
				if field, found := nulField(m.ProtoReflect()); found {
					return nil, groupgate.Errorf(groupgate.Invalid, "%s contains a NUL character", field)
				}
			}
			return next(ctx, req)
		}
	}
}

// nulField returns the name of the first string field of m holding NUL.
func nulField(m protoreflect.Message) (name string, found bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		check := func(v protoreflect.Value) bool {
			switch fd.Kind() {
			case protoreflect.StringKind:
				if strings.IndexByte(v.String(), 0) >= 0 {
					name, found = string(fd.Name()), true
				}
			case protoreflect.MessageKind, protoreflect.GroupKind:
				if n, ok := nulField(v.Message()); ok {
					name, found = string(fd.Name())+"."+n, true
				}
			}
			return !found
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && check(l.Get(i)); i++ {
			}
		case fd.IsMap():
			// No request message of the API has a map field.
		default:
			check(v)
		}
		return !found
	})
	return name, found
}

// apiPage decodes page_size and page_token. The token is an opaque
// base64url offset; a token that does not decode is Invalid.
func apiPage(size uint32, token string) (store.ListOptions, error) {
	limit := int(size)
	switch {
	case limit == 0:
		limit = defaultAPIPageSize
	case limit > maxAPIPageSize:
		limit = maxAPIPageSize
	}
	offset := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			offset, err = strconv.Atoi(string(b))
		}
		if err != nil || offset < 0 {
			return store.ListOptions{}, groupgate.Errorf(groupgate.Invalid, "invalid page_token")
		}
	}
	return store.ListOptions{Offset: offset, Limit: limit}, nil
}

// apiPageToken encodes the offset of the next page.
func apiPageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset)))
}

// apiFetchPage asks for one item more than the page so that the next token
// is only given when there is a next page.
func apiFetchPage[T any](opts store.ListOptions, list func(store.ListOptions) ([]T, error)) ([]T, string, error) {
	items, err := list(store.ListOptions{Offset: opts.Offset, Limit: opts.Limit + 1})
	if err != nil {
		return nil, "", err
	}
	return apiCutPage(items, opts.Offset, opts.Limit)
}

// apiCutPage trims items fetched from offset to one page of limit.
func apiCutPage[T any](items []T, offset, limit int) ([]T, string, error) {
	if len(items) > limit {
		return items[:limit], apiPageToken(offset + limit), nil
	}
	return items, "", nil
}

// apiSlicePage pages a listing held in memory.
func apiSlicePage[T any](all []T, opts store.ListOptions) ([]T, string) {
	if opts.Offset >= len(all) {
		return []T{}, ""
	}
	page, next, _ := apiCutPage(all[opts.Offset:], opts.Offset, opts.Limit)
	return page, next
}

func apiTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Enum mapping between the Connect API and groupgate roles. An enum number
// the API does not define is Invalid.

// orgRoleWriter is groupgate's WRITER organization role. The BSR's enum has
// no name for it (its MACHINE grants the same access), so requests carry
// the number: 5 in binary, 5 in JSON too ("organization_role":5). Proto3
// enums are open, so a BSR client passes it through unchanged.
const orgRoleWriter v1.OrganizationRole = 5

var (
	apiOrgRoles = map[v1.OrganizationRole]groupgate.OrgRole{
		v1.OrganizationRole_ORGANIZATION_ROLE_UNSPECIFIED: groupgate.OrgRoleUnspecified,
		v1.OrganizationRole_ORGANIZATION_ROLE_OWNER:       groupgate.OrgRoleOwner,
		v1.OrganizationRole_ORGANIZATION_ROLE_ADMIN:       groupgate.OrgRoleAdmin,
		v1.OrganizationRole_ORGANIZATION_ROLE_MEMBER:      groupgate.OrgRoleMember,
		v1.OrganizationRole_ORGANIZATION_ROLE_MACHINE:     groupgate.OrgRoleMachine,
		orgRoleWriter: groupgate.OrgRoleWriter,
	}
	apiRepoRoles = map[v1.RepositoryRole]groupgate.RepoRole{
		v1.RepositoryRole_REPOSITORY_ROLE_UNSPECIFIED:   groupgate.RepoRoleUnspecified,
		v1.RepositoryRole_REPOSITORY_ROLE_ADMIN:         groupgate.RepoRoleAdmin,
		v1.RepositoryRole_REPOSITORY_ROLE_WRITE:         groupgate.RepoRoleWrite,
		v1.RepositoryRole_REPOSITORY_ROLE_LIMITED_WRITE: groupgate.RepoRoleLimitedWrite,
		v1.RepositoryRole_REPOSITORY_ROLE_READ:          groupgate.RepoRoleRead,
	}
)

// apiOrgRole maps an OrganizationRole; UNSPECIFIED is "" (the default, or
// "clear the override"). MACHINE stays MACHINE: sync ranks it as WRITER.
func apiOrgRole(r v1.OrganizationRole) (groupgate.OrgRole, error) {
	role, ok := apiOrgRoles[r]
	if !ok {
		return "", groupgate.Errorf(groupgate.Invalid, "unknown organization role %d", int32(r))
	}
	return role, nil
}

// apiRepoRole maps a RepositoryRole. OWNER is refused: the owner of a
// repository is its parent organization.
func apiRepoRole(r v1.RepositoryRole) (groupgate.RepoRole, error) {
	if r == v1.RepositoryRole_REPOSITORY_ROLE_OWNER {
		return "", sync.ValidateRepoOverride(groupgate.RepoRoleOwner)
	}
	role, ok := apiRepoRoles[r]
	if !ok {
		return "", groupgate.Errorf(groupgate.Invalid, "unknown repository role %d", int32(r))
	}
	return role, nil
}

func apiOrgRoleEnum(r groupgate.OrgRole) v1.OrganizationRole {
	for k, v := range apiOrgRoles {
		if v == r {
			return k
		}
	}
	return v1.OrganizationRole_ORGANIZATION_ROLE_UNSPECIFIED
}

func apiRepoRoleEnum(r groupgate.RepoRole) v1.RepositoryRole {
	if r == groupgate.RepoRoleOwner {
		return v1.RepositoryRole_REPOSITORY_ROLE_OWNER
	}
	for k, v := range apiRepoRoles {
		if v == r {
			return k
		}
	}
	return v1.RepositoryRole_REPOSITORY_ROLE_UNSPECIFIED
}

func apiOrgSources(ss []sync.OrgSource) []*gg.RoleSource {
	out := make([]*gg.RoleSource, 0, len(ss))
	for _, s := range ss {
		out = append(out, apiRoleSource(s.Kind, s.Group, s.MappingID, string(s.Role), s.NoMappedGroup))
	}
	return out
}

func apiRepoSources(ss []sync.RepoSource) []*gg.RoleSource {
	out := make([]*gg.RoleSource, 0, len(ss))
	for _, s := range ss {
		out = append(out, apiRoleSource(s.Kind, s.Group, s.MappingID, string(s.Role), s.NoMappedGroup))
	}
	return out
}

func apiRoleSource(kind sync.SourceKind, group, mappingID, role string, noMappedGroup bool) *gg.RoleSource {
	k := gg.RoleSource_KIND_GROUP
	switch kind {
	case sync.SourceManual:
		k = gg.RoleSource_KIND_MANUAL
	case sync.SourceOrgBase:
		k = gg.RoleSource_KIND_ORG_BASE
	}
	return &gg.RoleSource{Kind: k, GroupName: group, MappingId: mappingID, Role: role, NoMappedGroup: noMappedGroup}
}
