package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
)

// Every method returns *groupgate.Error codes: NotFound for a missing row,
// Conflict for a uniqueness violation, Invalid for a value the schema
// refuses (for example a repository whose organization does not exist),
// Unavailable when the database cannot be reached, Internal otherwise.

// ListOptions pages a listing. Offset is 0-based; Limit 0 means no limit.
type ListOptions struct {
	Offset int
	Limit  int
}

// UserStore keeps users and the provider identities linked to them.
type UserStore interface {
	// CreateUser stores u with a new ID; Conflict when userName
	// (case-insensitive) or externalId is taken. Emails may repeat.
	CreateUser(ctx context.Context, u groupgate.User) (groupgate.User, error)
	GetUser(ctx context.Context, id string) (groupgate.User, error)
	// GetUserByUserName matches case-insensitively.
	GetUserByUserName(ctx context.Context, userName string) (groupgate.User, error)
	// ListUsersByEmail returns every user whose email has the key
	// groupgate.NormalizeEmail(email) (stored beside the email at every
	// write, computed in Go only), by creation then ID; none, and no
	// error, for an empty email. Emails are not unique.
	ListUsersByEmail(ctx context.Context, email string) ([]groupgate.User, error)
	GetUserByExternalID(ctx context.Context, externalID string) (groupgate.User, error)
	// GetUserByIdentity finds the user linked to provider's subject.
	GetUserByIdentity(ctx context.Context, provider, subject string) (groupgate.User, error)
	// UpdateUser runs fn on the current row inside a transaction and stores
	// the result; ID, CreatedAt, UpdatedAt and Version are managed here.
	UpdateUser(ctx context.Context, id string, fn func(*groupgate.User) error) (groupgate.User, error)
	// DeleteUser removes the user with their identities, group set, manual
	// roles and API tokens.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers orders by creation then ID, a stable order for paging.
	ListUsers(ctx context.Context, opts ListOptions) ([]groupgate.User, error)
	CountUsers(ctx context.Context) (int, error)
	// LinkIdentity links provider's subject to userID; Conflict when it is
	// linked to another user, nil when already linked to this one.
	LinkIdentity(ctx context.Context, userID, provider, subject string) error
	ListIdentities(ctx context.Context, userID string) ([]groupgate.UserIdentity, error)
}

