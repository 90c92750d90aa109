package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinEnv names a directory holding initdb and postgres; unset, the
// newest /usr/lib/postgresql/*/bin (Debian's layout) is used.
const PostgresBinEnv = "GROUPGATE_TEST_PG_BIN"

// PostgresServer is a private PostgreSQL cluster on a loopback port, for
// tests that stop and restart the database under a running groupgate: the
// shared server on 5432 serves every other test and must never be
// restarted. Its data directory is removed when the test ends.
type PostgresServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cred *syscall.Credential // the postgres OS user when the test runs as root

	mu  sync.Mutex
	cmd *exec.Cmd
}

// postgresBin returns the directory of initdb and postgres.
func postgresBin() (string, error) {
	if d := os.Getenv(PostgresBinEnv); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first (numeric, so 17 sorts after 9).
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb under /usr/lib/postgresql/*/bin (Debian package postgresql; scripts/test.sh installs it)")
}

// StartPostgresServer runs initdb in a new directory and starts the server
// on a free port; without PostgreSQL's binaries the test skips locally and
// fails under CI=true. initdb and postgres refuse to run as root: as root
// they run as the postgres OS user.
//
// fsync is off (the data is thrown away) but synchronous_commit stays on:
// a commit is acknowledged only once its WAL is written to the OS, so a
// crash of the server (Stop) loses no acknowledged transaction, as on a
// production server.
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		missing(t, "%v", err)
	}
	dir, err := os.MkdirTemp("", "groupgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &PostgresServer{t: t, bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, "running as root and no postgres OS user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func (s *PostgresServer) dataDir() string { return filepath.Join(s.dir, "data") }

// command runs name as the server's OS user. Pdeathsig kills it with the
// test binary, even one that dies without running its cleanups; Go sets it
// after switching user, so the switch does not clear it.
func (s *PostgresServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// DSN is the URL of database db on the server (user postgres, trust).
func (s *PostgresServer) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Addr is host:port of the server.
func (s *PostgresServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start (re)starts the server on its port and waits until it accepts
// connections (after crash recovery, when Stop killed it).
func (s *PostgresServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start postgres: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			s.t.Fatalf("postgres on %s did not accept connections within 30s: %v\n%s", s.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down in immediate mode (SIGQUIT, what `pg_ctl stop
// -m immediate` sends): every backend is killed at once, connections drop
// mid-statement, and the next Start runs crash recovery. It waits for the
// exit.
func (s *PostgresServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// CreateDatabase creates database name and returns its DSN.
func (s *PostgresServer) CreateDatabase(name string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		s.t.Fatalf("connect to private PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		s.t.Fatalf("create database %s: %v", name, err)
	}
	return s.DSN(name)
}
