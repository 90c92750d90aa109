package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	v1 "github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1"
	"github.com/groupgate/groupgate/gen/buf/alpha/registry/v1alpha1/registryv1alpha1connect"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/store/sqlite"
	"github.com/groupgate/groupgate/sync"
)

// A gRPC client (connect-go's, speaking gRPC) reaches the Connect API over
// HTTP/2 cleartext on groupgate's listener: the README promises gRPC
// clients work, and gRPC needs HTTP/2 (issue 11 point 6).
func TestServeAnswersGRPCOverCleartextHTTP2(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "file:"+filepath.Join(t.TempDir(), "gg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, groupgate.User{UserName: "alice", Email: "alice@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	const token = "gg_h2c-test-token"
	sum := sha256.Sum256([]byte(token))
	if _, err := st.CreateToken(ctx, groupgate.Token{Kind: groupgate.TokenAPI, UserID: u.ID, Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(st, sync.New(st, session.NewMemory())).Mount(mux)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := buildHTTPServer(mux, slog.New(slog.DiscardHandler), defaultHTTPConfig())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// Prior-knowledge h2c only: the call fails unless the server speaks
	// HTTP/2 without TLS.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	base := "http://" + ln.Addr().String()

	authn := registryv1alpha1connect.NewAuthnServiceClient(client, base, connect.WithGRPC())
	req := connect.NewRequest(&v1.GetCurrentUserRequest{})
	req.Header().Set("Authorization", "Bearer "+token)
	resp, err := authn.GetCurrentUser(ctx, req)
	if err != nil {
		t.Fatalf("gRPC over h2c: %v", err)
	}
	if resp.Msg.GetUser().GetId() != u.ID {
		t.Errorf("user %v, want %s", resp.Msg.GetUser(), u.ID)
	}
	// Errors travel as gRPC statuses too.
	_, err = authn.GetCurrentUser(ctx, connect.NewRequest(&v1.GetCurrentUserRequest{}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
		t.Errorf("without a token: %v, want unauthenticated", err)
	}
}
