package groupgate

import (
	"encoding/json"
	"slices"
	"time"
)

// User is a person known to groupgate, created at first login or by a SCIM
// push. UserName is unique case-insensitively. Email is not unique: the
// stores index NormalizeEmail(Email) and return every match, and sync.Login
// links by email only to exactly one account.
type User struct {
	ID          string
	UserName    string
	Email       string
	DisplayName string
	// VerifiedEmail is the address a login last proved: set only by
	// sync.Login when the IdP asserted the email verified (or the provider
	// is configured to vouch for its emails), never by SCIM or the API.
	// Instance admins (config `admins:`) are bound to it, so that rewriting
	// Email over SCIM grants nothing.
	VerifiedEmail string
	Active        bool
	// ExternalID is the IdP's identifier sent over SCIM (RFC 7643 §3.1).
	ExternalID string
	// SCIM holds the rest of the SCIM resource (name, emails, enterprise
	// extension, ...) as JSON so that it is returned as it was stored.
	SCIM      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version changes at every update; SCIM ETags are derived from it.
	Version int64
}

// UserIdentity links a user to the subject one provider knows them by.
type UserIdentity struct {
	UserID    string
	Provider  string
	Subject   string
	CreatedAt time.Time
}

// Group is an IdP group as pushed over SCIM. Logins refer to groups by Name
// only, so mappings and group sets use the name.
type Group struct {
	ID         string
	Name       string
	ExternalID string
	SCIM       json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64
}

// MembershipSource says which ingest path put a user in a group.
type MembershipSource string

const (
	SourceLogin MembershipSource = "login"
	SourceSCIM  MembershipSource = "scim"
)

// Membership is one (group, source) pair of a user's group set.
type Membership struct {
	Group   string
	Source  MembershipSource
	AddedAt time.Time
}

// GroupSet is a user's current memberships, one entry per (group, source).
type GroupSet []Membership

// Names returns the distinct group names of s, sorted.
func (s GroupSet) Names() []string {
	seen := make(map[string]struct{}, len(s))
	names := make([]string, 0, len(s))
	for _, m := range s {
		if _, ok := seen[m.Group]; ok {
			continue
		}
		seen[m.Group] = struct{}{}
		names = append(names, m.Group)
	}
	slices.Sort(names)
	return names
}

// Organization owns repositories and has members.
type Organization struct {
	ID   string
	Name string
	// RepositoryBaseRole is the repository role every member of the
	// organization holds on each of its repositories, and the role a
	// repository group mapping without override grants (the BSR's
	// organization setting of that name). Unspecified: none, and such
	// mappings grant READ.
	RepositoryBaseRole RepoRole
	CreatedAt          time.Time
}

// Visibility of a repository.
type Visibility string

const (
	VisibilityPrivate Visibility = "private"
	VisibilityPublic  Visibility = "public"
)

// Repository belongs to exactly one organization; its full name is
// "org/repo".
type Repository struct {
	ID               string
	OrganizationID   string
	OrganizationName string
	Name             string
	Visibility       Visibility
	CreatedAt        time.Time
}

// FullName is "org/repo".
func (r Repository) FullName() string { return r.OrganizationName + "/" + r.Name }

// OrgRole is a role on an organization. The zero value means "unspecified":
// for a mapping, the default (MEMBER).
type OrgRole string

const (
	OrgRoleUnspecified OrgRole = ""
	OrgRoleOwner       OrgRole = "OWNER"
	OrgRoleAdmin       OrgRole = "ADMIN"
	OrgRoleWriter      OrgRole = "WRITER"
	OrgRoleMachine     OrgRole = "MACHINE"
	OrgRoleMember      OrgRole = "MEMBER"
)

// RepoRole is a role on a repository. The zero value means "unspecified":
// for a mapping, the default (READ).
type RepoRole string

const (
	RepoRoleUnspecified  RepoRole = ""
	RepoRoleOwner        RepoRole = "OWNER"
	RepoRoleAdmin        RepoRole = "ADMIN"
	RepoRoleWrite        RepoRole = "WRITE"
	RepoRoleLimitedWrite RepoRole = "LIMITED_WRITE"
	RepoRoleRead         RepoRole = "READ"
)

// OrgMapping grants every member of Group a role on an organization.
type OrgMapping struct {
	ID             string
	OrganizationID string
	Group          string
	// RoleOverride is empty for the default role.
	RoleOverride OrgRole
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// RepoMapping grants every member of Group a role on a repository.
type RepoMapping struct {
	ID           string
	RepositoryID string
	Group        string
	RoleOverride RepoRole
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// OrgMember is a role given to one user on an organization by hand.
type OrgMember struct {
	OrganizationID string
	UserID         string
	Role           OrgRole
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RepoContributor is a role given to one user on a repository by hand.
type RepoContributor struct {
	RepositoryID string
	UserID       string
	Role         RepoRole
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TokenKind separates API tokens (owned by a user) from SCIM tokens.
type TokenKind string

const (
	TokenAPI  TokenKind = "api"
	TokenSCIM TokenKind = "scim"
)

// Token is a bearer token. Only the SHA-256 of the secret is stored.
type Token struct {
	ID   string
	Kind TokenKind
	Name string
	// UserID owns an API token; empty for SCIM tokens.
	UserID     string
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time // zero: never used
}

// AuditEvent is one entry of the append-only audit log.
type AuditEvent struct {
	ID         int64
	Actor      string
	Action     string
	TargetType string
	TargetID   string
	Before     json.RawMessage
	After      json.RawMessage
	At         time.Time
}

// MaxDroppedGroups bounds Identity.DroppedGroups, so that an IdP sending
// thousands of groups cannot bloat a session or a log line.
const MaxDroppedGroups = 20

// Identity is what a login protocol learned about a person, normalized.
type Identity struct {
	Provider string
	Subject  string
	Username string
	Email    string
	// EmailVerified says the IdP vouches that the person controls Email:
	// the OIDC email_verified claim (OpenID Connect Core 1.0 §5.1). SAML
	// has no such attribute; a provider configured with trust_email
	// vouches for every login of it (sync.WithTrustedEmailProviders).
	EmailVerified bool
	DisplayName   string
	// Groups are trimmed, de-duplicated, filtered and sorted.
	Groups []string
	// DroppedGroups are groups the IdP sent that the group filter hid,
	// sorted and at most MaxDroppedGroups of them; DroppedGroupCount is how
	// many it hid in all. They enter no group set: they are kept so that a
	// person (and the login log) can see why a group grants nothing.
	DroppedGroups     []string `json:",omitempty"`
	DroppedGroupCount int      `json:",omitempty"`
	// GroupsPresent says whether the IdP said anything about groups at all;
	// SAML refuses a login without them, OIDC treats absence as no groups.
	GroupsPresent bool
}

// Memberships is the snapshot of a user's access cached in each session:
// the groups and the effective roles by organization name and repository
// full name.
type Memberships struct {
	Groups    []string            `json:"groups"`
	OrgRoles  map[string]OrgRole  `json:"org_roles,omitempty"`
	RepoRoles map[string]RepoRole `json:"repo_roles,omitempty"`
}
