package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
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

// trickle opens a raw connection to addr, sends head (a request line and
// headers) and then one byte of body every interval, and returns how long
// the server kept the connection before answering or closing it; limit
// caps the wait.
func trickle(t *testing.T, addr, head string, interval, limit time.Duration) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // returns once the server closes
		answered <- string(b)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		select {
		case got := <-answered:
			return time.Since(start), got
		case <-tick.C:
			_, _ = conn.Write([]byte("x")) // fails once the server closed
		case <-deadline:
			return time.Since(start), "(still open)"
		}
	}
}

// TestServeDropsSlowClients: a client trickling a request body one byte at
// a time held a connection for as long as it liked (issue 10 point 10).
// groupgate's own routes now have whole-request read deadlines and a
// header size limit; the reverse-proxy path keeps its own, longer,
// configurable deadlines and still streams past the own routes' write
// deadline.
func TestServeDropsSlowClients(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			// Streams for longer than the own routes' write timeout.
			for i := range 4 {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(500 * time.Millisecond)
			}
			return
		}
		if r.URL.Path == "/slow-stream" {
			// Streams for longer than the proxy's write timeout.
			for i := range 8 {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(time.Second)
			}
			return
		}
		_, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "upstream read the body: %v", err)
	}))
	t.Cleanup(upstream.Close)
	extra := "upstream: " + upstream.URL + "\nhttp:\n  read_timeout: 1s\n  write_timeout: 1s\n  read_header_timeout: 1s\n  max_header_bytes: 16KiB\n" +
		"  proxy_read_timeout: 3s\n  proxy_write_timeout: 4s\n"
	base, stop, done, logs := startServe(t, serveConfig(t, t.TempDir(), extra))
	addr := strings.TrimPrefix(base, "http://")

	t.Run("a body trickled to an own route is cut at the read timeout", func(t *testing.T) {
		head := "POST /buf.alpha.registry.v1alpha1.OrganizationService/GetOrganizationByName HTTP/1.1\r\nHost: " + addr +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
		took, got := trickle(t, addr, head, 200*time.Millisecond, 8*time.Second)
		if took > 3*time.Second {
			t.Fatalf("the connection stayed open %v (answer %.80q), want it cut after about 1s", took, got)
		}
	})
	t.Run("headers trickled are cut at the header timeout", func(t *testing.T) {
		took, got := trickle(t, addr, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ", 200*time.Millisecond, 8*time.Second)
		if took > 3*time.Second {
			t.Fatalf("the connection stayed open %v (answer %.80q)", took, got)
		}
	})
	t.Run("headers over max_header_bytes are refused with 431", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("b", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("64 KiB of headers: %s, want 431", resp.Status)
		}
	})

	alice := newBrowser(t)
	signIn(t, alice, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	t.Run("the proxy streams past the own routes' write timeout", func(t *testing.T) {
		resp, err := alice.Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if !strings.Contains(body, "chunk 3") {
			t.Fatalf("streamed body cut short: %q", body)
		}
	})
	t.Run("a proxied answer is cut at the proxy write timeout", func(t *testing.T) {
		start := time.Now()
		resp, err := alice.Get(base + "/slow-stream")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if took := time.Since(start); strings.Contains(string(b), "chunk 7") || took > 6*time.Second {
			t.Fatalf("an 8s stream ran %v and got %q, want it cut at about 4s", took, b)
		}
	})
	t.Run("a body trickled to the proxy is cut at the proxy read timeout", func(t *testing.T) {
		u, _ := url.Parse(base)
		var cookies []string
		for _, c := range alice.Jar.Cookies(u) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		head := "POST /upload HTTP/1.1\r\nHost: " + addr + "\r\nCookie: " + strings.Join(cookies, "; ") + "\r\nContent-Length: 1000\r\n\r\n"
		took, got := trickle(t, addr, head, 200*time.Millisecond, 10*time.Second)
		if took < 2*time.Second || took > 5*time.Second {
			t.Fatalf("the proxied upload was cut after %v (answer %.120q), want about 3s: past the own routes' 1s, at the proxy's 3s", took, got)
		}
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
}

func TestConfigHTTPLimits(t *testing.T) {
	t.Run("every connection is bounded by default", func(t *testing.T) {
		cfg, err := ParseConfig("c.yaml", []byte(goodConfig), envFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		srv := buildHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), cfg.HTTP)
		if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout != time.Minute ||
			srv.IdleTimeout != 2*time.Minute || srv.MaxHeaderBytes != 64<<10 {
			t.Fatalf("server limits: header %v, read %v, write %v, idle %v, header bytes %d",
				srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
		}
		if cfg.HTTP.ProxyReadTimeout.D() != 10*time.Minute || cfg.HTTP.ProxyWriteTimeout.D() != 10*time.Minute {
			t.Fatalf("proxy deadlines %v, %v; want 10m each", cfg.HTTP.ProxyReadTimeout.D(), cfg.HTTP.ProxyWriteTimeout.D())
		}
	})
	t.Run("proxy deadlines of 0 mean none", func(t *testing.T) {
		cfg, err := ParseConfig("c.yaml", []byte(goodConfig+"http:\n  proxy_read_timeout: 0s\n  proxy_write_timeout: 0s\n"), envFrom(nil))
		if err != nil || cfg.HTTP.ProxyReadTimeout != 0 || cfg.HTTP.ProxyWriteTimeout != 0 {
			t.Fatalf("%+v, %v", cfg.HTTP, err)
		}
	})
	for _, tt := range []struct{ name, extra, want string }{
		{"a zero read timeout", "http:\n  read_timeout: 0s\n", "c.yaml:10: http.read_timeout: must be positive"},
		{"a zero write timeout", "http:\n  write_timeout: 0s\n", "c.yaml:10: http.write_timeout: must be positive"},
		{"a zero header timeout", "http:\n  read_header_timeout: 0s\n", "c.yaml:10: http.read_header_timeout: must be positive"},
		{"a tiny header limit", "http:\n  max_header_bytes: 100\n", "c.yaml:10: http.max_header_bytes: must be at least 4KiB"},
	} {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(goodConfig+tt.extra), envFrom(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
