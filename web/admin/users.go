package admin

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
)

// usersPageSize is how many users one page of the Users list shows.
const usersPageSize = 50

type userRow struct {
	User       groupgate.User
	Identities []groupgate.UserIdentity
	SCIM       bool // provisioned (or since adopted) by SCIM
	Groups     groupgate.GroupSet
	LastLogin  time.Time // start of the newest live session; zero: none
	Sessions   int
}

type usersData struct {
	Query      string
	Users      []userRow
	Offset     int
	Prev, Next template.URL // the neighbouring pages; "" none
}

func requireInstanceAdmin(cl *caller) error {
	if !cl.Admin {
		return groupgate.Errorf(groupgate.Forbidden, "only instance admins may see this page")
	}
	return nil
}

// users lists SSO and SCIM users (instance admins): searchable by user
// name, display name or exact email, paged.
func (c *Console) users(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	var users []groupgate.User
	var err error
	if q == "" {
		users, err = c.st.ListUsers(ctx, store.ListOptions{Offset: offset, Limit: usersPageSize + 1})
	} else {
		var f store.Filter = store.Or{
			Left:  store.Compare{Attr: "userName", Op: store.OpCo, Value: q},
			Right: store.Compare{Attr: "displayName", Op: store.OpCo, Value: q},
		}
		users, _, err = c.st.QueryUsers(ctx, store.Query{Filter: f, Offset: offset, Limit: usersPageSize + 1})
		if err == nil && offset == 0 && strings.Contains(q, "@") {
			byEmail, err2 := c.st.ListUsersByEmail(ctx, q)
			if err2 != nil {
				return fmt.Errorf("find users by email: %w", err2)
			}
			users = mergeUsers(byEmail, users)
		}
	}
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	d := usersData{Query: q, Offset: offset}
	if len(users) > usersPageSize {
		users = users[:usersPageSize]
		d.Next = pageQuery(c.base, q, offset+usersPageSize)
	}
	if offset > 0 {
		d.Prev = pageQuery(c.base, q, max(offset-usersPageSize, 0))
	}
	for _, u := range users {
		row := userRow{User: u, SCIM: u.ExternalID != "" || len(u.SCIM) > 0}
		if row.Identities, err = c.st.ListIdentities(ctx, u.ID); err != nil {
			return fmt.Errorf("list identities of %s: %w", u.ID, err)
		}
		if row.Groups, err = c.st.GetGroupSet(ctx, u.ID); err != nil {
			return fmt.Errorf("load groups of %s: %w", u.ID, err)
		}
		recs, err := c.sessions.ListUserSessions(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("list sessions of %s: %w", u.ID, err)
		}
		row.Sessions = len(recs)
		for _, rec := range recs {
			if rec.CreatedAt.After(row.LastLogin) {
				row.LastLogin = rec.CreatedAt
			}
		}
		d.Users = append(d.Users, row)
	}
	c.render(w, r, http.StatusOK, "users", view{Title: "Users", Nav: "users", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

func mergeUsers(first, rest []groupgate.User) []groupgate.User {
	seen := map[string]bool{}
	var out []groupgate.User
	for _, u := range append(first, rest...) {
		if !seen[u.ID] {
			seen[u.ID] = true
			out = append(out, u)
		}
	}
	return out
}

func pageQuery(base, q string, offset int) template.URL {
	v := base + "/admin/users?offset=" + strconv.Itoa(offset)
	if q != "" {
		v += "&q=" + urlQueryEscape(q)
	}
	return template.URL(v) // built of escaped parts
}

// revokeUserSessions ends every session of a user (instance admins, as
// the API's RevokeSessions): the way to sign someone out everywhere now.
func (c *Console) revokeUserSessions(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	id := r.PostForm.Get("user")
	u, err := c.st.GetUser(r.Context(), id)
	if err != nil {
		return fmt.Errorf("load user %q: %w", id, err)
	}
	n, err := c.sessions.DeleteUserSessions(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("end sessions of %s: %w", u.ID, err)
	}
	if err := c.syncer.AuditSessionsRevoked(r.Context(), cl.actor(), u.ID, n); err != nil {
		return err
	}
	if u.ID == cl.User.ID {
		http.Redirect(w, r, c.publicPath("/login")+"?rd="+urlQueryEscape(c.publicPath(Prefix)), http.StatusSeeOther)
		return nil
	}
	return c.seeOther(w, r, "/admin/users", "user-signed-out")
}
