package web

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Forward-auth decisions, the values of the "decision" label.
const (
	decisionAllowed = "allowed"
	decisionDenied  = "denied"
	decisionError   = "error"
)

// metrics are the server's Prometheus collectors. Label values come from
// fixed sets (configured provider names, error codes, decisions), never
// from request input, so a client cannot grow the series count.
type metrics struct {
	logins       *prometheus.CounterVec
	authDecision *prometheus.CounterVec
	authDuration *prometheus.HistogramVec
	loginRefused *prometheus.CounterVec
	loginLive    prometheus.GaugeFunc
}

// newMetrics registers the server's collectors; live reports the login
// attempts started within their lifetime on this replica.
func newMetrics(reg prometheus.Registerer, live func() float64) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "groupgate",
			Name:      "logins_total",
			Help:      "Finished logins (OIDC callbacks and SAML ACS posts) by provider and outcome (success or the error code).",
		}, []string{"provider", "outcome"}),
		authDecision: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "groupgate",
			Name:      "auth_requests_total",
			Help:      "Forward-auth (/auth) answers by decision: allowed, denied or error.",
		}, []string{"decision"}),
		authDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "groupgate",
			Name:      "auth_duration_seconds",
			Help:      "Time to answer a forward-auth (/auth) request, by decision.",
			// Forward-auth sits in front of every request: the interesting
			// range is tens of microseconds to a few milliseconds.
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
		}, []string{"decision"}),
		loginRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "groupgate",
			Name:      "login_starts_refused_total",
			Help:      "Login starts answered 429 by the login limits, by reason: client (one address started too many) or global (this replica holds its maximum of live attempts).",
		}, []string{"reason"}),
		loginLive: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "groupgate",
			Name:      "login_attempts_live",
			Help:      "Login attempts this replica started within the attempt lifetime (an upper bound of those still stored).",
		}, live),
	}
	for _, c := range []prometheus.Collector{m.logins, m.authDecision, m.authDuration, m.loginRefused, m.loginLive} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// Pre-create the decision series so dashboards see zeros, not gaps.
	for _, d := range []string{decisionAllowed, decisionDenied, decisionError} {
		m.authDecision.WithLabelValues(d)
	}
	for _, r := range []string{refusedClient, refusedGlobal} {
		m.loginRefused.WithLabelValues(r)
	}
	return m, nil
}

func (m *metrics) handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
