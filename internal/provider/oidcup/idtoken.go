package oidcup

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

// rejection is a refused upstream response: an audit reason and, for
// the log, a description that never holds tokens or identifiers.
type rejection struct {
	reason string
	msg    string
	// status is the HTTP status of the upstream's answer that was
	// refused, when there was one.
	status int
	// subject is the sub of an ID token refused on what it says about
	// the account (failReason: provider.ReasonAccountRefused) after
	// every check of the upstream's own word passed, "" otherwise.
	subject string
	// unverified: the refusal may be of what the browser changed on its
	// way to the upstream, and so says nothing of the upstream
	// (provider.ReasonUnverifiedResponse, whatever failReason says).
	unverified bool
	// fault is the status component whose failure it was when the
	// failure was Varde's own (provider.DetailFault), "" otherwise.
	fault string
}

func (r *rejection) Error() string { return r.reason + ": " + r.msg }

func reject(reason, format string, args ...any) *rejection {
	return &rejection{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// idClaims are the ID token claims Varde reads (OpenID Connect Core §2).
type idClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	AZP       string           `json:"azp"`
	Expiry    *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	AuthTime  *jwt.NumericDate `json:"auth_time"`
	Nonce     string           `json:"nonce"`
	ACR       string           `json:"acr"`
	AMR       []string         `json:"amr"`
}

// verified is what a valid ID token proves.
type verified struct {
	// subject is the upstream's sub for the account.
	subject    string
	identifier store.Identifier
	level      assurance.Level
	// asserted is the level the acr mapped to before the cap.
	asserted assurance.Level
	amr      []string
	authTime time.Time
	// givenName, familyName and birthDate are the standard claims of
	// those names (OIDC Core §5.1) when they are usable, else "".
	givenName, familyName, birthDate string
}

// checker validates ID tokens from one upstream (OpenID Connect Core
// §3.1.3.7). It is pure: keys come from a function, time from now.
type checker struct {
	issuer   string
	clientID string
	trusted  []string
	algs     []jose.SignatureAlgorithm
	maxLevel assurance.Level
	acrMap   map[string]assurance.Level
	claim    string
	schemes  []string
	leeway   time.Duration
	maxAge   time.Duration
	// authTime says the request carried max_age, so auth_time is
	// required.
	authTime bool
}

// keysFunc returns the upstream's keys; refetch asks for a fresh set.
type keysFunc func(ctx context.Context, refetch bool) (jose.JSONWebKeySet, error)

// check validates raw for a login that sent nonce, at now.
func (c *checker) check(ctx context.Context, raw, nonce string, now time.Time, keys keysFunc) (*verified, *rejection) {
	if len(raw) > maxIDTokenSize {
		return nil, reject(ReasonMalformed, "ID token is too large")
	}
	alg, kid, rej := c.header(raw)
	if rej != nil {
		return nil, rej
	}
	tok, err := jwt.ParseSigned(raw, c.algs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, reject(ReasonMalformed, "ID token is not a compact JWS with one signature")
	}
	payload, rej := c.verify(ctx, tok, alg, kid, keys)
	if rej != nil {
		return nil, rej
	}
	var cl idClaims
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &cl) != nil || json.Unmarshal(payload, &all) != nil {
		return nil, reject(ReasonMalformed, "ID token claims are not a JSON object of the expected types")
	}
	if rej := c.claims(&cl, nonce, now); rej != nil {
		return nil, rej
	}
	// Claims that are not text are refused only once the token is known
	// to be the upstream's answer for this login: a name with a NUL in
	// it may be one the person gave the upstream, so the refusal is
	// about the account, as below.
	if rej := text(payload); rej != nil {
		rej.subject = cl.Subject
		return nil, rej
	}
	// The token is the upstream's own word, for this login, about the
	// account sub names. What follows refuses what it says about that
	// account, which may be that account's alone: the refusal carries
	// the sub, so that one account counts once against the upstream's
	// health, however often it is refused (failReason).
	v, rej := c.account(&cl, all)
	if rej != nil {
		rej.subject = cl.Subject
		return nil, rej
	}
	return v, nil
}

