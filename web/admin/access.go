package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// sessionView is a live session without its ID, a bearer credential: the
// hint tells sessions apart, as the API's ListSessions does.
type sessionView struct {
	IDHint  string
	Rec     *session.Record
	Current bool
}

type accessData struct {
	User   groupgate.User
	Groups groupgate.GroupSet
	// Orgs and Repos explain each role the caller holds, as ExplainAccess
	// does: every source, manual grants that no mapped group backs
	// flagged.
	Orgs  []sync.Explanation
	Repos []sync.Explanation
	// Dropped are groups the IdP sent at this session's login that the
	// group filter hid (at most groupgate.MaxDroppedGroups; MoreDropped
	// counts the rest): they grant nothing, which a person should see.
	Dropped     []string
	MoreDropped int
	Sessions    []sessionView
	Tokens      []groupgate.Token
	// NewToken is the secret of a token just created, shown once.
	NewToken     string
	NewTokenNote string
}

// myAccess is GET /admin/: the caller's own groups, roles with every
// source, sessions and API tokens. Everyone signed in may see it.
func (c *Console) myAccess(w http.ResponseWriter, r *http.Request, cl *caller) error {
	d, err := c.accessData(r, cl)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "access", view{Title: "My access", Nav: "access", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

func (c *Console) accessData(r *http.Request, cl *caller) (*accessData, error) {
	ctx := r.Context()
	gs, err := c.st.GetGroupSet(ctx, cl.User.ID)
	if err != nil {
		return nil, fmt.Errorf("load groups of %s: %w", cl.User.ID, err)
	}
	recs, err := c.sessions.ListUserSessions(ctx, cl.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", cl.User.ID, err)
	}
	d := &accessData{User: cl.User, Groups: gs, Dropped: cl.Identity.DroppedGroups,
		MoreDropped: cl.Identity.DroppedGroupCount - len(cl.Identity.DroppedGroups)}
	for _, o := range cl.Access.Orgs {
		e, err := c.syncer.Explain(ctx, cl.User.ID, sync.ResourceOrg, o.OrganizationID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		d.Orgs = append(d.Orgs, e)
	}
	for _, rp := range cl.Access.Repos {
		e, err := c.syncer.Explain(ctx, cl.User.ID, sync.ResourceRepo, rp.RepositoryID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d.Repos = append(d.Repos, e)
	}
	for _, rec := range recs {
		d.Sessions = append(d.Sessions, sessionView{IDHint: session.IDHint(rec.ID), Rec: rec, Current: rec.ID == cl.SessionID})
	}
	ts, err := c.st.ListTokens(ctx, groupgate.TokenAPI, cl.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", cl.User.ID, err)
	}
	now := c.now()
	d.Tokens = slices.DeleteFunc(ts, func(t groupgate.Token) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) })
	return d, nil
}

// revokeSession ends one of the caller's own sessions, named by its hint.
func (c *Console) revokeSession(w http.ResponseWriter, r *http.Request, cl *caller) error {
	hint := r.PostForm.Get("session")
	recs, err := c.sessions.ListUserSessions(r.Context(), cl.User.ID)
	if err != nil {
		return fmt.Errorf("list sessions of %s: %w", cl.User.ID, err)
	}
	for _, rec := range recs {
		if hint == "" || session.IDHint(rec.ID) != hint {
			continue
		}
		if err := c.sessions.Delete(r.Context(), rec.ID); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		if err := c.syncer.AuditSessionsRevoked(r.Context(), cl.actor(), cl.User.ID, 1); err != nil {
			return err
		}
		if rec.ID == cl.SessionID {
			http.Redirect(w, r, c.publicPath("/login")+"?rd="+url.QueryEscape(c.publicPath(Prefix)), http.StatusSeeOther)
			return nil
		}
		return c.seeOther(w, r, Prefix, "session-revoked")
	}
	return groupgate.Errorf(groupgate.NotFound, "no such session: it may have ended already")
}

// maxTokenNoteLen is the API's bound on a token note.
const maxTokenNoteLen = 256

// createToken makes an API token for the caller and shows it once, in
// this answer only (never in a redirect's URL).
func (c *Console) createToken(w http.ResponseWriter, r *http.Request, cl *caller) error {
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if err := groupgate.CheckText("note", note, maxTokenNoteLen); err != nil {
		return err
	}
	now := c.now()
	t := groupgate.Token{Kind: groupgate.TokenAPI, Name: note, UserID: cl.User.ID, ExpiresAt: now.Add(c.cfg.TokenLifetime)}
	secret, _, err := c.syncer.CreateAPIToken(r.Context(), cl.actor(), t, now, c.cfg.TokenMaxPerUser)
	if err != nil {
		return err
	}
	d, err := c.accessData(r, cl)
	if err != nil {
		return err
	}
	d.NewToken, d.NewTokenNote = secret, note
	c.render(w, r, http.StatusOK, "access", view{Title: "My access", Nav: "access", Caller: cl,
		Notice: "Token created. Copy it now: it is shown only this once.", Data: d})
	return nil
}

// revokeToken deletes one of the caller's own API tokens.
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := c.syncer.DeleteAPIToken(r.Context(), cl.actor(), cl.User.ID, r.PostForm.Get("id")); err != nil {
		return err
	}
	return c.seeOther(w, r, Prefix, "token-revoked")
}
