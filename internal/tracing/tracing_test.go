package tracing_test

import (
	"context"
	"net"
	stdsync "sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/groupgate/groupgate/internal/tracing"
)

func TestOffWithoutEndpointIsNoop(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("tracing is on without an endpoint")
	}
	_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "x", trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("the off provider records: %v", span.SpanContext())
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown off: %v", err)
	}
	var nilP *tracing.Provider
	if nilP.Enabled() || nilP.TracerProvider() == nil {
		t.Error("a nil Provider must be off with a no-op tracer provider")
	}
}

// TestSamplerRecordsRequestsNotBackgroundWork: a root span is recorded
// only when it is a server span (an incoming request); a child follows
// its parent; a ratio of 0 records no request.
func TestSamplerRecordsRequestsNotBackgroundWork(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ratio   float64
		kind    trace.SpanKind
		child   bool
		records bool
	}{
		{"a request at ratio 1 is recorded", 1, trace.SpanKindServer, false, true},
		{"a request at ratio 0 is not", 0, trace.SpanKindServer, false, false},
		{"a Redis command outside any request is not", 1, trace.SpanKindClient, false, false},
		{"an internal span outside any request is not", 1, trace.SpanKindInternal, false, false},
		{"a Redis command inside a recorded request is", 1, trace.SpanKindClient, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			p, err := tracing.New(context.Background(), tracing.Config{SampleRatio: tt.ratio}, tracing.WithExporter(exp))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			tr := p.TracerProvider().Tracer("t")
			ctx := context.Background()
			if tt.child {
				var parent trace.Span
				ctx, parent = tr.Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
				defer parent.End()
			}
			_, span := tr.Start(ctx, "x", trace.WithSpanKind(tt.kind))
			span.End()
			if span.IsRecording() {
				t.Fatal("span still recording after End")
			}
			got := false
			for _, s := range exp.GetSpans() {
				got = got || s.Name == "x"
			}
			if got != tt.records {
				t.Errorf("recorded = %v, want %v", got, tt.records)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []tracing.Config{
		{OTLPEndpoint: "http://127.0.0.1:4318", Protocol: "thrift", SampleRatio: 1},
		{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 2},
		{OTLPEndpoint: "127.0.0.1:4318", SampleRatio: 1},
	} {
		if _, err := tracing.New(context.Background(), c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

// grpcCollector is an OTLP/gRPC trace service that keeps span names.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    stdsync.Mutex
	names []string
}

func (c *grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestGRPCExportFlushesAtShutdown: a span ended just before Shutdown
// reaches an OTLP/gRPC collector, although the batch delay has not passed.
func TestGRPCExportFlushesAtShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	col := &grpcCollector{}
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	p, err := tracing.New(context.Background(), tracing.Config{
		OTLPEndpoint: "http://" + ln.Addr().String(), Protocol: tracing.ProtocolGRPC, SampleRatio: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "GET /auth", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.names) != 1 || col.names[0] != "GET /auth" {
		t.Errorf("collector got %q, want [GET /auth]", col.names)
	}
}
