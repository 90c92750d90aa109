package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The recipes under deploy/ are checked here so that they cannot rot: the
// Kubernetes base is rendered (kubectl kustomize where kubectl exists) and
// its parts must agree with each other and with groupgate's configuration
// check; the Dockerfile's own build line is run and the binary it makes must
// answer the image's health check.

const deployDir = "../../deploy"

// manifest is an alias, not a named type: yaml.v3 decodes nested maps
// into the type of the outer one.
type manifest = map[string]any

// field walks a path of map keys and list indexes through a decoded manifest.
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func decodeManifests(t *testing.T, data []byte) []manifest {
	t.Helper()
	var out []manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode manifests: %v", err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// renderKubernetesBase renders deploy/kubernetes with kubectl's built-in
// kustomize, or, where kubectl is missing, reads the base's resources as
// written (labels from the kustomization are then not applied, which the
// checks below do not rely on).
func renderKubernetesBase(t *testing.T) []manifest {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
			}
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		return decodeManifests(t, out)
	}
	t.Log("kubectl not found: checking the base's files without rendering them")
	kb, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kb, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	var all []manifest
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("resource of kustomization.yaml: %v", err)
		}
		all = append(all, decodeManifests(t, b)...)
	}
	return all
}

func byKind(t *testing.T, ms []manifest, kind string) manifest {
	t.Helper()
	for _, m := range ms {
		if m["kind"] == kind {
			return m
		}
	}
	t.Fatalf("the Kubernetes base has no %s", kind)
	return nil
}

// selects says whether every label of selector is on labels.
func selects(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesBaseRunsTwoProbedReplicasThatAgreeWithEachOther(t *testing.T) {
	ms := renderKubernetesBase(t)
	dep := byKind(t, ms, "Deployment")
	svc := byKind(t, ms, "Service")
	pdb := byKind(t, ms, "PodDisruptionBudget")
	cm := byKind(t, ms, "ConfigMap")

	podLabels := field(dep, "spec", "template", "metadata", "labels")
	container := field(dep, "spec", "template", "spec", "containers", 0)
	var portNames []any
	ports := map[any]int{}
	for _, p := range field(container, "ports").([]any) {
		portNames = append(portNames, field(p, "name"))
		ports[field(p, "name")] = field(p, "containerPort").(int)
	}
	var secretKeys []string
	envNames := map[string]bool{}
	for _, e := range field(container, "env").([]any) {
		envNames[field(e, "name").(string)] = true
		if k, ok := field(e, "valueFrom", "secretKeyRef", "key").(string); ok {
			secretKeys = append(secretKeys, k)
		}
	}
	config, _ := field(cm, "data", "config.yaml").(string)

	checks := []struct {
		name string
		ok   bool
	}{
		{"the Deployment runs two replicas", field(dep, "spec", "replicas") == 2},
		{"the Deployment's selector selects its own pods", selects(field(dep, "spec", "selector", "matchLabels"), podLabels)},
		{"the Service selects the pods", selects(field(svc, "spec", "selector"), podLabels)},
		{"the Service targets a named container port", slices.Contains(portNames, field(svc, "spec", "ports", 0, "targetPort"))},
		{"the PodDisruptionBudget selects the pods", selects(field(pdb, "spec", "selector", "matchLabels"), podLabels)},
		{"the PodDisruptionBudget leaves a replica to drain", field(pdb, "spec", "minAvailable") == 1},
		{"liveness asks /healthz", field(container, "livenessProbe", "httpGet", "path") == "/healthz"},
		{"readiness asks /readyz", field(container, "readinessProbe", "httpGet", "path") == "/readyz"},
		{"pods run as non-root", field(dep, "spec", "template", "spec", "securityContext", "runAsNonRoot") == true},
		{"the container cannot escalate privileges", field(container, "securityContext", "allowPrivilegeEscalation") == false},
		{"secrets come from a Secret, not the manifest", len(secretKeys) >= 3},
		{"the configuration is in the ConfigMap", config != ""},
		{"the configuration listens on the http container port", strings.Contains("\n"+config, "\nlisten: 0.0.0.0:"+itoa(ports["http"])+"\n")},
		{"metrics listen on the metrics container port", strings.Contains(config, "  listen: 0.0.0.0:"+itoa(ports["metrics"])+"\n")},
		{"Prometheus is told the metrics port", field(dep, "spec", "template", "metadata", "annotations", "prometheus.io/port") == itoa(ports["metrics"])},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: does not hold", c.name)
		}
	}

	// Every ${VAR} of the configuration is set by the container's env, and
	// every Secret key the Deployment reads is in the documented example.
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllStringSubmatch(config, -1) {
		if !envNames[m[1]] {
			t.Errorf("config.yaml uses ${%s}, which the Deployment does not set", m[1])
		}
	}
	example, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(example, &secret); err != nil {
		t.Fatalf("secret.example.yaml: %v", err)
	}
	for _, k := range secretKeys {
		if _, ok := secret.StringData[k]; !ok {
			t.Errorf("the Deployment reads Secret key %s, which secret.example.yaml does not show", k)
		}
	}

	// The ConfigMap's configuration passes `groupgate config check` with the
	// example Secret's values.
	path := writeFile(t, "config.yaml", config)
	env := map[string]string{}
	for k, v := range secret.StringData {
		env[k] = v
	}
	if _, err := LoadConfig(path, envFrom(env)); err != nil {
		t.Errorf("the ConfigMap's config.yaml fails the configuration check:\n%v", err)
	}
}

