package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// Syncer writes every change that moves access (mappings, manual roles,
// group sets, logins, deactivation), each in one store transaction with its
// audit event, and after the commit recomputes the affected users' access
// and pushes it to their live sessions.
type Syncer struct {
	st     store.Store
	now    func() time.Time
	log    *slog.Logger
	filter func(string) bool
	names  *nameCache
	push   *pusher
	// loginGens lets the Refresh after a login skip a second resolution
	// (logingen.go).
	loginGens *loginGens
	attempts  int
	backoff   time.Duration
	// trustEmail names the providers configured to vouch for the emails
	// they send (trust_email): their logins count as email-verified.
	trustEmail map[string]bool

	outboxLease, outboxGrace time.Duration
	// crashAfterCommit skips every post-commit push, leaving the outbox
	// entries behind as a crash would: set by tests only (export_test.go).
	crashAfterCommit bool
}

// Option configures a Syncer.
type Option func(*Syncer)

// WithNow sets the clock used for audit events.
func WithNow(now func() time.Time) Option { return func(s *Syncer) { s.now = now } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// WithGroupFilter makes groups for which keep returns false invisible: they
// never enter a group set, grant nothing, and cannot be mapped.
func WithGroupFilter(keep func(group string) bool) Option {
	return func(s *Syncer) { s.filter = keep }
}

// WithTrustedEmailProviders names the providers whose emails count as
// verified even without an email_verified claim: SAML IdPs and Entra ID,
// which send no such claim but only release addresses they manage. Login
// links an unknown subject to an existing account by email only when the
// email is verified, so vouching for a provider that lets users type their
// own address hands its users every account by email. Off by default.
func WithTrustedEmailProviders(providers ...string) Option {
	return func(s *Syncer) {
		s.trustEmail = map[string]bool{}
		for _, p := range providers {
			s.trustEmail[p] = true
		}
	}
}

// WithPushRetry sets how many times a session update is tried (at least 1)
// and the first wait between tries, doubled after each. Default: 3, 100ms.
func WithPushRetry(attempts int, backoff time.Duration) Option {
	return func(s *Syncer) { s.attempts, s.backoff = max(attempts, 1), backoff }
}

// New returns a Syncer writing to st and pushing snapshots to sessions.
func New(st store.Store, sessions SnapshotWriter, opts ...Option) *Syncer {
	s := &Syncer{
		st:        st,
		now:       time.Now,
		log:       slog.New(slog.DiscardHandler),
		names:     newNameCache(),
		loginGens: newLoginGens(),
		attempts:  3,
		backoff:   100 * time.Millisecond,

		outboxLease: DefaultOutboxLease,
		outboxGrace: DefaultOutboxGrace,
	}
	for _, o := range opts {
		o(s)
	}
	s.push = newPusher(sessions, s.log, s.attempts, s.backoff)
	return s
}

// checkGroup refuses a group name that cannot be mapped.
func (s *Syncer) checkGroup(group string) error {
	if err := groupgate.ValidateGroupName(group); err != nil {
		return err
	}
	if s.filter != nil && !s.filter(group) {
		return groupgate.Errorf(groupgate.FailedPrecondition,
			"group %q is excluded by the configured group filter; it can never be in a user's group set, so mapping it would grant nothing", group)
	}
	return nil
}

// cleanGroups trims, drops empty, filtered and invalid names,
// de-duplicates and sorts.
func (s *Syncer) cleanGroups(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" || (s.filter != nil && !s.filter(g)) {
			continue
		}
		// A name no directory holds (control characters, over
		// groupgate.MaxGroupNameLen) could neither be mapped nor stored
		// safely: it is dropped, which can only take access away.
		if groupgate.ValidateGroupName(g) != nil {
			continue
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// audit appends one audit event inside tx. before and after are marshalled
// to JSON; nil means absent.
func (s *Syncer) audit(ctx context.Context, tx store.Store, actor, action, targetType, targetID string, before, after any) error {
	ev, err := s.auditEvent(actor, action, targetType, targetID, before, after)
	if err != nil {
		return err
	}
	if _, err := tx.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("append audit event %s: %w", action, err)
	}
	return nil
}

// auditEvent builds the event audit appends.
func (s *Syncer) auditEvent(actor, action, targetType, targetID string, before, after any) (groupgate.AuditEvent, error) {
	ev := groupgate.AuditEvent{Actor: actor, Action: action, TargetType: targetType, TargetID: targetID, At: s.now().UTC()}
	var err error
	if ev.Before, err = marshalAudit(before); err != nil {
		return groupgate.AuditEvent{}, err
	}
	if ev.After, err = marshalAudit(after); err != nil {
		return groupgate.AuditEvent{}, err
	}
	return ev, nil
}

func marshalAudit(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, groupgate.WrapError(groupgate.Internal, err, "encode audit event")
	}
	return b, nil
}

