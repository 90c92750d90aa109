package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
)

// tracerName is the instrumentation scope of web's own spans.
const tracerName = "github.com/groupgate/groupgate/web"

// WithTracerProvider records a server span per request on tp, named for
// the route's pattern ("GET /callback/{provider}"), joining the caller's
// trace when the request carries a W3C traceparent. Only the path, the
// method, the status and the client are recorded: never the query (a
// callback's code), the headers (cookies, Authorization) or the body. nil
// or otel's no-op provider leaves the handler chain as it is, so that
// tracing off costs nothing. Wrap Deps with TraceDeps for spans of the
// login, sync and session steps.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Server) {
		if tracingOn(tp) {
			s.tracer = tp
		}
	}
}

func tracingOn(tp trace.TracerProvider) bool {
	if tp == nil {
		return false
	}
	_, off := tp.(noop.TracerProvider)
	return !off
}

// traceRequests wraps the root handler in otelhttp when tracing is on.
// The mux's pattern is known only once it has routed, on the request it
// was handed; nameRoute, directly around the mux, names the span then.
func (s *Server) traceRequests(root http.Handler) http.Handler {
	if s.tracer == nil {
		return root
	}
	return otelhttp.NewHandler(root, "groupgate",
		otelhttp.WithTracerProvider(s.tracer),
		// No global state: the propagator and a no-op meter provider are
		// passed explicitly (metrics are Prometheus').
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
}

// nameRoute renames the request's span after the mux's pattern; a no-op
// when tracing is off.
func (s *Server) nameRoute(mux http.Handler) http.Handler {
	if s.tracer == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Pattern == "" {
			return
		}
		span := trace.SpanFromContext(r.Context())
		route := r.Pattern
		if method, path, ok := strings.Cut(route, " "); ok {
			route = path
			span.SetName(method + " " + path)
		} else {
			span.SetName(r.Method + " " + route)
		}
		span.SetAttributes(attribute.String("http.route", route))
	})
}

// traceAttrs adds the request's trace ID to its log line, so that a log
// line leads to its trace; nothing when tracing is off or the request is
// not sampled.
func (s *Server) traceAttrs(ctx context.Context, attrs []slog.Attr) []slog.Attr {
	if s.tracer == nil {
		return attrs
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	return attrs
}

// TraceDeps returns d with its login flow, account syncer and session
// store wrapped in spans on tp ("broker.Finish", "sync.Login",
// "session.Start", ...), children of the request's span, so that a
// login's trace shows which step took the time; the Redis and SQL spans of
// the instrumented clients nest below them. nil or a no-op tp returns d
// unchanged.
func TraceDeps(d Deps, tp trace.TracerProvider) Deps {
	if !tracingOn(tp) {
		return d
	}
	t := tp.Tracer(tracerName)
	if d.Login != nil {
		d.Login = tracedLogin{next: d.Login, t: t}
	}
	if d.Accounts != nil {
		d.Accounts = tracedAccounts{next: d.Accounts, t: t}
	}
	if d.Sessions != nil {
		d.Sessions = tracedSessions{next: d.Sessions, t: t}
	}
	return d
}

// end records err (its code only: messages may quote input) and ends span.
func end(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, string(groupgate.ErrorCodeOf(err)))
	}
	span.End()
}

var providerKey = attribute.Key("groupgate.provider")

type tracedLogin struct {
	next LoginFlow
	t    trace.Tracer
}

func (l tracedLogin) Begin(ctx context.Context, provider, returnTo string) (broker.Started, error) {
	ctx, span := l.t.Start(ctx, "broker.Begin", trace.WithAttributes(providerKey.String(provider)))
	st, err := l.next.Begin(ctx, provider, returnTo)
	end(span, err)
	return st, err
}

func (l tracedLogin) Finish(ctx context.Context, provider string, r *http.Request) (broker.Result, error) {
	ctx, span := l.t.Start(ctx, "broker.Finish", trace.WithAttributes(providerKey.String(provider)))
	res, err := l.next.Finish(ctx, provider, r.WithContext(ctx))
	end(span, err)
	return res, err
}

