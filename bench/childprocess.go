package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
)

// oauth2-proxy runs in a process of its own, which on a loaded machine
// gets a CPU share of its own (its own GOMAXPROCS beside the load
// generator's), while the in-process targets share the harness's. Its
// fair floor is the bare handler in a process of its own, and groupgate's
// /auth beside it is served the same way: the harness runs itself again
// as that process.
const (
	childEnv       = "GROUPGATE_BENCH_CHILD" // childBare or childCached
	childRedisEnv  = "GROUPGATE_BENCH_CHILD_REDIS"
	childPrefixEnv = "GROUPGATE_BENCH_CHILD_PREFIX"
	childBare      = "bare"
	childCached    = "cached"
	childSessions  = 100 // as the in-process cached target
)

// childHello is the one JSON line a child prints once it listens.
type childHello struct {
	Addr    string   `json:"addr"`
	Cookies []string `json:"cookies"` // one Cookie header value per session
}

// serveChild serves the target named by $GROUPGATE_BENCH_CHILD on
// loopback until stdin closes (the parent closed it, or died).
func serveChild() error {
	ctx := context.Background()
	var t *target
	switch kind := os.Getenv(childEnv); kind {
	case childBare:
		t = bareTarget()
	case childCached:
		dir, err := os.MkdirTemp("", "groupgate-bench-child")
		if err != nil {
			return fmt.Errorf("child process: %w", err)
		}
		defer os.RemoveAll(dir)
		client := redis.NewClient(&redis.Options{Addr: os.Getenv(childRedisEnv)})
		defer client.Close()
		var cache io.Closer
		t, cache, err = cachedTarget(ctx, client, os.Getenv(childPrefixEnv), filepath.Join(dir, "cached.db"), childSessions)
		if err != nil {
			return fmt.Errorf("child process: %w", err)
		}
		defer cache.Close()
		defer t.close()
	default:
		return fmt.Errorf("child process: $%s=%q, want %s or %s", childEnv, kind, childBare, childCached)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("child process: %w", err)
	}
	srv := &http.Server{Handler: t.handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	hello := childHello{Addr: ln.Addr().String()}
	for _, session := range t.cookies {
		req := &http.Request{Header: http.Header{}}
		addCookies(req, session)
		hello.Cookies = append(hello.Cookies, req.Header.Get("Cookie"))
	}
	if err := json.NewEncoder(os.Stdout).Encode(hello); err != nil {
		return fmt.Errorf("child process: %w", err)
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("child process: %w", err)
	}
	return nil
}

// startChild runs this binary again as the process serving kind and
// returns it as a target; its close stops the process. redisAddr and
// prefix are for childCached.
func startChild(kind, redisAddr, prefix string) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%s process: %w", kind, err)
	}
	cmd := exec.Command(exe)
	cmd.SysProcAttr = orphanSignal()
	cmd.Env = append(os.Environ(), childEnv+"="+kind, childRedisEnv+"="+redisAddr, childPrefixEnv+"="+prefix)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s process: %w", kind, err)
	}
	exited := make(chan struct{})
	stop := func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	hellos := make(chan childHello, 1)
	go func() {
		var h childHello
		line, _ := bufio.NewReader(stdout).ReadBytes('\n')
		_ = json.Unmarshal(line, &h)
		hellos <- h
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	var hello childHello
	select {
	case hello = <-hellos:
	case <-time.After(time.Minute):
		stop()
		return nil, fmt.Errorf("%s process did not say where it listens within a minute", kind)
	}
	t := &target{endpoint: "http://" + hello.Addr + "/auth", close: stop}
	for _, header := range hello.Cookies {
		cookies, err := http.ParseCookie(header)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s process: session cookie: %w", kind, err)
		}
		t.cookies = append(t.cookies, cookies)
	}
	if _, _, err := net.SplitHostPort(hello.Addr); err != nil || len(t.cookies) == 0 {
		stop()
		return nil, fmt.Errorf("%s process started but did not say where it listens or with which sessions", kind)
	}
	switch kind {
	case childBare:
		t.name = "bare net/http handler in a process of its own"
	case childCached:
		t.name = "/auth, Redis + local cache, in a process of its own"
	}
	return t, nil
}
