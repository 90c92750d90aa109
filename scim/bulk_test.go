package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/internal/testenv"
	"github.com/groupgate/groupgate/store"
	"github.com/groupgate/groupgate/store/postgres"
)

// openPostgresDSN is openPostgres that also returns the database's DSN,
// for checks the store does not expose.
func openPostgresDSN(t *testing.T) (storeT, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st, dsn
}

// bulkOps returns the operations of a BulkResponse.
func bulkOps(t *testing.T, got map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, o := range got["Operations"].([]any) {
		out = append(out, o.(map[string]any))
	}
	return out
}

// idOf is the id at the end of a result's location.
func idOf(res map[string]any) string {
	loc, _ := res["location"].(string)
	return loc[strings.LastIndex(loc, "/")+1:]
}

// TestBulkBatchedCreatesAnswerAsOneByOne sends creates that PostgreSQL
// writes in batches, with a refusal, an adoption and references in the
// middle, and checks that every answer, the users and their audit events
// are those of running the operations one by one (SQLite runs them so).
func TestBulkBatchedCreatesAnswerAsOneByOne(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) storeT
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(backend.name, func(t *testing.T) {
			e := newEnvOn(t, backend.open(t))
			e.must(201, "POST", "/scim/v2/Users", `{"userName":"taken"}`)
			sso := e.ssoLogin("sso", "sso@example.com")
			got := e.must(200, "POST", "/scim/v2/Bulk", `{"Operations":[
				{"method":"POST","path":"/Users","bulkId":"b0","data":{"userName":"u0","emails":[{"value":"u0@example.com"}]}},
				{"method":"POST","path":"/Users","bulkId":"b1","data":{"userName":"u1"}},
				{"method":"POST","path":"/Users","bulkId":"b2","data":{"userName":"TAKEN"}},
				{"method":"POST","path":"/Users","bulkId":"b3","data":{"userName":"u3"}},
				{"method":"POST","path":"/Users","bulkId":"b4","data":{"userName":"u4","externalId":"bulkId:b3"}},
				{"method":"POST","path":"/Users","bulkId":"b5","data":{"userName":"adoptee","emails":[{"value":"sso@example.com"}]}},
				{"method":"POST","path":"/Users","bulkId":"b6","data":{"userName":"U0"}},
				{"method":"POST","path":"/Users","bulkId":"b7","data":{"userName":"u7","emails":[{"value":"U0@example.com"}]}},
				{"method":"POST","path":"/Users","bulkId":"b8","data":{"displayName":"no userName"}},
				{"method":"POST","path":"/Users","bulkId":"b9","data":{"userName":"u9"}},
				{"method":"POST","path":"/Users","bulkId":"b10","data":{"userName":"u10"}},
				{"method":"POST","path":"/Groups","bulkId":"g","data":{"displayName":"g","members":[{"value":"bulkId:b1"},{"value":"bulkId:b10"}]}}]}`)
			ops := bulkOps(t, got)
			want := []string{"201", "201", "409", "201", "201", "201", "409", "409", "400", "201", "201", "201"}
			if len(ops) != len(want) {
				t.Fatalf("%d results, want %d: %v", len(ops), len(want), got)
			}
			for i, res := range ops {
				if res["status"] != want[i] || res["bulkId"] == nil || res["method"] != "POST" {
					t.Errorf("operation %d: %v, want status %s", i, res, want[i])
				}
				if want[i] == "201" && (res["location"] == nil || res["version"] == nil) {
					t.Errorf("operation %d: 201 without location or version: %v", i, res)
				}
			}
			if got := scimTypeOf(ops[2]["response"].(map[string]any)); got != "uniqueness" {
				t.Errorf("TAKEN: scimType %q, want uniqueness", got)
			}
			// A reference to a user created earlier in the same request
			// resolves to its id.
			u4 := e.must(200, "GET", "/scim/v2/Users/"+idOf(ops[4]), "")
			if u4["externalId"] != idOf(ops[3]) {
				t.Errorf("u4's externalId = %v, want u3's id %s", u4["externalId"], idOf(ops[3]))
			}
			if idOf(ops[5]) != sso.ID {
				t.Errorf("adoptee was created as %s, want the SSO user %s adopted", idOf(ops[5]), sso.ID)
			}
			g := e.must(200, "GET", "/scim/v2/Groups/"+idOf(ops[11]), "")
			if members, _ := g["members"].([]any); len(members) != 2 {
				t.Errorf("group members %v, want u1 and u10", g["members"])
			}
			if n, err := e.st.CountUsers(e.ctx); err != nil || n != 8 {
				t.Errorf("CountUsers = %d, %v; want 8 (taken, sso and six new)", n, err)
			}
			// One create event for each new user, an adopt event for the
			// adopted one, nothing for the refused.
			events, err := e.st.SearchAudit(e.ctx, store.AuditFilter{}, 1000)
			if err != nil {
				t.Fatalf("search audit: %v", err)
			}
			count := map[string]int{}
			for _, ev := range events {
				count[ev.Action+" "+ev.TargetID]++
			}
			for _, i := range []int{0, 1, 3, 4, 9, 10} {
				if c := count["scim.user.create "+idOf(ops[i])]; c != 1 {
					t.Errorf("operation %d: %d create events, want 1", i, c)
				}
			}
			if c := count["scim.user.adopt "+sso.ID]; c != 1 {
				t.Errorf("%d adopt events, want 1", c)
			}
		})
	}
}

