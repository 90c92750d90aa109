// Package testenv gives tests real services: a fresh PostgreSQL database and
// a private Redis key prefix per test, so that tests run in parallel. When a
// service is missing a test skips locally but fails under CI=true, so CI can
// never pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Environment variables exported by scripts/test.sh.
const (
	PostgresEnv = "GROUPGATE_TEST_POSTGRES" // DSN of a database we may CREATE DATABASE from
	RedisEnv    = "GROUPGATE_TEST_REDIS"    // host:port
)

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedis    = "127.0.0.1:6379"
)

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: integration tests must not skip; run scripts/test.sh)", msg)
	}
	t.Skip(msg)
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PostgresAdminDSN returns the DSN of the server's admin database, or skips
// (fails under CI) when no PostgreSQL answers.
func PostgresAdminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		dsn = defaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		missing(t, "PostgreSQL not reachable at %s: %v", redactDSN(dsn), err)
	}
	_ = conn.Close(ctx)
	return dsn
}

// Postgres creates an empty database for this test and returns its DSN; the
// database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminDSN(t)
	name := "gg_test_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisAddr returns host:port of a Redis that answers PING, or skips (fails
// under CI) when none does.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(RedisEnv)
	if addr == "" {
		addr = defaultRedis
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		missing(t, "Redis not reachable at %s: %v", addr, err)
	}
	_ = c.Close()
	return addr
}

// Redis returns a client and a key prefix of this test's own; keys under
// the prefix are deleted when the test ends.
func Redis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	addr := RedisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		missing(t, "Redis at %s does not answer PING: %v", addr, err)
	}
	prefix := "ggtest:" + randomSuffix() + ":"
	t.Cleanup(func() {
		// A page of keys per round trip: a benchmark's 100,000 sessions
		// (several keys each) must go too, not only what fits in the
		// time one DEL per key allows.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		defer func() { _ = client.Close() }()
		for cursor := uint64(0); ; {
			keys, next, err := client.Scan(ctx, cursor, prefix+"*", 1000).Result()
			if err != nil {
				t.Logf("Redis keys under %s left behind: %v", prefix, err)
				return
			}
			if len(keys) > 0 {
				if err := client.Unlink(ctx, keys...).Err(); err != nil {
					t.Logf("Redis keys under %s left behind: %v", prefix, err)
					return
				}
			}
			if next == 0 {
				return
			}
			cursor = next
		}
	})
	return client, prefix
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
