package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/broker/graph"
	"github.com/groupgate/groupgate/idtoken"
	"github.com/groupgate/groupgate/session"
	"github.com/groupgate/groupgate/sync"
	"github.com/groupgate/groupgate/web"
)

// Config is the shape of groupgate's YAML configuration (ARCHITECTURE.md §6).
// It lives with the command because only the command reads it; packages get
// the values they need through their own constructors.
//
// Struct tags: yaml names the key; only:"oidc" or only:"saml" marks a
// provider key that belongs to one provider type.
type Config struct {
	Listen               string           `yaml:"listen"`
	PublicURL            string           `yaml:"public_url"`
	AllowedRedirectHosts []string         `yaml:"allowed_redirect_hosts"`
	TrustedProxies       []string         `yaml:"trusted_proxies"`
	Log                  LogConfig        `yaml:"log"`
	Store                StoreConfig      `yaml:"store"`
	Redis                *RedisConfig     `yaml:"redis"`
	Session              SessionConfig    `yaml:"session"`
	Groups               GroupsConfig     `yaml:"groups"`
	Admins               []string         `yaml:"admins"`
	Providers            []ProviderConfig `yaml:"providers"`
	SCIM                 SCIMConfig       `yaml:"scim"`
	API                  APIConfig        `yaml:"api"`
	Upstream             string           `yaml:"upstream"`
	// UpstreamRoutes are requirements per upstream path prefix in
	// reverse-proxy mode.
	UpstreamRoutes []UpstreamRouteConfig `yaml:"upstream_routes"`
	// IdentityToken is the signed X-Auth-Request-Jwt.
	IdentityToken IdentityTokenConfig `yaml:"identity_token"`
	// Tracing exports OpenTelemetry spans (tracing.go).
	Tracing TracingConfig `yaml:"tracing"`

	// Bounds of the HTTP surface against clients that would exhaust it.
	LoginLimits LoginLimitsConfig `yaml:"login_limits"`
	Metrics     MetricsConfig     `yaml:"metrics"`
	HTTP        HTTPConfig        `yaml:"http"`
}

// HTTPConfig bounds how long a client may hold a connection. groupgate's
// own routes answer quickly, so the listener's deadlines are short; the
// reverse proxy streams the application's requests and responses, so it
// replaces them, per request, with its own.
type HTTPConfig struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    ByteSize `yaml:"max_header_bytes"`
	// 0: no deadline (long-lived streams), the application's own limits
	// apply.
	ProxyReadTimeout  Duration `yaml:"proxy_read_timeout"`
	ProxyWriteTimeout Duration `yaml:"proxy_write_timeout"`
}

// defaultHTTPConfig: headers within 10s, a whole own-route request
// (1 MiB body at most) within 30s and its answer within 60s (a login
// callback waits on the IdP), 64 KiB of headers (nginx allows 32 KiB by
// default), and 10 minutes per proxied request each way.
func defaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		ReadHeaderTimeout: Duration(10 * time.Second),
		ReadTimeout:       Duration(30 * time.Second),
		WriteTimeout:      Duration(60 * time.Second),
		IdleTimeout:       Duration(2 * time.Minute),
		MaxHeaderBytes:    64 << 10,
		ProxyReadTimeout:  Duration(10 * time.Minute),
		ProxyWriteTimeout: Duration(10 * time.Minute),
	}
}

// MetricsConfig says where Prometheus metrics are served. They are off the
// main listener by default: in reverse-proxy mode that listener is the
// application's public host.
type MetricsConfig struct {
	// Listen is the host:port of a listener serving only /metrics; empty:
	// none.
	Listen string `yaml:"listen"`
	// OnMainListener serves /metrics on the main listener too.
	OnMainListener bool `yaml:"on_main_listener"`
}

// LoginLimitsConfig bounds the login attempts a replica stores before
// anyone has signed in (web.LoginLimits): per client address (IPv4, or
// IPv6 /64, as trusted_proxies resolve it) and in total. A start beyond
// them answers 429 with Retry-After.
type LoginLimitsConfig struct {
	PerClientBurst     int `yaml:"per_client_burst"`
	PerClientPerMinute int `yaml:"per_client_per_minute"`
	MaxLiveAttempts    int `yaml:"max_live_attempts"`
}

// UpstreamRouteConfig is one requirement on the upstream paths under
// PathPrefix (web.Route): the /auth query's parameters, as keys.
type UpstreamRouteConfig struct {
	PathPrefix string `yaml:"path_prefix"`
	Org        string `yaml:"org"`
	Repo       string `yaml:"repo"`
	Group      string `yaml:"group"`
	MinRole    string `yaml:"min_role"`
}

// IdentityTokenConfig configures X-Auth-Request-Jwt (package idtoken).
// The signing keys live in the store, sealed with a key derived from
// session.secret, and rotate by themselves.
type IdentityTokenConfig struct {
	Enabled bool `yaml:"enabled"`
	// Audience is "aud"; empty: public_url.
	Audience       []string `yaml:"audience"`
	Algorithm      string   `yaml:"algorithm"`
	TTL            Duration `yaml:"ttl"`
	RotationPeriod Duration `yaml:"rotation_period"`
	PublishAhead   Duration `yaml:"publish_ahead"`
	MaxGroups      int      `yaml:"max_groups"`
	MaxRoles       int      `yaml:"max_roles"`
	MaxBytes       ByteSize `yaml:"max_bytes"`
}