// account reads what a valid ID token says about the account: when the
// authentication was, its level and its identifier.
func (c *checker) account(cl *idClaims, all map[string]json.RawMessage) (*verified, *rejection) {
	// §2, §3.1.2.1: with max_age in the request auth_time is REQUIRED.
	if c.authTime && cl.AuthTime == nil {
		return nil, reject(ReasonNoAuthTime, "auth_time is missing though max_age was sent")
	}
	// acr: never raise the level. An acr the map does not know is
	// refused rather than guessed; a known one is capped at MaxLevel.
	asserted, ok := c.acrMap[cl.ACR]
	if !ok || asserted < assurance.Low {
		return nil, reject(ReasonUnknownACR, "acr is missing or not in the configured map")
	}
	id, rej := c.identifier(all[c.claim])
	if rej != nil {
		return nil, rej
	}
	v := &verified{subject: cl.Subject, identifier: id, asserted: asserted, level: min(asserted, c.maxLevel), amr: cleanAMR(cl.AMR)}
	// Without max_age in the request auth_time is optional (OIDC Core
	// §2), and an ID token without it is taken to show a login at its
	// iat: the latest the authentication can have been, so a session the
	// upstream reused passes as that recent. A request that asks for a
	// fresh login (Config.PromptLogin, provider.Attempt.Fresh) or has a
	// max_age makes auth_time required (c.authTime), so those tell them
	// apart.
	v.authTime = cl.IssuedAt.Time()
	if cl.AuthTime != nil {
		v.authTime = cl.AuthTime.Time()
	}
	v.givenName = profileClaim(all["given_name"], identity.ValidName)
	v.familyName = profileClaim(all["family_name"], identity.ValidName)
	v.birthDate = profileClaim(all["birthdate"], identity.ValidBirthDate)
	return v, nil
}

// text refuses claims that are not text Varde can keep. RFC 7519 §7.2
// (step 10) requires the claims to be UTF-8; encoding/json would quietly
// turn other bytes into U+FFFD, and a name so mangled would be stored.
// JSON also allows a NUL ("\u0000") in a string, which no name, number
// or identifier holds and a PostgreSQL text column refuses: a string
// with one, in any claim, is refused rather than dropped or passed on.
func text(payload []byte) *rejection {
	if !utf8.Valid(payload) {
		return reject(ReasonNotText, "ID token claims are not UTF-8")
	}
	// In well-formed JSON a NUL can only be written as this escape (a raw
	// control character in a string is a syntax error), so most tokens
	// are not decoded again.
	if !bytes.Contains(payload, []byte(`\u0000`)) {
		return nil
	}
	var v any
	if json.Unmarshal(payload, &v) == nil && holdsNUL(v) {
		return reject(ReasonNotText, "a string in the ID token claims holds a NUL")
	}
	return nil
}

// holdsNUL reports whether a decoded JSON value has a string, or an
// object member name, with a NUL in it.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		return slices.ContainsFunc(v, holdsNUL)
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

// profileClaim reads an optional profile claim: a string that valid
// accepts, else "". Such claims only describe the person, so one of the
// wrong type or form is left out, and the login goes on without it.
func profileClaim(raw json.RawMessage, valid func(string) bool) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	if s = strings.TrimSpace(s); !valid(s) {
		return ""
	}
	return s
}

// header reads alg and kid before the token is parsed, to refuse "none"
// and algorithms outside the allowed set with a precise reason (RFC 8725
// §3.1: the algorithm is chosen by the verifier, not the token).
func (c *checker) header(raw string) (jose.SignatureAlgorithm, string, *rejection) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		// Five parts would be an encrypted ID token, which Varde never
		// registers for.
		return "", "", reject(ReasonMalformed, "ID token is not a compact JWS")
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", "", reject(ReasonMalformed, "ID token header is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(h, &hdr); err != nil {
		return "", "", reject(ReasonMalformed, "ID token header is not a JSON object")
	}
	if strings.EqualFold(hdr.Alg, "none") {
		return "", "", reject(ReasonAlgNone, "ID token is unsigned (alg none)")
	}
	alg := jose.SignatureAlgorithm(hdr.Alg)
	if !slices.Contains(c.algs, alg) {
		return "", "", reject(ReasonDisallowedAlg, "ID token alg %q is not an accepted asymmetric algorithm", safe(hdr.Alg))
	}
	return alg, hdr.Kid, nil
}

