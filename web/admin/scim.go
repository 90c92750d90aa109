package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/groupgate/groupgate"
)

type scimData struct {
	BaseURL  string
	Enabled  bool
	Tokens   []groupgate.Token
	NewToken string
}

// scim shows the SCIM base URL and the SCIM tokens (instance admins).
func (c *Console) scim(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	d, err := c.scimData(r)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "scim", view{Title: "SCIM provisioning", Nav: "scim", Caller: cl, Notice: noticeOf(r), Data: d})
	return nil
}

func (c *Console) scimData(r *http.Request) (*scimData, error) {
	ts, err := c.st.ListTokens(r.Context(), groupgate.TokenSCIM, "")
	if err != nil {
		return nil, fmt.Errorf("list SCIM tokens: %w", err)
	}
	now := c.now()
	ts = slices.DeleteFunc(ts, func(t groupgate.Token) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) })
	u := *c.cfg.PublicURL
	u.Path = strings.TrimSuffix(u.Path, "/") + "/scim/v2"
	u.RawQuery, u.Fragment = "", ""
	return &scimData{BaseURL: u.String(), Enabled: c.cfg.SCIMEnabled, Tokens: ts}, nil
}

// createSCIMToken makes a SCIM token and shows it once, in this answer.
func (c *Console) createSCIMToken(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" {
		name = "created by " + cl.actor()
	}
	if err := groupgate.CheckText("name", name, maxTokenNoteLen); err != nil {
		return err
	}
	secret, _, err := c.syncer.CreateSCIMToken(r.Context(), cl.actor(), groupgate.Token{Name: name})
	if err != nil {
		return err
	}
	d, err := c.scimData(r)
	if err != nil {
		return err
	}
	d.NewToken = secret
	c.render(w, r, http.StatusOK, "scim", view{Title: "SCIM provisioning", Nav: "scim", Caller: cl,
		Notice: "SCIM token created. Copy it now: it is shown only this once.", Data: d})
	return nil
}

// revokeSCIMToken deletes a SCIM token (instance admins).
func (c *Console) revokeSCIMToken(w http.ResponseWriter, r *http.Request, cl *caller) error {
	if err := requireInstanceAdmin(cl); err != nil {
		return err
	}
	if err := c.syncer.DeleteSCIMToken(r.Context(), cl.actor(), r.PostForm.Get("id")); err != nil {
		return err
	}
	return c.seeOther(w, r, "/admin/scim", "scim-revoked")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
