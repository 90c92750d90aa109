package refresh

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// WithRegisterer exports groupgate_session_refreshes_total{outcome} on
// reg: how refresh attempts ended (an Outcome, or "error" when nothing
// could be decided). A rise of "ended" or "kept" is an IdP refusing or
// failing refreshes.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(r *Refresher) { r.registerer = reg }
}

func (r *Refresher) registerMetrics() error {
	r.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "groupgate", Name: "session_refreshes_total",
		Help: "Session refresh attempts by outcome: refreshed, not_due, busy, gone, kept (failed within grace), ended (session ended), error.",
	}, []string{"outcome"})
	if r.registerer == nil {
		return nil
	}
	if err := r.registerer.Register(r.outcomes); err != nil {
		return fmt.Errorf("register session refresh metrics: %w", err)
	}
	return nil
}

func (r *Refresher) count(o Outcome, err error) {
	if err != nil {
		o = "error"
	}
	r.outcomes.WithLabelValues(string(o)).Inc()
}