// LogConfig selects the slog handler.
type LogConfig struct {
	Format string `yaml:"format"` // json | text
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// StoreConfig selects the durable store.
type StoreConfig struct {
	Driver string `yaml:"driver"` // sqlite | postgres
	DSN    string `yaml:"dsn"`
}

// RedisConfig is present when sessions live in Redis. One address is a
// standalone server, several a Cluster, and MasterName makes them Sentinels.
type RedisConfig struct {
	Addrs      []string         `yaml:"addrs"`
	MasterName string           `yaml:"master_name"`
	Username   string           `yaml:"username"`
	Password   string           `yaml:"password"`
	DB         int              `yaml:"db"`
	KeyPrefix  string           `yaml:"key_prefix"`
	LocalCache LocalCacheConfig `yaml:"local_cache"`
	// RecordEncoding is how session records are written: binary, or json
	// while replicas of a version before the binary layout still run.
	RecordEncoding string `yaml:"record_encoding"`
}

func (r *RedisConfig) setDefaults() {
	r.KeyPrefix = "groupgate:"
	r.RecordEncoding = "binary"
	r.LocalCache = LocalCacheConfig{Enabled: true, TTL: Duration(session.DefaultCacheTTL), Size: session.DefaultCacheSize}
}

// LocalCacheConfig is the in-process cache of session records in front of
// Redis (session.Cache). It is on by default: every write invalidates the
// entries on every replica over pub/sub, the cache is bypassed while that
// subscription is not confirmed, and a message lost silently is noticed
// from its sequence number, so a revoked role is never served from memory
// for more than about two ping intervals; the TTL only bounds writers that
// announce nothing (a replica with the cache off or of an older version).
type LocalCacheConfig struct {
	Enabled bool     `yaml:"enabled"`
	TTL     Duration `yaml:"ttl"`
	Size    int      `yaml:"size"`
}

// maxLocalCacheTTL is the longest local_cache.ttl accepted; session.Cache
// would cap a longer one silently, and config refuses rather than rewrite.
const maxLocalCacheTTL = session.MaxCacheTTL

// SessionConfig configures the session cookie.
type SessionConfig struct {
	Secret       string   `yaml:"secret"`
	TTL          Duration `yaml:"ttl"`
	CookieName   string   `yaml:"cookie_name"`
	SecureCookie bool     `yaml:"secure_cookie"`
}

// GroupsConfig is the group filter: groups outside it are invisible.
type GroupsConfig struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// ProviderConfig is one IdP. OIDC and SAML keys share the struct; a key of
// the other type is refused.
type ProviderConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // oidc | saml
	// AllowInsecureHTTP lets issuer or idp_metadata_url use plain http on
	// a host that is not loopback. The IdP's signing keys come from there:
	// over http anyone on the path can replace them and sign logins.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// TrustEmail vouches for every email this provider sends, as if it
	// said email_verified: logins may then link to an existing account by
	// email. For SAML IdPs and Entra ID, which send no such claim.
	TrustEmail bool `yaml:"trust_email"`

	// DisplayName is what the login page's provider picker shows (default:
	// Name, which appears in URLs and so is terse).
	DisplayName string `yaml:"display_name"`

	Issuer        string   `yaml:"issuer" only:"oidc"`
	ClientID      string   `yaml:"client_id" only:"oidc"`
	ClientSecret  string   `yaml:"client_secret" only:"oidc"`
	Scopes        []string `yaml:"scopes" only:"oidc"`
	GroupsClaim   string   `yaml:"groups_claim" only:"oidc"`
	GroupsFrom    string   `yaml:"groups_from" only:"oidc"` // id_token | userinfo
	UsernameClaim string   `yaml:"username_claim" only:"oidc"`
	EmailClaim    string   `yaml:"email_claim" only:"oidc"`
	// Refresh keeps the session's groups fresh with a refresh token
	// (cmd/groupgate/refresh.go, package refresh).
	Refresh RefreshConfig `yaml:"refresh" only:"oidc"`

	IDPMetadataFile                   string   `yaml:"idp_metadata_file" only:"saml"`
	IDPMetadataURL                    string   `yaml:"idp_metadata_url" only:"saml"`
	IDPMetadataXML                    string   `yaml:"idp_metadata_xml" only:"saml"`
	SPEntityID                        string   `yaml:"sp_entity_id" only:"saml"`
	GroupsAttribute                   string   `yaml:"groups_attribute" only:"saml"`
	GroupsDelimiter                   string   `yaml:"groups_delimiter" only:"saml"`
	UsernameAttribute                 string   `yaml:"username_attribute" only:"saml"`
	EmailAttribute                    string   `yaml:"email_attribute" only:"saml"`
	DisplayNameAttribute              string   `yaml:"display_name_attribute" only:"saml"`
	AllowIDPInitiated                 bool     `yaml:"allow_idp_initiated" only:"saml"`
	RequireSignedResponseAndAssertion bool     `yaml:"require_signed_response_and_assertion" only:"saml"`
	ClockSkew                         Duration `yaml:"clock_skew" only:"saml"`
	SPCertFile                        string   `yaml:"sp_cert_file" only:"saml"`
	SPKeyFile                         string   `yaml:"sp_key_file" only:"saml"`

	// Graph, when set, reads the groups of Entra ID's group-overage logins
	// from Microsoft Graph (OIDC: with the login's access token; SAML:
	// with an application token from its client credential).
	Graph *GraphConfig `yaml:"graph"`
}

