package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/groupgate/groupgate/internal/testenv"
)

// TestServeReplicasShareOneSigningKey runs two serve replicas on one
// PostgreSQL database: the second finds the key the first created, so
// both publish the same key set and sign with the same key.
func TestServeReplicasShareOneSigningKey(t *testing.T) {
	dsn := testenv.Postgres(t)
	config := func() string {
		public := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		return fmt.Sprintf(`listen: %s
public_url: %s
session:
  secret: 0123456789abcdef0123456789abcdef
  secure_cookie: false
providers:
  - name: %s
    type: oidc
    issuer: %s
    client_id: %s
    client_secret: %s
store:
  driver: postgres
  dsn: %s
`, strings.TrimPrefix(public, "http://"), public, testProvider, startIdP(t, public), testClientID, testClientSecret, dsn)
	}
	a, _, _, _ := startServe(t, config())
	b, _, _, _ := startServe(t, config())
	jwks := func(base string) (string, []string) {
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		var set struct {
			Keys []struct{ Kid, Alg string }
		}
		if err := json.Unmarshal([]byte(body), &set); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s/.well-known/jwks.json: %s %v\n%s", base, resp.Status, err, body)
		}
		var kids []string
		for _, k := range set.Keys {
			if k.Alg != "ES256" {
				t.Errorf("key %s is %s, want the default ES256", k.Kid, k.Alg)
			}
			kids = append(kids, k.Kid)
		}
		return body, kids
	}
	bodyA, kidsA := jwks(a)
	bodyB, kidsB := jwks(b)
	if len(kidsA) != 1 || bodyA != bodyB {
		t.Fatalf("replicas publish %v and %v, want the same single key", kidsA, kidsB)
	}
}
