package passkey_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/varde-eid/varde/internal/passkey"
)

// TestCeremonyTypeChecked: WebAuthn L3 §7.2 step 11 — an assertion whose
// clientDataJSON.type is not "webauthn.get" is refused, even when the
// authenticator signed it properly (a registration's client data cannot
// be replayed as a login).
func TestCeremonyTypeChecked(t *testing.T) {
	e := newEnv(t)
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)
	// Control: re-signed client data of the right type verifies, so the
	// refusal below is about the type and nothing else.
	d.cred.Counter++
	id, body := e.loginBody(t, e.rp, d)
	if _, err := e.svc.FinishLogin(context.Background(), id, resign(t, d, body, "webauthn.get")); err != nil {
		t.Fatalf("control login: %v", err)
	}
	d.cred.Counter++
	id, body = e.loginBody(t, e.rp, d)
	forged := resign(t, d, body, "webauthn.create")
	if _, err := e.svc.FinishLogin(context.Background(), id, forged); !errors.Is(err, passkey.ErrBadInput) {
		t.Fatalf("FinishLogin with type webauthn.create = %v, want ErrBadInput", err)
	}
}

// resign rewrites the assertion's clientDataJSON.type and signs it as
// the authenticator would (§6.3.3): over authenticatorData ||
// SHA-256(clientDataJSON).
func resign(t *testing.T, d *device, body []byte, typ string) []byte {
	t.Helper()
	var cred map[string]any
	if err := json.Unmarshal(body, &cred); err != nil {
		t.Fatal(err)
	}
	resp := cred["response"].(map[string]any)
	b64 := base64.RawURLEncoding
	cdj, err := b64.DecodeString(resp["clientDataJSON"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var cd map[string]any
	if err := json.Unmarshal(cdj, &cd); err != nil {
		t.Fatal(err)
	}
	cd["type"] = typ
	cdj, _ = json.Marshal(cd)
	authData, err := b64.DecodeString(resp["authenticatorData"].(string))
	if err != nil {
		t.Fatal(err)
	}
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(authData, cdHash[:]...))
	sig, err := d.cred.Key.Sign(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	resp["clientDataJSON"] = b64.EncodeToString(cdj)
	resp["signature"] = b64.EncodeToString(sig)
	out, _ := json.Marshal(cred)
	return out
}