// GroupStore keeps SCIM groups. Group names are unique, case-sensitively,
// as IdPs send them in tokens.
type GroupStore interface {
	CreateGroup(ctx context.Context, g groupgate.Group) (groupgate.Group, error)
	GetGroup(ctx context.Context, id string) (groupgate.Group, error)
	GetGroupByName(ctx context.Context, name string) (groupgate.Group, error)
	GetGroupByExternalID(ctx context.Context, externalID string) (groupgate.Group, error)
	UpdateGroup(ctx context.Context, id string, fn func(*groupgate.Group) error) (groupgate.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	ListGroups(ctx context.Context, opts ListOptions) ([]groupgate.Group, error)
}

// GroupSetStore keeps each user's current group memberships.
type GroupSetStore interface {
	// GetGroupSet returns the user's memberships ordered by group then
	// source; NotFound when the user does not exist.
	GetGroupSet(ctx context.Context, userID string) (groupgate.GroupSet, error)
	// UpdateGroupSet runs fn on the current set inside a transaction that
	// locks the user, and replaces the set by fn's result. Concurrent calls
	// for one user are serialized: no update is lost.
	UpdateGroupSet(ctx context.Context, userID string, fn func(groupgate.GroupSet) (groupgate.GroupSet, error)) (groupgate.GroupSet, error)
	// ListGroupMembers returns the IDs of users with group in their set,
	// sorted.
	ListGroupMembers(ctx context.Context, group string) ([]string, error)
}

// BatchReader reads what role resolution needs for many users at once: one
// statement per call whatever the number of users, where the per-user
// methods cost a round trip each. Every ID is bound as one array parameter,
// so callers may pass thousands; they should still bound a call (a few
// thousand IDs) to bound its memory.
type BatchReader interface {
	// GetGroupSets returns the group set of every existing user of
	// userIDs, each ordered like GetGroupSet's; a user without groups maps
	// to an empty set. Unknown IDs are absent, not an error.
	GetGroupSets(ctx context.Context, userIDs []string) (map[string]groupgate.GroupSet, error)
	// ListOrgMembersOfUsers returns the manual organization roles of the
	// users, ordered by user ID then organization ID.
	ListOrgMembersOfUsers(ctx context.Context, userIDs []string) ([]groupgate.OrgMember, error)
	// ListRepoContributorsOfUsers returns the manual repository roles of
	// the users, ordered by user ID then repository ID.
	ListRepoContributorsOfUsers(ctx context.Context, userIDs []string) ([]groupgate.RepoContributor, error)
	// ListBaseRoleRepositories returns every repository of those of
	// orgIDs that have a repository base role, with that role, ordered by
	// organization ID then repository name and ID. Organizations without
	// a base role or without repositories, and unknown IDs, are absent.
	ListBaseRoleRepositories(ctx context.Context, orgIDs []string) ([]BaseRoleRepository, error)
	// GetUserGrants reads what resolving one user's access needs, in one
	// round trip where the backend can (a login resolves one user, and
	// its latency was one round trip per read, issue 15): the group set
	// as GetGroupSet returns it, the mappings of the groups in it as
	// MappingsForGroups of its names, the manual roles as
	// ListUserOrgMembers and ListUserRepoContributors, and the
	// repositories under a base role of the organizations these name.
	// NotFound when the user does not exist.
	GetUserGrants(ctx context.Context, userID string) (UserGrants, error)
}

// UserGrants is what GetUserGrants reads: everything that can give one
// user a role.
type UserGrants struct {
	Groups           groupgate.GroupSet
	OrgMappings      []groupgate.OrgMapping
	RepoMappings     []groupgate.RepoMapping
	OrgMembers       []groupgate.OrgMember
	RepoContributors []groupgate.RepoContributor
	// BaseRoleRepositories is what ListBaseRoleRepositories returns for
	// the organizations the grants above name, directly or as the owner
	// of a repository.
	BaseRoleRepositories []BaseRoleRepository
}

// BaseRoleRepository is a repository with its organization's repository
// base role.
type BaseRoleRepository struct {
	Repository groupgate.Repository
	BaseRole   groupgate.RepoRole
}

// OrganizationStore keeps organizations and their repositories.
type OrganizationStore interface {
	// CreateOrganization: Conflict when the name is taken
	// (case-insensitive).
	CreateOrganization(ctx context.Context, o groupgate.Organization) (groupgate.Organization, error)
	GetOrganization(ctx context.Context, id string) (groupgate.Organization, error)
	GetOrganizationByName(ctx context.Context, name string) (groupgate.Organization, error)
	ListOrganizations(ctx context.Context, opts ListOptions) ([]groupgate.Organization, error)
	// SetOrganizationRepositoryBaseRole changes the organization's
	// repository base role: NotFound for an unknown organization, Invalid
	// for OWNER or an unknown role (unspecified clears it).
	SetOrganizationRepositoryBaseRole(ctx context.Context, id string, role groupgate.RepoRole) error
	// DeleteOrganization removes the organization with its repositories,
	// mappings and manual roles.
	DeleteOrganization(ctx context.Context, id string) error
}

// RepositoryStore keeps repositories, each owned by an organization.
type RepositoryStore interface {
	// CreateRepository: Invalid when the organization does not exist,
	// Conflict when the organization already has the name.
	CreateRepository(ctx context.Context, r groupgate.Repository) (groupgate.Repository, error)
	GetRepository(ctx context.Context, id string) (groupgate.Repository, error)
	GetRepositoryByFullName(ctx context.Context, orgName, repoName string) (groupgate.Repository, error)
	ListRepositories(ctx context.Context, organizationID string, opts ListOptions) ([]groupgate.Repository, error)
	DeleteRepository(ctx context.Context, id string) error
}

// MappingStore keeps group → role mappings; one mapping per resource and
// group.
type MappingStore interface {
	// AddOrgMapping: Conflict when the organization already maps the group,
	// Invalid when the organization does not exist.
	AddOrgMapping(ctx context.Context, m groupgate.OrgMapping) (groupgate.OrgMapping, error)
	GetOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error)
	UpdateOrgMapping(ctx context.Context, organizationID, group string, fn func(*groupgate.OrgMapping) error) (groupgate.OrgMapping, error)
	RemoveOrgMapping(ctx context.Context, organizationID, group string) (groupgate.OrgMapping, error)
	// ListOrgMappings orders by group name.
	ListOrgMappings(ctx context.Context, organizationID string, opts ListOptions) ([]groupgate.OrgMapping, error)

	AddRepoMapping(ctx context.Context, m groupgate.RepoMapping) (groupgate.RepoMapping, error)
	GetRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error)
	UpdateRepoMapping(ctx context.Context, repositoryID, group string, fn func(*groupgate.RepoMapping) error) (groupgate.RepoMapping, error)
	RemoveRepoMapping(ctx context.Context, repositoryID, group string) (groupgate.RepoMapping, error)
	ListRepoMappings(ctx context.Context, repositoryID string, opts ListOptions) ([]groupgate.RepoMapping, error)

	// MappingsForGroups returns every organization and repository mapping
	// of any of groups: the input of role resolution.
	MappingsForGroups(ctx context.Context, groups []string) ([]groupgate.OrgMapping, []groupgate.RepoMapping, error)
}

