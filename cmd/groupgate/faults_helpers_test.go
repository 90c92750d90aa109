package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// Helpers of the fault tests under load (issue 14 point 2): a request log
// that records every write's answer, and the judges that read it.

// pgStoreRE matches the store section serveConfig writes.
var pgStoreRE = regexp.MustCompile(`(?m)^store:\n  driver: sqlite\n  dsn: .*\n`)

// postgresConfig is serveConfig on the PostgreSQL database at dsn.
func postgresConfig(t *testing.T, dsn, extra string) string {
	t.Helper()
	c := serveConfig(t, t.TempDir(), "")
	if !pgStoreRE.MatchString(c) {
		t.Fatalf("serveConfig has no SQLite store section to replace:\n%s", c)
	}
	return pgStoreRE.ReplaceAllString(c, "store:\n  driver: postgres\n  dsn: "+dsn+"\n") + extra
}

// attempt is one write of a load: what it was, when, and its answer.
type attempt struct {
	kind       string // "repo", "mapping", "scim-user", "scim-member"
	key        string // what it wrote: a repository name, a role, a user name, a member id
	start, end time.Time
	status     int    // 0 when no answer came
	code       string // the Connect error code, or SCIM's status, when refused
	id         string // the created resource's id, when acknowledged
	err        error
}

func (a attempt) acked() bool { return a.status/100 == 2 }

// attemptLog collects the attempts of the load's goroutines.
type attemptLog struct {
	mu  stdsync.Mutex
	all []attempt
}

func (l *attemptLog) add(a attempt) {
	l.mu.Lock()
	l.all = append(l.all, a)
	l.mu.Unlock()
}

func (l *attemptLog) snapshot() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.all...)
}

// doJSON sends body to url with a bearer token and decodes the JSON answer
// (nil when empty); it never calls t.Fatal, for the load's goroutines.
func doJSON(method, url, token, contentType, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("non-JSON answer %q: %w", raw, err)
		}
	}
	return resp.StatusCode, out, nil
}

// apiAttempt calls a BSR procedure and records the answer; refused calls
// carry Connect's error code.
func apiAttempt(base, token, kind, key, procedure, body string) attempt {
	a := attempt{kind: kind, key: key, start: time.Now()}
	status, out, err := doJSON(http.MethodPost, base+"/buf.alpha.registry.v1alpha1."+procedure, token, "application/json", body)
	a.status, a.err, a.end = status, err, time.Now()
	if status != http.StatusOK {
		a.code, _ = out["code"].(string)
	}
	return a
}

// scimAttempt sends a SCIM request and records the answer; the created
// resource's id is kept.
func scimAttempt(base, token, kind, key, method, path, body string) attempt {
	a := attempt{kind: kind, key: key, start: time.Now()}
	status, out, err := doJSON(method, base+"/scim/v2"+path, token, "application/scim+json", body)
	a.status, a.err, a.end = status, err, time.Now()
	if a.acked() {
		a.id, _ = out["id"].(string)
	} else if out != nil {
		a.code = fmt.Sprint(out["status"])
	}
	return a
}

// loop runs f until stop is closed.
func loop(wg *stdsync.WaitGroup, stop <-chan struct{}, f func(i int)) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f(i)
		}
	})
}
