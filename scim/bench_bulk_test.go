package scim

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/store/postgres"
)

// BenchmarkSCIMBulkCreateRate is BenchmarkSCIMCreateRate through POST
// /Bulk: users/s on PostgreSQL when an IdP imports with Bulk requests of
// 1,000 POST /Users operations, from one client and from 4 concurrent
// ones. GROUPGATE_BENCH_SCIM_BULK_USERS sets the users per round (4,000).
//
//	go test -run '^$' -bench BenchmarkSCIMBulkCreateRate -benchtime 1x ./scim/
func BenchmarkSCIMBulkCreateRate(b *testing.B) {
	const perRequest = 1000
	n := 4000
	if v := os.Getenv("GROUPGATE_BENCH_SCIM_BULK_USERS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < perRequest || n%perRequest != 0 {
			b.Fatalf("GROUPGATE_BENCH_SCIM_BULK_USERS=%q: want a multiple of %d", v, perRequest)
		}
	}
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("postgres/clients-%d", clients), func(b *testing.B) {
			var stmts stmtCounter
			st, _ := openPostgresWith(b, postgres.WithQueryTracer(&stmts))
			e := newEnvOn(b, st, WithBulkMaxOperations(perRequest))
			rounds := 0
			stmts.n.Store(0)
			for b.Loop() {
				b.StopTimer()
				bodies := make([][]byte, n/perRequest)
				for r := range bodies {
					ops := make([]string, perRequest)
					for k := range ops {
						i := r*perRequest + k
						ops[k] = fmt.Sprintf(`{"method":"POST","path":"/Users","bulkId":"b%d","data":%s}`,
							i, benchUserJSON(fmt.Sprintf("bulk-r%d-%06d", rounds, i), i))
					}
					bodies[r] = []byte(`{"schemas":["` + URNBulkRequest + `"],"Operations":[` + strings.Join(ops, ",") + `]}`)
				}
				b.StartTimer()
				if msg := sendFromClients(clients, len(bodies), func(r int) string {
					if msg := benchBulkCheck(benchSend(e.srv, "POST", "/scim/v2/Bulk", bodies[r]).Body.Bytes(), perRequest); msg != "" {
						return fmt.Sprintf("POST /Bulk #%d: %s", r, msg)
					}
					return ""
				}); msg != "" {
					b.Fatal(msg)
				}
				b.StopTimer()
				rounds++
				b.StartTimer()
			}
			b.ReportMetric(float64(rounds*n)/b.Elapsed().Seconds(), "users/s")
			b.ReportMetric(float64(stmts.n.Load())/float64(rounds*n), "trips/user")
			if got, err := e.st.CountUsers(e.ctx); err != nil || got != rounds*n {
				b.Fatalf("CountUsers = %d, %v; want %d", got, err, rounds*n)
			}
		})
	}
}

// benchBulkCheck returns what is wrong with a BulkResponse that should
// answer 201 to each of its want operations, or "".
func benchBulkCheck(body []byte, want int) string {
	var resp struct {
		Operations []struct {
			Status string `json:"status"`
		}
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Sprintf("not a BulkResponse: %v: %.200s", err, body)
	}
	if len(resp.Operations) != want {
		return fmt.Sprintf("%d results, want %d", len(resp.Operations), want)
	}
	for i, op := range resp.Operations {
		if op.Status != "201" {
			return fmt.Sprintf("operation %d: status %s", i, op.Status)
		}
	}
	return ""
}
