package oidcup

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// flipCheckDigit returns n with its last digit changed.
func flipCheckDigit(n string) string {
	last := n[len(n)-1]
	return n[:len(n)-1] + string('0'+(last-'0'+1)%10)
}

// TestMaliciousIDTokens: every way an upstream's ID token can be wrong
// is refused with its own audited reason, and the broker never gets a
// result. It hears "upstream_error", or, for a token that is the
// upstream's valid answer whose account cannot be used,
// "account_refused" with a handle of the account (never its sub).
func TestMaliciousIDTokens(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	p := v.add(f.config(v, "fake"))
	accounts := map[string]string{provider.ReasonAccountRefused: p.accountHandle("upstream-sub-1")}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigning := signingKey{kid: "k-rsa", key: rsaKey, alg: jose.RS256}
	f.with(func(f *fakeUpstream) { f.published = append(f.published, rsaSigning) })
	now := func() int64 { return v.clock.Now().Unix() }
	signedBy := func(k signingKey) func(*fakeUpstream, map[string]any) string {
		return func(f *fakeUpstream, c map[string]any) string { return signWith(t, k, c) }
	}
	evil := ecKey(t)

	for _, tc := range []struct {
		name   string
		claims func(c map[string]any)
		sign   func(f *fakeUpstream, c map[string]any) string
		reason string
		// broker is what the broker hears, if not "upstream_error".
		broker string
	}{
		{name: "wrong iss", claims: func(c map[string]any) { c["iss"] = "https://evil.example" }, reason: ReasonWrongIssuer},
		{name: "iss with a trailing slash", claims: func(c map[string]any) { c["iss"] = f.issuer + "/" }, reason: ReasonWrongIssuer},
		{name: "no iss", claims: func(c map[string]any) { delete(c, "iss") }, reason: ReasonWrongIssuer},
		{name: "wrong aud", claims: func(c map[string]any) { c["aud"] = "another-client" }, reason: ReasonWrongAudience},
		{name: "no aud", claims: func(c map[string]any) { delete(c, "aud") }, reason: ReasonWrongAudience},
		{name: "untrusted extra aud", claims: func(c map[string]any) { c["aud"] = []string{fakeClient, "another-client"}; c["azp"] = fakeClient }, reason: ReasonWrongAudience},
		{name: "azp of another client", claims: func(c map[string]any) { c["azp"] = "another-client" }, reason: ReasonWrongAudience},
		{name: "wrong nonce", claims: func(c map[string]any) { c["nonce"] = "not-the-nonce" }, reason: ReasonBadNonce, broker: provider.ReasonUnverifiedResponse},
		{name: "no nonce", claims: func(c map[string]any) { delete(c, "nonce") }, reason: ReasonBadNonce, broker: provider.ReasonUnverifiedResponse},
		{name: "expired", claims: func(c map[string]any) { c["iat"], c["exp"] = now()-180, now()-120 }, reason: ReasonExpired},
		{name: "no exp", claims: func(c map[string]any) { delete(c, "exp") }, reason: ReasonExpired},
		{name: "iat in the future", claims: func(c map[string]any) { c["iat"], c["exp"] = now()+300, now()+600 }, reason: ReasonBadIssuedAt},
		{name: "iat long ago", claims: func(c map[string]any) { c["iat"] = now() - 3600 }, reason: ReasonBadIssuedAt},
		{name: "no iat", claims: func(c map[string]any) { delete(c, "iat") }, reason: ReasonBadIssuedAt},
		{name: "nbf in the future", claims: func(c map[string]any) { c["nbf"] = now() + 300 }, reason: ReasonNotYetValid},
		{name: "auth_time in the future", claims: func(c map[string]any) { c["auth_time"] = now() + 300 }, reason: ReasonBadAuthTime},
		{name: "no sub", claims: func(c map[string]any) { delete(c, "sub") }, reason: ReasonNoSubject},
		{name: "alg none", sign: func(f *fakeUpstream, c map[string]any) string { return unsigned(map[string]any{"alg": "none"}, c, "") }, reason: ReasonAlgNone},
		{name: "alg None with a kid", sign: func(f *fakeUpstream, c map[string]any) string {
			return unsigned(map[string]any{"alg": "None", "kid": "k1"}, c, "")
		}, reason: ReasonAlgNone},
		{name: "HS256 keyed with the public key", sign: func(f *fakeUpstream, c map[string]any) string {
			pub, _ := json.Marshal(jose.JSONWebKey{Key: f.signing.public()})
			return signWith(t, signingKey{kid: "k1", key: pub, alg: jose.HS256}, c)
		}, reason: ReasonDisallowedAlg},
		{name: "RS512 not advertised", sign: signedBy(signingKey{kid: "k-rsa", key: rsaKey, alg: jose.RS512}), reason: ReasonDisallowedAlg},
		{name: "key not in the JWKS", sign: signedBy(signingKey{kid: "k-evil", key: evil, alg: jose.ES256}), reason: ReasonBadSignature},
		{name: "key not in the JWKS under a known kid", sign: signedBy(signingKey{kid: "k1", key: evil, alg: jose.ES256}), reason: ReasonBadSignature},
		{name: "key not in the JWKS without kid", sign: signedBy(signingKey{key: evil, alg: jose.ES256}), reason: ReasonBadSignature},
		{name: "RSA kid with an EC alg", sign: signedBy(signingKey{kid: "k-rsa", key: evil, alg: jose.ES256}), reason: ReasonBadSignature},
		{name: "payload changed after signing", sign: func(f *fakeUpstream, c map[string]any) string {
			good := strings.Split(signWith(t, f.signing, c), ".")
			c["pid"] = fnr(t)
			forged := strings.Split(unsigned(map[string]any{}, c, ""), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}, reason: ReasonBadSignature},
		{name: "unknown acr", claims: func(c map[string]any) { c["acr"] = "urn:fake:loa:ultra" }, reason: ReasonUnknownACR, broker: provider.ReasonAccountRefused},
		{name: "eIDAS high, not in the map", claims: func(c map[string]any) { c["acr"] = assurance.ACRHigh }, reason: ReasonUnknownACR, broker: provider.ReasonAccountRefused},
		{name: "no acr", claims: func(c map[string]any) { delete(c, "acr") }, reason: ReasonUnknownACR, broker: provider.ReasonAccountRefused},
		{name: "no identifier", claims: func(c map[string]any) { delete(c, "pid") }, reason: ReasonNoIdentifier, broker: provider.ReasonAccountRefused},
		{name: "empty identifier", claims: func(c map[string]any) { c["pid"] = "" }, reason: ReasonNoIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier with a wrong check digit", claims: func(c map[string]any) { c["pid"] = flipCheckDigit(f.fnr) }, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier of a scheme not accepted", claims: func(c map[string]any) {
			c["pid"] = map[string]string{"scheme": "se:pnr", "value": "196408233234"}
		}, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier object with a wrong check digit", claims: func(c map[string]any) {
			c["pid"] = map[string]string{"scheme": "no:fnr", "value": flipCheckDigit(f.fnr)}
		}, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier as a number", claims: func(c map[string]any) { c["pid"] = 12345678901 }, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "NUL in given_name", claims: func(c map[string]any) { c["given_name"] = "Kari\x00" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in family_name", claims: func(c map[string]any) { c["family_name"] = "Nord\x00mann" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in name", claims: func(c map[string]any) { c["name"] = "Kari\x00Nordmann" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in birthdate", claims: func(c map[string]any) { c["birthdate"] = "1970-01-01\x00" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in the identifier", claims: func(c map[string]any) { c["pid"] = f.fnr + "\x00" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in the identifier object", claims: func(c map[string]any) {
			c["pid"] = map[string]string{"scheme": "no:fnr", "value": f.fnr + "\x00"}
		}, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "NUL in a claim name", claims: func(c map[string]any) { c["given_name\x00"] = "Kari" }, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "claims not UTF-8", sign: func(f *fakeUpstream, c map[string]any) string {
			payload, _ := json.Marshal(c)
			payload = append(payload[:len(payload)-1], []byte(`,"given_name":"Ka`+"\xff"+`ri"}`)...)
			return signPayload(t, f.signing, payload)
		}, reason: ReasonNotText, broker: provider.ReasonAccountRefused},
		{name: "not a JWS", sign: func(*fakeUpstream, map[string]any) string { return "not-a-token" }, reason: ReasonMalformed},
		{name: "encrypted shape", sign: func(*fakeUpstream, map[string]any) string { return "a.b.c.d.e" }, reason: ReasonMalformed},
		{name: "exp of the wrong type", claims: func(c map[string]any) { c["exp"] = "tomorrow" }, reason: ReasonMalformed},
		// A claim sent as null is refused as if missing or of the wrong
		// type, never read as an empty string and let through.
		{name: "iss null", claims: func(c map[string]any) { c["iss"] = nil }, reason: ReasonWrongIssuer},
		{name: "aud null", claims: func(c map[string]any) { c["aud"] = nil }, reason: ReasonMalformed},
		{name: "exp null", claims: func(c map[string]any) { c["exp"] = nil }, reason: ReasonExpired},
		{name: "iat null", claims: func(c map[string]any) { c["iat"] = nil }, reason: ReasonBadIssuedAt},
		{name: "nonce null", claims: func(c map[string]any) { c["nonce"] = nil }, reason: ReasonBadNonce, broker: provider.ReasonUnverifiedResponse},
		{name: "sub null", claims: func(c map[string]any) { c["sub"] = nil }, reason: ReasonNoSubject},
		{name: "sub as a number", claims: func(c map[string]any) { c["sub"] = 42 }, reason: ReasonMalformed},
		{name: "acr null", claims: func(c map[string]any) { c["acr"] = nil }, reason: ReasonUnknownACR, broker: provider.ReasonAccountRefused},
		{name: "identifier null", claims: func(c map[string]any) { c["pid"] = nil }, reason: ReasonNoIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier as true", claims: func(c map[string]any) { c["pid"] = true }, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier as a list", claims: func(c map[string]any) { c["pid"] = []string{f.fnr} }, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier as an empty object", claims: func(c map[string]any) { c["pid"] = map[string]any{} }, reason: ReasonNoIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier object with a null value", claims: func(c map[string]any) {
			c["pid"] = map[string]any{"scheme": "no:fnr", "value": nil}
		}, reason: ReasonNoIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier object with a number value", claims: func(c map[string]any) {
			c["pid"] = map[string]any{"scheme": "no:fnr", "value": 17856000796}
		}, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
		{name: "identifier object with a null scheme", claims: func(c map[string]any) {
			c["pid"] = map[string]any{"scheme": nil, "value": f.fnr}
		}, reason: ReasonInvalidIdentifier, broker: provider.ReasonAccountRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.with(func(f *fakeUpstream) { f.claims, f.sign = tc.claims, tc.sign })
			finishes, fails := v.fin.counts()
			audited := len(v.reasons())
			path, body := newBrowser(t).login(v.startURL("fake", "att-"+tc.name, assurance.Substantial, "", ""))
			if path != "/failed" {
				t.Fatalf("login ended at %s: %.200s", path, body)
			}
			n, m := v.fin.counts()
			if n != finishes || m != fails+1 {
				t.Fatalf("Finish %d→%d, Fail %d→%d", finishes, n, fails, m)
			}
			reason := cmp.Or(tc.broker, ReasonUpstreamError)
			if last := v.fin.fails[m-1]; last != (failed{"att-" + tc.name, reason, accounts[reason]}) {
				t.Fatalf("Fail(%q, %q, account %q), want %s", last.attempt, last.reason, last.account, reason)
			}
			if got := v.reasons()[audited:]; !slices.Equal(got, []string{tc.reason}) {
				t.Fatalf("audited %v, want [%s]", got, tc.reason)
			}
		})
	}
	v.checkNoLeaks(f.fnr, f.secret)
}

// TestAcceptedIDTokens: well-formed tokens pass, with the level capped,
// unregistered amr values dropped and both identifier shapes read.
func TestAcceptedIDTokens(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.TrustedAudiences = []string{"varde-other-node"}
	v.add(cfg)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.with(func(f *fakeUpstream) {
		f.published = append(f.published, signingKey{kid: "k-rsa", key: rsaKey, alg: jose.RS256})
	})
	dnr, err := identity.SyntheticNO(rand.Reader, identity.KindDnr, time.Date(1990, 2, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	authTime := v.clock.Now().Add(-10 * time.Second)
	for _, tc := range []struct {
		name     string
		claims   func(c map[string]any)
		sign     func(f *fakeUpstream, c map[string]any) string
		level    assurance.Level
		id       store.Identifier
		amr      []string
		authTime time.Time
	}{
		{name: "plain", level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "acr above the maximum is capped", claims: func(c map[string]any) { c["acr"] = fakeHigh },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "identifier object", claims: func(c map[string]any) { c["pid"] = map[string]string{"scheme": "no:fnr", "value": f.fnr} },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "identifier with spaces is canonical", claims: func(c map[string]any) { c["pid"] = f.fnr[:6] + " " + f.fnr[6:] },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "D-number", claims: func(c map[string]any) { c["pid"] = dnr },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:dnr", Value: dnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "no auth_time uses iat without PromptLogin", claims: func(c map[string]any) { delete(c, "auth_time"); delete(c, "amr") },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, authTime: v.clock.Now()},
		{name: "trusted extra audience with azp", claims: func(c map[string]any) { c["aud"] = []string{fakeClient, "varde-other-node"}; c["azp"] = fakeClient },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "RS256", sign: func(f *fakeUpstream, c map[string]any) string {
			return signWith(t, signingKey{kid: "k-rsa", key: rsaKey, alg: jose.RS256}, c)
		}, level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "a backslash and u0000 are no NUL", claims: func(c map[string]any) { c["given_name"] = `Kari\u0000` },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
		{name: "expired within the leeway", claims: func(c map[string]any) { c["exp"] = v.clock.Now().Add(-10 * time.Second).Unix() },
			level: assurance.Substantial, id: store.Identifier{Scheme: "no:fnr", Value: f.fnr}, amr: []string{"pin", "mfa"}, authTime: authTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.with(func(f *fakeUpstream) { f.claims, f.sign = tc.claims, tc.sign })
			path, body := newBrowser(t).login(v.startURL("fake", "ok", assurance.Substantial, "", ""))
			if path != "/finished" {
				t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
			}
			got := v.fin.lastFinish(t).res
			if got.Level != tc.level || !slices.Equal(got.Identifiers, []store.Identifier{tc.id}) || !slices.Equal(got.AMR, tc.amr) ||
				!got.AuthTime.Equal(tc.authTime.Truncate(time.Second)) {
				t.Fatalf("result %+v, want level %s, identifier %v, amr %v, auth_time %v", got, tc.level, tc.id, tc.amr, tc.authTime)
			}
		})
	}
	v.checkNoLeaks(f.fnr, f.secret)
}

// TestAmbiguousIdentifierRefused: a plain string identifier valid in
// more than one accepted scheme is refused with its audited reason,
// whatever the order of the schemes, and is never guessed; one valid in
// a single scheme, and the {scheme, value} form, are read.
func TestAmbiguousIdentifierRefused(t *testing.T) {
	// A Finnish HETU whose check character is a digit is also a
	// well-formed Danish CPR number.
	const hetu, cpr = "010180-0025", "0101800025"
	cprFirst := []string{identity.SchemeDKCPR, identity.SchemeFIHetu}
	hetuFirst := []string{identity.SchemeFIHetu, identity.SchemeDKCPR}
	for _, tc := range []struct {
		name    string
		schemes []string
		claim   string
		want    store.Identifier
		reason  string
	}{
		{name: "CPR listed first", schemes: cprFirst, claim: `"` + hetu + `"`, reason: ReasonAmbiguousIdentifier},
		{name: "HETU listed first", schemes: hetuFirst, claim: `"` + hetu + `"`, reason: ReasonAmbiguousIdentifier},
		{name: "two passport schemes", schemes: []string{"passport:NOR", "passport:SWE"}, claim: `"AB1234567"`, reason: ReasonAmbiguousIdentifier},
		{name: "HETU that is no CPR", schemes: cprFirst, claim: `"010180+0025"`, want: store.Identifier{Scheme: identity.SchemeFIHetu, Value: "010180+0025"}},
		{name: "CPR that is no HETU", schemes: hetuFirst, claim: `"` + cpr + `"`, want: store.Identifier{Scheme: identity.SchemeDKCPR, Value: cpr}},
		{name: "scheme listed twice", schemes: []string{identity.SchemeDKCPR, identity.SchemeDKCPR}, claim: `"` + hetu + `"`,
			want: store.Identifier{Scheme: identity.SchemeDKCPR, Value: cpr}},
		{name: "object naming HETU", schemes: cprFirst, claim: `{"scheme": "fi:hetu", "value": "` + hetu + `"}`,
			want: store.Identifier{Scheme: identity.SchemeFIHetu, Value: hetu}},
		{name: "object naming CPR", schemes: hetuFirst, claim: `{"scheme": "dk:cpr", "value": "` + hetu + `"}`,
			want: store.Identifier{Scheme: identity.SchemeDKCPR, Value: cpr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{claim: "pid", schemes: tc.schemes}
			id, rej := c.identifier(json.RawMessage(tc.claim))
			var reason string
			if rej != nil {
				reason = rej.reason
				if strings.Contains(rej.msg, "0101") || strings.Contains(rej.msg, "1234") {
					t.Errorf("refusal %q holds the identifier", rej.msg)
				}
			}
			if id != tc.want || reason != tc.reason {
				t.Errorf("got %v, reason %q; want %v, reason %q", id, reason, tc.want, tc.reason)
			}
		})
	}

	// Through a login, the broker hears of a failure and the audit log
	// has the reason, with the identifier in neither log.
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.IdentifierSchemes = cprFirst
	v.add(cfg)
	f.with(func(f *fakeUpstream) { f.claims = func(c map[string]any) { c["pid"] = hetu } })
	loginFails(t, v, v.startURL("fake", "a", assurance.Substantial, "", ""), provider.ReasonAccountRefused, ReasonAmbiguousIdentifier)
	v.checkNoLeaks(hetu, cpr)
}

// TestHiddenCharactersLeaveTheNameOut: a name the eID sends holding a
// character that does not show as itself (identity.HiddenRune: a
// control, a line separator, a control that reorders text) is left out,
// as a name too long is, and the login goes on: the person is who the
// eID says by their number, and a name that could read as another
// person's is shown to no one. Refusing the login instead would lock
// the person out for what their eID's record holds.
func TestHiddenCharactersLeaveTheNameOut(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	for _, tc := range []struct {
		name          string
		given, family string
	}{
		{name: "a right-to-left override in given_name", given: "\u202eirak", family: "Nordmann"},
		{name: "an isolate in family_name", given: "Kari", family: "\u2067Nordmann\u2069"},
		{name: "a right-to-left mark in family_name", given: "Kari", family: "Nordmann\u200f"},
		{name: "a line separator in given_name", given: "Kari\u2028Ola", family: "Nordmann"},
		{name: "a control character in given_name", given: "Ka\x07ri", family: "Nordmann"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.with(func(f *fakeUpstream) {
				f.claims = func(c map[string]any) { c["given_name"], c["family_name"] = tc.given, tc.family }
				f.sign = nil
			})
			path, body := newBrowser(t).login(v.startURL("fake", "ok", assurance.Substantial, "", ""))
			if path != "/finished" {
				t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
			}
			got := v.fin.lastFinish(t).res
			for claim, pair := range map[string][2]string{"given_name": {tc.given, got.GivenName}, "family_name": {tc.family, got.FamilyName}} {
				sent, kept := pair[0], pair[1]
				want := sent
				if strings.ContainsFunc(sent, identity.HiddenRune) {
					want = ""
				}
				if kept != want {
					t.Errorf("%s %q kept as %q, want %q", claim, sent, kept, want)
				}
			}
			if !slices.Equal(got.Identifiers, []store.Identifier{{Scheme: "no:fnr", Value: f.fnr}}) {
				t.Errorf("identifiers %v", got.Identifiers)
			}
		})
	}
}
