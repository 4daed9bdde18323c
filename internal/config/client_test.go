package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestValidateStatusWebhook: a status webhook is an https URL (http only
// to a loopback host), and status components name components this node
// tracks.
func TestValidateStatusWebhook(t *testing.T) {
	for _, tc := range []struct {
		name    string
		webhook string
		comps   []string
		field   string // "" means valid
		msg     string
	}{
		{"none", "", nil, "", ""},
		{"https", "https://bank.example/varde/events", nil, "", ""},
		{"https with port and query", "https://bank.example:8443/events?tenant=1", nil, "", ""},
		{"http localhost", "http://localhost:9000/events", nil, "", ""},
		{"http loopback v4", "http://127.0.0.1:9000/events", nil, "", ""},
		{"http loopback v6", "http://[::1]:9000/events", nil, "", ""},
		{"http elsewhere", "http://bank.example/events", nil, "clients[0].status_webhook", "https"},
		{"http private address", "http://10.0.0.5/events", nil, "clients[0].status_webhook", "https"},
		{"http localhost lookalike", "http://localhost.bank.example/events", nil, "clients[0].status_webhook", "https"},
		{"other scheme", "ftp://bank.example/events", nil, "clients[0].status_webhook", "https"},
		{"relative", "/events", nil, "clients[0].status_webhook", "absolute"},
		{"no host", "https:///events", nil, "clients[0].status_webhook", "absolute"},
		{"fragment", "https://bank.example/events#x", nil, "clients[0].status_webhook", "fragment"},
		{"user info", "https://u:p@bank.example/events", nil, "clients[0].status_webhook", "user information"},
		{"components", "https://bank.example/events", []string{"store", "passkey"}, "", ""},
		{"unknown component", "https://bank.example/events", []string{"store", "bankid"}, "clients[0].status_components[1]", `"bankid" is not a component`},
		{"components without webhook", "", []string{"store"}, "clients[0].status_components", "needs status_webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			c.Clients[0].StatusWebhook, c.Clients[0].StatusComponents = tc.webhook, tc.comps
			err := c.Validate()
			var got []string
			if err != nil {
				got = fields(t, err)
			}
			var want []string
			if tc.field != "" {
				want = []string{tc.field}
			}
			if !slices.Equal(got, want) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("Validate() = %v\nwant field %q with %q", err, tc.field, tc.msg)
			}
		})
	}
}

// TestStatusComponentsIncludeUpstreams: an upstream's ID is a component
// a client may subscribe to.
func TestStatusComponentsIncludeUpstreams(t *testing.T) {
	c := validBase(t)
	c.Upstreams = []Upstream{{ID: "bankid"}}
	if got, want := c.StatusComponents(), []string{"store", "passkey", "bankid"}; !slices.Equal(got, want) {
		t.Errorf("StatusComponents() = %q, want %q", got, want)
	}
	c.Clients[0].StatusWebhook, c.Clients[0].StatusComponents = "https://bank.example/events", []string{"bankid"}
	var p problems
	c.validateClientWebhooks(&p)
	if len(p) != 0 {
		t.Errorf("problems: %v", p)
	}
}

