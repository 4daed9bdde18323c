package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/varde-eid/varde/internal/httpx"
)

// Environment variables that override the file, in the order applied
// (EnvNames lists them). An empty value leaves the file's (or the
// default) value in place.
const (
	EnvIssuer            = "VARDE_ISSUER"
	EnvListen            = "VARDE_LISTEN"
	EnvNode              = "VARDE_NODE"
	EnvStoreDriver       = "VARDE_STORE_DRIVER"
	EnvStoreDSN          = "VARDE_STORE_DSN"
	EnvStoreFlowState    = "VARDE_STORE_FLOW_STATE"
	EnvSigningKeyFile    = "VARDE_SIGNING_KEY_FILE"
	EnvRSASigningKeyFile = "VARDE_RSA_SIGNING_KEY_FILE"
	EnvSubjectSaltFile   = "VARDE_SUBJECT_SALT_FILE"
	EnvLogLevel          = "VARDE_LOG_LEVEL"
	EnvLogFormat         = "VARDE_LOG_FORMAT"
	EnvLogAccess         = "VARDE_LOG_ACCESS"
	EnvPprofListen       = "VARDE_DEBUG_PPROF_LISTEN"
	EnvMetricsListen     = "VARDE_METRICS_LISTEN"
	EnvPagesTimeZone     = "VARDE_PAGES_TIME_ZONE"
	EnvOIDCDPoPNonces    = "VARDE_OIDC_DPOP_NONCES"
	// EnvOIDCRefreshReuseInterval is a duration such as 30s.
	EnvOIDCRefreshReuseInterval = "VARDE_OIDC_REFRESH_REUSE_INTERVAL"
	// EnvServerTrustedProxies is a comma-separated list.
	EnvServerTrustedProxies = "VARDE_SERVER_TRUSTED_PROXIES"
)

// EnvPrefix starts the name of every environment variable Varde reads.
const EnvPrefix = "VARDE_"

// EnvScreenshots is read by a test, not by config: where the demo's
// browser test (cmd/varde) saves screenshots. LoadEnviron lets it be.
const EnvScreenshots = "VARDE_SCREENSHOTS"

// Where login flow state lives (Store.FlowState).
const (
	FlowStateMemory = "memory"
	FlowStateStore  = "store"
)

// Defaults filled in by ApplyDefaults.
const (
	DefaultListen               = ":8080"
	DefaultStoreDriver          = "sqlite"
	DefaultStoreDSN             = "varde.db"
	DefaultCodeLifetime         = 60 * time.Second
	DefaultAuthRequestLifetime  = 10 * time.Minute
	DefaultPARLifetime          = 90 * time.Second
	DefaultAccessTokenLifetime  = 10 * time.Minute
	DefaultIDTokenLifetime      = 10 * time.Minute
	DefaultRefreshTokenLifetime = 8 * time.Hour
	// DefaultDPoPNonces is OIDC.DPoPNonces unless set (docs/adr/0014).
	DefaultDPoPNonces = true
	// DefaultRefreshReuseInterval is OIDC.RefreshReuseInterval unless
	// set (docs/adr/0055).
	DefaultRefreshReuseInterval = 30 * time.Second
	DefaultSessionLifetime      = 8 * time.Hour
	// DefaultSessionIdleTimeout is Session.IdleTimeout's default, or
	// the lifetime if that is shorter.
	DefaultSessionIdleTimeout = 30 * time.Minute
	// DefaultAddressRetention is Audit.AddressRetention's default: 180
	// days (docs/adr/0038).
	DefaultAddressRetention = 180 * 24 * time.Hour
	// DefaultSharedDrain is Shutdown.Drain's default with postgres.
	DefaultSharedDrain = 5 * time.Second
	// DefaultShutdownGrace is Shutdown.Grace's default.
	DefaultShutdownGrace = 10 * time.Second
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "json"
)

// maxFileSize bounds the configuration file; anything larger is a mistake.
const maxFileSize = 1 << 20

