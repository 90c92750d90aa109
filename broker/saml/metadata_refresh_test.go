package saml_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/saml"
)

// TestMetadataRefresh shows that URL metadata is re-read, that a failed
// refresh keeps the last good copy in use, and that a rotated IdP key takes
// effect at the next successful refresh.
func TestMetadataRefresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil) // for the clock, keys and response builder
	rotated := testIdP{key: keyPair(t, "idp-rotated", e.clk.Now())}

	var current atomic.Value // the metadata XML served, "" for an error
	current.Store(e.idp.metadata(true))
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		md := current.Load().(string)
		if md == "" {
			http.Error(w, "IdP down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(md))
	}))
	defer srv.Close()

	cfg := saml.Config{
		IDPMetadataURL:    srv.URL,
		EntityID:          spEntity,
		ACSURL:            acsURL,
		KeyPair:           e.spKey,
		GroupsAttribute:   "groups",
		EmailAttribute:    "email",
		UsernameAttribute: "username",
	}
	conn, err := cfg.Open(ctx, "corp", e.backend, e.backend, saml.WithNow(e.clk.Now), saml.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if fetches.Load() != 1 {
		t.Fatalf("Open fetched metadata %d times, want 1", fetches.Load())
	}

	login := func(idp testIdP) error {
		req, err := conn.Begin(ctx, "/", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), req.RequestID)))})
		return err
	}

	t.Run("a failed refresh keeps the last good copy", func(t *testing.T) {
		current.Store("")
		if err := conn.Refresh(ctx); err == nil {
			t.Fatal("Refresh succeeded against a failing metadata URL")
		}
		if err := login(e.idp); err != nil {
			t.Fatalf("login with the last good metadata: %v", err)
		}
	})

	t.Run("unparsable metadata is refused and the last good copy stays", func(t *testing.T) {
		current.Store("<not-metadata/>")
		if err := conn.Refresh(ctx); err == nil {
			t.Fatal("Refresh accepted unparsable metadata")
		}
		if err := login(e.idp); err != nil {
			t.Fatalf("login with the last good metadata: %v", err)
		}
	})

	t.Run("a rotated IdP key takes effect at the next refresh", func(t *testing.T) {
		current.Store(rotated.metadata(true))
		if err := conn.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := login(rotated); err != nil {
			t.Fatalf("login signed by the rotated key: %v", err)
		}
		if err := login(e.idp); err == nil {
			t.Fatal("a response signed by the retired key was accepted after rotation")
		}
	})
}

// TestMetadataFromFile reads the IdP metadata from a file, the third
// source besides a URL and inline XML.
func TestMetadataFromFile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	path := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(path, []byte(e.idp.metadata(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := saml.Config{IDPMetadataFile: path, EntityID: spEntity, ACSURL: acsURL, KeyPair: e.spKey, GroupsAttribute: "groups"}
	conn, err := cfg.Open(ctx, "corp", e.backend, e.backend, saml.WithNow(e.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := conn.Begin(ctx, "/", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.HandleResponse(ctx, saml.Response{SAMLResponse: encode(t, e.idp.build(t, e.clk.Now(), newSpec(e.clk.Now(), req.RequestID)))}); err != nil {
		t.Fatalf("login with file metadata: %v", err)
	}

	missing := saml.Config{IDPMetadataFile: filepath.Join(t.TempDir(), "absent.xml"), EntityID: spEntity, ACSURL: acsURL, KeyPair: e.spKey, GroupsAttribute: "groups"}
	if _, err := missing.Open(ctx, "corp", e.backend, e.backend); err == nil {
		t.Fatal("Open succeeded with a missing metadata file")
	}
}

// TestOpenSaysUnavailableOnlyForAMetadataURLThatDoesNotAnswer: a metadata
// URL that does not answer usably is Unavailable (broker.Lazy retries it);
// a missing metadata file is the configuration's to fix.
func TestOpenSaysUnavailableOnlyForAMetadataURLThatDoesNotAnswer(t *testing.T) {
	e := newEnv(t, nil)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name        string
		source      func(*saml.Config)
		unavailable bool
	}{
		{"a metadata URL answering 503", func(c *saml.Config) { c.IDPMetadataURL = down.URL }, true},
		{"a metadata URL refusing connections", func(c *saml.Config) { c.IDPMetadataURL = closed.URL }, true},
		{"a metadata file that does not exist", func(c *saml.Config) { c.IDPMetadataFile = filepath.Join(t.TempDir(), "none.xml") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := saml.Config{EntityID: spEntity, ACSURL: acsURL, KeyPair: e.spKey}
			tt.source(&cfg)
			_, err := cfg.Open(context.Background(), "corp", e.backend, e.backend)
			if err == nil || groupgate.IsCode(err, groupgate.Unavailable) != tt.unavailable {
				t.Fatalf("Open = %v, want Unavailable %v", err, tt.unavailable)
			}
		})
	}
}
