package web

import (
	"net/http"
	"testing"
)

func TestRemoveCookie(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"the session cookie alone leaves no Cookie header", []string{"_groupgate=abc"}, nil},
		{"other cookies stay byte for byte and in order", []string{`a=1; _groupgate=abc; b="q v"`}, []string{`a=1; b="q v"`}},
		{"several Cookie lines are merged without the session cookie", []string{"a=1", " _groupgate=x ; c=3"}, []string{"a=1; c=3"}},
		{"a cookie whose name only starts like the session cookie stays", []string{"_groupgate_login_x=1; _groupgatex=2"}, []string{"_groupgate_login_x=1; _groupgatex=2"}},
		{"no Cookie header stays absent", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("Cookie", l)
			}
			removeCookies(h, func(name string) bool { return name == "_groupgate" })
			got := h.Values("Cookie")
			if len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
				t.Errorf("Cookie = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mark := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := chain(mark("outer"), mark("inner"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }))
	h.ServeHTTP(nil, nil)
	if got := len(order); got != 3 || order[0] != "outer" || order[1] != "inner" || order[2] != "handler" {
		t.Errorf("order = %v, want outer, inner, handler", order)
	}
}
