package session_test

import (
	"testing"

	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/session/sessiontest"
)

func TestMemoryConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Backend {
		return session.NewMemory(session.WithNow(clock.Now))
	})
}