// Views written to the audit log: stable snake_case JSON, roles spelled out.
type (
	orgMappingView struct {
		ID             string            `json:"id"`
		OrganizationID string            `json:"organization_id"`
		Group          string            `json:"group"`
		RoleOverride   groupgate.OrgRole `json:"role_override"`
		Role           groupgate.OrgRole `json:"role"`
	}
	repoMappingView struct {
		ID           string             `json:"id"`
		RepositoryID string             `json:"repository_id"`
		Group        string             `json:"group"`
		RoleOverride groupgate.RepoRole `json:"role_override"`
		Role         groupgate.RepoRole `json:"role"`
	}
	orgMemberView struct {
		OrganizationID string            `json:"organization_id"`
		UserID         string            `json:"user_id"`
		Role           groupgate.OrgRole `json:"role"`
	}
	repoContributorView struct {
		RepositoryID string             `json:"repository_id"`
		UserID       string             `json:"user_id"`
		Role         groupgate.RepoRole `json:"role"`
	}
	userView struct {
		ID          string   `json:"id"`
		UserName    string   `json:"user_name"`
		Email       string   `json:"email"`
		DisplayName string   `json:"display_name"`
		Active      bool     `json:"active"`
		Groups      []string `json:"groups,omitempty"`
	}
	groupSetView struct {
		UserID string   `json:"user_id"`
		Source string   `json:"source"`
		Groups []string `json:"groups"`
	}
	organizationView struct {
		ID                string   `json:"id"`
		Name              string   `json:"name"`
		Owner             string   `json:"owner,omitempty"`
		Repositories      []string `json:"repositories,omitempty"`
		MappedGroups      []string `json:"mapped_groups,omitempty"`
		ManualRoleHolders []string `json:"manual_role_holders,omitempty"`
	}
	repositoryView struct {
		ID                string               `json:"id"`
		FullName          string               `json:"full_name"`
		Visibility        groupgate.Visibility `json:"visibility,omitempty"`
		MappedGroups      []string             `json:"mapped_groups,omitempty"`
		ManualRoleHolders []string             `json:"manual_role_holders,omitempty"`
	}
)

func viewOrgMapping(m groupgate.OrgMapping) orgMappingView {
	return orgMappingView{ID: m.ID, OrganizationID: m.OrganizationID, Group: m.Group, RoleOverride: m.RoleOverride, Role: OrgMappingRole(m)}
}

func viewRepoMapping(m groupgate.RepoMapping) repoMappingView {
	return repoMappingView{ID: m.ID, RepositoryID: m.RepositoryID, Group: m.Group, RoleOverride: m.RoleOverride, Role: RepoMappingRole(m)}
}

func viewUser(u groupgate.User) userView {
	return userView{ID: u.ID, UserName: u.UserName, Email: u.Email, DisplayName: u.DisplayName, Active: u.Active}
}

// syncUserGen recomputes one user's access after a commit and pushes it
// under a new generation, returned (0 when it took none); pushed reports
// whether the push succeeded. The access is returned even when no
// generation could be taken (the login still needs it).
func (s *Syncer) syncUserGen(ctx context.Context, userID string) (a Access, gen int64, pushed bool, err error) {
	ctx = context.WithoutCancel(ctx)
	gens, ok := s.push.generations(ctx, []string{userID})
	a, err = s.resolve(ctx, s.st, userID)
	if err != nil || !ok {
		return a, 0, false, err
	}
	gen = gens[userID]
	return a, gen, s.push.setMemberships(ctx, userID, gen, a.Memberships()), nil
}

