package admin

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/sync"
)

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 50

type auditRow struct {
	Event groupgate.AuditEvent
	// ActorName is the user an actor "user:ID" names, when known.
	ActorName string
}

type auditData struct {
	Actor, Action, Target string
	Events                []auditRow
	// Next is the older page; "" at the end.
	Next template.URL
	// First is the newest page, set on the others.
	First template.URL
}

// audit is the audit log (instance admins, as ListAuditEvents): newest
// first, filtered by actor (a user name, an email or the raw actor such
// as "scim"), action and target ID, paged back by ID.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Target: strings.TrimSpace(q.Get("target"))}
	f := store.AuditFilter{Actor: d.Actor, Action: d.Action, TargetID: d.Target}
	if d.Actor != "" && !strings.Contains(d.Actor, ":") {
		// A person is recorded as "user:ID"; find them by name or email.
		if u, err := c.findUser(ctx, d.Actor); err == nil {
			f.Actor = sync.UserActor(u.ID)
		} else if !groupgate.IsCode(err, groupgate.NotFound) {
			return err
		}
	}
	if b := q.Get("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			return groupgate.Errorf(groupgate.Invalid, "invalid page")
		}
		f.BeforeID = id
		d.First = d.query(c.base, 0)
	}
	evs, err := c.st.SearchAudit(ctx, f, auditPageSize+1)
	if err != nil {
		return fmt.Errorf("search audit log: %w", err)
	}
	if len(evs) > auditPageSize {
		evs = evs[:auditPageSize]
		d.Next = d.query(c.base, evs[len(evs)-1].ID)
	}
	names := map[string]string{}
	for _, e := range evs {
		row := auditRow{Event: e}
		if id, ok := strings.CutPrefix(e.Actor, "user:"); ok {
			name, seen := names[id]
			if !seen {
				if u, err := c.st.GetUser(ctx, id); err == nil {
					name = u.UserName
				}
				names[id] = name
			}
			row.ActorName = name
		}
		d.Events = append(d.Events, row)
	}
	c.render(w, r, http.StatusOK, "audit", view{Title: "Audit log", Nav: "audit", Caller: cl, Data: d})
	return nil
}

// query is the page's filter with before set (0: the newest page).
func (d auditData) query(base string, before int64) template.URL {
	v := url.Values{}
	for k, s := range map[string]string{"actor": d.Actor, "action": d.Action, "target": d.Target} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	return template.URL(base + "/admin/audit?" + v.Encode()) // built of escaped parts
}
