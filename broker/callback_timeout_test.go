package broker_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker"
)

// hungConnector is an IdP that never answers the callback's exchange: its
// HandleCallback returns only when its context ends.
type hungConnector struct{ fakeConnector }

func (hungConnector) HandleCallback(ctx context.Context, _ *http.Request, _ broker.Attempt) (groupgate.Identity, broker.Tokens, error) {
	<-ctx.Done()
	return groupgate.Identity{}, broker.Tokens{}, groupgate.WrapError(groupgate.Unavailable, ctx.Err(), "the identity provider cannot be reached; try again")
}

// A user back from the IdP must not wait on it for as long as its HTTP
// client would (30 s): Finish gives the connector the callback timeout.
func TestFinishGivesUpOnAHungIdPAfterTheCallbackTimeout(t *testing.T) {
	clk := &clock{t: time.Now()}
	l, err := broker.NewLogin(newMemAttempts(clk.Now), []broker.Connector{hungConnector{fakeConnector{name: "fake"}}},
		broker.WithNow(clk.Now), broker.WithCallbackTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := l.Begin(ctx, "fake", "https://bsr.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Finish(ctx, "fake", callback(t, s, "alice", cookieOf(s)))
		done <- err
	}()
	select {
	case err := <-done:
		if !groupgate.IsCode(err, groupgate.Unavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Finish = %v, want Unavailable after the deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Finish still waits on the IdP after 5 s")
	}
}
