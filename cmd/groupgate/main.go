package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/groupgate/groupgate/broker"
)

func main() {
	// SIGTERM is what orchestrators send; both signals cancel ctx, which
	// makes serve shut down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain()
	err := m.ParseFlags(ctx, os.Args[1:])
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	stop()
	os.Exit(report(m.Stderr, err))
}

const usage = `usage:
  groupgate dev [--listen ADDR]                            run everything embedded, for trying groupgate out
  groupgate devidp [--listen ADDR] [--public-url URL] [--write-config FILE]
                                                           run the demo IdPs alone, for trying serve without a real IdP
  groupgate serve --config FILE                            run the server
  groupgate config check --config FILE                     validate a configuration file
  groupgate migrate --config FILE                          apply store migrations
  groupgate token create --config FILE --user EMAIL|NAME [--name N]  create an API token
  groupgate scim-token create --config FILE [--name N]     create a SCIM bearer token
  groupgate healthcheck [--url URL]                        exit 0 when /healthz answers 200 (for container HEALTHCHECKs)
  groupgate version                                        print the version and build information
`

// command names what ParseFlags found.
type command string

const (
	cmdDev             command = "dev"
	cmdDevIdP          command = "devidp"
	cmdServe           command = "serve"
	cmdConfigCheck     command = "config check"
	cmdMigrate         command = "migrate"
	cmdTokenCreate     command = "token create"
	cmdSCIMTokenCreate command = "scim-token create"
	cmdHealthcheck     command = "healthcheck"
	cmdVersion         command = "version"
)

// Main runs one groupgate command. main() builds it, tests build it with
// their own writers, environment and clock, and run the same code.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv resolves ${VAR} in the configuration.
	LookupEnv func(string) (string, bool)
	Now       func() time.Time
	// ShutdownTimeout bounds how long serve waits for requests in flight
	// after ctx is cancelled.
	ShutdownTimeout time.Duration
	// OutboxInterval is how often serve and dev replay the sync outbox:
	// session rewrites that a crash or a Redis outage left unfinished.
	OutboxInterval time.Duration
	// IdPBackoff is how serve and dev retry an IdP whose discovery
	// document or metadata does not answer (zero: broker.DefaultBackoff).
	IdPBackoff broker.Backoff

	cmd        command
	configFile string
	listen     string // dev and devidp only
	// devidp only: groupgate's public URL, and where to write a serve
	// configuration.
	publicURL   string
	writeConfig string
	healthURL   string // healthcheck only
	user        string
	tokenName   string

	mu      sync.Mutex
	ready   chan struct{} // closed once serve listens, or gave up trying
	addr    net.Addr
	closers []func() error
	closed  bool
}

// NewMain returns a Main wired to the process's stdio and environment.
func NewMain() *Main {
	return &Main{
		Stdout:          os.Stdout,
		Stderr:          os.Stderr,
		LookupEnv:       os.LookupEnv,
		Now:             time.Now,
		ShutdownTimeout: 15 * time.Second,
		OutboxInterval:  defaultOutboxInterval,
		ready:           make(chan struct{}),
	}
}

// usageError is a command line that cannot be run; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends the process with code after printing message as is.
type exitError struct {
	code    int
	message string
}

func (e *exitError) Error() string { return e.message }

