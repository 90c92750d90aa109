package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testenv"
)

// TestMain lets startChild re-run the test binary as a target's process,
// as the harness re-runs itself.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := serveChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestTargetsInProcessesOfTheirOwnAnswerSignedInAndStop(t *testing.T) {
	_, prefix := testenv.Redis(t) // its cleanup deletes the child's keys
	redisAddr := testenv.RedisAddr(t)
	for _, c := range []struct{ kind, name string }{
		{childBare, "the bare handler"},
		{childCached, "/auth with the local cache and 100 sessions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := startChild(c.kind, redisAddr, prefix+c.kind+":")
			if err != nil {
				t.Fatal(err)
			}
			if c.kind == childCached && len(tg.cookies) != childSessions {
				t.Errorf("%d sessions, want %d", len(tg.cookies), childSessions)
			}
			// load fails on any answer but 200 with alice: the sessions
			// came through the hello line intact.
			r, err := load(tg, 300*time.Millisecond, 4)
			if err != nil {
				tg.close()
				t.Fatalf("load: %v", err)
			}
			if r.rps <= 0 {
				t.Errorf("rate %v", r.rps)
			}
			tg.close()
			if _, err := load(tg, 50*time.Millisecond, 1); err == nil {
				t.Fatal("the process still answers after close")
			}
		})
	}
}

func TestAChildThatCannotStartSaysSo(t *testing.T) {
	if _, err := startChild("no-such-target", "", ""); err == nil {
		t.Fatal("startChild of an unknown target succeeded")
	}
}
