package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/claims"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web/ui"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are parsed once; each is the layout with its own "content".
var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range []string{"error", "picker", "signedout", "logout", "whoami", "signedin"} {
		m[name] = template.Must(ui.Parse(templateFS, nil, "templates/"+name+".html"))
	}
	return m
}()

// pageData is what every page template reads.
type pageData struct {
	Title   string
	Message string
	Status  int
	// Retry is the link that offers to sign in (again), RetryLabel its
	// text (default "Sign in again").
	Retry      string
	RetryLabel string
	// Todo says what the person can do about a failure; Reason names the
	// failure for machines (data-reason), one of the failure kinds.
	Todo      string
	Reason    string
	Providers []providerLink
	// Action is the URL the logout confirm page's form posts to.
	Action string
	// Who is the signed-in person the "already signed in" page names,
	// Continue where it offers to go on to, Logout the sign-out page.
	Who      string
	Continue string
	Logout   string
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

// loginFailure is one kind of refused sign-in that has a page of its own:
// what happened, in the title, and what the person can do about it. The
// error's own caller-safe message adds the details.
type loginFailure struct {
	// cause is the sentinel the refusal wraps (errors.Is).
	cause error
	// reason is the page's data-reason, stable for tests and scripts.
	reason string
	title  string
	todo   string
	// retry is the sign-in link's text; empty offers none, where signing
	// in again cannot help.
	retry string
}

// loginFailures are checked in order; the first whose cause the error
// wraps picks the page. Typed causes, not messages, decide (CONVENTIONS).
var loginFailures = []loginFailure{
	{
		cause: claims.ErrNoGroups, reason: "no-groups",
		title: "Your identity provider sent no groups",
		todo: "groupgate gives access by group, and this sign-in carried no group information, so it was refused and nothing was stored. " +
			"Ask the administrator of your identity provider to send your groups to this application (for SAML, release the groups attribute to it). " +
			"Signing in again will not help until then.",
		retry: "Choose another way to sign in",
	},
	{
		cause: sync.ErrDeactivated, reason: "deactivated",
		title: "Your account is deactivated",
		todo: "Your organization's directory has deactivated this account, for example after a move or a departure, so groupgate refuses its sign-ins. " +
			"If you think that is a mistake, ask your administrator to reactivate it.",
	},
	{
		cause: broker.ErrIdPRefused, reason: "idp-error",
		title: "Your identity provider did not sign you in",
		todo: "The identity provider answered with an error instead of a sign-in; groupgate stored nothing. " +
			"Try again. If it happens again, ask the identity provider's administrator whether this application is assigned to you.",
		retry: "Try again",
	},
	{
		cause: broker.ErrAttemptGone, reason: "attempt-gone",
		title: "This sign-in attempt has expired",
		todo: "A sign-in attempt lasts a few minutes, can be used once, and only in the browser that started it. " +
			"Going back with the browser's back button, reloading an old page or opening the link in another browser ends it. Start again.",
		retry: "Start again",
	},
	{
		cause: sync.ErrLinkRefused, reason: "link-refused",
		title: "This sign-in cannot be linked to your account",
		todo: "Your identity provider signed you in, but groupgate cannot safely connect this sign-in to an existing account, so it changed nothing. " +
			"An administrator has to look: send them the message above. Until then, sign in the way you usually do.",
		retry: "Choose another way to sign in",
	},
}

// errorPage is the page that shows err: its status from the code table,
// and for a refused sign-in of a known kind, that kind's title and advice.
// The caller-safe message is shown; the cause never is.
func errorPage(err error, loginURL string) pageData {
	status := statusOf(err, pageStatus)
	data := pageData{Title: pageTitle[status], Message: groupgate.ErrorMessageOf(err), Status: status}
	if status != http.StatusNotFound {
		data.Retry = loginURL
	}
	for _, f := range loginFailures {
		if errors.Is(err, f.cause) {
			data.Title, data.Todo, data.Reason, data.RetryLabel = f.title, f.todo, f.reason, f.retry
			if f.retry == "" {
				data.Retry = ""
			}
			break
		}
	}
	return data
}

// failureLogAttrs are the attributes of a failed request's log line: the
// page's kind when it has one, and the cause, which pages never show.
func failureLogAttrs(r *http.Request, data pageData, err error) []any {
	attrs := []any{"path", r.URL.Path, "status", data.Status}
	if data.Reason != "" {
		attrs = append(attrs, "reason", data.Reason)
	}
	return append(attrs, "error", err)
}

// renderError shows err's caller-safe message on an HTML page with the
// status of its code, and logs the cause, which the page never shows.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	data := errorPage(err, s.publicPath("/login"))
	level := slog.LevelInfo
	if data.Status >= 500 {
		level = slog.LevelError
	}
	s.logger.Log(r.Context(), level, "request failed", failureLogAttrs(r, data, err)...)
	s.renderPage(w, r, data.Status, "error", data)
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
