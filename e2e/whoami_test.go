package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/groupgate/groupgate/internal/testenv"
)

// TestWhoamiShowsOnesOwnSessions signs alice in from two browsers and bob
// from a third: alice's /whoami lists her two sessions, marks the one she
// asks from, and shows no session ID.
func TestWhoamiShowsOnesOwnSessions(t *testing.T) {
	client, prefix := testenv.Redis(t)
	r := startReplicas(t, 1, replicaConfig{openStore: sqliteStore, client: client, prefix: prefix, cache: true})[0]
	laptop, phone, bob := newBrowser(t), newBrowser(t), newBrowser(t)
	signIn(t, laptop, r, "alice")
	signIn(t, phone, r, "alice")
	signIn(t, bob, r, "bob")

	resp, err := phone.Get(r.url + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/whoami = %s %s", resp.Status, body)
	}
	var got struct {
		Sessions []struct {
			IDHint    string    `json:"id_hint"`
			Provider  string    `json:"provider"`
			CreatedAt time.Time `json:"created_at"`
			ExpiresAt time.Time `json:"expires_at"`
			Current   bool      `json:"current"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 2 {
		t.Fatalf("alice's /whoami lists %d sessions, want her 2: %s", len(got.Sessions), body)
	}
	if got.Sessions[0].Current || !got.Sessions[1].Current {
		t.Errorf("current flags = %v, %v; want the phone's (newer) session marked", got.Sessions[0].Current, got.Sessions[1].Current)
	}
	for _, s := range got.Sessions {
		if s.Provider != provider || s.IDHint == "" || len(s.IDHint) > 12 || !s.ExpiresAt.After(s.CreatedAt) {
			t.Errorf("session entry %+v", s)
		}
	}
	for _, c := range []*http.Client{laptop, phone} {
		for _, ck := range c.Jar.Cookies(mustURL(t, r.url)) {
			if strings.Contains(body, ck.Value) || (len(ck.Value) > 20 && strings.Contains(body, ck.Value[:20])) {
				t.Errorf("/whoami leaks a session cookie value")
			}
		}
	}
}