// GraphConfig is a provider's Microsoft Graph access for group overage.
type GraphConfig struct {
	// URL is the Graph service root (https://graph.microsoft.com, or a
	// national cloud's); the access token is sent nowhere else.
	URL       string   `yaml:"url"`
	MaxGroups int      `yaml:"max_groups"`
	Timeout   Duration `yaml:"timeout"`
	// The application credential (SAML only): client credentials grant at
	// token_url, by default the tenant's v2.0 token endpoint.
	TenantID     string `yaml:"tenant_id"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	TokenURL     string `yaml:"token_url"`
}

// setDefaults fills both types' defaults; the keys of the other type are
// refused if written, so their defaults are never seen.
func (p *ProviderConfig) setDefaults() {
	p.Scopes = []string{"openid", "email", "profile"}
	p.GroupsClaim = "groups"
	p.GroupsFrom = "id_token"
	p.UsernameClaim = "preferred_username"
	p.EmailClaim = "email"
	p.GroupsAttribute = "groups"
	p.UsernameAttribute = "username"
	p.EmailAttribute = "email"
	p.DisplayNameAttribute = "displayName"
	p.ClockSkew = Duration(90 * time.Second)
	p.Refresh.setDefaults()
}

// SCIMConfig configures the SCIM 2.0 endpoint.
type SCIMConfig struct {
	Enabled   bool     `yaml:"enabled"`
	BodyLimit ByteSize `yaml:"body_limit"`
	MatchKey  string   `yaml:"match_key"` // email | username
}

// APIConfig configures the Connect API.
type APIConfig struct {
	BodyLimit ByteSize        `yaml:"body_limit"`
	Tokens    APITokensConfig `yaml:"tokens"`
}

// APITokensConfig bounds the API tokens users create through TokenService
// (web.TokenPolicy); `groupgate token create` is not bound by it.
type APITokensConfig struct {
	SessionMaxLifetime Duration `yaml:"session_max_lifetime"`
	DefaultLifetime    Duration `yaml:"default_lifetime"`
	MaxLifetime        Duration `yaml:"max_lifetime"`
	MaxPerUser         int      `yaml:"max_per_user"`
}

// defaultCookieName is session.cookie_name when the file sets none. With
// secure_cookie, the __Host- prefix (RFC 6265bis §4.1.3.2) makes browsers
// refuse the cookie from any other host or without Secure, Path=/ and
// host-only, so a sibling subdomain cannot plant or shadow it (cookie
// tossing). The session cookie is always Path=/, also under a public_url
// path prefix, so the prefix fits every deployment. Without secure_cookie
// browsers would drop a __Host- cookie: the plain name.
func defaultCookieName(secure bool) string {
	if secure {
		return "__Host-groupgate"
	}
	return "_groupgate"
}

// defaultConfig is the configuration of an empty file; Load decodes over it
// so that absent keys keep these values.
func defaultConfig() Config {
	return Config{
		Listen:    "127.0.0.1:4180",
		PublicURL: "http://127.0.0.1:4180",
		Log:       LogConfig{Format: "json", Level: "info"},
		Store:     StoreConfig{Driver: "sqlite", DSN: "file:groupgate.db"},
		Session: SessionConfig{
			TTL: Duration(12 * time.Hour),
			// CookieName "" is defaultCookieName, chosen once secure_cookie is known.
			SecureCookie: true,
		},
		SCIM: SCIMConfig{BodyLimit: 1 << 20, MatchKey: "email"},
		API: APIConfig{BodyLimit: 1 << 20, Tokens: APITokensConfig{
			SessionMaxLifetime: Duration(24 * time.Hour),
			DefaultLifetime:    Duration(30 * 24 * time.Hour),
			MaxLifetime:        Duration(90 * 24 * time.Hour),
			MaxPerUser:         100,
		}},
		HTTP:    defaultHTTPConfig(),
		Tracing: defaultTracingConfig(),
		IdentityToken: IdentityTokenConfig{
			Enabled:        true,
			Algorithm:      idtoken.DefaultAlgorithm,
			TTL:            Duration(idtoken.DefaultTTL),
			RotationPeriod: Duration(idtoken.DefaultRotationPeriod),
			PublishAhead:   Duration(idtoken.DefaultPublishAhead),
			MaxGroups:      idtoken.DefaultMaxGroups,
			MaxRoles:       idtoken.DefaultMaxRoles,
			MaxBytes:       idtoken.DefaultMaxBytes,
		},
		LoginLimits: LoginLimitsConfig{
			PerClientBurst:     web.DefaultLoginPerClientBurst,
			PerClientPerMinute: web.DefaultLoginPerClientPerMinute,
			MaxLiveAttempts:    web.DefaultLoginMaxLive,
		},
	}
}

// Duration is a time.Duration written as "12h", "90s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as 1048576, "512KiB" or "1MiB".
type ByteSize int64

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

var byteSizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([A-Za-z]*)\s*$`)

func parseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (write bytes, or a number with B, KB, MB, GB, KiB, MiB or GiB)", s)
	}
	unit, ok := byteUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("%q has unknown unit %q (use B, KB, MB, GB, KiB, MiB or GiB)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > (1<<62)/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n * unit), nil
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File    string
	Line    int
	Path    string // key path such as providers[0].issuer
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Path, p.Message)
}

// ConfigError carries every problem found; Load never stops at the first.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// LoadConfig reads file and returns the validated configuration, or a
// *ConfigError listing every problem. lookupEnv resolves ${VAR}; pass
// os.LookupEnv. Apart from reading file it has no side effects: it opens no
// other file, database or network connection.
func LoadConfig(file string, lookupEnv func(string) (string, bool)) (Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	return ParseConfig(file, data, lookupEnv)
}

// yamlLineRE finds the line in a yaml.v3 syntax error, which has no typed
// form; the text is only displayed, never used to decide anything.
var yamlLineRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// ParseConfig is LoadConfig on data already read; file names the source in
// problems and anchors relative paths in the configuration.
func ParseConfig(file string, data []byte, lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()
	d := &decoder{file: file, lookupEnv: lookupEnv, lines: map[string]int{}, failed: map[string]bool{}}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := 1, err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		return Config{}, &ConfigError{Problems: []Problem{{File: file, Line: line, Path: "(yaml)", Message: msg}}}
	}
	if len(doc.Content) > 0 {
		d.decode(doc.Content[0], reflect.ValueOf(&cfg).Elem(), "")
	}
	d.validate(&cfg)
	d.resolvePaths(&cfg, filepath.Dir(file))

	if len(d.problems) > 0 {
		slices.SortStableFunc(d.problems, func(a, b Problem) int { return a.Line - b.Line })
		return Config{}, &ConfigError{Problems: d.problems}
	}
	return cfg, nil
}

type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	problems  []Problem
	// lines maps every key path seen to the line it was written on; problems
	// about absent keys use the nearest present ancestor.
	lines  map[string]int
	failed map[string]bool
	// aliases counts alias uses. Config's types nest finitely, so an alias
	// inside its own anchor cannot recurse forever; the count bounds the
	// work all aliases together can cause.
	aliases int
}

func (d *decoder) addf(line int, path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	d.failed[path] = true
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// problemf reports a problem about path at its line, or at its nearest
// written ancestor's line when path itself is absent. A path whose value
// could not be decoded already has its problem; validating the empty value
// left behind would only add noise ("required" after "not set").
func (d *decoder) problemf(path, format string, args ...any) {
	if d.failed[path] {
		return
	}
	d.addf(d.lineOf(path), path, format, args...)
}

func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 1
}

