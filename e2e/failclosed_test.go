package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupgate/groupgate/session/sessiontest"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/sqlite"
)

func sqliteStore(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthFailsClosedWhileRedisIsDown kills a private Redis under a
// running replica while /auth requests run in a loop: no answer is 200
// while it is down, /readyz fails, and after Redis restarts on the same
// port /auth answers 200 again with nothing rebuilt.
func TestAuthFailsClosedWhileRedisIsDown(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "without the local cache"
		if cached {
			name = "with the local cache"
		}
		t.Run(name, func(t *testing.T) {
			srv := sessiontest.StartRedisServer(t)
			client := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
			t.Cleanup(func() { _ = client.Close() })
			r := startReplicas(t, 1, replicaConfig{openStore: sqliteStore, client: client, prefix: "gg:", cache: cached})[0]
			alice := newBrowser(t)
			signIn(t, alice, r, "alice")
			if a, _ := getAuth(alice, r); a.status != http.StatusOK {
				t.Fatalf("/auth before the outage = %d", a.status)
			}

			type answer struct {
				start, end time.Time
				status     int
			}
			var (
				mu      stdsync.Mutex
				answers []answer
				stop    = make(chan struct{})
				wg      stdsync.WaitGroup
			)
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					a, err := getAuth(alice, r)
					if err != nil {
						continue
					}
					mu.Lock()
					answers = append(answers, answer{start, time.Now(), a.status})
					mu.Unlock()
				}
			})
			time.Sleep(100 * time.Millisecond)
			srv.Stop()
			// With the cache, "down" starts when the replica has noticed:
			// until then nobody could have written a revocation either.
			for r.cache != nil && r.cache.Ready() {
				time.Sleep(time.Millisecond)
			}
			down := time.Now()
			time.Sleep(2 * time.Second)
			if code := status(t, r.url+"/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz with Redis down = %d, want 503", code)
			}
			up := time.Now()
			srv.Start()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if a, _ := getAuth(alice, r); a.status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("/auth did not answer 200 within 10s of Redis restarting")
				}
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if code := status(t, r.url+"/readyz"); code != http.StatusOK {
				t.Errorf("/readyz after the restart = %d, want 200", code)
			}

			var during, ok200 int
			for _, a := range answers {
				if a.start.After(down) && a.end.Before(up) {
					during++
					if a.status == http.StatusOK {
						ok200++
					}
					if a.status != http.StatusServiceUnavailable {
						t.Errorf("/auth answered %d while Redis was down, want 503", a.status)
					}
				}
			}
			if during == 0 {
				for _, a := range answers {
					t.Logf("answer %d from %v to %v (down %v, up %v)", a.status, a.start.Sub(down), a.end.Sub(down), 0, up.Sub(down))
				}
				t.Fatal("no /auth request ran while Redis was down")
			}
			t.Logf("%d /auth answers while Redis was down, %d of them 200", during, ok200)
		})
	}
}
