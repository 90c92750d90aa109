package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/groupgate/groupgate/internal/testenv"
)

var sqliteStoreRE = regexp.MustCompile(`store:\n  driver: sqlite\n  dsn: [^\n]*\n`)

// tracedConfig is serveConfig on PostgreSQL and Redis (read from Redis
// every time, so that /auth reaches it), plus extra.
func tracedConfig(t *testing.T, extra string) (config string, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	rdb, prefix = testenv.Redis(t)
	config = serveConfig(t, t.TempDir(), "redis:\n  addrs: ["+testenv.RedisAddr(t)+"]\n  key_prefix: \""+prefix+"\"\n"+
		"  local_cache:\n    enabled: false\n"+extra)
	pg := "store:\n  driver: postgres\n  dsn: " + testenv.Postgres(t) + "\n"
	if !sqliteStoreRE.MatchString(config) {
		t.Fatalf("serveConfig's store section moved:\n%s", config)
	}
	return sqliteStoreRE.ReplaceAllLiteralString(config, pg), rdb, prefix
}

// spanTree indexes finished spans by ID and parent.
type spanTree struct {
	spans    []tracetest.SpanStub
	children map[trace.SpanID][]tracetest.SpanStub
}

func newSpanTree(spans tracetest.SpanStubs) spanTree {
	st := spanTree{spans: spans, children: map[trace.SpanID][]tracetest.SpanStub{}}
	for _, s := range spans {
		if s.Parent.IsValid() {
			st.children[s.Parent.SpanID()] = append(st.children[s.Parent.SpanID()], s)
		}
	}
	return st
}

