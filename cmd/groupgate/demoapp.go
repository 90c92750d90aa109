package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// demoAppPage shows a request as the upstream application received it.
// The identity headers come first: they are what the demo is about.
var demoAppPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>groupgate demo app</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:2rem;table-layout:fixed}
th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top;overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:.9rem}
th{width:18rem;background:#f4f4f4}
.none{color:#a00}
</style></head><body>
<h1>groupgate demo app</h1>
<p>This page is the upstream application behind groupgate. It trusts the
<code>X-Auth-Request-*</code> headers below because only groupgate can reach it;
groupgate removes any such header a browser sends.</p>
<h2>Identity headers from groupgate</h2>
{{if .Identity}}<table id="identity">
{{range .Identity}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>{{else}}<p class="none" id="identity">No X-Auth-Request-* headers: this request did not come through groupgate.</p>{{end}}
{{with .JWT}}<h2>X-Auth-Request-Jwt, decoded</h2>
<p>The same identity signed by groupgate ({{.Alg}}, key <code>{{.Kid}}</code>): an application that
cannot be sure only groupgate reaches it verifies the signature with the keys at
<a href="/.well-known/jwks.json">/.well-known/jwks.json</a> (examples/verifyjwt does) instead of
trusting the headers. This page only decodes it.</p>
<pre id="jwt">{{.Claims}}</pre>{{end}}
<p><a href="/whoami">/whoami</a> (groupgate's view of you, JSON) · <a href="/logout">Sign out</a></p>
<h2>Request</h2>
<table id="request"><tr><th>Method</th><td>{{.Method}}</td></tr><tr><th>URL</th><td>{{.URL}}</td></tr><tr><th>Remote address</th><td>{{.Remote}}</td></tr></table>
<h2>Other request headers</h2>
<table id="headers">
{{range .Other}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
</body></html>
`))

type demoHeader struct{ Name, Value string }

// demoJWT is X-Auth-Request-Jwt decoded, not verified: the demo shows what
// it carries.
type demoJWT struct{ Alg, Kid, Claims string }

// decodeJWT splits a compact JWS and pretty-prints its claims; ok is false
// for anything that is not one.
func decodeJWT(raw string) (demoJWT, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return demoJWT{}, false
	}
	var header struct{ Alg, Kid string }
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return demoJWT{}, false
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return demoJWT{}, false
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, pb, "", "  ") != nil {
		return demoJWT{}, false
	}
	return demoJWT{Alg: header.Alg, Kid: header.Kid, Claims: pretty.String()}, true
}

// demoApp is the upstream of `groupgate dev`: a page listing the headers
// the request arrived with.
func demoApp(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var identity, other []demoHeader
		for name, values := range r.Header {
			h := demoHeader{Name: name, Value: strings.Join(values, ", ")}
			if strings.HasPrefix(name, "X-Auth-Request-") {
				identity = append(identity, h)
			} else {
				other = append(other, h)
			}
		}
		byName := func(a, b demoHeader) int { return strings.Compare(a.Name, b.Name) }
		slices.SortFunc(identity, byName)
		slices.SortFunc(other, byName)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var jwt *demoJWT
		if d, ok := decodeJWT(r.Header.Get("X-Auth-Request-Jwt")); ok {
			jwt = &d
		}
		err := demoAppPage.Execute(w, struct {
			Identity, Other     []demoHeader
			JWT                 *demoJWT
			Method, URL, Remote string
		}{identity, other, jwt, r.Method, r.URL.RequestURI(), r.RemoteAddr})
		if err != nil {
			logger.Warn("render demo app page", "error", err)
		}
	})
}
