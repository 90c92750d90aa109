package admin

import (
	"html/template"
	"strings"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/sync"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"role": func(r any) string {
		var s string
		switch v := r.(type) {
		case groupgate.OrgRole:
			s = string(v)
		case groupgate.RepoRole:
			s = string(v)
		case string:
			s = v
		}
		if s == "" {
			return "none"
		}
		return strings.ToLower(strings.ReplaceAll(s, "_", " "))
	},
	"orgSource":  orgSourceText,
	"repoSource": repoSourceText,
	"join":       strings.Join,
	// repoHref turns "org/repo" into the console's "org/repos/repo".
	"repoHref": func(fullName string) string { return strings.Replace(fullName, "/", "/repos/", 1) },
	"navCurrent": func(cur, name string) template.HTMLAttr {
		if cur == name {
			return `aria-current="page"`
		}
		return ""
	},
}

func orgSourceText(s sync.OrgSource) string {
	if s.Kind == sync.SourceGroup {
		return "group " + s.Group
	}
	return "manual"
}

func repoSourceText(s sync.RepoSource) string {
	switch s.Kind {
	case sync.SourceGroup:
		return "group " + s.Group
	case sync.SourceManual:
		return "manual"
	}
	return "organization base role"
}
