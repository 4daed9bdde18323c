package demorp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// logoutIssuer is an issuer whose key set holds one ES256 key, and that
// key, to sign logout tokens with.
func logoutIssuer(f *testing.F) (*httptest.Server, jose.Signer) {
	mux, srv := fakeIssuer(f)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	return srv, signer
}

// logoutClaims is what the bank must find in a logout token it takes
// (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6).
type logoutClaims struct {
	Iss    string                     `json:"iss"`
	Aud    any                        `json:"aud"`
	Exp    float64                    `json:"exp"`
	Iat    *float64                   `json:"iat"`
	Sub    string                     `json:"sub"`
	SID    string                     `json:"sid"`
	JTI    string                     `json:"jti"`
	Events map[string]json.RawMessage `json:"events"`
}

// written tells of the claims as they were written: whether a nonce is
// there, of any value, null too, and whether any claim the bank reads
// is null, which it must not take for one left out.
type written struct {
	nonce, null bool
}

func writtenClaims(claims string) written {
	var raw map[string]json.RawMessage
	_ = json.Unmarshal([]byte(claims), &raw)
	_, nonce := raw["nonce"]
	null := false
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "sid", "jti", "events"} {
		if v, ok := raw[name]; ok && string(v) == "null" {
			null = true
		}
	}
	return written{nonce: nonce, null: null}
}

func (c logoutClaims) takeable(issuer, clientID string, now time.Time, w written) bool {
	aud := []string{}
	switch a := c.Aud.(type) {
	case string:
		aud = append(aud, a)
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok {
				aud = append(aud, s)
			}
		}
	}
	return c.Iss == issuer && slices.Contains(aud, clientID) && now.Before(time.Unix(int64(c.Exp), 0)) && c.Iat != nil &&
		isObject(c.Events[backchannelEvent]) && (c.SID != "" || c.Sub != "") && c.JTI != "" && !w.nonce && !w.null
}

// FuzzBackchannelLogout posts logout tokens of any claims, signed with
// the issuer's key, to the bank's back-channel logout endpoint: it
// answers 200 only for a token §2.6 lets it take (no nonce, not even a
// null one, and no claim it reads null), else 400 with an OAuth error; a refused token ends no session, and a token taken ends
// only the sessions of its sid (or, without one, its sub).
func FuzzBackchannelLogout(f *testing.F) {
	srv, signer := logoutIssuer(f)
	exp := time.Now().Add(time.Hour).Unix()
	valid := func(extra string) string {
		return `{"iss":"` + srv.URL + `","aud":"demo-bank","iat":1,"exp":` + strconv.FormatInt(exp, 10) + `,"jti":"j1",` +
			`"events":{"` + backchannelEvent + `":{}}` + extra + `}`
	}
	f.Add(valid(`,"sid":"s-1"`))
	f.Add(valid(`,"sub":"sub-2"`))
	f.Add(valid(`,"sid":"s-1","nonce":"n"`))
	f.Add(valid(`,"sid":"s-1","nonce":null`))
	f.Add(valid(`,"sid":null,"sub":"sub-2"`))
	f.Add(valid(`,"sid":"s-1","sub":null`))
	f.Add(strings.Replace(valid(`,"sid":"s-1"`), `"iat":1`, `"iat":null`, 1))
	f.Add(strings.Replace(valid(`,"sid":"s-1"`), `"jti":"j1"`, `"jti":null`, 1))
	f.Add(valid(`,"sid":""`))
	f.Add(strings.Replace(valid(`,"sid":"s-2"`), `"iat":1,`, "", 1))
	f.Add(`{"iss":"` + srv.URL + `","aud":["x","demo-bank"],"exp":` + strconv.FormatInt(exp, 10) + `,"sid":"s-2","jti":"j2","events":{"` + backchannelEvent + `":null}}`)
	f.Add(`{"iss":"` + srv.URL + `","aud":"demo-bank","exp":1,"sid":"s-1","jti":"j3","events":{}}`)
	f.Add(`[]`)
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
		HTTPClient: srv.Client(), Log: slog.New(slog.DiscardHandler), Now: time.Now}
	h, err := rp.Handler()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims string) {
		rp.mu.Lock()
		rp.sessions = map[string]*loggedIn{
			"a": {Claims: map[string]any{"sid": "s-1", "sub": "sub-1"}, expires: time.Now().Add(time.Hour)},
			"b": {Claims: map[string]any{"sid": "s-2", "sub": "sub-2"}, expires: time.Now().Add(time.Hour)},
		}
		rp.logoutJTIs = map[string]time.Time{}
		rp.mu.Unlock()
		jws, err := signer.Sign([]byte(claims))
		if err != nil {
			t.Fatal(err)
		}
		token, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/demo-bank/backchannel-logout",
			strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var c logoutClaims
		takeable := json.Unmarshal([]byte(claims), &c) == nil && c.takeable(srv.URL, "demo-bank", time.Now(), writtenClaims(claims))
		rp.mu.Lock()
		left := slices.Sorted(maps.Keys(rp.sessions))
		rp.mu.Unlock()
		switch w.Code {
		case http.StatusOK:
			if !takeable {
				t.Fatalf("took %s", claims)
			}
			for _, k := range left {
				s := rp.sessions[k].Claims
				if c.SID != "" && s["sid"] == c.SID || c.SID == "" && s["sub"] == c.Sub {
					t.Fatalf("%s left session %s", claims, k)
				}
			}
		case http.StatusBadRequest:
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != "invalid_request" {
				t.Fatalf("refusal %q: %v", w.Body, err)
			}
			if len(left) != 2 {
				t.Fatalf("refused %s, and ended sessions: %v left", claims, left)
			}
		default:
			t.Fatalf("status %d for %s: %s", w.Code, claims, w.Body)
		}
	})
}

// isObject reports whether raw is a JSON object, as the logout event's
// member must be (§2.4).
func isObject(raw json.RawMessage) bool {
	return json.Valid(raw) && strings.HasPrefix(strings.TrimSpace(string(raw)), "{")
}