// syncUsers recomputes and pushes the access of every user in ids, chunk by
// chunk (syncChunks): it takes the chunk's generations in one round trip,
// then reads the store, then writes in parallel (see pusher for why that
// order). It runs after a commit: failures are logged, not returned,
// since the change itself has been made; ok reports whether every push
// succeeded (else the change's outbox entry stays). The caller's
// cancellation does not stop it, so that a client hanging up cannot leave
// sessions half updated.
func (s *Syncer) syncUsers(ctx context.Context, ids []string) (ok bool) {
	if len(ids) == 0 {
		return true
	}
	var failed atomic.Bool
	ctx = context.WithoutCancel(ctx)
	q := s.push.queue(ctx, len(ids))
	defer func() {
		ok = q.wait() && !failed.Load()
	}()

	for chunk := range syncChunks(ids) {
		gens, ok := s.push.generations(ctx, chunk)
		if !ok {
			failed.Store(true)
			continue
		}
		gs, err := s.loadGrantsMany(ctx, s.st, chunk)
		var ns *nameSet
		if err == nil {
			ns, err = s.namesFor(ctx, s.st, gs...)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "recompute access failed; the outbox will retry it", "users", len(chunk), "err", err)
			failed.Store(true)
			continue
		}
		// Users deleted meanwhile are absent from gs: their deletion ended
		// their sessions.
		for _, g := range gs {
			q.add(g.userID, gens[g.userID], g.build(ns).Memberships())
		}
	}
	return true // replaced by the deferred result
}

// syncChunks yields ids in chunks of firstSyncChunk, then twice the size
// each time, up to maxSyncChunk.
func syncChunks(ids []string) iter.Seq[[]string] {
	return func(yield func([]string) bool) {
		for size := firstSyncChunk; len(ids) > 0; size = min(2*size, maxSyncChunk) {
			n := min(size, len(ids))
			if !yield(ids[:n:n]) {
				return
			}
			ids = ids[n:]
		}
	}
}

// SessionStarted is called after a session holding the snapshot Login
// returned was saved. A mapping change committed between Login's read and
// the save was pushed to the user's sessions before this one existed: it
// then refreshes the user, as Refresh does. It knows whether one can have
// been from the user's generation counter (logingen.go), so a login costs
// one resolution and one outbox entry unless a change races it.
func (s *Syncer) SessionStarted(ctx context.Context, userID string) {
	if s.upToDate(ctx, userID) {
		return
	}
	s.Refresh(ctx, userID)
}

// Refresh recomputes the access of users and pushes it to their live
// sessions, for changes made to the store elsewhere (after they commit) or
// for a session saved after its login read the user's access. Like every
// operation it is backed by the outbox: if the push fails or the process
// dies first, RunOutbox finishes it.
func (s *Syncer) Refresh(ctx context.Context, userIDs ...string) {
	if len(userIDs) == 0 {
		return
	}
	var entry int64
	err := s.st.InTx(ctx, func(tx store.Store) error {
		return s.record(ctx, tx, &entry, userIDs, nil)
	})
	if err != nil {
		// The push below still runs; only its crash safety is lost.
		s.log.WarnContext(ctx, "record refresh in the outbox failed", "users", len(userIDs), "err", err)
	}
	s.settle(ctx, entry, func() bool { return s.syncUsers(ctx, userIDs) })
}

// syncGroupMembers pushes fresh access to every member of the groups and
// reports whether every push succeeded.
func (s *Syncer) syncGroupMembers(ctx context.Context, groups []string, also ...string) bool {
	ok := true
	seen := map[string]struct{}{}
	ids := []string{}
	add := func(id string) {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
	}
	for _, id := range also {
		add(id)
	}
	for _, g := range groups {
		members, err := s.st.ListGroupMembers(context.WithoutCancel(ctx), g)
		if err != nil {
			s.log.ErrorContext(ctx, "list group members failed; the outbox will retry it", "group", g, "err", err)
			ok = false
			continue
		}
		for _, id := range members {
			add(id)
		}
	}
	slices.Sort(ids)
	return s.syncUsers(ctx, ids) && ok
}
