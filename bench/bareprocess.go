package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// bareChildEnv, when set, makes the harness serve only the bare handler,
// on loopback, and print its address. oauth2-proxy runs in a process of
// its own, which on a loaded machine gets a scheduler share of its own;
// its fair floor is the bare handler in a process of its own too, not the
// one sharing the load generator's process.
const bareChildEnv = "GROUPGATE_BENCH_BARE_CHILD"

// serveBareChild serves the bare handler until stdin closes (the parent
// closed it, or died).
func serveBareChild() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bare handler process: %w", err)
	}
	srv := &http.Server{Handler: bareTarget().handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Println(ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bare handler process: %w", err)
	}
	return nil
}

// startBareProcess runs this binary again as the bare handler's process
// and returns it as a target; its close stops the process.
func startBareProcess() (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare handler process: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), bareChildEnv+"=1")
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
		return nil, fmt.Errorf("start the bare handler process: %w", err)
	}
	exited := make(chan struct{})
	stop := func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case a := <-addr:
		if _, _, err := net.SplitHostPort(a); err != nil {
			stop()
			return nil, fmt.Errorf("bare handler process printed %q, not its address", a)
		}
		bare := bareTarget()
		bare.name = "bare net/http handler in a process of its own"
		bare.handler = nil
		bare.endpoint = "http://" + a + "/auth"
		bare.close = stop
		return bare, nil
	case <-time.After(10 * time.Second):
		stop()
		return nil, errors.New("bare handler process did not print its address within 10 s")
	}
}
