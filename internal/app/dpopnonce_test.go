package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestDPoPNonceAcrossNodes: nodes over one PostgreSQL database hand out
// the same DPoP nonce and take each other's (RFC 9449 §8), with nothing
// stored for it: the key comes from the subject salt they share (ADR
// 14). With oidc.dpop_nonces false a node asks for none.
func TestDPoPNonceAcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	node := func(name string, more ...func(*config.Config, *app.Options)) *app.App {
		t.Helper()
		k, err := keys.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		a, err := postgresNode(t, dsn, name, k, salt, &now, more...)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := node("a"), node("b")
	off := node("c", func(cfg *config.Config, _ *app.Options) { cfg.OIDC.DPoPNonces = new(false) })
	if err := a.Store.PutClient(ctx, &store.Client{ID: "app", Name: "App", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://app.example/cb"}, Source: "test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: dpopKey}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	// redeem asks node n to redeem a code no one issued, with a proof
	// that carries nonce (none if ""): a proof it takes gets as far as
	// the code, invalid_grant.
	redeem := func(n *app.App, nonce string) (int, string, http.Header) {
		t.Helper()
		claims := map[string]any{"jti": rand.Text(), "htm": "POST", "htu": "http://localhost:8080/token", "iat": now.Unix()}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		payload, _ := json.Marshal(claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		proof, _ := jws.CompactSerialize()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "client_id": {"app"},
			"redirect_uri": {"https://app.example/cb"}, "code_verifier": {strings.Repeat("v", 43)}}
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		rec := httptest.NewRecorder()
		n.Handler().ServeHTTP(rec, req)
		var body struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Error, rec.Header()
	}

	status, code, hdr := redeem(a, "")
	nonce := hdr.Get("DPoP-Nonce")
	if status != 400 || code != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("node a, no nonce: %d %s, DPoP-Nonce %q; want 400 use_dpop_nonce and a nonce", status, code, nonce)
	}
	status, code, hdr = redeem(b, nonce)
	if status != 400 || code != "invalid_grant" || hdr.Get("DPoP-Nonce") != nonce {
		t.Fatalf("node b, node a's nonce: %d %s, DPoP-Nonce %q; want invalid_grant and the same nonce", status, code, hdr.Get("DPoP-Nonce"))
	}
	status, code, hdr = redeem(off, "")
	if status != 400 || code != "invalid_grant" || hdr.Values("DPoP-Nonce") != nil {
		t.Fatalf("node with nonces off: %d %s, DPoP-Nonce %q; want invalid_grant and no nonce", status, code, hdr.Values("DPoP-Nonce"))
	}
}