// TestBulkFailOnErrorsInsideABatch: the errors that reach failOnErrors
// come in the middle of consecutive creates; nothing after the last one
// counted may be written.
func TestBulkFailOnErrorsInsideABatch(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) storeT
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(backend.name, func(t *testing.T) {
			e := newEnvOn(t, backend.open(t))
			e.must(201, "POST", "/scim/v2/Users", `{"userName":"taken"}`)
			var ops []string
			for i, name := range []string{"n0", "n1", "taken", "n3", "Taken", "n5", "n6"} {
				ops = append(ops, fmt.Sprintf(`{"method":"POST","path":"/Users","bulkId":"b%d","data":{"userName":%q}}`, i, name))
			}
			got := e.must(200, "POST", "/scim/v2/Bulk", `{"failOnErrors":2,"Operations":[`+strings.Join(ops, ",")+`]}`)
			res := bulkOps(t, got)
			want := []string{"201", "201", "409", "201", "409"}
			if len(res) != len(want) {
				t.Fatalf("%d results, want %d: %v", len(res), len(want), got)
			}
			for i := range want {
				if res[i]["status"] != want[i] {
					t.Errorf("operation %d: %v, want %s", i, res[i], want[i])
				}
			}
			for _, name := range []string{"n5", "n6"} {
				list := e.must(200, "GET", "/scim/v2/Users?filter=userName+eq+%22"+name+"%22", "")
				if list["totalResults"] != 0.0 {
					t.Errorf("%s was written after failOnErrors was reached", name)
				}
			}
			if n, err := e.st.CountUsers(e.ctx); err != nil || n != 4 {
				t.Errorf("CountUsers = %d, %v; want 4", n, err)
			}
		})
	}
}

// TestBulkBatchWritesWithOneCommit shows the batching itself: the new
// users of consecutive creates share one transaction on PostgreSQL, and
// the refused one in the middle splits them in two.
func TestBulkBatchWritesWithOneCommit(t *testing.T) {
	st, dsn := openPostgresDSN(t)
	e := newEnvOn(t, st)
	e.must(201, "POST", "/scim/v2/Users", `{"userName":"taken"}`)
	var ops []string
	for i := range 20 {
		name := fmt.Sprintf("c%02d", i)
		if i == 10 {
			name = "taken"
		}
		ops = append(ops, fmt.Sprintf(`{"method":"POST","path":"/Users","bulkId":"b%d","data":{"userName":%q}}`, i, name))
	}
	for i, res := range bulkOps(t, e.must(200, "POST", "/scim/v2/Bulk", `{"Operations":[`+strings.Join(ops, ",")+`]}`)) {
		if want := map[bool]string{true: "409", false: "201"}[i == 10]; res["status"] != want {
			t.Errorf("operation %d: %v, want %s", i, res, want)
		}
	}
	conn, err := pgx.Connect(e.ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(e.ctx)
	var before, after int
	if err := conn.QueryRow(e.ctx, `SELECT
			count(DISTINCT xmin::text) FILTER (WHERE user_name < 'c10'),
			count(DISTINCT xmin::text) FILTER (WHERE user_name > 'c10')
		FROM users WHERE user_name LIKE 'c%'`).Scan(&before, &after); err != nil {
		t.Fatalf("query: %v", err)
	}
	if before != 1 || after != 1 {
		t.Errorf("the users before the refusal were written in %d transactions and those after in %d; want 1 and 1", before, after)
	}
}

// TestBulkCancelledBatchAnswersOnlyCommitted cancels a request while its
// batch waits for an email lock another transaction holds: whatever it
// answers, an operation answered 201 is a committed user and no other
// user of it is.
func TestBulkCancelledBatchAnswersOnlyCommitted(t *testing.T) {
	st := openPostgres(t)
	e := newEnvOn(t, st)
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.InTx(e.ctx, func(tx store.Store) error {
			if err := tx.(interface {
				LockEmail(context.Context, string) error
			}).LockEmail(e.ctx, "x2@example.com"); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	var ops []string
	for i := range 5 {
		ops = append(ops, fmt.Sprintf(`{"method":"POST","path":"/Users","bulkId":"b%d","data":{"userName":"x%d","emails":[{"value":"x%d@example.com"}]}}`, i, i, i))
	}
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, "POST", "http://sso.example.com/scim/v2/Bulk", strings.NewReader(`{"Operations":[`+strings.Join(ops, ",")+`]}`))
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", contentTypeSCIM)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("lock holder: %v", err)
	}
	if w.Code != http.StatusOK {
		t.Logf("the cancelled request answered %d: %s", w.Code, w.Body.String())
	}
	answered := map[string]bool{}
	if w.Code == http.StatusOK {
		for _, res := range bulkOps(t, decodeJSON(t, w.Body.Bytes())) {
			if res["status"] == "201" {
				answered[idOf(res)] = true
			}
		}
	}
	for i := range 5 {
		u, err := st.GetUserByUserName(e.ctx, fmt.Sprintf("x%d", i))
		exists := err == nil
		if err != nil && !groupgate.IsCode(err, groupgate.NotFound) {
			t.Fatalf("get x%d: %v", i, err)
		}
		if exists != answered[u.ID] {
			t.Errorf("x%d: committed %v, answered 201 %v", i, exists, answered[u.ID])
		}
	}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, b)
	}
	return out
}