func (d *decoder) has(path string) bool {
	_, ok := d.lines[path]
	return ok
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

type defaulter interface{ setDefaults() }

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// decode stores n into v, reporting every unknown key, wrong shape and
// unparsable value with its line. An explicit null leaves v (its default)
// alone.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		target, ok := d.deref(n, path)
		if !ok {
			return
		}
		n = target
	}
	if isNull(n) {
		return
	}
	switch {
	case v.Type() == durationType:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.problemf(path, "%q is not a duration (write e.g. 90s, 15m, 12h)", s)
			return
		}
		if dur < 0 {
			d.problemf(path, "must not be negative")
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Type() == byteSizeType:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		size, err := parseByteSize(s)
		if err != nil {
			d.problemf(path, "%v", err)
			return
		}
		v.SetInt(int64(size))
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if df, ok := v.Interface().(defaulter); ok {
				df.setDefaults()
			}
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problemf(path, "must be a list, not %s", kindName(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			elem := out.Index(i)
			if df, ok := elem.Addr().Interface().(defaulter); ok {
				df.setDefaults()
			}
			d.decode(item, elem, p)
		}
		v.Set(out)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.problemf(path, "%q is not true or false", s)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			d.problemf(path, "%q is not an integer", s)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.problemf(path, "%q is not a number", s)
			return
		}
		v.SetFloat(f)
	default:
		// A programming error in Config, not a user error.
		panic(fmt.Sprintf("config: unsupported field kind %s at %s", v.Kind(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problemf(path, "must be a mapping of keys, not %s", kindName(n))
		return
	}
	fields := map[string]int{}
	for i := range v.NumField() {
		if name := v.Type().Field(i).Tag.Get("yaml"); name != "" {
			fields[name] = i
		}
	}
	type entry struct{ key, val *yaml.Node }
	var order []string
	entries := map[string]entry{}
	put := func(k, val *yaml.Node) {
		if _, ok := entries[k.Value]; !ok {
			order = append(order, k.Value)
		}
		entries[k.Value] = entry{k, val}
	}
	// Merge keys (<<: *defaults) come first so that keys written in this
	// mapping replace merged ones, as YAML 1.1 merge keys define.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			for _, m := range d.mergeSources(n.Content[i+1], joinPath(path, "<<")) {
				for j := 0; j+1 < len(m.Content); j += 2 {
					put(m.Content[j], m.Content[j+1])
				}
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			d.addf(k.Line, path, "keys must be plain names")
			continue
		}
		if k.Tag == "!!merge" {
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.addf(k.Line, joinPath(path, k.Value), "duplicate key (first written on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		put(k, n.Content[i+1])
	}
	for _, key := range order {
		e := entries[key]
		p := joinPath(path, key)
		if e.key.Kind != yaml.ScalarNode {
			d.addf(e.key.Line, path, "keys must be plain names")
			continue
		}
		idx, ok := fields[key]
		if !ok {
			d.addf(e.key.Line, p, "unknown key")
			continue
		}
		d.lines[p] = e.key.Line
		d.decode(e.val, v.Field(idx), p)
	}
}

// mergeSources returns the mappings a merge key refers to: one mapping or
// alias, or a list of them.
func (d *decoder) mergeSources(n *yaml.Node, path string) []*yaml.Node {
	n, ok := d.deref(n, path)
	if !ok {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range n.Content {
			if m, ok := d.deref(item, path); ok && m.Kind == yaml.MappingNode {
				out = append(out, m)
			} else if ok {
				d.addf(item.Line, path, "a merge key takes mappings only")
			}
		}
		return out
	}
	d.addf(n.Line, path, "a merge key takes a mapping or a list of mappings")
	return nil
}

// maxAliases bounds alias expansion: a few nested aliases can otherwise
// expand to billions of nodes ("billion laughs").
const maxAliases = 1000

// deref follows an alias, refusing more than maxAliases uses.
func (d *decoder) deref(n *yaml.Node, path string) (*yaml.Node, bool) {
	if n.Kind != yaml.AliasNode {
		return n, true
	}
	d.aliases++
	if d.aliases > maxAliases {
		if d.aliases == maxAliases+1 {
			d.addf(n.Line, path, "more than %d alias uses", maxAliases)
		}
		return nil, false
	}
	return n.Alias, true
}

// scalar returns n's value with ${VAR} references expanded.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problemf(path, "must be a single value, not %s", kindName(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.lookupEnv)
	if err != nil {
		d.problemf(path, "%v", err)
		return "", false
	}
	return s, true
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} by the variable's value and ${NAME:-default}
// by the value, or default when the variable is unset or empty. $${ writes
// a literal ${; any other $ is kept, so passwords with $ need no quoting.
// Values are not expanded again. An unset variable without a default is an
// error naming it: a silently empty secret is worse than a refusal to start.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	var unset []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !envNameRE.MatchString(name) {
			return "", fmt.Errorf("${%s} is not a valid environment variable reference", ref)
		}
		val, ok := lookup(name)
		switch {
		case hasDefault && val == "":
			b.WriteString(def)
		case ok:
			b.WriteString(val)
		default:
			unset = append(unset, name)
		}
	}
	if len(unset) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to allow that)",
			strings.Join(unset, ", "), unset[0])
	}
	return b.String(), nil
}