// Load reads the YAML file at path (or nothing if path is ""), applies the
// VARDE_* overrides read through env (pass os.Getenv; nil means none),
// fills in defaults and validates the result. Without a file the version
// is taken to be the current one, so a node can run from env alone.
func Load(path string, env func(string) string) (*Config, error) {
	c, err := load(path, env)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// load is Load, but when the settings were read and are not valid it
// returns them with the error, for LoadEnvironAsRead.
func load(path string, env func(string) string) (*Config, error) {
	if path == "" {
		c := &Config{Version: Version}
		if err := finish(c, env); err != nil {
			return c, fmt.Errorf("config from environment: %w", err)
		}
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	c, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// A file whose store.dsn holds a password is a secret file: checked
	// as ReadSecretFile checks one, with the problems Validate finds.
	var modeErr error
	if dsnHasPassword(c.Store.DSN) {
		modeErr = secretMode("store.dsn holds a password, and its file", path, f)
	}
	if err := errors.Join(modeErr, finish(c, env)); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// dsnHasPassword reports whether dsn, a PostgreSQL connection string as
// a URL or as key=value pairs, holds a password.
func dsnHasPassword(dsn string) bool {
	if strings.Contains(strings.ToLower(dsn), "password=") {
		return true
	}
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return false
	}
	pw, ok := u.User.Password()
	return ok && pw != ""
}

// Parse is Load for a file's contents: decode strictly (an unknown field
// is an error), apply env overrides and defaults, validate.
func Parse(data []byte, env func(string) string) (*Config, error) {
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := finish(c, env); err != nil {
		return nil, err
	}
	return c, nil
}

func finish(c *Config, env func(string) string) error {
	envErr := applyEnv(c, env)
	c.ApplyDefaults()
	return errors.Join(envErr, c.Validate())
}

func decode(data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file")
		}
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			durationHint(te)
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse: more than one YAML document")
	}
	return &c, nil
}

// durationHint adds to each of te's problems with a duration what one
// looks like: YAML reads "lifetime: 3600" as a number, and the decoder
// says only that it cannot be a time.Duration, not that the unit is
// what is missing.
func durationHint(te *yaml.TypeError) {
	for i, msg := range te.Errors {
		if strings.HasSuffix(msg, " into time.Duration") {
			te.Errors[i] = msg + " (a duration with its unit, e.g. 90s, 10m or 8h)"
		}
	}
}

// EnvNames returns the environment variables that override settings,
// in the order applied.
func EnvNames() []string {
	var c Config
	var names []string
	for _, o := range envSettings(&c) {
		names = append(names, o.name)
	}
	for _, o := range envFlags(&c) {
		names = append(names, o.name)
	}
	for _, o := range envLists(&c) {
		names = append(names, o.name)
	}
	for _, o := range envDurations(&c) {
		names = append(names, o.name)
	}
	return names
}

