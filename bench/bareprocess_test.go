package main

import (
	"os"
	"testing"
	"time"
)

// TestMain lets startBareProcess re-run the test binary as the bare
// handler's process, as the harness re-runs itself.
func TestMain(m *testing.M) {
	if os.Getenv(bareChildEnv) != "" {
		if err := serveBareChild(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBareHandlerInItsOwnProcessAnswersLikeTheInProcessOneAndStops(t *testing.T) {
	bare, err := startBareProcess()
	if err != nil {
		t.Fatal(err)
	}
	r, err := load(bare, 200*time.Millisecond, 4)
	if err != nil {
		bare.close()
		t.Fatalf("load: %v", err)
	}
	if r.rps <= 0 {
		t.Errorf("rate %v", r.rps)
	}
	bare.close()
	if _, err := load(bare, 50*time.Millisecond, 1); err == nil {
		t.Fatal("the bare handler process still answers after close")
	}
}
