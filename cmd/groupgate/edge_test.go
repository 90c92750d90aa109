package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestServeKeepsMetricsOffTheMainListener: /metrics is served on
// metrics.listen only, unless metrics.on_main_listener asks for the main
// listener too (issue 10 point 18).
func TestServeKeepsMetricsOffTheMainListener(t *testing.T) {
	tests := []struct {
		name           string
		onMain         bool
		wantMainStatus int
	}{
		{"by default the main listener answers 404", false, http.StatusNotFound},
		{"on_main_listener: true serves them there too", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			extra := fmt.Sprintf("metrics:\n  listen: %s\n  on_main_listener: %v\n", metricsAddr, tt.onMain)
			base, stop, done, logs := startServe(t, serveConfig(t, t.TempDir(), extra))
			code, body := get(t, base+"/metrics")
			if code != tt.wantMainStatus || (code == http.StatusOK) != strings.Contains(body, "groupgate_auth_requests_total") {
				t.Errorf("main listener /metrics = %d:\n%.300s", code, body)
			}
			code, body = get(t, "http://"+metricsAddr+"/metrics")
			if code != http.StatusOK || !strings.Contains(body, "groupgate_login_starts_refused_total") || !strings.Contains(body, "go_goroutines") {
				t.Errorf("metrics listener /metrics = %d:\n%.300s", code, body)
			}
			if code, _ := get(t, "http://"+metricsAddr+"/healthz"); code != http.StatusNotFound {
				t.Errorf("metrics listener serves /healthz: %d; it serves /metrics only", code)
			}
			if !strings.Contains(logs.String(), `"metrics":"`+metricsAddr+`"`) {
				t.Errorf("the start log does not name the metrics address:\n%s", logs)
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
				t.Error("the metrics listener still answers after shutdown")
			}
		})
	}
}

func TestConfigMetrics(t *testing.T) {
	t.Run("by default there is no metrics listener and none on the main one", func(t *testing.T) {
		cfg, err := ParseConfig("c.yaml", []byte(goodConfig), envFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Metrics != (MetricsConfig{}) {
			t.Fatalf("metrics = %+v, want none", cfg.Metrics)
		}
	})
	for _, tt := range []struct{ name, extra, want string }{
		{"a listen address without port", "metrics:\n  listen: localhost\n", "c.yaml:10: metrics.listen: \"localhost\" is not host:port"},
		{"the main listener's address", "metrics:\n  listen: 127.0.0.1:0\n", "c.yaml:10: metrics.listen: \"127.0.0.1:0\" is the main listener's address"},
	} {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(goodConfig+tt.extra), envFrom(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
