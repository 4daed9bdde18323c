package a11ytest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestLoginNoticesWCAG checks the login page in the states an eID
// failing puts it in, in every language, as TestPagesWCAG checks the
// others: axe-core's WCAG 2.2 A/AA rules, the document's language and
// reflow at 320 CSS pixels. The node has two simulated eIDs: Demo BankID
// (high), down from the start, and Demo MinID (substantial), whose
// logins fail while its probes pass. So the page of a service that
// accepts any level shows BankID not working and, once a login through
// MinID failed, MinID marked "did not work a moment ago" under the
// error; the page of a service that asks for high and registered
// substantial as its degraded-mode level shows the degraded notice.
func TestLoginNoticesWCAG(t *testing.T) {
	requireBrowserTests(t)
	axeSrc := axeSource(t)
	b := newBrowser(t, chromiumPath(t), axeSrc)
	n := startNodeWith(t, nil, func(cfg *config.Config) {
		// One failed probe is down, so BankID is down after the node's
		// first round of probes.
		cfg.Health.FailuresToDown = 1
		cfg.Upstreams = []config.Upstream{
			noticeSim(t, cfg.Issuer, "bankid", "Demo BankID", assurance.High, providersim.ModeDown),
			noticeSim(t, cfg.Issuer, "minid", "Demo MinID", assurance.Substantial, providersim.ModeFailing),
		}
	})
	select {
	case <-n.app.Health.Probed():
	case <-time.After(30 * time.Second):
		t.Fatal("the node's first round of probes did not end")
	}
	registerDegradedClient(t, n, "tax", assurance.Substantial)
	for _, l := range app.Languages {
		lang := l.Tag
		t.Run(lang+"/login after an eID did not work", func(t *testing.T) {
			req := n.pendingRequest(t, b)
			b.visit(t, n.issuer+"/login?"+url.Values{"lang": {lang}, "req": {req}}.Encode(), 200)
			b.do(t, "click Demo MinID", chromedp.Click("#provider-minid"))
			b.until(t, `document.querySelector("#state-minid") !== null`)
			b.audit(t, lang, "#state-minid")
			b.errorTitle(t, lang, true)
			b.focusOn(t, `<div class="notice" role="alert"`)
			b.helpLast(t)
		})
		t.Run(lang+"/login degraded", func(t *testing.T) {
			req := n.pendingRequestWith(t, b, "tax", nil, url.Values{"acr_values": {assurance.ACRHigh}})
			b.visit(t, n.issuer+"/login?"+url.Values{"lang": {lang}, "req": {req}}.Encode(), 200)
			b.audit(t, lang, "#degraded")
			b.focusOn(t, "<body")
			b.skipLink(t)
		})
	}
}

// noticeSim starts a simulated eID with Varde's issuer as its client's
// redirect, in fault mode, and returns the node's upstream for it.
func noticeSim(t *testing.T, issuer, id, name string, level assurance.Level, mode providersim.Mode) config.Upstream {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), id+"-client-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), id+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sim, err := providersim.Start(context.Background(), providersim.Config{
		ID: id, Name: name, Level: level, Store: db,
		Clients: []providersim.Client{{ID: "varde", Name: "Varde", JWKS: jwks, RedirectURIs: []string{issuer + oidcup.CallbackPath(id)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if _, err := sim.SetFault(providersim.Fault{Mode: mode}); err != nil {
		t.Fatal(err)
	}
	return config.Upstream{
		ID: id, Name: map[string]string{"en": name, "nb": name, "da": name}, Issuer: sim.Issuer(),
		ClientID: "varde", AuthMethod: store.AuthPrivateKeyJWT, ClientKeyFile: keyFile,
		MaxLevel: level.String(), ACRMap: map[string]string{level.ACR(): level.String()},
		IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
	}
}

// registerDegradedClient registers client id, with degraded as its
// degraded-mode level, for pendingRequestWith.
func registerDegradedClient(t *testing.T, n *node, id string, degraded assurance.Level) {
	t.Helper()
	secret := random(t)
	sum := sha256.Sum256([]byte(secret))
	err := n.app.Store.PutClient(context.Background(), &store.Client{
		ID: id, Name: "Demo Tax", AuthMethod: store.AuthClientSecretBasic, SecretHash: sum[:],
		RedirectURIs: []string{"https://bank.example/callback"}, RequirePAR: true, Source: "test", CreatedAt: time.Now(),
		DegradedLevel: degraded.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.secrets == nil {
		n.secrets = map[string]string{}
	}
	n.secrets[id] = secret
}