// TestToStoreCarriesStatusWebhook: the webhook settings reach the stored
// client, and the slice is not shared.
func TestToStoreCarriesStatusWebhook(t *testing.T) {
	c := validBase(t).Clients[0]
	c.StatusWebhook, c.StatusComponents = "https://bank.example/events", []string{"store", "passkey"}
	sc, err := c.ToStore(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if sc.StatusWebhook != c.StatusWebhook || !slices.Equal(sc.StatusComponents, c.StatusComponents) {
		t.Errorf("ToStore: webhook %q components %q", sc.StatusWebhook, sc.StatusComponents)
	}
	sc.StatusComponents[0] = "changed"
	if c.StatusComponents[0] == "changed" {
		t.Error("ToStore shares status_components with the config")
	}
}

// TestParseStatusWebhook: the YAML keys are status_webhook and
// status_components.
func TestParseStatusWebhook(t *testing.T) {
	const doc = `version: 1
issuer: https://id.example.no
keys: {signing_key_file: /etc/varde/signing-key.pem}
clients:
  - id: bank
    name: Bank
    auth_method: none
    redirect_uris: [https://bank.example/cb]
    status_webhook: https://bank.example/events
    status_components: [store, passkey]
`
	c, err := Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Clients[0]
	if cl.StatusWebhook != "https://bank.example/events" || !slices.Equal(cl.StatusComponents, []string{"store", "passkey"}) {
		t.Errorf("parsed %+v", cl)
	}
}

// TestValidateClientSectors: a client without sector_id is in the sector
// named by its ID, so another client whose sector_id is that ID would get
// the same subject identifiers without either saying so. That is refused;
// a sector both name, or one equal to a client's own ID, is not.
func TestValidateClientSectors(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		bankSector, taxSector string
		bankID                string // default "bank"
		field                 string // "" means valid
		msg                   string
	}{
		{"no sectors", "", "", "", "", ""},
		{"one sector named by both", "bank.example", "bank.example", "", "", ""},
		{"a client's own ID as its sector", "bank", "", "", "", ""},
		{"a sector named by both that is one's ID", "bank", "bank", "", "", ""},
		{"an ID that is another's sector, with a sector of its own", "bank-group", "bank", "", "", ""},
		{"an ID that is another's sector", "", "bank", "", "clients[0].id",
			`"bank" is the sector_id of clients[1] ("tax"), so the two would get the same subject identifiers`},
		{"a domain-like ID that is another's sector", "", "bank.example", "bank.example", "clients[0].id",
			`set sector_id: "bank.example" here if they belong to one organisation`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			if tc.bankID != "" {
				c.Clients[0].ID = tc.bankID
			}
			c.Clients[0].SectorID, c.Clients[1].SectorID = tc.bankSector, tc.taxSector
			err := c.Validate()
			var got, want []string
			if err != nil {
				got = fields(t, err)
			}
			if tc.field != "" {
				want = []string{tc.field}
			}
			if !slices.Equal(got, want) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("Validate() = %v\nwant field %q with %q", err, tc.field, tc.msg)
			}
		})
	}
}

// TestValidateSectorChangeAccepted: sector_id_change_accepted names the
// sector a client had before, so one naming the sector it has now (its
// sector_id, or its ID without one) is refused, naming the setting.
func TestValidateSectorChangeAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, sector, accepted string
		field                  string // "" means valid
	}{
		{"none", "bank.example", "", ""},
		{"from the ID to a sector", "bank.example", "bank", ""},
		{"from a sector to the ID", "", "bank.example", ""},
		{"from one sector to another", "bank.no", "bank.example", ""},
		{"the sector it has now", "bank.example", "bank.example", "clients[0].sector_id_change_accepted"},
		{"its ID, which is its sector now", "", "bank", "clients[0].sector_id_change_accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			c.Clients[0].SectorID, c.Clients[0].SectorIDChangeAccepted = tc.sector, tc.accepted
			err := c.Validate()
			var got, want []string
			if err != nil {
				got = fields(t, err)
			}
			if tc.field != "" {
				want = []string{tc.field}
			}
			if !slices.Equal(got, want) || (err != nil && !strings.Contains(err.Error(), "name the sector it had before")) {
				t.Errorf("Validate() = %v\nwant field %q", err, tc.field)
			}
		})
	}
}

// TestValidateBackchannelLogoutURI: a back-channel logout URI is an
// absolute https URL (http only to a loopback host) without a fragment
// (Back-Channel Logout 1.0 §2.2).
func TestValidateBackchannelLogoutURI(t *testing.T) {
	for _, tc := range []struct {
		name, uri string
		msg       string // "" means valid
	}{
		{"none", "", ""},
		{"https", "https://bank.example/varde/logout", ""},
		{"https with port and query", "https://bank.example:8443/logout?tenant=1", ""},
		{"http localhost", "http://localhost:9000/logout", ""},
		{"http loopback", "http://127.0.0.1:9000/logout", ""},
		{"http elsewhere", "http://bank.example/logout", "https"},
		{"relative", "/logout", "absolute"},
		{"fragment", "https://bank.example/logout#x", "fragment"},
		{"user info", "https://u:p@bank.example/logout", "user information"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			c.Clients[0].BackchannelLogoutURI = tc.uri
			wantFieldError(t, c, "clients[0].backchannel_logout_uri", tc.msg)
		})
	}
}

