package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// TestCheckSectorsAtStart: a client in the configuration file meets the
// clients added at run time only when the node starts, which refuses a
// pair that would share subject identifiers without naming the sector
// on both sides, or where one may introspect the other's tokens across
// sectors, whichever side names the other.
func TestCheckSectorsAtStart(t *testing.T) {
	ctx := context.Background()
	st, err := app.OpenStore(ctx, config.Store{DSN: filepath.Join(t.TempDir(), "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []*store.Client{
		{ID: "web", SectorID: "bank.example", AuthMethod: store.AuthNone, RedirectURIs: []string{"https://bank.example/cb"}},
		{ID: "api", AuthMethod: store.AuthClientSecretBasic, IntrospectTokensOf: []string{"app"}},
	} {
		if err := st.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    config.Client
		want string // in the error; "" for none
	}{
		{"shares a sector without naming it", config.Client{ID: "x", SectorID: "api"}, "same subject identifiers"},
		{"introspects a client of another sector", config.Client{ID: "rs", IntrospectTokensOf: []string{"web"}}, "different pairwise sectors"},
		{"introspected from another sector", config.Client{ID: "app", SectorID: "bank.example"}, "different pairwise sectors"},
		{"introspects within its sector", config.Client{ID: "rs", SectorID: "bank.example", IntrospectTokensOf: []string{"web"}}, ""},
		{"unrelated", config.Client{ID: "tax"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := app.CheckSectors(ctx, st, []config.Client{tc.c})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
