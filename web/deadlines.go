package web

import (
	"errors"
	"net/http"
	"time"
)

// proxyDeadlines gives a request to the application (reverse-proxy mode)
// its own read and write deadlines, ProxyReadTimeout and
// ProxyWriteTimeout from now, in place of the listener's, which bound
// groupgate's own quick answers (a whole request within
// http.read_timeout, its answer within http.write_timeout) and would cut
// uploads and streamed answers short. The deadlines are on the
// connection, so they use the wall clock, not the injected one.
func (s *Server) proxyDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		for _, set := range []struct {
			name string
			f    func(time.Time) error
			d    time.Duration
		}{
			{"read", rc.SetReadDeadline, s.cfg.ProxyReadTimeout},
			{"write", rc.SetWriteDeadline, s.cfg.ProxyWriteTimeout},
		} {
			var at time.Time // zero: no deadline
			if set.d > 0 {
				at = now.Add(set.d)
			}
			// ErrNotSupported: a writer without a connection (tests' recorders).
			if err := set.f(at); err != nil && !errors.Is(err, http.ErrNotSupported) {
				s.logger.DebugContext(r.Context(), "cannot set the proxy deadline", "which", set.name, "error", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}
