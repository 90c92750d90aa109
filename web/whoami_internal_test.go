package web

import (
	"net/http/httptest"
	"testing"
)

func TestWhoamiAnswersHTMLOnlyWhenHTMLIsPreferred(t *testing.T) {
	tests := []struct {
		name   string
		accept []string
		html   bool
	}{
		{"no Accept header gets JSON", nil, false},
		{"curl's */* gets JSON", []string{"*/*"}, false},
		{"application/json gets JSON", []string{"application/json"}, false},
		{"a browser navigation gets HTML", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}, true},
		{"JSON preferred over HTML gets JSON", []string{"text/html;q=0.5, application/json"}, false},
		{"HTML and JSON at the same weight get JSON", []string{"text/html, application/json"}, false},
		{"HTML refused with q=0 gets JSON", []string{"text/html;q=0"}, false},
		{"text/* over */* gets HTML", []string{"text/*, */*;q=0.1"}, true},
		{"HTML in a second Accept header line counts", []string{"application/json;q=0.2", "text/html"}, true},
		{"a malformed weight is ignored", []string{"text/html;q=x, application/json;q=0.1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/whoami", nil)
			for _, a := range tt.accept {
				r.Header.Add("Accept", a)
			}
			if got := wantsHTML(r); got != tt.html {
				t.Fatalf("wantsHTML(%q) = %v, want %v", tt.accept, got, tt.html)
			}
		})
	}
}