// server returns the server span named name, if any.
func (st spanTree) server(name string) (tracetest.SpanStub, bool) {
	for _, s := range st.spans {
		if s.Name == name && s.SpanKind == trace.SpanKindServer {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// child returns the direct child of parent that match says.
func (st spanTree) child(parent tracetest.SpanStub, match func(tracetest.SpanStub) bool) (tracetest.SpanStub, bool) {
	for _, c := range st.children[parent.SpanContext.SpanID()] {
		if match(c) {
			return c, true
		}
	}
	return tracetest.SpanStub{}, false
}

// descendant is child at any depth.
func (st spanTree) descendant(parent tracetest.SpanStub, match func(tracetest.SpanStub) bool) (tracetest.SpanStub, bool) {
	for _, c := range st.children[parent.SpanContext.SpanID()] {
		if match(c) {
			return c, true
		}
		if d, ok := st.descendant(c, match); ok {
			return d, true
		}
	}
	return tracetest.SpanStub{}, false
}

// dump lists parent's subtree, for failure messages.
func (st spanTree) dump(parent tracetest.SpanStub, indent string) string {
	var b strings.Builder
	b.WriteString(indent + parent.Name + " [" + parent.InstrumentationScope.Name + "]\n")
	for _, c := range st.children[parent.SpanContext.SpanID()] {
		b.WriteString(st.dump(c, indent+"  "))
	}
	return b.String()
}

func named(name string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return s.Name == name }
}

func scoped(prefix string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return strings.HasPrefix(s.InstrumentationScope.Name, prefix) }
}

const (
	pgxScope   = "github.com/exaring/otelpgx"
	redisScope = "github.com/redis/go-redis/extra/redisotel"
)

// waitForServerSpan polls exp until the server span named name has ended:
// the server ends it after the response is written, so possibly after
// the client has read it.
func waitForServerSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) spanTree {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := newSpanTree(exp.GetSpans())
		if _, ok := st.server(name); ok {
			return st
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range st.spans {
				names = append(names, s.Name)
			}
			t.Fatalf("no server span %q; spans: %q", name, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTracingShowsOneLoginAsASpanTree signs in through the demo IdP on
// PostgreSQL and Redis with an in-memory exporter, and checks that the
// callback's trace holds the steps of the login (IdP, sync with its SQL,
// the session's Redis write), that /auth's holds the session read, and
// that no credential of the request is recorded.
func TestTracingShowsOneLoginAsASpanTree(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	config, rdb, prefix := tracedConfig(t, "")
	code, out, errOut := runCLI(t, nil, "token", "create", "--config", writeFile(t, "gg.yaml", config), "--user", "alice@example.com")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	token := lastLine(out)
	base, _, _, logs := startServeWith(t, config, func(m *Main) { m.SpanExporter = exp })
	c := newBrowser(t)
	resp, body := signIn(t, c, base+"/login?rd="+url.QueryEscape(base+"/whoami"), "alice")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("sign-in ended at %s with %s:\n%s\nlogs:\n%s", resp.Request.URL, resp.Status, body, logs)
	}

	t.Run("the callback's server span has the IdP, sync, SQL and Redis steps below it", func(t *testing.T) {
		st := waitForServerSpan(t, exp, "GET /callback/{provider}")
		cb, _ := st.server("GET /callback/{provider}")
		if cb.Parent.IsValid() {
			t.Errorf("the callback span has a parent %v; the browser sent no traceparent", cb.Parent)
		}
		finish, ok := st.child(cb, named("broker.Finish"))
		if !ok {
			t.Fatalf("no broker.Finish below the callback:\n%s", st.dump(cb, ""))
		}
		if _, ok := st.child(finish, func(s tracetest.SpanStub) bool {
			return s.SpanKind == trace.SpanKindClient && strings.HasPrefix(s.Name, "POST ")
		}); !ok {
			t.Errorf("no token request to the IdP below broker.Finish:\n%s", st.dump(cb, ""))
		}
		login, ok := st.child(cb, named("sync.Login"))
		if !ok {
			t.Fatalf("no sync.Login below the callback:\n%s", st.dump(cb, ""))
		}
		if _, ok := st.descendant(login, scoped(pgxScope)); !ok {
			t.Errorf("no SQL span below sync.Login:\n%s", st.dump(cb, ""))
		}
		start, ok := st.child(cb, named("session.Start"))
		if !ok {
			t.Fatalf("no session.Start below the callback:\n%s", st.dump(cb, ""))
		}
		if _, ok := st.descendant(start, scoped(redisScope)); !ok {
			t.Errorf("no Redis span below session.Start:\n%s", st.dump(cb, ""))
		}
		if _, ok := st.child(cb, named("sync.SessionStarted")); !ok {
			t.Errorf("no sync.SessionStarted below the callback:\n%s", st.dump(cb, ""))
		}
		for _, s := range st.spans {
			if s.SpanContext.TraceID() == cb.SpanContext.TraceID() && s.Resource != nil {
				if v, _ := s.Resource.Set().Value("service.name"); v.AsString() != "groupgate" {
					t.Errorf("span %s has service.name %q", s.Name, v.AsString())
				}
			}
		}
	})

	loginSpans := exp.GetSpans()
	exp.Reset()
	cookie := sessionCookie(t, c, base)
	const bearer = "Bearer tracing-test-token-0123456789"
	req, err := http.NewRequest(http.MethodGet, base+"/auth?group=query-secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	req.Header.Set("Authorization", bearer)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	// alice is not in that group: 403, after her session was read.
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/auth = %s", resp.Status)
	}

	t.Run("the auth server span has the session read from Redis below it", func(t *testing.T) {
		st := waitForServerSpan(t, exp, "GET /auth")
		auth, _ := st.server("GET /auth")
		cur, ok := st.child(auth, named("session.Current"))
		if !ok {
			t.Fatalf("no session.Current below /auth:\n%s", st.dump(auth, ""))
		}
		if _, ok := st.descendant(cur, scoped(redisScope)); !ok {
			t.Errorf("no Redis span below session.Current:\n%s", st.dump(auth, ""))
		}
	})

	authSpans := exp.GetSpans()
	exp.Reset()
	apiCall(t, base, token, "OrganizationService/GetOrganizationByName", `{"name":"no-such-org"}`)
	t.Run("a Connect call has an RPC span below its HTTP span", func(t *testing.T) {
		const route = "POST /buf.alpha.registry.v1alpha1.OrganizationService/"
		st := waitForServerSpan(t, exp, route)
		httpSpan, _ := st.server(route)
		if _, ok := st.child(httpSpan, named("buf.alpha.registry.v1alpha1.OrganizationService/GetOrganizationByName")); !ok {
			t.Errorf("no RPC span below the HTTP span:\n%s", st.dump(httpSpan, ""))
		}
	})

	t.Run("no span of the login, /auth or the API records a cookie, token, secret, session ID or query", func(t *testing.T) {
		st := newSpanTree(append(append(loginSpans, authSpans...), exp.GetSpans()...))
		secrets := []string{cookie.Value, "tracing-test-token", "query-secret", token, testClientSecret}
		// The session's ID is the random part of its Redis key.
		keys, err := rdb.Keys(context.Background(), prefix+"sess:*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("session keys under %s: %v %v", prefix, keys, err)
		}
		for _, k := range keys {
			secrets = append(secrets, k[strings.LastIndex(k, ":")+1:])
		}
		for _, s := range st.spans {
			for _, kv := range s.Attributes {
				key, val := strings.ToLower(string(kv.Key)), kv.Value.String()
				if strings.Contains(key, "authorization") || strings.Contains(key, "cookie") || key == "url.query" ||
					// A server span's URL would carry the query (a callback's
					// code); a client span's is groupgate's own call to the IdP.
					(key == "url.full" && s.SpanKind == trace.SpanKindServer) {
					t.Errorf("span %s records %s = %q", s.Name, kv.Key, val)
				}
				for _, secret := range secrets {
					if strings.Contains(val, secret) {
						t.Errorf("span %s attribute %s holds a secret: %q", s.Name, kv.Key, val)
					}
				}
			}
			for _, ev := range s.Events {
				for _, kv := range ev.Attributes {
					for _, secret := range secrets {
						if strings.Contains(kv.Value.String(), secret) {
							t.Errorf("span %s event %s holds a secret", s.Name, ev.Name)
						}
					}
				}
			}
		}
	})
}

// sessionCookie is the session cookie c holds for base.
func sessionCookie(t *testing.T, c *http.Client, base string) *http.Cookie {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "_groupgate") {
			return ck
		}
	}
	t.Fatalf("no session cookie in the jar: %v", c.Jar.Cookies(u))
	return nil
}

