package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
)

func validUpstream() Upstream {
	return Upstream{
		ID: "bankid", Name: map[string]string{"en": "BankID", "nb": "BankID"},
		Issuer: "https://bankid.example.no", ClientID: "varde",
		AuthMethod: "private_key_jwt", ClientKeyFile: "/etc/varde/bankid.pem",
		MaxLevel:        "high",
		ACRMap:          map[string]string{"urn:bankid:high": "high", "urn:bankid:sub": "substantial"},
		IdentifierClaim: "pid", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
	}
}

func TestValidateUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(u *Upstream)
		field  string
		msg    string
	}{
		{"valid", func(u *Upstream) {}, "", ""},
		{"secret instead of key", func(u *Upstream) {
			u.AuthMethod, u.ClientKeyFile, u.ClientSecretFile = "client_secret_basic", "", "/etc/varde/minid-secret"
		}, "", ""},
		{"bad id", func(u *Upstream) { u.ID = "Bank ID" }, "upstreams[0].id", "lower-case"},
		{"built-in id", func(u *Upstream) { u.ID = "passkey" }, "upstreams[0].id", "built-in"},
		{"no english name", func(u *Upstream) { u.Name = map[string]string{"nb": "BankID"} }, "upstreams[0].name", "English"},
		{"http issuer", func(u *Upstream) { u.Issuer = "http://bankid.example.no" }, "upstreams[0].issuer", "https"},
		{"no key", func(u *Upstream) { u.ClientKeyFile = "" }, "upstreams[0].client_key_file", "required"},
		{"unknown method", func(u *Upstream) { u.AuthMethod = "none" }, "upstreams[0].auth_method", "not private_key_jwt"},
		{"bad max level", func(u *Upstream) { u.MaxLevel = "extreme" }, "upstreams[0].max_level", "not low"},
		{"no acr map", func(u *Upstream) { u.ACRMap = nil }, "upstreams[0].acr_map", "required"},
		{"bad acr level", func(u *Upstream) { u.ACRMap = map[string]string{"x": "top"} }, `upstreams[0].acr_map["x"]`, "not low"},
		{"max level as an acr URI", func(u *Upstream) { u.MaxLevel = "http://eidas.europa.eu/LoA/high" }, "upstreams[0].max_level", "not low"},
		{"acr level as an acr URI", func(u *Upstream) {
			u.ACRMap = map[string]string{"urn:bankid:high": "http://eidas.europa.eu/LoA/high"}
		}, `upstreams[0].acr_map["urn:bankid:high"]`, "not low"},
		{"empty acr", func(u *Upstream) { u.ACRMap = map[string]string{"": "low"} }, `upstreams[0].acr_map[""]`, "without acr"},
		{"no claim", func(u *Upstream) { u.IdentifierClaim = "" }, "upstreams[0].identifier_claim", "required"},
		{"unknown scheme", func(u *Upstream) { u.IdentifierSchemes = []string{"no:fnr", "xx:id"} }, "upstreams[0].identifier_schemes[1]", "not a known"},
		{"birth numbers without D-numbers", func(u *Upstream) { u.IdentifierSchemes = []string{"no:fnr"} }, "upstreams[0].identifier_schemes", "people with a D-number would be refused at every login; add no:dnr"},
		{"D-numbers without birth numbers", func(u *Upstream) { u.IdentifierSchemes = []string{"no:dnr", "dk:cpr"} }, "upstreams[0].identifier_schemes", "add no:fnr"},
		{"no Norwegian scheme", func(u *Upstream) { u.IdentifierSchemes = []string{"dk:cpr"} }, "", ""},
		{"scopes", func(u *Upstream) { u.Scopes = []string{"profile", "nin"} }, "", ""},
		{"empty scope", func(u *Upstream) { u.Scopes = []string{"profile", ""} }, "upstreams[0].scopes[1]", "not a scope token"},
		{"scope with a space", func(u *Upstream) { u.Scopes = []string{"openid profile"} }, "upstreams[0].scopes[0]", `"openid profile" is not a scope token`},
		{"negative timeout", func(u *Upstream) { u.Timeout = -time.Second }, "upstreams[0].timeout", "negative"},
		{"longest timeout", func(u *Upstream) { u.Timeout = MaxUpstreamTimeout }, "", ""},
		{"timeout too long", func(u *Upstream) { u.Timeout = time.Hour }, "upstreams[0].timeout", "1h0m0s is longer than 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			u := validUpstream()
			tc.change(&u)
			c.Upstreams = []Upstream{u}
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid upstream refused: %v", err)
				}
				return
			}
			if err == nil || !slices.Contains(fields(t, err), tc.field) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %s: …%s…", err, tc.field, tc.msg)
			}
		})
	}
}