// verify checks the signature with the upstream's keys: the key named
// by kid, or any fitting key when there is no kid. A kid the set does
// not hold makes one refetch (the upstream may have rotated its keys);
// when that refetch is held back the token is refused as unknown_key,
// and a known key that does not verify is a bad signature, with no refetch.
func (c *checker) verify(ctx context.Context, tok *jwt.JSONWebToken, alg jose.SignatureAlgorithm, kid string, keys keysFunc) (json.RawMessage, *rejection) {
	for _, refetch := range []bool{false, true} {
		set, err := keys(ctx, refetch)
		if errors.Is(err, errRefetchHeld) && kid != "" && len(set.Key(kid)) == 0 {
			// The kid may be a rotation this node has not fetched yet:
			// no evidence against the upstream until a refetch is made.
			if err != errRefetchHeld { //nolint:errorlint // errRefetchHeld itself: held back after a good fetch
				// Held back by a fetch that failed: say how.
				return nil, reject(ReasonUnknownKey, "ID token kid is not in the upstream's keys, and the last fetch of them failed too recently to refetch: %v", err)
			}
			return nil, reject(ReasonUnknownKey, "ID token kid is not in the upstream's keys, and they were fetched again too recently to refetch")
		}
		if err != nil && !errors.Is(err, errRefetchHeld) {
			rej := reject(ReasonJWKS, "upstream keys: %v", err)
			// A login whose request ended while it waited for another
			// fetch of the keys, or whose own fetch ran out of the time
			// it had left, learnt nothing about the upstream.
			rej.unverified = errors.Is(err, errFetchWait) && errors.Is(err, context.Canceled) || errors.Is(err, errFetchCut)
			return nil, rej
		}
		cands := candidates(set, kid, alg)
		for _, k := range cands {
			var payload json.RawMessage
			if tok.Claims(k.Key, &payload) == nil {
				return payload, nil
			}
		}
		if len(cands) > 0 {
			break
		}
	}
	return nil, reject(ReasonBadSignature, "no key of the upstream verifies the ID token")
}

// claims applies OpenID Connect Core §3.1.3.7 items 2, 3, 4, 5, 9, 10
// and 11 to verified claims, and requires sub: whether the token is the
// upstream's valid answer for this login. What it says about the
// account is checked after (checker.account).
func (c *checker) claims(cl *idClaims, nonce string, now time.Time) *rejection {
	// Item 2: iss MUST exactly match the upstream's issuer.
	if cl.Issuer != c.issuer {
		return reject(ReasonWrongIssuer, "iss does not match the upstream")
	}
	// Item 3: aud MUST contain our client_id, and the token MUST be
	// rejected if it names audiences we do not trust.
	if !slices.Contains(cl.Audience, c.clientID) {
		return reject(ReasonWrongAudience, "aud does not name Varde's client_id")
	}
	for _, a := range cl.Audience {
		if a != c.clientID && !slices.Contains(c.trusted, a) {
			return reject(ReasonWrongAudience, "aud names an untrusted audience")
		}
	}
	// Items 4 and 5: with several audiences azp should be present; when
	// present it must be our client_id.
	if len(cl.Audience) > 1 && cl.AZP == "" {
		return reject(ReasonWrongAudience, "several audiences and no azp")
	}
	if cl.AZP != "" && cl.AZP != c.clientID {
		return reject(ReasonWrongAudience, "azp is not Varde's client_id")
	}
	// Item 9: the current time MUST be before exp (with a small leeway
	// for clock skew).
	if cl.Expiry == nil {
		return reject(ReasonExpired, "exp is missing")
	}
	if !now.Before(cl.Expiry.Time().Add(c.leeway)) {
		return reject(ReasonExpired, "ID token has expired")
	}
	// Item 10: iat may be used to reject tokens issued too far from now.
	if cl.IssuedAt == nil {
		return reject(ReasonBadIssuedAt, "iat is missing")
	}
	iat := cl.IssuedAt.Time()
	if iat.After(now.Add(c.leeway)) {
		return reject(ReasonBadIssuedAt, "iat is in the future")
	}
	if now.Sub(iat) > c.maxAge+c.leeway {
		return reject(ReasonBadIssuedAt, "ID token was issued too long ago")
	}
	if cl.NotBefore != nil && cl.NotBefore.Time().After(now.Add(c.leeway)) {
		return reject(ReasonNotYetValid, "nbf is in the future")
	}
	if cl.AuthTime != nil && cl.AuthTime.Time().After(now.Add(c.leeway)) {
		return reject(ReasonBadAuthTime, "auth_time is in the future")
	}
	// Item 11: the nonce MUST equal the one sent in the request.
	if cl.Nonce == "" || subtle.ConstantTimeCompare([]byte(cl.Nonce), []byte(nonce)) != 1 {
		return reject(ReasonBadNonce, "nonce does not match the request")
	}
	// §2: sub is required.
	if cl.Subject == "" {
		return reject(ReasonNoSubject, "sub is missing")
	}
	return nil
}