// otlpReceiver is an OTLP/HTTP collector: it decodes each export request
// and keeps its spans' names by service.name.
type otlpReceiver struct {
	mu    stdsync.Mutex
	spans map[string][]string
	bad   []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		o.bad = append(o.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-Collector-Key") != "k3y" {
		o.bad = append(o.bad, "missing X-Collector-Key")
	}
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans[service] = append(o.spans[service], s.GetName())
			}
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestTracingExportsOverOTLPHTTPAndFlushesAtShutdown configures an OTLP
// endpoint, makes one request and stops serve at once: the batch
// exporter's delay (5s) has not passed, so the span arrives only if the
// shutdown flushes it.
func TestTracingExportsOverOTLPHTTPAndFlushesAtShutdown(t *testing.T) {
	rcv := &otlpReceiver{spans: map[string][]string{}}
	collector := httptest.NewServer(rcv)
	t.Cleanup(collector.Close)
	config := serveConfig(t, t.TempDir(), "tracing:\n  otlp_endpoint: "+collector.URL+"\n  protocol: http\n  sample_ratio: 1\n"+
		"  headers:\n    - name: X-Collector-Key\n      value: k3y\n")
	base, stop, done, logs := startServe(t, config)
	resp, err := http.Get(base + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/auth without a session = %s", resp.Status)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("bad export requests: %q", rcv.bad)
	}
	found := false
	for _, name := range rcv.spans["groupgate"] {
		found = found || name == "GET /auth"
	}
	if !found {
		t.Errorf("the collector got no GET /auth span from service groupgate; got %q\nlogs:\n%s", rcv.spans, logs)
	}
}

// TestTracingOffByDefaultLogsNoTracing: without a tracing section serve
// does not turn tracing on.
func TestTracingOffByDefaultLogsNoTracing(t *testing.T) {
	base, stop, done, logs := startServe(t, serveConfig(t, t.TempDir(), ""))
	resp, err := http.Get(base + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "tracing on") {
		t.Errorf("serve turned tracing on without a tracing section:\n%s", logs)
	}
}

func TestConfigCheckReportsTracingProblemsWithKeyAndLine(t *testing.T) {
	tests := []struct {
		name, section, path, msg string
	}{
		{"a sample ratio above 1", "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  sample_ratio: 1.5 # <-\n", "tracing.sample_ratio", "between 0 and 1"},
		{"a sample ratio that is not a number", "tracing:\n  sample_ratio: half # <-\n", "tracing.sample_ratio", "not a number"},
		{"a sample ratio of NaN", "tracing:\n  sample_ratio: NaN # <-\n", "tracing.sample_ratio", "between 0 and 1"},
		{"an unknown protocol", "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  protocol: thrift # <-\n", "tracing.protocol", "neither http nor grpc"},
		{"an endpoint without a scheme", "tracing:\n  otlp_endpoint: 127.0.0.1:4318 # <-\n", "tracing.otlp_endpoint", "not an http(s) URL"},
		{"a header without a name", "tracing:\n  headers:\n    - value: x # <-\n", "tracing.headers[0].name", "required"},
	}
	for _, tt := range tests {
		t.Run("reports "+tt.name, func(t *testing.T) {
			file := goodConfig + tt.section
			path := writeFile(t, "groupgate.yaml", file)
			code, _, errOut := runCLI(t, nil, "config", "check", "--config", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
			}
			want := path + ":" + strconv.Itoa(markedLine(t, file)) + ": " + tt.path + ": "
			if !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, tt.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("stderr %q, want one line starting %q mentioning %q", errOut, want, tt.msg)
			}
		})
	}
	t.Run("accepts a gRPC collector with a sample ratio of 0.25", func(t *testing.T) {
		path := writeFile(t, "groupgate.yaml", goodConfig+"tracing:\n  otlp_endpoint: https://otel.example.com:4317\n  protocol: grpc\n  sample_ratio: 0.25\n  export_timeout: 5s\n")
		if code, _, errOut := runCLI(t, nil, "config", "check", "--config", path); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

// TestTracingWithAHungCollectorStopsInTimeAndLogs: a collector that
// accepts and never answers costs the buffered spans at shutdown, not a
// slow or failed stop, and the loss is logged.
func TestTracingWithAHungCollectorStopsInTimeAndLogs(t *testing.T) {
	block := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	t.Cleanup(func() { close(block); hung.Close() })
	config := serveConfig(t, t.TempDir(), "tracing:\n  otlp_endpoint: "+hung.URL+"\n  export_timeout: 1s\n")
	base, stop, done, logs := startServeWith(t, config, func(m *Main) { m.ShutdownTimeout = 2 * time.Second })
	resp, err := http.Get(base + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve failed to stop cleanly: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s")
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("stop took %v with a hung collector; want about the 2s shutdown timeout", took)
	}
	if !strings.Contains(logs.String(), "spans still buffered at shutdown were lost") {
		t.Errorf("the lost spans are not logged:\n%s", logs)
	}
}