// RoleStore keeps manual roles.
type RoleStore interface {
	// SetOrgMember creates or replaces the user's manual role.
	SetOrgMember(ctx context.Context, m groupgate.OrgMember) (groupgate.OrgMember, error)
	GetOrgMember(ctx context.Context, organizationID, userID string) (groupgate.OrgMember, error)
	RemoveOrgMember(ctx context.Context, organizationID, userID string) error
	ListOrgMembers(ctx context.Context, organizationID string) ([]groupgate.OrgMember, error)
	ListUserOrgMembers(ctx context.Context, userID string) ([]groupgate.OrgMember, error)

	SetRepoContributor(ctx context.Context, c groupgate.RepoContributor) (groupgate.RepoContributor, error)
	GetRepoContributor(ctx context.Context, repositoryID, userID string) (groupgate.RepoContributor, error)
	RemoveRepoContributor(ctx context.Context, repositoryID, userID string) error
	ListRepoContributors(ctx context.Context, repositoryID string) ([]groupgate.RepoContributor, error)
	ListUserRepoContributors(ctx context.Context, userID string) ([]groupgate.RepoContributor, error)
}

// TokenStore keeps API and SCIM bearer tokens by their SHA-256 hash.
type TokenStore interface {
	CreateToken(ctx context.Context, t groupgate.Token) (groupgate.Token, error)
	// CreateAPIToken stores t, an API token, unless its owner already
	// holds max API tokens live at now (not expired): ResourceExhausted
	// then. It first deletes the owner's API tokens expired at now, so
	// that short-lived tokens do not pile up. Calls for one owner are
	// serialized (the owner's row is locked), so that concurrent calls
	// cannot pass the bound together. Other errors as CreateToken.
	CreateAPIToken(ctx context.Context, t groupgate.Token, now time.Time, max int) (groupgate.Token, error)
	// GetTokenByHash finds a token of kind by the SHA-256 of its secret.
	GetTokenByHash(ctx context.Context, kind groupgate.TokenKind, hash []byte) (groupgate.Token, error)
	// ListTokens lists tokens of kind; userID filters API tokens by owner
	// ("" for all).
	ListTokens(ctx context.Context, kind groupgate.TokenKind, userID string) ([]groupgate.Token, error)
	DeleteToken(ctx context.Context, id string) error
	// TouchToken records a use; callers throttle it so that not every call
	// writes.
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// AuditStore is the append-only audit log.
type AuditStore interface {
	// AppendAudit stores ev with a new increasing ID and returns it.
	AppendAudit(ctx context.Context, ev groupgate.AuditEvent) (groupgate.AuditEvent, error)
	// ListAudit returns events with ID > afterID, oldest first.
	ListAudit(ctx context.Context, afterID int64, limit int) ([]groupgate.AuditEvent, error)
	// SearchAudit returns the events f selects, newest first, at most
	// limit (0: no limit). Page back with f.BeforeID set to the last ID
	// of a page.
	SearchAudit(ctx context.Context, f AuditFilter, limit int) ([]groupgate.AuditEvent, error)
}

// AuditFilter selects audit events; every set field must match exactly
// and empty ones match anything.
type AuditFilter struct {
	Actor    string
	Action   string
	TargetID string
	// BeforeID, when positive, keeps events with a smaller ID.
	BeforeID int64
}

// SCIMStore is what the SCIM service provider needs beyond plain CRUD:
// filtered, sorted, paged queries that run in the database, and atomic
// changes of a group's SCIM members.
type SCIMStore interface {
	// QueryUsers returns the page of users q selects and the total number
	// of users its filter matches (SCIM totalResults). Invalid when the
	// filter cannot apply (bad attribute path, operator or value type).
	QueryUsers(ctx context.Context, q Query) ([]groupgate.User, int, error)
	// QueryGroups is QueryUsers for groups.
	QueryGroups(ctx context.Context, q Query) ([]groupgate.Group, int, error)
	// ListGroupMembersBySource returns the sorted IDs of users with group in
	// their set from source.
	ListGroupMembersBySource(ctx context.Context, group string, source groupgate.MembershipSource) ([]string, error)
	// UpdateGroupMembers runs fn, in one transaction that locks the group,
	// on the group and the sorted IDs of its "scim" members. fn may change
	// Name, ExternalID and SCIM and returns the new member set, which
	// replaces the "scim" memberships of the group (new ones get AddedAt
	// now, kept ones keep theirs). A rename moves every membership (all
	// sources) and every organization and repository mapping of the old
	// name to the new one. It returns the stored group (Version+1) and the
	// sorted IDs of every affected user: added, removed and, on a rename,
	// every member of the old or new name. NotFound when the group does
	// not exist, Invalid for an unknown user ID (nothing written),
	// Conflict when a moved mapping would collide with one of the new name
	// on the same resource or the name is taken; fn's error
	// is returned unchanged. Concurrent calls for one group are
	// serialized.
	UpdateGroupMembers(ctx context.Context, groupID string, fn func(g *groupgate.Group, members []string) ([]string, error)) (groupgate.Group, []string, error)
	// CreateGroupWithMembers creates g (as CreateGroup) with the given
	// "scim" members in one transaction, and returns the stored group at
	// Version 1 with UpdatedAt equal to CreatedAt (RFC 7643 §3.1: a
	// resource never modified has lastModified = created) and the sorted,
	// de-duplicated member IDs it affected. Invalid for an empty name or
	// an unknown user ID, Conflict when the name is taken; nothing is
	// written then.
	CreateGroupWithMembers(ctx context.Context, g groupgate.Group, members []string) (groupgate.Group, []string, error)
}

// SigningKey is one key of the set that signs the identity JWTs given to
// upstreams, shared by every replica. The store keeps PrivateKey as the
// opaque bytes it is given: its owner seals it before storing.
type SigningKey struct {
	// ID is the JWS "kid", unique.
	ID string
	// Algorithm is the JWS "alg" the key signs with (ES256, ...).
	Algorithm string
	// PublicKey is the PKIX (SubjectPublicKeyInfo) DER of the public key.
	PublicKey []byte
	// PrivateKey is the sealed private key.
	PrivateKey []byte
	CreatedAt  time.Time
	// ActiveAt is when the key starts signing: a key is published before
	// then, so that verifiers that cache the key set know it in time.
	ActiveAt time.Time
}

// SigningKeyStore keeps the identity-token signing keys.
type SigningKeyStore interface {
	// ListSigningKeys returns every key, ordered by ActiveAt then ID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys runs fn on the current keys (ListSigningKeys'
	// order) inside a transaction that serializes it with every other
	// UpdateSigningKeys call, on every replica, and makes fn's result the
	// stored set: keys missing from it are deleted, keys with a new ID
	// inserted. A key is immutable: Invalid when fn returns a stored ID
	// with other fields, or an incomplete key (ID, Algorithm, PublicKey,
	// PrivateKey and ActiveAt are required); fn's own error is returned
	// unchanged. It returns the stored set.
	UpdateSigningKeys(ctx context.Context, fn func(keys []SigningKey) ([]SigningKey, error)) ([]SigningKey, error)
}

// CheckSigningKeys is the part of UpdateSigningKeys' contract that needs
// no database: every key complete, IDs unique, stored keys unchanged. It
// sorts next in the stored order and stamps CreatedAt where it is zero.
func CheckSigningKeys(cur, next []SigningKey, now time.Time) ([]SigningKey, error) {
	old := make(map[string]SigningKey, len(cur))
	for _, k := range cur {
		old[k.ID] = k
	}
	seen := make(map[string]bool, len(next))
	out := make([]SigningKey, 0, len(next))
	for _, k := range next {
		if k.ID == "" || k.Algorithm == "" || len(k.PublicKey) == 0 || len(k.PrivateKey) == 0 || k.ActiveAt.IsZero() {
			return nil, groupgate.Errorf(groupgate.Invalid, "signing key %q is incomplete (ID, algorithm, public and private key and activation time are required)", k.ID)
		}
		if seen[k.ID] {
			return nil, groupgate.Errorf(groupgate.Invalid, "signing key %q is listed twice", k.ID)
		}
		seen[k.ID] = true
		if o, ok := old[k.ID]; ok {
			if o.Algorithm != k.Algorithm || string(o.PublicKey) != string(k.PublicKey) || string(o.PrivateKey) != string(k.PrivateKey) || !o.ActiveAt.Equal(k.ActiveAt) {
				return nil, groupgate.Errorf(groupgate.Invalid, "signing key %q cannot change; add a new key instead", k.ID)
			}
			k = o
		} else if k.CreatedAt.IsZero() {
			k.CreatedAt = now
		}
		out = append(out, k)
	}
	SortSigningKeys(out)
	return out, nil
}

// SortSigningKeys orders keys as ListSigningKeys returns them.
func SortSigningKeys(keys []SigningKey) {
	slices.SortFunc(keys, func(a, b SigningKey) int {
		if c := a.ActiveAt.Compare(b.ActiveAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Store is every store interface together, plus transactions and
// lifecycle.
type Store interface {
	UserStore
	GroupStore
	GroupSetStore
	OrganizationStore
	RepositoryStore
	MappingStore
	RoleStore
	TokenStore
	AuditStore
	SCIMStore
	BatchReader
	OutboxStore
	SigningKeyStore

	// InTx runs fn with a Store bound to one transaction: every change fn
	// makes commits together, or none does when fn returns an error.
	// Nested InTx calls join the outer transaction.
	InTx(ctx context.Context, fn func(tx Store) error) error
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// NewID returns a new opaque identifier: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// UserByEmail is the one user ListUsersByEmail finds: NotFound for none,
// Conflict when several accounts share the address. For callers that need
// exactly one (tests, the CLI); account linking decides for itself.
func UserByEmail(ctx context.Context, st interface {
	ListUsersByEmail(ctx context.Context, email string) ([]groupgate.User, error)
}, email string) (groupgate.User, error) {
	users, err := st.ListUsersByEmail(ctx, email)
	switch {
	case err != nil:
		return groupgate.User{}, err
	case len(users) == 0:
		return groupgate.User{}, groupgate.Errorf(groupgate.NotFound, "no user has the email %s", email)
	case len(users) > 1:
		return groupgate.User{}, groupgate.Errorf(groupgate.Conflict, "%d users have the email %s", len(users), email)
	}
	return users[0], nil
}

// CheckRepositoryBaseRole refuses what cannot be an organization's
// repository base role: OWNER (the organization itself owns its
// repositories) and unknown roles. Unspecified means none.
func CheckRepositoryBaseRole(r groupgate.RepoRole) error {
	switch r {
	case groupgate.RepoRoleUnspecified, groupgate.RepoRoleRead, groupgate.RepoRoleLimitedWrite, groupgate.RepoRoleWrite, groupgate.RepoRoleAdmin:
		return nil
	}
	return groupgate.Errorf(groupgate.Invalid, "repository base role %q: want READ, LIMITED_WRITE, WRITE or ADMIN", r)
}

// CloneSigningKeys deep-copies keys, so that an UpdateSigningKeys fn that
// edits what it is given cannot change what the update compares against.
func CloneSigningKeys(keys []SigningKey) []SigningKey {
	out := make([]SigningKey, len(keys))
	for i, k := range keys {
		k.PublicKey = slices.Clone(k.PublicKey)
		k.PrivateKey = slices.Clone(k.PrivateKey)
		out[i] = k
	}
	return out
}