var (
	providerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	cookieNameRE   = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

const minSecretBytes = 32

// validate checks what decoding cannot: required keys, allowed values,
// cross-key rules. It only looks at values; it opens nothing.
func (d *decoder) validate(c *Config) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		d.problemf("listen", "%q is not host:port", c.Listen)
	}
	d.checkURL("public_url", c.PublicURL)
	if c.Upstream != "" {
		d.checkURL("upstream", c.Upstream)
	}
	for i, h := range c.AllowedRedirectHosts {
		p := fmt.Sprintf("allowed_redirect_hosts[%d]", i)
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			d.problemf(p, "%q is not a host name (write bsr.example.com, without scheme or path)", h)
		}
	}
	for i, tp := range c.TrustedProxies {
		p := fmt.Sprintf("trusted_proxies[%d]", i)
		if _, err := netip.ParsePrefix(tp); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(tp); err != nil {
			d.problemf(p, "%q is neither an IP address nor a CIDR range", tp)
		}
	}

	oneOf(d, "log.format", c.Log.Format, "json", "text")
	oneOf(d, "log.level", c.Log.Level, "debug", "info", "warn", "error")

	oneOf(d, "store.driver", c.Store.Driver, "sqlite", "postgres")
	if c.Store.DSN == "" {
		d.problemf("store.dsn", "required")
	}

	if r := c.Redis; r != nil {
		if len(r.Addrs) == 0 {
			d.problemf("redis.addrs", "required when redis is configured (remove redis for in-process sessions)")
		}
		for i, a := range r.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				d.problemf(fmt.Sprintf("redis.addrs[%d]", i), "%q is not host:port", a)
			}
		}
		if r.DB < 0 {
			d.problemf("redis.db", "must not be negative")
		}
		switch ttl := r.LocalCache.TTL.D(); {
		case ttl <= 0:
			d.problemf("redis.local_cache.ttl", "must be positive (set enabled: false to turn the cache off)")
		case ttl > maxLocalCacheTTL:
			d.problemf("redis.local_cache.ttl", "must be at most %v, is %v (it bounds how long a write that announces nothing could go unnoticed)", maxLocalCacheTTL, ttl)
		}
		if r.LocalCache.Size < 1 {
			d.problemf("redis.local_cache.size", "must be at least 1, is %d", r.LocalCache.Size)
		}
		if r.RecordEncoding != "binary" && r.RecordEncoding != "json" {
			d.problemf("redis.record_encoding", "must be binary or json, is %q", r.RecordEncoding)
		}
	}

	switch {
	case c.Session.Secret == "":
		d.problemf("session.secret", "required (at least %d bytes, e.g. from `openssl rand -base64 48`)", minSecretBytes)
	case len(c.Session.Secret) < minSecretBytes:
		d.problemf("session.secret", "must be at least %d bytes, is %d", minSecretBytes, len(c.Session.Secret))
	}
	if c.Session.TTL <= 0 {
		d.problemf("session.ttl", "must be positive")
	}
	if c.Session.CookieName == "" {
		c.Session.CookieName = defaultCookieName(c.Session.SecureCookie)
	}
	switch {
	case !cookieNameRE.MatchString(c.Session.CookieName):
		d.problemf("session.cookie_name", "%q is not a valid cookie name", c.Session.CookieName)
	case session.HasSecurePrefix(c.Session.CookieName) && !c.Session.SecureCookie:
		d.problemf("session.cookie_name", "%q needs secure_cookie: true (browsers drop a __Host- or __Secure- cookie that is not Secure)", c.Session.CookieName)
	}

	for i, re := range c.Groups.Include {
		d.checkRegexp(fmt.Sprintf("groups.include[%d]", i), re)
	}
	for i, re := range c.Groups.Exclude {
		d.checkRegexp(fmt.Sprintf("groups.exclude[%d]", i), re)
	}
	for i, a := range c.Admins {
		if !strings.Contains(a, "@") {
			d.problemf(fmt.Sprintf("admins[%d]", i), "%q is not an email address", a)
		}
	}

	if len(c.Providers) == 0 {
		d.problemf("providers", "at least one provider is required")
	}
	names := map[string]string{}
	for i := range c.Providers {
		d.validateProvider(c, i, names)
	}

	oneOf(d, "scim.match_key", c.SCIM.MatchKey, "email", "username")
	if c.SCIM.BodyLimit <= 0 {
		d.problemf("scim.body_limit", "must be positive")
	}
	if c.API.BodyLimit <= 0 {
		d.problemf("api.body_limit", "must be positive")
	}
	for _, l := range []struct {
		key string
		v   Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
	} {
		if l.v <= 0 {
			d.problemf(l.key, "must be positive (a client could otherwise hold a connection forever)")
		}
	}
	if c.HTTP.MaxHeaderBytes < 4<<10 {
		d.problemf("http.max_header_bytes", "must be at least 4KiB, is %d bytes", c.HTTP.MaxHeaderBytes)
	}
	if ml := c.Metrics.Listen; ml != "" {
		if _, _, err := net.SplitHostPort(ml); err != nil {
			d.problemf("metrics.listen", "%q is not host:port", ml)
		} else if ml == c.Listen {
			d.problemf("metrics.listen", "%q is the main listener's address; set metrics.on_main_listener: true to serve /metrics there", ml)
		}
	}
	for _, l := range []struct {
		key string
		v   int
	}{
		{"login_limits.per_client_burst", c.LoginLimits.PerClientBurst},
		{"login_limits.per_client_per_minute", c.LoginLimits.PerClientPerMinute},
		{"login_limits.max_live_attempts", c.LoginLimits.MaxLiveAttempts},
	} {
		if l.v < 1 {
			d.problemf(l.key, "must be at least 1, is %d (the limits cannot be turned off)", l.v)
		}
	}
	d.validateAPITokens(c.API.Tokens)
	d.validateUpstreamRoutes(c)
	d.validateIdentityToken(c)
	d.validateTracing(c)
}

// validateUpstreamRoutes checks each route as web.NewServer and /auth
// would: a prefix starting with /, listed once, and a requirement that
// parses.
func (d *decoder) validateUpstreamRoutes(c *Config) {
	if len(c.UpstreamRoutes) > 0 && c.Upstream == "" {
		d.problemf("upstream_routes", "needs upstream (reverse-proxy mode); behind your own proxy, put the requirement in /auth's query (/auth?org=acme&min_role=WRITER)")
	}
	seen := map[string]string{}
	for i, r := range c.UpstreamRoutes {
		base := fmt.Sprintf("upstream_routes[%d]", i)
		switch {
		case r.PathPrefix == "":
			d.problemf(base+".path_prefix", "required")
		case !strings.HasPrefix(r.PathPrefix, "/"):
			d.problemf(base+".path_prefix", "%q must start with /", r.PathPrefix)
		default:
			if first, dup := seen[r.PathPrefix]; dup {
				d.problemf(base+".path_prefix", "%q is also %s", r.PathPrefix, first)
			}
			seen[r.PathPrefix] = base
		}
		req, err := sync.ParseRequirement(r.Org, r.Repo, r.Group, r.MinRole)
		switch {
		case err != nil:
			key := base
			for _, k := range []struct{ key, val string }{{"min_role", r.MinRole}, {"repo", r.Repo}, {"org", r.Org}, {"group", r.Group}} {
				if k.val != "" && strings.Contains(groupgate.ErrorMessageOf(err), k.key) {
					key = base + "." + k.key
					break
				}
			}
			d.problemf(key, "%s", groupgate.ErrorMessageOf(err))
		case req.IsZero():
			d.problemf(base, "requires nothing: set org, repo or group")
		}
	}
}

