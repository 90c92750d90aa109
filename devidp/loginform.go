package devidp

import (
	"html/template"
	"log/slog"
	"net/http"
)

// loginPage is the one username/password form of every demo IdP. Hidden
// carries the protocol's request reference (an OIDC auth request ID, a SAML
// request) through the POST.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}label{display:block;margin:.6rem 0}input{width:100%}.error{color:#b00}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Demo identity provider. Users: alice, bob, carol (password: NAME-password).</p>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label>Username <input name="username" value="{{.Username}}" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`))

type loginForm struct {
	Title    string
	Action   string
	Hidden   map[string]string
	Username string
	Error    string
}

func renderLogin(w http.ResponseWriter, logger *slog.Logger, status int, f loginForm) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := loginPage.Execute(w, f); err != nil {
		logger.Error("render login form", "error", err)
	}
}
