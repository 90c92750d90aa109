package admin

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

// mappingTarget is the resource a mapping form changes.
type mappingTarget struct {
	Kind sync.ResourceKind
	ID   string
	Name string // "acme" or "acme/api"
	Path string // its console page
}

// mappingForm is a mapping change as the forms post it.
type mappingForm struct {
	Op       sync.MappingOp
	Group    string
	Override string
}

func readMappingForm(r *http.Request) (mappingForm, error) {
	f := mappingForm{
		Op:       sync.MappingOp(r.PostForm.Get("op")),
		Group:    strings.TrimSpace(r.PostForm.Get("group")),
		Override: r.PostForm.Get("override"),
	}
	switch f.Op {
	case sync.OpAdd, sync.OpUpdate, sync.OpRemove:
	default:
		return f, groupgate.Errorf(groupgate.Invalid, "unknown mapping change %q", string(f.Op))
	}
	if f.Group == "" {
		return f, groupgate.Errorf(groupgate.Invalid, "name the group to map")
	}
	if f.Op == sync.OpRemove {
		f.Override = ""
	}
	return f, nil
}

// changeRow is one user's role change, with the user.
type changeRow struct {
	User   groupgate.User
	Change sync.RoleChange
}

type previewData struct {
	Target    mappingTarget
	Form      mappingForm
	Changes   []changeRow
	Unchanged int
}

// preview shows what a mapping change would do, and a button that makes
// it: nothing changes on this request.
func (c *Console) preview(w http.ResponseWriter, r *http.Request, cl *caller, t mappingTarget) error {
	f, err := readMappingForm(r)
	if err != nil {
		return err
	}
	p, err := c.syncer.PreviewMappingChange(r.Context(), t.Kind, t.ID, f.Group, f.Op, f.Override)
	if err != nil {
		return err
	}
	d := previewData{Target: t, Form: f, Unchanged: p.Unchanged}
	for _, ch := range p.Changes {
		u, err := c.st.GetUser(r.Context(), ch.UserID)
		if groupgate.IsCode(err, groupgate.NotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load user %s: %w", ch.UserID, err)
		}
		d.Changes = append(d.Changes, changeRow{User: u, Change: ch})
	}
	c.render(w, r, http.StatusOK, "preview", view{Title: "Review the change", Nav: "orgs", Caller: cl, Data: d})
	return nil
}

// apply makes a mapping change, through sync: audited, in the outbox,
// and pushed to every live session at once.
func (c *Console) apply(w http.ResponseWriter, r *http.Request, cl *caller, t mappingTarget) error {
	f, err := readMappingForm(r)
	if err != nil {
		return err
	}
	ctx, actor := r.Context(), cl.actor()
	switch {
	case t.Kind == sync.ResourceOrg && f.Op == sync.OpAdd:
		_, err = c.syncer.AddOrgMapping(ctx, actor, t.ID, f.Group, groupgate.OrgRole(f.Override))
	case t.Kind == sync.ResourceOrg && f.Op == sync.OpUpdate:
		_, err = c.syncer.UpdateOrgMapping(ctx, actor, t.ID, f.Group, groupgate.OrgRole(f.Override))
	case t.Kind == sync.ResourceOrg:
		_, err = c.syncer.RemoveOrgMapping(ctx, actor, t.ID, f.Group)
	case f.Op == sync.OpAdd:
		_, err = c.syncer.AddRepoMapping(ctx, actor, t.ID, f.Group, groupgate.RepoRole(f.Override))
	case f.Op == sync.OpUpdate:
		_, err = c.syncer.UpdateRepoMapping(ctx, actor, t.ID, f.Group, groupgate.RepoRole(f.Override))
	default:
		_, err = c.syncer.RemoveRepoMapping(ctx, actor, t.ID, f.Group)
	}
	if err != nil {
		return err
	}
	return c.seeOther(w, r, t.Path, "mapping-"+string(f.Op))
}

func (c *Console) orgTarget(r *http.Request, cl *caller) (mappingTarget, error) {
	o, err := c.loadOrg(r, cl, true)
	if err != nil {
		return mappingTarget{}, err
	}
	return mappingTarget{Kind: sync.ResourceOrg, ID: o.ID, Name: o.Name, Path: orgPath(o.Name)}, nil
}

func (c *Console) previewOrgMapping(w http.ResponseWriter, r *http.Request, cl *caller) error {
	t, err := c.orgTarget(r, cl)
	if err != nil {
		return err
	}
	return c.preview(w, r, cl, t)
}

func (c *Console) applyOrgMapping(w http.ResponseWriter, r *http.Request, cl *caller) error {
	t, err := c.orgTarget(r, cl)
	if err != nil {
		return err
	}
	return c.apply(w, r, cl, t)
}
