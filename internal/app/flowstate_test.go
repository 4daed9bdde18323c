package app

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestRegisteredFlowCodes: a code of a client removed from the database
// file and added again with the same ID, as `varde clients` does beside
// the node, is not found on read as on use, used or not, so the token
// endpoint refuses it as unknown before anything else.
func TestRegisteredFlowCodes(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Now().UTC().Truncate(time.Second)
	c := &store.Client{ID: "bank", Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"},
		AuthMethod: store.AuthNone, CreatedAt: t0.Add(-time.Hour)}
	if err := db.AddClient(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	flow := &registeredFlow{Store: flowmem.Over(db, flowmem.New(flowmem.Options{})), clients: db}
	code := func(h string) []byte {
		t.Helper()
		ac := &store.AuthCode{Hash: []byte(h), GrantID: "g-" + h, ClientID: c.ID, RedirectURI: c.RedirectURIs[0],
			SessionID: "s", PersonID: "p", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		if err := flow.CreateAuthCode(ctx, ac); err != nil {
			t.Fatal(err)
		}
		return ac.Hash
	}
	unused, used := code("unused"), code("used")
	if _, err := flow.RedeemAuthCode(ctx, used, t0); err != nil {
		t.Fatalf("redeem before the removal: %v", err)
	}
	if _, err := flow.GetAuthCode(ctx, unused); err != nil {
		t.Fatalf("read before the removal: %v", err)
	}

	if _, err := db.DeleteClient(ctx, c.ID, t0, nil); err != nil {
		t.Fatal(err)
	}
	c.CreatedAt = t0.Add(time.Second)
	if err := db.AddClient(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hash []byte
	}{{"unused", unused}, {"used", used}} {
		if ac, err := flow.GetAuthCode(ctx, tc.hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAuthCode of an %s code of the client added again = %v, %v; want ErrNotFound", tc.name, ac, err)
		}
		if ac, err := flow.RedeemAuthCode(ctx, tc.hash, t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RedeemAuthCode of an %s code of the client added again = %v, %v; want ErrNotFound", tc.name, ac, err)
		}
	}
}