// LoadEnviron is Load with the environment as os.Environ gives it (pass
// os.Environ): besides what Load refuses, it refuses any VARDE_*
// variable that is not a setting (EnvNames), naming each and listing the
// settings, so that a misspelt override (VARDE_SIGNING_KEY for
// VARDE_SIGNING_KEY_FILE) stops the node instead of leaving the file's
// value in place without a word. EnvScreenshots, read by a test, is let
// be.
func LoadEnviron(path string, environ func() []string) (*Config, error) {
	c, err := LoadEnvironAsRead(path, environ)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LoadEnvironAsRead is LoadEnviron, but when the file and environment
// were read and their settings are not valid, it returns the Config as
// read along with the error (nil only if they could not be read), so
// that varde config check can still check the files that the valid
// settings name (WithValidFiles).
func LoadEnvironAsRead(path string, environ func() []string) (*Config, error) {
	vars := map[string]string{}
	var unknown []string
	known := EnvNames()
	for _, kv := range environ() {
		name, value, _ := strings.Cut(kv, "=")
		if _, dup := vars[name]; dup {
			continue // the first one counts, as for os.Getenv
		}
		vars[name] = value
		if strings.HasPrefix(name, EnvPrefix) && !slices.Contains(known, name) && name != EnvScreenshots {
			unknown = append(unknown, name)
		}
	}
	c, err := load(path, func(name string) string { return vars[name] })
	if len(unknown) == 0 {
		return c, err
	}
	slices.Sort(unknown)
	envErr := fmt.Errorf("environment: %s: no such setting (the VARDE_* variables are %s)",
		strings.Join(unknown, ", "), strings.Join(known, ", "))
	return c, errors.Join(envErr, err)
}

// envSetting is one environment variable and the field it overrides.
type envSetting struct {
	name string
	dst  *string
}

// envFlag is one environment variable and the true-or-false field it
// overrides.
type envFlag struct {
	name string
	dst  **bool
}

// envList is one environment variable and the list it overrides, its
// elements separated by commas.
type envList struct {
	name string
	dst  *[]string
}

// envSettings lists the overrides of c's fields, in the order applied.
func envSettings(c *Config) []envSetting {
	return []envSetting{
		{EnvIssuer, &c.Issuer},
		{EnvListen, &c.Listen},
		{EnvNode, &c.Node},
		{EnvStoreDriver, &c.Store.Driver},
		{EnvStoreDSN, &c.Store.DSN},
		{EnvStoreFlowState, &c.Store.FlowState},
		{EnvSigningKeyFile, &c.Keys.SigningKeyFile},
		{EnvRSASigningKeyFile, &c.Keys.RSASigningKeyFile},
		{EnvSubjectSaltFile, &c.Keys.SubjectSaltFile},
		{EnvLogLevel, &c.Log.Level},
		{EnvLogFormat, &c.Log.Format},
		{EnvPprofListen, &c.Debug.PprofListen},
		{EnvMetricsListen, &c.Metrics.Listen},
		{EnvPagesTimeZone, &c.Pages.TimeZone},
	}
}

// envFlags lists the overrides of c's true-or-false fields, applied
// after envSettings.
func envFlags(c *Config) []envFlag {
	return []envFlag{
		{EnvOIDCDPoPNonces, &c.OIDC.DPoPNonces},
		{EnvLogAccess, &c.Log.Access},
	}
}

// envDuration is one environment variable and the duration it
// overrides, written as time.ParseDuration reads it (30s, 1m).
type envDuration struct {
	name string
	dst  **time.Duration
}

// envLists lists the overrides of c's lists, applied after envFlags.
func envLists(c *Config) []envList {
	return []envList{
		{EnvServerTrustedProxies, &c.Server.TrustedProxies},
	}
}

// envDurations lists the overrides of c's durations, applied after
// envLists.
func envDurations(c *Config) []envDuration {
	return []envDuration{
		{EnvOIDCRefreshReuseInterval, &c.OIDC.RefreshReuseInterval},
	}
}

// applyEnv sets the fields env overrides. A true-or-false setting takes
// what strconv.ParseBool reads (true, false, 1, 0, …); anything else is
// a *FieldError naming the variable.
func applyEnv(c *Config, env func(string) string) error {
	if env == nil {
		return nil
	}
	for _, o := range envSettings(c) {
		if v := env(o.name); v != "" {
			*o.dst = v
		}
	}
	var p problems
	for _, o := range envFlags(c) {
		v := env(o.name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.add(o.name, "%q is not true or false", v)
			continue
		}
		*o.dst = &b
	}
	for _, o := range envLists(c) {
		if v := env(o.name); v != "" {
			*o.dst = splitList(v)
		}
	}
	for _, o := range envDurations(c) {
		v := env(o.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			p.add(o.name, "%q is not a duration such as 30s", v)
			continue
		}
		*o.dst = &d
	}
	return errors.Join(p...)
}

// splitList reads a comma-separated list from the environment: each
// element with its surrounding spaces trimmed, empty ones left out.
func splitList(v string) []string {
	var out []string
	for el := range strings.SplitSeq(v, ",") {
		if el = strings.TrimSpace(el); el != "" {
			out = append(out, el)
		}
	}
	return out
}

// ApplyDefaults fills every unset field that has a default (see the
// Default* constants and the field comments). Defaults that derive from
// the issuer (passkey RP ID and origins, the Secure cookie flag) are set
// only when the issuer parses. Load calls it; call it yourself for a
// Config built in code, before Validate.
func (c *Config) ApplyDefaults() {
	setString(&c.Listen, DefaultListen)
	if c.Node == "" {
		c.Node = defaultNode()
	}
	setString(&c.Store.Driver, DefaultStoreDriver)
	setString(&c.Pages.TimeZone, DefaultTimeZone)
	if c.Store.Driver == "sqlite" {
		setString(&c.Store.DSN, DefaultStoreDSN)
		setString(&c.Store.FlowState, FlowStateMemory)
	}
	setString(&c.Store.FlowState, FlowStateStore)
	setDuration(&c.OIDC.CodeLifetime, DefaultCodeLifetime)
	setDuration(&c.OIDC.AuthRequestLifetime, DefaultAuthRequestLifetime)
	setDuration(&c.OIDC.PARLifetime, DefaultPARLifetime)
	setDuration(&c.OIDC.AccessTokenLifetime, DefaultAccessTokenLifetime)
	setDuration(&c.OIDC.IDTokenLifetime, DefaultIDTokenLifetime)
	setDuration(&c.OIDC.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
	if c.OIDC.DPoPNonces == nil {
		on := DefaultDPoPNonces
		c.OIDC.DPoPNonces = &on
	}
	if c.OIDC.RefreshReuseInterval == nil {
		d := DefaultRefreshReuseInterval
		c.OIDC.RefreshReuseInterval = &d
	}
	setDuration(&c.Session.Lifetime, DefaultSessionLifetime)
	if c.Session.Lifetime > 0 {
		setDuration(&c.Session.IdleTimeout, min(DefaultSessionIdleTimeout, c.Session.Lifetime))
	}
	setDuration(&c.Audit.AddressRetention, DefaultAddressRetention)
	if c.Shutdown.Drain == nil {
		d := time.Duration(0)
		if c.Store.Shared() {
			d = DefaultSharedDrain
		}
		c.Shutdown.Drain = &d
	}
	if c.Shutdown.Grace == nil {
		d := DefaultShutdownGrace
		c.Shutdown.Grace = &d
	}
	c.Health.applyDefaults()
	c.Status.applyDefaults()
	setString(&c.Log.Level, DefaultLogLevel)
	setString(&c.Log.Format, DefaultLogFormat)

	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return
	}
	setString(&c.Passkey.RPID, strings.ToLower(u.Hostname()))
	if len(c.Passkey.Origins) == 0 {
		c.Passkey.Origins = []string{u.Scheme + "://" + strings.ToLower(u.Host)}
	}
	if c.Session.SecureCookie == nil {
		secure := !(u.Scheme == "http" && httpx.LoopbackHost(u.Hostname()))
		c.Session.SecureCookie = &secure
	}
}

// defaultNode is the host name, or "varde" if it has none usable.
func defaultNode() string {
	h, err := os.Hostname()
	if err != nil || !validNode(h) {
		return "varde"
	}
	return h
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

func yamlFields(t reflect.Type) map[string]bool {
	m := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = true
		}
	}
	return m
}

