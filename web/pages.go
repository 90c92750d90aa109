package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/web/ui"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are parsed once; each is the layout with its own "content".
var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range []string{"error", "picker", "signedout", "logout", "whoami"} {
		m[name] = template.Must(ui.Parse(templateFS, nil, "templates/"+name+".html"))
	}
	return m
}()

// pageData is what every page template reads.
type pageData struct {
	Title     string
	Message   string
	Status    int
	Retry     string
	Providers []providerLink
	// Action is the URL the logout confirm page's form posts to.
	Action string
}

type providerLink struct {
	Name string
	URL  string
	// Unavailable marks a provider whose IdP groupgate cannot reach right
	// now; its link still leads to the page that says so.
	Unavailable bool
}

// renderPage writes an HTML page. It renders into a buffer first so a
// template error becomes a clean 500, not half a page.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// writeLogoutConfirm answers a GET to a logout URL with a page whose form
// POSTs back to action. Logout ends a session only through a same-origin
// POST, so a cross-site link, image or form cannot sign anyone out (logout
// CSRF); a person who follows a "sign out" link confirms with one click.
// The page lets the browser send its origin with that POST: under
// securityHeaders' Referrer-Policy no-referrer a form POST carries
// "Origin: null", which the cross-origin check refuses where the browser
// sends no Sec-Fetch-Site (plain-HTTP deployments).
func writeLogoutConfirm(w http.ResponseWriter, r *http.Request, action, who string) error {
	var buf bytes.Buffer
	if err := pages["logout"].ExecuteTemplate(&buf, "layout", pageData{Title: "Sign out", Message: who, Action: action}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
	return nil
}

// pageStatus maps error codes to the HTTP status of browser pages: the one
// table of this edge. Unauthenticated in a browser flow means the IdP
// refused the login or its answer did not verify, hence 403.
var pageStatus = map[groupgate.ErrorCode]int{
	groupgate.Invalid:            http.StatusBadRequest,
	groupgate.FailedPrecondition: http.StatusBadRequest,
	groupgate.NotFound:           http.StatusNotFound,
	groupgate.Conflict:           http.StatusConflict,
	groupgate.Forbidden:          http.StatusForbidden,
	groupgate.Unauthenticated:    http.StatusForbidden,
	groupgate.Unavailable:        http.StatusServiceUnavailable,
	groupgate.Internal:           http.StatusInternalServerError,
}

var pageTitle = map[int]string{
	http.StatusBadRequest:          "This sign-in link is not valid",
	http.StatusNotFound:            "Not found",
	http.StatusConflict:            "Conflict",
	http.StatusForbidden:           "Sign-in refused",
	http.StatusServiceUnavailable:  "Temporarily unavailable",
	http.StatusInternalServerError: "Something went wrong",
}

func statusOf(err error, table map[groupgate.ErrorCode]int) int {
	if st, ok := table[groupgate.ErrorCodeOf(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// renderError shows err's caller-safe message on an HTML page with the
// status of its code, and logs the cause, which the page never shows.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err, pageStatus)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.logger.Log(r.Context(), level, "request failed", "path", r.URL.Path, "status", status, "error", err)
	data := pageData{Title: pageTitle[status], Message: groupgate.ErrorMessageOf(err), Status: status}
	if status != http.StatusNotFound {
		data.Retry = s.publicPath("/login")
	}
	s.renderPage(w, r, status, "error", data)
}

// apiStatus maps error codes for the JSON endpoints (/whoami) and /auth.
// There Unauthenticated is "not signed in", and everything the server
// cannot answer fails closed.
var apiStatus = map[groupgate.ErrorCode]int{
	groupgate.Invalid:         http.StatusBadRequest,
	groupgate.NotFound:        http.StatusNotFound,
	groupgate.Forbidden:       http.StatusForbidden,
	groupgate.Unauthenticated: http.StatusUnauthorized,
	groupgate.Unavailable:     http.StatusServiceUnavailable,
	groupgate.Internal:        http.StatusInternalServerError,
}

type jsonError struct {
	Code    groupgate.ErrorCode `json:"code"`
	Message string              `json:"message"`
}

func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err, apiStatus)
	if status >= 500 {
		s.logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "status", status, "error", err)
	}
	writeJSON(w, status, jsonError{Code: groupgate.ErrorCodeOf(err), Message: groupgate.ErrorMessageOf(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