// backchannelClientDoc is a configuration file with one client, which
// registers a back-channel logout URI; its last line is the client's.
const backchannelClientDoc = `version: 1
issuer: https://id.example.no
keys: {signing_key_file: /etc/varde/signing-key.pem}
clients:
  - id: bank
    name: Bank
    auth_method: none
    redirect_uris: [https://bank.example/cb]
    backchannel_logout_uri: https://bank.example/varde/logout
`

// TestParseBackchannelLogoutURI: the YAML key is backchannel_logout_uri,
// and ToStore carries it to the stored client.
func TestParseBackchannelLogoutURI(t *testing.T) {
	c, err := Parse([]byte(backchannelClientDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.Clients[0].ToStore(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if sc.BackchannelLogoutURI != "https://bank.example/varde/logout" {
		t.Errorf("stored backchannel_logout_uri %q", sc.BackchannelLogoutURI)
	}
}

// TestBackchannelLogoutSessionRequired: a client may register
// backchannel_logout_session_required (Back-Channel Logout 1.0 §2.2),
// which every logout token meets (each carries sid); it asks for logout
// tokens, so it needs backchannel_logout_uri.
func TestBackchannelLogoutSessionRequired(t *testing.T) {
	c, err := Parse([]byte(backchannelClientDoc+"    backchannel_logout_session_required: true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Clients[0].BackchannelLogoutSessionRequired {
		t.Error("backchannel_logout_session_required not read")
	}
	for _, tc := range []struct{ uri, msg string }{
		{"https://bank.example/varde/logout", ""},
		{"", "needs backchannel_logout_uri"},
	} {
		c := validBase(t)
		c.Clients[0].BackchannelLogoutURI, c.Clients[0].BackchannelLogoutSessionRequired = tc.uri, true
		wantFieldError(t, c, "clients[0].backchannel_logout_session_required", tc.msg)
	}
}

// TestValidateURLsHideSecrets: a refused client URL is named in the error
// without its query, fragment or user information, where a secret may be,
// for the configuration error reaches the startup log.
func TestValidateURLsHideSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, raw, shown string
	}{
		{"query", "http://bank.example/x?token=s3cret", `"http://bank.example/x?redacted" must use https`},
		{"user info", "https://u:s3cret@bank.example/x", `"https://redacted@bank.example/x" must not have user information`},
		{"fragment", "https://bank.example/x#s3cret", `"https://bank.example/x#redacted" must not have a fragment`},
		{"unparsable", "https://bank.example/%zz?token=s3cret", "does not parse as a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			c.Clients[0].JWKS, c.Clients[0].JWKSURI = "", tc.raw
			c.Clients[0].StatusWebhook = tc.raw
			c.Clients[0].BackchannelLogoutURI = tc.raw
			c.Clients[0].RedirectURIs = []string{tc.raw}
			c.Clients[0].PostLogoutRedirectURIs = []string{tc.raw}
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			got := fields(t, err)
			want := []string{"clients[0].jwks_uri", "clients[0].redirect_uris[0]", "clients[0].post_logout_redirect_uris[0]", "clients[0].status_webhook", "clients[0].backchannel_logout_uri"}
			for _, f := range want {
				if !slices.Contains(got, f) {
					t.Errorf("no error for %s in %v", f, err)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Validate() = %v\nshows the secret", err)
			}
			if n := strings.Count(err.Error(), tc.shown); n != len(want) {
				t.Errorf("Validate() = %v\nsays %q %d times, want %d", err, tc.shown, n, len(want))
			}
		})
	}
}

// TestValidateIDTokenAlg: a client's id_token_signed_response_alg is
// ES256 (also when absent) or RS256; RS256 needs an RSA key, from
// keys.rsa_signing_key_file or made up with the ES256 one on localhost.
func TestValidateIDTokenAlg(t *testing.T) {
	for _, tc := range []struct {
		name, alg string
		keys      Keys
		issuer    string
		msg       string // "" means valid
	}{
		{"absent", "", Keys{SigningKeyFile: "/k.pem"}, "", ""},
		{"ES256", "ES256", Keys{SigningKeyFile: "/k.pem"}, "", ""},
		{"RS256 with an RSA key", "RS256", Keys{SigningKeyFile: "/k.pem", RSASigningKeyFile: "/rsa.pem"}, "", ""},
		{"RS256 without an RSA key", "RS256", Keys{SigningKeyFile: "/k.pem"}, "", "keys.rsa_signing_key_file is not set"},
		{"RS256 on localhost, keys made up", "RS256", Keys{}, "http://localhost:8080", ""},
		{"lower case", "rs256", Keys{SigningKeyFile: "/k.pem", RSASigningKeyFile: "/rsa.pem"}, "", `"rs256" is not an algorithm Varde signs ID tokens with: ES256 (the default) or RS256`},
		{"none", "none", Keys{SigningKeyFile: "/k.pem"}, "", `"none" is not an algorithm`},
		{"HS256", "HS256", Keys{SigningKeyFile: "/k.pem"}, "", `"HS256" is not an algorithm`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			c.Keys.SigningKeyFile, c.Keys.RSASigningKeyFile = tc.keys.SigningKeyFile, tc.keys.RSASigningKeyFile
			if tc.issuer != "" {
				c.Issuer, c.Passkey.RPID, c.Passkey.Origins = tc.issuer, "localhost", nil
			}
			c.Clients[0].IDTokenSignedResponseAlg = tc.alg
			wantFieldError(t, c, "clients[0].id_token_signed_response_alg", tc.msg)
		})
	}
}

// TestParseIDTokenAlg: the YAML keys are id_token_signed_response_alg
// and keys.rsa_signing_key_file (env VARDE_RSA_SIGNING_KEY_FILE), and
// ToStore carries the algorithm to the stored client.
func TestParseIDTokenAlg(t *testing.T) {
	const doc = `version: 1
issuer: https://id.example.no
keys: {signing_key_file: /etc/varde/signing-key.pem, rsa_signing_key_file: /etc/varde/rsa-signing-key.pem}
clients:
  - id: bank
    name: Bank
    auth_method: none
    redirect_uris: [https://bank.example/cb]
    id_token_signed_response_alg: RS256
`
	c, err := Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys.RSASigningKeyFile != "/etc/varde/rsa-signing-key.pem" {
		t.Errorf("rsa_signing_key_file = %q", c.Keys.RSASigningKeyFile)
	}
	sc, err := c.Clients[0].ToStore(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if sc.IDTokenAlg != "RS256" {
		t.Errorf("stored id_token_signed_response_alg %q", sc.IDTokenAlg)
	}
	c, err = Parse([]byte(doc), func(k string) string {
		return map[string]string{EnvRSASigningKeyFile: "/run/credentials/rsa.pem"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys.RSASigningKeyFile != "/run/credentials/rsa.pem" {
		t.Errorf("rsa_signing_key_file from %s = %q", EnvRSASigningKeyFile, c.Keys.RSASigningKeyFile)
	}
}

// wantFieldError checks that c.Validate() fails on field alone, with an
// error saying msg, or passes if msg is empty.
func wantFieldError(t *testing.T, c Config, field, msg string) {
	t.Helper()
	err := c.Validate()
	var got, want []string
	if err != nil {
		got = fields(t, err)
	}
	if msg != "" {
		want = []string{field}
	}
	if !slices.Equal(got, want) || (err != nil && !strings.Contains(err.Error(), msg)) {
		t.Errorf("Validate() = %v\nwant %q with %q", err, want, msg)
	}
}