// UnmarshalYAML decodes a client strictly and accepts jwks either as a
// string holding JSON or as a YAML mapping, which it turns into JSON.
// (The decoder's known-fields check does not reach through a custom
// unmarshaler, so this method repeats it.)
func (c *Client) UnmarshalYAML(n *yaml.Node) error {
	type plain Client
	if n.Kind != yaml.MappingNode {
		return n.Decode((*plain)(c))
	}
	known := yamlFields(reflect.TypeFor[Client]())
	var problems []string
	m := *n
	m.Content = append([]*yaml.Node(nil), n.Content...)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !known[k.Value] {
			problems = append(problems, fmt.Sprintf("line %d: field %s not found in type config.Client", k.Line, k.Value))
			continue
		}
		if k.Value != "jwks" || (v.Kind != yaml.MappingNode && v.Kind != yaml.SequenceNode) {
			continue
		}
		var x any
		if err := v.Decode(&x); err != nil {
			return err
		}
		js, err := json.Marshal(x)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: jwks is not representable as JSON: %v", v.Line, err))
			continue
		}
		m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(js), Line: v.Line, Column: v.Column}
	}
	if err := m.Decode((*plain)(c)); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return err
		}
		problems = append(problems, te.Errors...)
	}
	if len(problems) > 0 {
		return &yaml.TypeError{Errors: problems}
	}
	return nil
}

// DefaultServerGCPercent is the garbage collector's target for the
// commands that serve requests when GOGC is not set. A node's live heap
// is small (tens of megabytes) and its garbage plentiful, so Go's
// default (100) collects many times a second; at 400 a node completes
// about 10 % more logins per second on two cores for some tens of
// megabytes more peak memory (docs/PERFORMANCE.md). Where memory is
// capped, set GOMEMLIMIT below the cap as well: the collector then
// works harder near it.
const DefaultServerGCPercent = 400

// ServerGCPercent returns the garbage collector target a serving
// command should set, and false when GOGC is set in env: then the Go
// runtime has applied it and it stays.
func ServerGCPercent(env func(string) string) (int, bool) {
	if env != nil && env("GOGC") != "" {
		return 0, false
	}
	return DefaultServerGCPercent, true
}

// WithValidFiles returns a copy of c that names only the key and secret
// files whose settings problems (Validate's *FieldError values in err)
// do not touch: a signing key file or subject salt file with a problem
// of its own, and a client or upstream with any problem, are left out.
// The files it names can be read as a node would, though c is not valid.
func (c *Config) WithValidFiles(problems error) *Config {
	bad := map[string]bool{}
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if fe, ok := err.(*FieldError); ok {
			f := fe.Field
			if k := strings.IndexByte(f, ']'); k >= 0 {
				f = f[:k+1] // clients[0].secret_file: the whole client
			}
			bad[f] = true
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
		}
	}
	walk(problems)
	out := *c
	if bad["keys.signing_key_file"] {
		out.Keys.SigningKeyFile = ""
	}
	if bad["keys.rsa_signing_key_file"] {
		out.Keys.RSASigningKeyFile = ""
	}
	if bad["keys.subject_salt_file"] {
		out.Keys.SubjectSaltFile = ""
	}
	out.Clients = nil
	for i, cl := range c.Clients {
		if !bad[fmt.Sprintf("clients[%d]", i)] {
			out.Clients = append(out.Clients, cl)
		}
	}
	out.Upstreams = nil
	for i, u := range c.Upstreams {
		if !bad[fmt.Sprintf("upstreams[%d]", i)] {
			out.Upstreams = append(out.Upstreams, u)
		}
	}
	return &out
}