func itoa(n int) string {
	b, _ := yaml.Marshal(n)
	return strings.TrimSpace(string(b))
}

// dockerfile is the parsed shape of deploy/Dockerfile: its stages and the
// final stage's instructions, continuation lines joined.
type dockerfile struct {
	froms       []string
	buildLine   string
	user        string
	healthcheck string
	entrypoint  string
	copyTarget  string
	expose      string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	var d dockerfile
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			d.froms = append(d.froms, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.buildLine = rest
			}
		case "USER":
			d.user = rest
		case "HEALTHCHECK":
			d.healthcheck = rest
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "COPY":
			if strings.HasPrefix(rest, "--from=") {
				f := strings.Fields(rest)
				d.copyTarget = f[len(f)-1]
			}
		case "EXPOSE":
			d.expose = rest
		}
	}
	return d
}

func TestDockerfileBuildsAStaticNonRootImageThatChecksItsOwnHealth(t *testing.T) {
	d := parseDockerfile(t)
	final := ""
	if len(d.froms) > 0 {
		final = d.froms[len(d.froms)-1]
	}
	var entry []string
	_ = yaml.Unmarshal([]byte(d.entrypoint), &entry)
	checks := []struct {
		name string
		ok   bool
	}{
		{"it has a build stage and a runtime stage", len(d.froms) >= 2},
		{"the runtime stage is distroless or scratch", strings.Contains(final, "distroless") || final == "scratch"},
		{"the binary is static", strings.Contains(d.buildLine, "CGO_ENABLED=0")},
		{"it runs as a numeric non-root user", regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(d.user)},
		{"the entrypoint is the copied binary", len(entry) == 1 && entry[0] == d.copyTarget},
		{"the health check runs the binary's healthcheck", strings.Contains(d.healthcheck, `"`+d.copyTarget+`", "healthcheck"`)},
		{"the health check asks the exposed port", d.expose != "" && strings.Contains(d.healthcheck, "127.0.0.1:"+d.expose+"/healthz")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: does not hold", c.name)
		}
	}
	if t.Failed() {
		return
	}

	// Run the Dockerfile's own build line from the repository root, like
	// `COPY . .` does, with its output moved to a temporary directory. A
	// full static build costs minutes on CI's two cores, so by default it is
	// a dry run (go build -n: flags, package path and the CGO_ENABLED=0
	// build constraints of every dependency are still resolved);
	// GROUPGATE_TEST_IMAGE_BUILD=1 builds and runs the binary itself.
	full := os.Getenv("GROUPGATE_TEST_IMAGE_BUILD") == "1"
	out := t.TempDir()
	line := strings.ReplaceAll(d.buildLine, "/out/", out+"/")
	line = strings.ReplaceAll(line, "${VERSION}", "v0.0.0-deploytest")
	if !full {
		line = strings.Replace(line, "go build ", "go build -n ", 1)
	}
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build line failed: %v\n%s", err, b)
	}
	run := func(args ...string) error {
		if full {
			return exec.Command(filepath.Join(out, filepath.Base(d.copyTarget)), args...).Run()
		}
		m := NewMain()
		m.Stdout, m.Stderr = io.Discard, io.Discard
		err := m.ParseFlags(t.Context(), args)
		if err == nil {
			err = m.Run(t.Context())
		}
		if code := report(io.Discard, err); code != 0 {
			return fmt.Errorf("exit code %d: %v", code, err)
		}
		return nil
	}
	if full {
		version, err := exec.Command(filepath.Join(out, filepath.Base(d.copyTarget)), "version").Output()
		if err != nil {
			t.Fatalf("groupgate version: %v", err)
		}
		for _, want := range []string{"groupgate v0.0.0-deploytest\n", "CGO_ENABLED 0\n"} {
			if !strings.Contains(string(version), want) {
				t.Errorf("groupgate version printed %q, want a line %q", version, want)
			}
		}
	} else if err := run("version"); err != nil {
		t.Errorf("groupgate version: %v", err)
	}

	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer healthy.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, c := range []struct {
		name string
		url  string
		ok   bool
	}{
		{"a server answering 200 is healthy", healthy.URL + "/healthz", true},
		{"a server answering 503 is unhealthy", failing.URL + "/healthz", false},
		{"no server is unhealthy", closed, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run("healthcheck", "--url", c.url)
			if (err == nil) != c.ok {
				t.Errorf("healthcheck --url %s: err=%v, want healthy=%v", c.url, err, c.ok)
			}
		})
	}
}
