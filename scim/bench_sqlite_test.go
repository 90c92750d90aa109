package scim

import (
	"net/url"
	"testing"
)

// BenchmarkSCIMSQLite is the issue-15 document filter and deep page on
// SQLite, through the handler over 100,000 seeded users (seeding is not
// timed): the email value filter for each operator the index serves (ew,
// eq and sw from user_email_values' indexes; co scans that table), and
// the page at startIndex 90,001 asked cold and in a walk.
//
//	go test -run '^$' -bench BenchmarkSCIMSQLite -timeout 30m ./scim/
func BenchmarkSCIMSQLite(b *testing.B) {
	if testing.Short() {
		b.Skip("seeding 100,000 users is skipped in -short mode")
	}
	const n = 100000
	seed := &benchSeed{e: newEnvOn(b, openSQLite(b))}
	seed.ensure(b, n, 5000)
	for _, tc := range []struct {
		name   string
		filter string
		total  int
	}{
		// user-X04242 for X in 0..9: the target's filter.
		{"emails-work-ew", `emails[type eq "work" and value ew "4242@example.com"]`, 10},
		{"emails-eq", `emails[value eq "user-077777@home.example"]`, 1},
		{"emails-sw", `emails[value sw "USER-0042"]`, 100},
		{"emails-co", `emails[value co "77777@"]`, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			target := "/scim/v2/Users?" + url.Values{"filter": {tc.filter}, "count": {"100"}}.Encode()
			b.ReportAllocs()
			for b.Loop() {
				w := benchSend(seed.e.srv, "GET", target, nil)
				b.StopTimer()
				out := benchExpect(b, w, 200, "GET "+target)
				if res, _ := out["Resources"].([]any); out["totalResults"] != float64(tc.total) || len(res) != min(tc.total, 100) {
					b.Fatalf("GET %s: totalResults %v, %d resources; want %d", target, out["totalResults"], len(res), tc.total)
				}
				b.StartTimer()
			}
		})
	}
	page := func(start string) string {
		return "/scim/v2/Users?" + url.Values{"filter": {`active eq true`}, "startIndex": {start}, "count": {"100"}}.Encode()
	}
	checkPage := func(b *testing.B, out map[string]any, first string) {
		b.Helper()
		res, _ := out["Resources"].([]any)
		if len(res) != 100 || out["totalResults"] != float64(n) {
			b.Fatalf("page 90,001: %d resources of %v", len(res), out["totalResults"])
		}
		if got := res[0].(map[string]any)["userName"]; got != first {
			b.Fatalf("page 90,001 starts with %v, want %s", got, first)
		}
	}
	// Users are created in name order, so the page at 90,001 starts with
	// user 90,000.
	b.Run("active-page-90001-cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := benchSend(seed.e.srv, "GET", page("90001"), nil)
			b.StopTimer()
			checkPage(b, benchExpect(b, w, 200, "GET page 90,001"), benchUserName(90000))
			b.StartTimer()
		}
	})
	b.Run("active-page-90001-walking", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			benchExpect(b, benchSend(seed.e.srv, "GET", page("89901"), nil), 200, "GET page 89,901")
			b.StartTimer()
			w := benchSend(seed.e.srv, "GET", page("90001"), nil)
			b.StopTimer()
			checkPage(b, benchExpect(b, w, 200, "GET page 90,001"), benchUserName(90000))
			b.StartTimer()
		}
	})
}
