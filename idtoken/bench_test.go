package idtoken_test

import (
	"testing"

	"github.com/groupgate/groupgate/idtoken"
)

// BenchmarkToken is the cost forward-auth pays for X-Auth-Request-Jwt:
// "reused" is the common case (the session's token is younger than half
// its lifetime), "signed" a new signature on every call.
func BenchmarkToken(b *testing.B) {
	c := newClock()
	for _, alg := range idtoken.Algorithms {
		cfg := baseConfig()
		cfg.Algorithm = alg
		iss := newIssuer(b, openSQLite(b), c, cfg)
		b.Run(alg+"/reused", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := iss.Token(b.Context(), "session", alice); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(alg+"/signed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.Token(b.Context(), "", alice); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