func (l tracedLogin) LogoutURL(ctx context.Context, provider, idTokenHint, postLogoutRedirect string) (string, bool, error) {
	ctx, span := l.t.Start(ctx, "broker.LogoutURL", trace.WithAttributes(providerKey.String(provider)))
	u, ok, err := l.next.LogoutURL(ctx, provider, idTokenHint, postLogoutRedirect)
	end(span, err)
	return u, ok, err
}

// Connector keeps providerAvailable working through the wrapper.
func (l tracedLogin) Connector(name string) broker.Connector {
	if c, ok := l.next.(connectorLookup); ok {
		return c.Connector(name)
	}
	return nil
}

// ForgetIdPSession keeps logout's clean-up of the back-channel logout
// index working through the wrapper.
func (l tracedLogin) ForgetIdPSession(ctx context.Context, provider, sid string) {
	if f, ok := l.next.(idpSessionForgetter); ok {
		f.ForgetIdPSession(ctx, provider, sid)
	}
}

var userKey = attribute.Key("groupgate.user_id")

type tracedAccounts struct {
	next AccountSyncer
	t    trace.Tracer
}

func (a tracedAccounts) Login(ctx context.Context, ident groupgate.Identity) (groupgate.User, groupgate.Memberships, error) {
	ctx, span := a.t.Start(ctx, "sync.Login", trace.WithAttributes(providerKey.String(ident.Provider), attribute.Int("groupgate.groups", len(ident.Groups))))
	u, m, err := a.next.Login(ctx, ident)
	if err == nil {
		span.SetAttributes(userKey.String(u.ID))
	}
	end(span, err)
	return u, m, err
}

func (a tracedAccounts) Resolve(ctx context.Context, userID string) (sync.Access, error) {
	ctx, span := a.t.Start(ctx, "sync.Resolve", trace.WithAttributes(userKey.String(userID)))
	acc, err := a.next.Resolve(ctx, userID)
	end(span, err)
	return acc, err
}

func (a tracedAccounts) SessionStarted(ctx context.Context, userID string) {
	ctx, span := a.t.Start(ctx, "sync.SessionStarted", trace.WithAttributes(userKey.String(userID)))
	a.next.SessionStarted(ctx, userID)
	span.End()
}

// tracedSessions records no session ID or cookie: both are credentials.
type tracedSessions struct {
	next SessionStore
	t    trace.Tracer
}

func (s tracedSessions) Start(w http.ResponseWriter, r *http.Request, rec *session.Record) error {
	ctx, span := s.t.Start(r.Context(), "session.Start", trace.WithAttributes(userKey.String(rec.UserID)))
	err := s.next.Start(w, r.WithContext(ctx), rec)
	end(span, err)
	return err
}

func (s tracedSessions) Current(r *http.Request) (*session.Record, error) {
	ctx, span := s.t.Start(r.Context(), "session.Current")
	rec, err := s.next.Current(r.WithContext(ctx))
	if err == nil {
		span.SetAttributes(userKey.String(rec.UserID))
	}
	// No session is an answer, not a failure of the store.
	if groupgate.IsCode(err, groupgate.Unauthenticated) {
		end(span, nil)
	} else {
		end(span, err)
	}
	return rec, err
}

func (s tracedSessions) CurrentView(r *http.Request) (*session.View, error) {
	ctx, span := s.t.Start(r.Context(), "session.Current")
	v, err := s.next.CurrentView(r.WithContext(ctx))
	if err == nil {
		span.SetAttributes(userKey.String(v.Record().UserID))
	}
	// No session is an answer, not a failure of the store.
	if groupgate.IsCode(err, groupgate.Unauthenticated) {
		end(span, nil)
	} else {
		end(span, err)
	}
	return v, err
}

func (s tracedSessions) End(w http.ResponseWriter, r *http.Request) error {
	ctx, span := s.t.Start(r.Context(), "session.End")
	err := s.next.End(w, r.WithContext(ctx))
	end(span, err)
	return err
}

func (s tracedSessions) CookieName() string { return s.next.CookieName() }