// identifier reads the identifier claim: a string, which must be valid
// in exactly one configured scheme, or an object {"scheme", "value"}
// whose scheme must be configured. The value is canonicalised by package
// identity and never appears in errors.
func (c *checker) identifier(raw json.RawMessage) (store.Identifier, *rejection) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return store.Identifier{}, reject(ReasonNoIdentifier, "claim %s is missing", c.claim)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return store.Identifier{}, reject(ReasonNoIdentifier, "claim %s is empty", c.claim)
		}
		// The same characters can be a person in more than one scheme (a
		// Finnish HETU 010180-0025 reads as the Danish CPR 0101800025):
		// a string valid in several is refused, never guessed, whatever
		// the order of the schemes.
		var (
			found []store.Identifier
			first error
		)
		for _, scheme := range c.schemes {
			n, err := identity.Parse(scheme, s)
			switch {
			case err == nil && !slices.Contains(found, n.Identifier()):
				found = append(found, n.Identifier())
			case err != nil && first == nil:
				first = err
			}
		}
		switch len(found) {
		case 0:
			return store.Identifier{}, reject(ReasonInvalidIdentifier, "claim %s: %v", c.claim, first)
		case 1:
			return found[0], nil
		}
		schemes := make([]string, len(found))
		for i, id := range found {
			schemes[i] = id.Scheme
		}
		return store.Identifier{}, reject(ReasonAmbiguousIdentifier, "claim %s is valid as %s; only the {scheme, value} form can say which",
			c.claim, strings.Join(schemes, " and "))
	}
	var obj struct {
		Scheme *string `json:"scheme"`
		Value  *string `json:"value"`
	}
	if json.Unmarshal(raw, &obj) != nil || raw[0] != '{' {
		return store.Identifier{}, reject(ReasonInvalidIdentifier, "claim %s is neither a string nor a scheme/value object", c.claim)
	}
	if obj.Value == nil || *obj.Value == "" {
		return store.Identifier{}, reject(ReasonNoIdentifier, "claim %s has no value", c.claim)
	}
	if obj.Scheme == nil || !slices.Contains(c.schemes, *obj.Scheme) {
		return store.Identifier{}, reject(ReasonInvalidIdentifier, "claim %s names a scheme that is not accepted from this upstream", c.claim)
	}
	n, err := identity.Parse(*obj.Scheme, *obj.Value)
	if err != nil {
		return store.Identifier{}, reject(ReasonInvalidIdentifier, "claim %s: %v", c.claim, err)
	}
	return n.Identifier(), nil
}

// amrValues are the registered authentication method references
// (RFC 8176 §2). Never modified.
var amrValues = []string{"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop",
	"pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}

// cleanAMR keeps the upstream's amr values that are registered in RFC
// 8176, once each: anything else could carry data Varde must not pass
// on to relying parties.
func cleanAMR(amr []string) []string {
	var out []string
	for _, v := range amr {
		if slices.Contains(amrValues, v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// safe returns s if it is a short token fit for a log line, else "?".
func safe(s string) string {
	if s == "" || len(s) > 32 {
		return "?"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return "?"
		}
	}
	return s
}
