package web

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/groupgate/groupgate"
)

// wantsHTML reports whether the request's Accept header prefers an HTML
// page to JSON (RFC 9110 §12.5.1): a browser's navigation asks for
// text/html first and takes */* at a lower weight, so it gets a page;
// curl's "*/*", an absent header and "application/json" get JSON, the
// endpoint's documented answer. Ties go to JSON.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	var html, json float64
	for _, part := range strings.Split(strings.Join(accept, ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		case "text/*":
			html = max(html, q*0.999) // less specific than text/html
		case "application/json", "application/*", "*/*":
			json = max(json, q)
		}
	}
	return html > json
}

// whoamiPage is what templates/whoami.html reads.
type whoamiPage struct {
	Title  string
	Who    whoami
	Logout string
	// MoreDropped is how many dropped groups the bounded list leaves out.
	MoreDropped int
}

// writeWhoami answers /whoami: an HTML page when the browser asks for one,
// the JSON document otherwise. Both carry the same data.
func (s *Server) writeWhoami(w http.ResponseWriter, r *http.Request, out whoami) {
	w.Header().Add("Vary", "Accept")
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, out)
		return
	}
	data := whoamiPage{Title: "Who am I", Who: out, Logout: s.publicPath("/logout"),
		MoreDropped: out.DroppedGroupCount - len(out.DroppedGroups)}
	var buf bytes.Buffer
	if err := pages["whoami"].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.renderError(w, r, groupgate.WrapError(groupgate.Internal, err, "cannot render the page"))
		return
	}
	securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(buf.Bytes())
		}
	})).ServeHTTP(w, r)
}

// whoamiError answers a /whoami that cannot be served: JSON, or for a
// browser a page, which offers a sign-in that comes back here when the
// caller is not signed in.
func (s *Server) whoamiError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Add("Vary", "Accept")
	if !wantsHTML(r) {
		s.writeJSONError(w, r, err)
		return
	}
	securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if groupgate.IsCode(err, groupgate.Unauthenticated) {
			s.renderPage(w, r, http.StatusUnauthorized, "error", pageData{
				Title:      "You are not signed in",
				Message:    "Sign in to see who you are to groupgate: your groups and the roles they give you.",
				Status:     http.StatusUnauthorized,
				Retry:      s.loginURL(s.publicPath("/whoami")),
				RetryLabel: "Sign in",
			})
			return
		}
		s.renderError(w, r, err)
	})).ServeHTTP(w, r)
}
