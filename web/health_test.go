package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	// Liveness must not depend on any check, even a failing one.
	h := NewHealth([]Check{{Name: "store", Func: func(context.Context) error { return errors.New("down") }}})
	mux := http.NewServeMux()
	h.Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got := strings.TrimSpace(rec.Body.String()); got != "ok" {
		t.Fatalf("body = %q, want ok", got)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	secret := errors.New("dial postgres://admin:hunter2@db:5432: refused")
	failing := func(context.Context) error { return secret }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	ignoresContext := func(context.Context) error { time.Sleep(time.Second); return nil }
	panics := func(context.Context) error { panic("boom") }

	tests := []struct {
		name       string
		checks     []Check
		wantStatus int
		wantFailed []string
	}{
		{"no checks means ready", nil, 200, nil},
		{"all checks passing answers 200", []Check{{"store", ok}, {"redis", ok}}, 200, nil},
		{"one failing check answers 503 and is named", []Check{{"store", ok}, {"redis", failing}}, 503, []string{"redis"}},
		{"every failing check is named in order", []Check{{"store", failing}, {"redis", failing}}, 503, []string{"store", "redis"}},
		{"a hanging check times out as failed", []Check{{"store", hang}, {"redis", ok}}, 503, []string{"store"}},
		{"a check ignoring its context does not hold the probe", []Check{{"slow", ignoresContext}}, 503, []string{"slow"}},
		{"a panicking check counts as failed", []Check{{"store", panics}}, 503, []string{"store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(tt.checks, WithCheckTimeout(50*time.Millisecond))
			mux := http.NewServeMux()
			h.Mount(mux)
			rec := httptest.NewRecorder()
			start := time.Now()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("probe took %v, want it bounded by the timeout", d)
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var body readyBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode body %q: %v", rec.Body, err)
			}
			if !slices.Equal(body.Failed, tt.wantFailed) {
				t.Errorf("failed = %v, want %v", body.Failed, tt.wantFailed)
			}
			wantStatus := "ok"
			if tt.wantStatus != 200 {
				wantStatus = "unavailable"
			}
			if body.Status != wantStatus {
				t.Errorf("status field = %q, want %q", body.Status, wantStatus)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("body leaks the check's error: %s", rec.Body)
			}
		})
	}
}

func TestReadyzNamesADegradingDependencyWithoutFailing(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:443: refused") }
	tests := []struct {
		name         string
		checks       []Check
		degrading    []Check
		wantStatus   int
		wantField    string
		wantFailed   []string
		wantDegraded []string
	}{
		{"an unreachable IdP is named but the replica stays ready", []Check{{Name: "store", Func: ok}},
			[]Check{{Name: "idp:okta", Func: down}, {Name: "idp:corp", Func: ok}}, 200, "degraded", nil, []string{"idp:okta"}},
		{"a failing store still answers 503, and names the IdP too", []Check{{Name: "store", Func: down}},
			[]Check{{Name: "idp:okta", Func: down}}, 503, "unavailable", []string{"store"}, []string{"idp:okta"}},
		{"every IdP answering is plain ok", []Check{{Name: "store", Func: ok}},
			[]Check{{Name: "idp:okta", Func: ok}}, 200, "ok", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(tt.checks, WithDegradingChecks(tt.degrading...))
			rec := httptest.NewRecorder()
			h.Ready(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			var body readyBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantStatus || body.Status != tt.wantField ||
				!slices.Equal(body.Failed, tt.wantFailed) || !slices.Equal(body.Degraded, tt.wantDegraded) {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Fatalf("body leaks the cause: %s", rec.Body)
			}
		})
	}
}