// validateIdentityToken checks identity_token by idtoken's rules, each
// problem at its key.
func (d *decoder) validateIdentityToken(c *Config) {
	it := c.IdentityToken
	if !it.Enabled {
		return
	}
	if !slices.Contains(idtoken.Algorithms, it.Algorithm) {
		d.problemf("identity_token.algorithm", "%q is not one of %s", it.Algorithm, strings.Join(idtoken.Algorithms, ", "))
	}
	for i, a := range it.Audience {
		if a == "" {
			d.problemf(fmt.Sprintf("identity_token.audience[%d]", i), "must not be empty")
		}
	}
	for _, k := range []struct {
		key string
		v   Duration
	}{{"identity_token.ttl", it.TTL}, {"identity_token.rotation_period", it.RotationPeriod}, {"identity_token.publish_ahead", it.PublishAhead}} {
		if k.v <= 0 {
			d.problemf(k.key, "must be positive")
		}
	}
	if it.PublishAhead >= it.RotationPeriod && it.RotationPeriod > 0 {
		d.problemf("identity_token.publish_ahead", "%v must be shorter than rotation_period (%v): the next key is published that long before it signs", it.PublishAhead.D(), it.RotationPeriod.D())
	}
	if it.TTL > it.RotationPeriod && it.RotationPeriod > 0 {
		d.problemf("identity_token.ttl", "%v must not be longer than rotation_period (%v)", it.TTL.D(), it.RotationPeriod.D())
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"identity_token.max_groups", it.MaxGroups}, {"identity_token.max_roles", it.MaxRoles}} {
		if k.v < 1 {
			d.problemf(k.key, "must be at least 1, is %d", k.v)
		}
	}
	if it.MaxBytes < 1024 {
		d.problemf("identity_token.max_bytes", "must be at least 1KiB, is %d bytes", it.MaxBytes)
	}
}

func (d *decoder) validateAPITokens(t APITokensConfig) {
	for _, k := range []struct {
		key string
		v   Duration
	}{
		{"api.tokens.session_max_lifetime", t.SessionMaxLifetime},
		{"api.tokens.default_lifetime", t.DefaultLifetime},
		{"api.tokens.max_lifetime", t.MaxLifetime},
	} {
		if k.v <= 0 {
			d.problemf(k.key, "must be positive")
		}
	}
	if t.DefaultLifetime > t.MaxLifetime && t.MaxLifetime > 0 {
		d.problemf("api.tokens.default_lifetime", "%s is longer than api.tokens.max_lifetime (%s)", t.DefaultLifetime.D(), t.MaxLifetime.D())
	}
	if t.MaxPerUser < 1 {
		d.problemf("api.tokens.max_per_user", "must be at least 1, is %d", t.MaxPerUser)
	}
}

func (d *decoder) validateProvider(c *Config, i int, names map[string]string) {
	p := &c.Providers[i]
	base := fmt.Sprintf("providers[%d]", i)
	at := func(key string) string { return base + "." + key }

	switch {
	case p.Name == "":
		d.problemf(at("name"), "required")
	case !providerNameRE.MatchString(p.Name):
		d.problemf(at("name"), "%q may hold only letters, digits, - and _ (it appears in URLs)", p.Name)
	default:
		if first, dup := names[p.Name]; dup {
			d.problemf(at("name"), "duplicate provider name %q (also %s)", p.Name, first)
		}
		names[p.Name] = base
	}

	if n := p.DisplayName; utf8.RuneCountInString(n) > 64 || strings.IndexFunc(n, unicode.IsControl) >= 0 || !utf8.ValidString(n) {
		d.problemf(at("display_name"), "must be at most 64 characters without control characters")
	}

	switch p.Type {
	case "":
		d.problemf(at("type"), "required (oidc or saml)")
		return
	case "oidc", "saml":
	default:
		d.problemf(at("type"), "unknown provider type %q (use oidc or saml)", p.Type)
		return
	}

	// Keys of the other protocol are refused: an operator who writes
	// groups_attribute on an OIDC provider expects it to matter.
	t := reflect.TypeFor[ProviderConfig]()
	for f := range t.Fields() {
		only := f.Tag.Get("only")
		key := at(f.Tag.Get("yaml"))
		if only != "" && only != p.Type && d.has(key) {
			d.problemf(key, "not a key of %s providers (only of %s providers)", p.Type, only)
		}
	}

	if p.Type == "oidc" {
		if p.Issuer == "" {
			d.problemf(at("issuer"), "required")
		} else {
			d.checkURL(at("issuer"), p.Issuer)
			d.checkKeySource(at("issuer"), p.Issuer, p.AllowInsecureHTTP, at("allow_insecure_http"))
		}
		if p.ClientID == "" {
			d.problemf(at("client_id"), "required")
		}
		if !slices.Contains(p.Scopes, "openid") {
			d.problemf(at("scopes"), "must include openid")
		}
		oneOf(d, at("groups_from"), p.GroupsFrom, "id_token", "userinfo")
		if p.GroupsClaim == "" {
			d.problemf(at("groups_claim"), "must not be empty")
		}
		d.validateRefresh(p, at("refresh"))
		d.validateGraph(p, at("graph"))
		return
	}
	d.validateGraph(p, at("graph"))

	var sources []string
	for _, k := range []struct{ key, val string }{
		{"idp_metadata_file", p.IDPMetadataFile},
		{"idp_metadata_url", p.IDPMetadataURL},
		{"idp_metadata_xml", p.IDPMetadataXML},
	} {
		if k.val != "" {
			sources = append(sources, k.key)
		}
	}
	switch len(sources) {
	case 0:
		d.problemf(base, "one of idp_metadata_file, idp_metadata_url, idp_metadata_xml is required")
	case 1:
	default:
		d.problemf(at(sources[1]), "only one of %s may be set", strings.Join(sources, ", "))
	}
	if p.IDPMetadataURL != "" {
		d.checkURL(at("idp_metadata_url"), p.IDPMetadataURL)
		d.checkKeySource(at("idp_metadata_url"), p.IDPMetadataURL, p.AllowInsecureHTTP, at("allow_insecure_http"))
	}
	if p.SPEntityID == "" && p.Name != "" {
		p.SPEntityID = strings.TrimSuffix(c.PublicURL, "/") + "/saml/" + p.Name + "/metadata"
	}
	if p.GroupsAttribute == "" {
		d.problemf(at("groups_attribute"), "must not be empty")
	}
	// The SP key signs AuthnRequests and decrypts assertions; a generated
	// one would differ between replicas and restarts, so it is required.
	if p.SPCertFile == "" || p.SPKeyFile == "" {
		d.problemf(base, "sp_cert_file and sp_key_file are required for a saml provider (the SP's PEM certificate and key, the same on every replica)")
	}
}

