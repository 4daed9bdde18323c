package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Upstream is an upstream OpenID provider (a national eID such as BankID
// or MinID) that Varde brokers logins to.
type Upstream struct {
	// ID is stable and URL-safe: lower-case letters, digits and '-', at
	// most 32; it appears in callback URLs and metrics. Not "passkey".
	ID string `yaml:"id"`
	// Name is shown to people, by language tag; "en" is required.
	Name map[string]string `yaml:"name"`
	// Issuer is the upstream's issuer URL, exactly as in its tokens.
	Issuer string `yaml:"issuer"`
	// ClientID is Varde's client_id at the upstream.
	ClientID string `yaml:"client_id"`
	// AuthMethod is private_key_jwt (ClientKeyFile) or
	// client_secret_basic (ClientSecretFile).
	AuthMethod       string `yaml:"auth_method"`
	ClientKeyFile    string `yaml:"client_key_file"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientNextKeyFile and ClientPreviousKeyFile (private_key_jwt,
	// optional) name keys in ClientKeyFile's format that are published
	// at /upstream/<id>/jwks beside its key and never sign: the next
	// key, which is to replace it once the upstream knows it, and the
	// previous key, which it replaced, while nodes not yet restarted
	// sign with that one (ADR 56).
	ClientNextKeyFile     string   `yaml:"client_next_key_file"`
	ClientPreviousKeyFile string   `yaml:"client_previous_key_file"`
	Scopes                []string `yaml:"scopes"`
	// UsePAR pushes authorization requests even if the upstream does not
	// require it; PromptLogin asks the upstream for a fresh login every
	// time (prompt=login, max_age=0) and refuses an ID token that does
	// not show one (see oidcup.Config.PromptLogin).
	UsePAR      bool `yaml:"use_par"`
	PromptLogin bool `yaml:"prompt_login"`
	// PushEarly (default true), for an upstream whose requests are
	// pushed: when a relying party's pushed request names this upstream
	// in provider_hint, Varde pushes its own request to the upstream at
	// once, so the person's browser does not wait for it. false pushes
	// only when the browser arrives, so that no request is ever pushed
	// for a login that does not happen.
	PushEarly *bool `yaml:"push_early"`
	// ForwardLoginHint (default false) passes a relying party's
	// login_hint, which may be a national identity number, on to this
	// upstream, when the person logs in with it (see
	// oidcup.Config.ForwardLoginHint).
	ForwardLoginHint bool `yaml:"forward_login_hint"`
	// MaxLevel is the highest level logins through it can reach, however
	// high it asserts: low, substantial or high (the names, not acr
	// URIs).
	MaxLevel string `yaml:"max_level"`
	// ACRMap maps the upstream's acr values (not empty) to levels: low,
	// substantial or high. An acr not listed is refused.
	ACRMap map[string]string `yaml:"acr_map"`
	// IdentifierClaim is the ID token claim with the person's identifier
	// ("pid", "national_id"); IdentifierSchemes are the schemes it may
	// hold ("no:fnr", "no:dnr"). A plain string valid in more than one of
	// them is refused (see oidcup.Config.IdentifierSchemes).
	IdentifierClaim   string   `yaml:"identifier_claim"`
	IdentifierSchemes []string `yaml:"identifier_schemes"`
	// Timeout bounds each request to the upstream (default 5s; the token
	// request gets twice as long), at most MaxUpstreamTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// MaxUpstreamTimeout is the longest upstreams[].timeout accepted: a
// person waits on every request to the upstream, and a request that
// long is an upstream that is down, which failover should find.
const MaxUpstreamTimeout = 60 * time.Second

var upstreamID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func (u *Upstream) validate(p *problems, path string) {
	switch {
	case !upstreamID.MatchString(u.ID):
		p.add(path+".id", "%q must be 1 to 32 lower-case letters, digits or '-'", u.ID)
	case u.ID == "passkey":
		p.add(path+".id", "%q is the built-in provider's ID", u.ID)
	}
	if u.Name["en"] == "" {
		p.add(path+".name", "needs an English name (en)")
	}
	if u.Issuer == "" {
		p.add(path+".issuer", "required")
	} else {
		checkURL(p, path+".issuer", u.Issuer)
	}
	if u.ClientID == "" {
		p.add(path+".client_id", "required")
	}
	switch u.AuthMethod {
	case store.AuthPrivateKeyJWT:
		if u.ClientKeyFile == "" {
			p.add(path+".client_key_file", "required for private_key_jwt")
		}
		if u.ClientSecretFile != "" {
			p.add(path+".client_secret_file", "not used with private_key_jwt")
		}
		u.validateRotationFiles(p, path)
	case store.AuthClientSecretBasic:
		if u.ClientSecretFile == "" {
			p.add(path+".client_secret_file", "required for client_secret_basic")
		}
		for _, f := range []struct{ field, file string }{
			{"client_key_file", u.ClientKeyFile}, {"client_next_key_file", u.ClientNextKeyFile}, {"client_previous_key_file", u.ClientPreviousKeyFile},
		} {
			if f.file != "" {
				p.add(path+"."+f.field, "not used with client_secret_basic")
			}
		}
	default:
		p.add(path+".auth_method", "%q is not private_key_jwt or client_secret_basic", u.AuthMethod)
	}
	if !isLevelName(u.MaxLevel) {
		p.add(path+".max_level", "%q is not low, substantial or high", u.MaxLevel)
	}
	if len(u.ACRMap) == 0 {
		p.add(path+".acr_map", "required: which of the upstream's acr values mean which level")
	}
	// In sorted order, so the same file gives the same report every time.
	for _, acr := range slices.Sorted(maps.Keys(u.ACRMap)) {
		field := fmt.Sprintf("%s.acr_map[%q]", path, acr)
		if acr == "" {
			p.add(field, "an empty acr value would let an ID token without acr in; name the upstream's acr values")
		}
		if level := u.ACRMap[acr]; !isLevelName(level) {
			p.add(field, "%q is not low, substantial or high", level)
		}
	}
	if u.IdentifierClaim == "" {
		p.add(path+".identifier_claim", "required")
	}
	if len(u.IdentifierSchemes) == 0 {
		p.add(path+".identifier_schemes", "required, e.g. [no:fnr, no:dnr]")
	}
	for i, s := range u.IdentifierSchemes {
		if !identity.KnownScheme(s) {
			p.add(fmt.Sprintf("%s.identifier_schemes[%d]", path, i), "%q is not a known identifier scheme", s)
		}
	}
	// A Norwegian upstream sends birth numbers and D-numbers alike, and
	// the two never overlap (a D-number's first digit is 4 to 7), so
	// listing both costs nothing. Listing one alone refuses every
	// person holding the other kind at each login, and counts each
	// refusal against the upstream's health: their number's kind would
	// decide whether they can log in.
	fnr, dnr := slices.Contains(u.IdentifierSchemes, identity.SchemeNOFnr), slices.Contains(u.IdentifierSchemes, identity.SchemeNODnr)
	switch {
	case fnr && !dnr:
		p.add(path+".identifier_schemes", "has %s but not %s: people with a D-number would be refused at every login; add %s", identity.SchemeNOFnr, identity.SchemeNODnr, identity.SchemeNODnr)
	case dnr && !fnr:
		p.add(path+".identifier_schemes", "has %s but not %s: people with a birth number would be refused at every login; add %s", identity.SchemeNODnr, identity.SchemeNOFnr, identity.SchemeNOFnr)
	}
	for i, s := range u.Scopes {
		if !oauth2.ValidScope(s) {
			p.add(fmt.Sprintf("%s.scopes[%d]", path, i), "%q is not a scope token: printable ASCII without spaces, '\"' or '\\'", s)
		}
	}
	if u.Timeout < 0 {
		p.add(path+".timeout", "must not be negative")
	} else if u.Timeout > MaxUpstreamTimeout {
		p.add(path+".timeout", "%v is longer than %v: a person waits on each request to the upstream", u.Timeout, MaxUpstreamTimeout)
	}
}

// validateRotationFiles refuses a next or previous key file that is a
// file named already: the same key published twice is no rotation,
// and a node would refuse it when it reads the files.
func (u *Upstream) validateRotationFiles(p *problems, path string) {
	if u.ClientNextKeyFile != "" && u.ClientNextKeyFile == u.ClientKeyFile {
		p.add(path+".client_next_key_file", "names client_key_file's file: the next key must be a new key in a file of its own")
	}
	if u.ClientPreviousKeyFile == "" {
		return
	}
	switch u.ClientPreviousKeyFile {
	case u.ClientKeyFile:
		p.add(path+".client_previous_key_file", "names client_key_file's file: it is the file that held client_key_file's key before the swap")
	case u.ClientNextKeyFile:
		p.add(path+".client_previous_key_file", "names client_next_key_file's file: a key is either the next one or the previous one")
	}
}

// isLevelName reports whether s is a level's name as the file gives it:
// low, substantial or high, not an acr URI (assurance.Parse takes both).
func isLevelName(s string) bool {
	lv, err := assurance.Parse(s)
	return err == nil && lv.String() == s
}

func (c *Config) validateUpstreams(p *problems) {
	seen := map[string]int{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		path := fmt.Sprintf("upstreams[%d]", i)
		if j, dup := seen[u.ID]; dup && u.ID != "" {
			p.add(path+".id", "%q is also upstreams[%d].id", u.ID, j)
		} else {
			seen[u.ID] = i
		}
		u.validate(p, path)
	}
}

// Levels returns the upstream's level cap and acr map as assurance
// levels; call it only on a validated configuration.
func (u Upstream) Levels() (assurance.Level, map[string]assurance.Level) {
	max, _ := assurance.Parse(u.MaxLevel)
	m := make(map[string]assurance.Level, len(u.ACRMap))
	for acr, level := range u.ACRMap {
		m[acr], _ = assurance.Parse(level)
	}
	return max, m
}
