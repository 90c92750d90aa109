package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// defaultHealthURL is the liveness endpoint of a server on the default
// listen address; a container's HEALTHCHECK runs inside the container, so
// loopback reaches it.
const defaultHealthURL = "http://127.0.0.1:4180/healthz"

// buildVersion is set at link time by release builds
// (-ldflags "-X main.buildVersion=v1.2.3"); otherwise the module version
// recorded by `go install module@version`, or "devel".
var buildVersion = ""

// versionText is what `groupgate version` prints: one "key value" per line,
// stable for scripts, taken from the binary's own build information.
func versionText() string {
	var b strings.Builder
	version := buildVersion
	info, ok := debug.ReadBuildInfo()
	if version == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	if version == "" {
		version = "devel"
	}
	fmt.Fprintf(&b, "groupgate %s\n", version)
	if !ok {
		return b.String()
	}
	fmt.Fprintf(&b, "go %s\n", info.GoVersion)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for _, k := range []string{"vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED", "GOOS", "GOARCH"} {
		if v, ok := settings[k]; ok {
			fmt.Fprintf(&b, "%s %s\n", k, v)
		}
	}
	return b.String()
}

// runHealthcheck asks a liveness URL once and fails unless it answers 200
// within a few seconds. Distroless images have no shell or curl, so the
// image's HEALTHCHECK runs the binary itself.
func (m *Main) runHealthcheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.healthURL, nil)
	if err != nil {
		return usagef("healthcheck: bad --url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: 1, message: fmt.Sprintf("unhealthy: %v", err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, message: fmt.Sprintf("unhealthy: %s answered %s", m.healthURL, resp.Status)}
	}
	_, err = fmt.Fprintln(m.Stdout, "ok")
	return err
}