// validateGraph checks a provider's graph block: an OIDC provider reads
// Graph with the user's own access token and takes no credential; a SAML
// provider has no user token and needs one.
func (d *decoder) validateGraph(p *ProviderConfig, path string) {
	g := p.Graph
	if g == nil {
		return
	}
	at := func(key string) string { return path + "." + key }
	if g.URL == "" {
		g.URL = graph.DefaultBaseURL
	} else {
		d.checkURL(at("url"), g.URL)
	}
	if g.MaxGroups < 0 {
		d.problemf(at("max_groups"), "must not be negative")
	}
	if g.Timeout < 0 {
		d.problemf(at("timeout"), "must not be negative")
	}
	if g.TokenURL != "" {
		d.checkURL(at("token_url"), g.TokenURL)
	}
	if p.Type == "oidc" {
		for _, k := range []struct{ key, val string }{{"tenant_id", g.TenantID}, {"client_id", g.ClientID}, {"client_secret", g.ClientSecret}, {"token_url", g.TokenURL}} {
			if k.val != "" {
				d.problemf(at(k.key), "not a key of oidc providers: Graph is read with the login's own access token")
			}
		}
		return
	}
	if g.ClientID == "" {
		d.problemf(at("client_id"), "required: a SAML provider reads Graph with an application credential")
	}
	if g.ClientSecret == "" {
		d.problemf(at("client_secret"), "required: a SAML provider reads Graph with an application credential")
	}
	if g.TenantID == "" && g.TokenURL == "" {
		d.problemf(at("tenant_id"), "required (or token_url)")
	}
}

// resolvePaths makes file paths relative to the configuration file, so that
// the same file works whatever the working directory. No file is opened.
func (d *decoder) resolvePaths(c *Config, dir string) {
	for i := range c.Providers {
		p := &c.Providers[i]
		for _, f := range []*string{&p.IDPMetadataFile, &p.SPCertFile, &p.SPKeyFile} {
			if *f != "" && !filepath.IsAbs(*f) {
				*f = filepath.Join(dir, *f)
			}
		}
	}
}

func oneOf(d *decoder, path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		d.problemf(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func (d *decoder) checkURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		d.problemf(path, "%q is not an absolute http(s) URL", raw)
	}
}

// checkKeySource refuses a plain http URL that IdP signing keys are read
// from (OIDC discovery and its jwks_uri, SAML metadata) unless its host is
// loopback or allowInsecure is set: a network attacker could otherwise
// serve their own keys and sign any login. Loopback stays allowed because
// the traffic never leaves the machine (tests, `groupgate dev`).
func (d *decoder) checkKeySource(path, raw string, allowInsecure bool, allowKey string) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || allowInsecure || isLoopbackHost(u.Hostname()) {
		return
	}
	d.problemf(path, "%q fetches the IdP's signing keys over plain http, which anyone on the network path can replace; "+
		"use https (or a loopback host), or set %s: true to accept the risk", raw, allowKey)
}

// isLoopbackHost reports whether host is "localhost" (which RFC 6761 §6.3
// reserves for loopback) or a loopback IP literal (127.0.0.0/8, ::1).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func (d *decoder) checkRegexp(path, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		d.problemf(path, "does not compile: %v", err)
	}
}

// validateConfig checks a Config built in code (`groupgate dev` builds its
// own) by the same rules as a file; source names it in problems.
func validateConfig(cfg *Config, source string) error {
	d := &decoder{file: source, lines: map[string]int{}, failed: map[string]bool{}}
	d.validate(cfg)
	if len(d.problems) > 0 {
		return &ConfigError{Problems: d.problems}
	}
	return nil
}
