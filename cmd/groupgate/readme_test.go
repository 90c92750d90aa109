package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeWalkthrough returns the README's shell blocks that follow a
// "<!-- walkthrough -->" line, joined in order: the API walkthrough a
// newcomer pastes into a terminal.
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		script strings.Builder
		marked bool // the last non-blank line was the marker
		inside bool
		blocks int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inside && strings.HasPrefix(line, "```"):
			inside = false
		case inside:
			script.WriteString(line + "\n")
		case marked && strings.HasPrefix(line, "```"):
			inside, marked = true, false
			blocks++
		case strings.TrimSpace(line) == "<!-- walkthrough -->":
			marked = true
		case strings.TrimSpace(line) != "":
			marked = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if blocks < 3 {
		t.Fatalf("README has %d walkthrough blocks, want the setup, organization and repository ones", blocks)
	}
	return script.String()
}

// needTools skips without the named commands, and fails under CI=true.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			msg := n + " is needed (apt-get install -y " + n + ")"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// TestREADMEWalkthroughRunsAgainstDev runs the README's API walkthrough
// verbatim against `groupgate dev`, as a newcomer would paste it, twice
// (it promises to leave the mappings as it found them). Any failing step
// fails it: bash runs with -e and pipefail and the README's curl calls
// use --fail-with-body.
func TestREADMEWalkthroughRunsAgainstDev(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	script := readmeWalkthrough(t)
	d := startDev(t, nil)
	path := filepath.Join(t.TempDir(), "walkthrough.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("a failing step fails the walkthrough", func(t *testing.T) {
		cmd := exec.Command("bash", "-e", "-o", "pipefail", path)
		cmd.Env = append(os.Environ(), "GG="+d.base, "TOKEN=gg_not-a-token")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("the walkthrough succeeded with a wrong token:\n%s", out)
		}
	})
	for _, run := range []string{"first", "second"} {
		cmd := exec.Command("bash", "-e", "-o", "pipefail", path)
		cmd.Env = append(os.Environ(), "GG="+d.base, "TOKEN="+d.token)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s run of the README walkthrough failed: %v\n--- script\n%s--- output\n%s", run, err, script, out)
		}
		for _, bad := range []string{"already_exists", `"code":`, "null"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("%s run printed %q:\n%s", run, bad, out)
			}
		}
		for _, want := range []string{`{"groupName":"release-managers","effectiveRole":"ORGANIZATION_ROLE_ADMIN"}`, `{"groupName":"eng","effectiveRole":"REPOSITORY_ROLE_WRITE"}`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s run's output lacks %q:\n%s", run, want, out)
			}
		}
		t.Logf("%s run:\n%s", run, out)
	}
}