// TestUpstreamACRMapErrorsSorted: the problems with an acr_map come out
// in the order of its acr values, the same every time.
func TestUpstreamACRMapErrorsSorted(t *testing.T) {
	u := validUpstream()
	u.ACRMap = map[string]string{}
	var want []string
	for _, acr := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		u.ACRMap[acr] = "top"
		want = append(want, fmt.Sprintf("upstreams[0].acr_map[%q]", acr))
	}
	for range 20 {
		c := validBase(t)
		c.Upstreams = []Upstream{u}
		if got := fields(t, c.Validate()); !slices.Equal(got, want) {
			t.Fatalf("fields = %v, want %v", got, want)
		}
	}
}

func TestUpstreamDuplicateIDsAndLevels(t *testing.T) {
	c := validBase(t)
	c.Upstreams = []Upstream{validUpstream(), validUpstream()}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "also upstreams[0].id") {
		t.Fatalf("duplicate upstream IDs: %v", err)
	}
	max, m := validUpstream().Levels()
	if max != assurance.High || m["urn:bankid:sub"] != assurance.Substantial {
		t.Errorf("Levels = %v %v", max, m)
	}
}

func TestParseUpstreams(t *testing.T) {
	yaml := `version: 1
issuer: https://id.example.no
keys: {signing_key_file: /etc/varde/signing-key.pem}
upstreams:
  - id: minid
    name: {en: MinID, nb: MinID}
    issuer: https://minid.example.no
    client_id: varde
    auth_method: client_secret_basic
    client_secret_file: /etc/varde/minid
    max_level: substantial
    acr_map: {"idporten-loa-substantial": substantial}
    identifier_claim: pid
    identifier_schemes: [no:fnr, no:dnr]
    timeout: 3s
`
	c, err := Parse([]byte(yaml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 1 || c.Upstreams[0].Timeout.Seconds() != 3 || c.Upstreams[0].ACRMap["idporten-loa-substantial"] != "substantial" {
		t.Errorf("upstreams = %+v", c.Upstreams)
	}
	if _, err := Parse([]byte(strings.Replace(yaml, "timeout: 3s", "timout: 3s", 1)), env(nil)); err == nil {
		t.Error("misspelt upstream field accepted")
	}
}

func TestClientProvidersAndDegradedLevel(t *testing.T) {
	c := validBase(t)
	c.Upstreams = []Upstream{validUpstream()}
	c.Clients[0].Providers = []string{"passkey", "bankid"}
	c.Clients[0].DegradedLevel = "substantial"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	sc, err := c.Clients[0].ToStore(time.Now())
	if err != nil || !slices.Equal(sc.Providers, []string{"passkey", "bankid"}) || sc.DegradedLevel != "substantial" {
		t.Fatalf("ToStore = %+v, %v", sc, err)
	}
	c.Clients[0].Providers = []string{"minid"}
	c.Clients[0].DegradedLevel = "medium"
	got := fields(t, c.Validate())
	for _, want := range []string{"clients[0].providers[0]", "clients[0].degraded_level"} {
		if !slices.Contains(got, want) {
			t.Errorf("errors %v lack %s", got, want)
		}
	}
}
