package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run main() instead of the tests, so that
// tests can run groupgate as a process of its own (and SIGKILL it) without
// building it first: the test binary holds the same main.
const runMainEnv = "GROUPGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// serveProcess is `groupgate serve --config FILE` as a child process.
type serveProcess struct {
	t      *testing.T
	config string // path
	base   string
	logs   string // path of its combined output
	cmd    *exec.Cmd
	exited chan struct{}
}

// newServeProcess prepares serve with the configuration at path, whose
// public_url is base.
func newServeProcess(t *testing.T, path, base string) *serveProcess {
	p := &serveProcess{t: t, config: path, base: base, logs: filepath.Join(t.TempDir(), "serve.log")}
	t.Cleanup(p.kill)
	return p
}

// start runs serve and waits until /healthz answers 200.
func (p *serveProcess) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "serve", "--config", p.config)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Never outlive the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start serve: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := c.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("serve exited before it answered: %s\n%s", cmd.ProcessState, p.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("serve did not answer /healthz within 30s: %v\n%s", err, p.output())
		}
	}
}

// kill sends SIGKILL (no shutdown: a crash) and waits for the exit.
func (p *serveProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// terminate sends SIGTERM, as an orchestrator does, and waits for the
// exit until ctx ends; false when serve did not exit by then.
func (p *serveProcess) terminate(ctx context.Context) (*os.ProcessState, bool) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		st := p.cmd.ProcessState
		p.cmd = nil
		return st, true
	case <-ctx.Done():
		return nil, false
	}
}

func (p *serveProcess) output() string {
	b, _ := os.ReadFile(p.logs)
	return string(b)
}