// ParseFlags reads the subcommand and its flags from args (os.Args[1:]).
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("missing command")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		_, _ = io.WriteString(m.Stdout, usage)
		return flag.ErrHelp
	case "dev":
		m.cmd = cmdDev
	case "devidp":
		m.cmd = cmdDevIdP
	case "serve":
		m.cmd = cmdServe
	case "migrate":
		m.cmd = cmdMigrate
	case "healthcheck":
		m.cmd = cmdHealthcheck
	case "version":
		m.cmd = cmdVersion
	case "config", "token", "scim-token":
		if len(rest) == 0 || rest[0] != map[string]string{"config": "check", "token": "create", "scim-token": "create"}[name] {
			return usagef("unknown or missing subcommand of %s", name)
		}
		m.cmd = command(name + " " + rest[0])
		rest = rest[1:]
	default:
		return usagef("unknown command %q", name)
	}

	fs := flag.NewFlagSet("groupgate "+string(m.cmd), flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	switch m.cmd {
	case cmdDev:
		fs.StringVar(&m.listen, "listen", devListen, "`address` to listen on (host:port; port 0 picks a free port)")
	case cmdDevIdP:
		fs.StringVar(&m.listen, "listen", devIdPListen, "`address` to listen on (host:port; port 0 picks a free port)")
		fs.StringVar(&m.publicURL, "public-url", devIdPPublicURL, "public_url of the groupgate that logs in here (its OIDC redirect URI is registered)")
		fs.StringVar(&m.writeConfig, "write-config", "", "write a serve configuration using these IdPs to `file`")
	case cmdHealthcheck:
		fs.StringVar(&m.healthURL, "url", defaultHealthURL, "liveness `URL` to ask")
	case cmdVersion:
	default:
		fs.StringVar(&m.configFile, "config", "", "configuration `file` (YAML)")
	}
	switch m.cmd {
	case cmdTokenCreate:
		fs.StringVar(&m.user, "user", "", "`email` of the user who owns the token (created if absent), or the user name of an existing user")
		fs.StringVar(&m.tokenName, "name", "cli", "a `name` to recognize the token by")
	case cmdSCIMTokenCreate:
		fs.StringVar(&m.tokenName, "name", "scim", "a `name` to recognize the token by")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if m.cmd != cmdDev && m.cmd != cmdDevIdP && m.cmd != cmdHealthcheck && m.cmd != cmdVersion && m.configFile == "" {
		return usagef("groupgate %s: --config is required", m.cmd)
	}
	if m.cmd == cmdTokenCreate && strings.TrimSpace(m.user) == "" {
		return usagef("groupgate token create: --user EMAIL (or the user name of an existing user) is required")
	}
	return nil
}

// Run runs the parsed command. serve and dev return once ctx is cancelled
// and the HTTP server has shut down; the others return when done.
func (m *Main) Run(ctx context.Context) error {
	switch m.cmd {
	case cmdDev:
		return m.runDev(ctx)
	case cmdDevIdP:
		return m.runDevIdP(ctx)
	case cmdServe:
		return m.runServe(ctx)
	case cmdConfigCheck:
		if _, err := m.loadConfig(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(m.Stdout, "ok")
		return err
	case cmdMigrate:
		return m.runMigrate(ctx)
	case cmdTokenCreate:
		return m.runTokenCreate(ctx)
	case cmdSCIMTokenCreate:
		return m.runSCIMTokenCreate(ctx)
	case cmdHealthcheck:
		return m.runHealthcheck(ctx)
	case cmdVersion:
		_, err := io.WriteString(m.Stdout, versionText())
		return err
	default:
		return usagef("no command parsed")
	}
}

// Close releases what Run opened, last opened first. It is safe to call
// more than once.
func (m *Main) Close() error {
	m.mu.Lock()
	closers := m.closers
	m.closers = nil
	m.closed = true
	m.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// onClose registers f for Close.
func (m *Main) onClose(f func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closers = append(m.closers, f)
}

// Addr waits until serve listens and returns the bound address, which
// matters when the configuration says port 0. It fails if serve stopped
// before listening or ctx ends first.
func (m *Main) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-m.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.addr == nil {
		return nil, errors.New("server is not listening")
	}
	return m.addr, nil
}

func (m *Main) setListening(addr net.Addr) {
	m.mu.Lock()
	m.addr = addr
	m.mu.Unlock()
	m.markReady()
}

func (m *Main) markReady() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.ready:
	default:
		close(m.ready)
	}
}

func (m *Main) loadConfig() (Config, error) {
	return LoadConfig(m.configFile, m.LookupEnv)
}

// report prints err for a person and returns the process exit code:
// 0 success or help, 1 failure, 2 bad command line or unavailable command.
func report(w io.Writer, err error) int {
	var (
		ue *usageError
		ee *exitError
		ce *ConfigError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(w, "groupgate: %v\n\n%s", ue, usage)
		return 2
	case errors.As(err, &ee):
		fmt.Fprintln(w, ee.message)
		return ee.code
	case errors.As(err, &ce):
		// One file:line: key: problem per line, nothing else, so that
		// editors and scripts can parse it.
		fmt.Fprintln(w, ce.Error())
		return 1
	default:
		fmt.Fprintf(w, "groupgate: %v\n", err)
		return 1
	}
}
