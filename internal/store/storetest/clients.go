package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// fullClient sets every field, with times in two zones.
func fullClient(t *testing.T, id string) *store.Client {
	z := loadZones(t)
	return &store.Client{
		ID:                     id,
		Name:                   "Bank of Nordland «æøå»",
		AuthMethod:             store.AuthPrivateKeyJWT,
		SecretHash:             hash("secret-" + id),
		JWKS:                   json.RawMessage(`{"keys": [{"kty": "EC", "crv": "P-256", "x": "f83O", "y": "x_FE"}]}`),
		JWKSURI:                "https://rp.example/jwks",
		RedirectURIs:           []string{"https://rp.example/cb", "https://rp.example/cb2"},
		PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
		RequirePAR:             true,
		AllowedLevels:          []string{"substantial", "high"},
		SectorID:               "rp.example",
		Claims:                 []string{"name", "birthdate", "national_id"},
		Providers:              []string{"passkey", "bankid"},
		DegradedLevel:          "substantial",
		StatusWebhook:          "https://rp.example/varde/status",
		StatusComponents:       []string{"bankid", "store"},
		LegacyEndpointAudience: true,
		Source:                 "cli",
		CreatedAt:              time.Date(2025, 12, 31, 23, 59, 58, 999999000, z.la),
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := t.Context()

	t.Run("empty list", func(t *testing.T) {
		got, err := s.ListClients(ctx)
		wantErr(t, "ListClients", err, nil)
		if len(got) != 0 {
			t.Errorf("ListClients on an empty store = %d clients", len(got))
		}
	})

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			c    *store.Client
		}{
			{"every field", fullClient(t, "full")},
			{"zero values", &store.Client{ID: "zero"}},
			{"empty slices", &store.Client{
				ID: "empty", SecretHash: []byte{}, RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
				AllowedLevels: []string{}, Claims: []string{}, Providers: []string{}, StatusComponents: []string{},
				CreatedAt: base(t),
			}},
			{"secret only", &store.Client{
				ID: "basic", AuthMethod: store.AuthClientSecretBasic, SecretHash: []byte{0, 1, 0, 0xff},
				RedirectURIs: []string{""}, CreatedAt: base(t).In(time.UTC),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreateClient", s.CreateClient(ctx, tt.c), nil)
				got, err := s.GetClient(ctx, tt.c.ID)
				wantErr(t, "GetClient", err, nil)
				same(t, "client", tt.c, got)
			})
		}
	})

	t.Run("create conflict", func(t *testing.T) {
		orig := fullClient(t, "taken")
		wantErr(t, "CreateClient", s.CreateClient(ctx, orig), nil)
		dup := &store.Client{ID: "taken", Name: "impostor"}
		wantErr(t, "CreateClient duplicate", s.CreateClient(ctx, dup), store.ErrConflict)
		got, err := s.GetClient(ctx, "taken")
		wantErr(t, "GetClient", err, nil)
		same(t, "client after failed create", orig, got)
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.GetClient(ctx, "nobody")
		wantErr(t, "GetClient unknown", err, store.ErrNotFound)
		wantErr(t, "DeleteClient unknown", s.DeleteClient(ctx, "nobody"), store.ErrNotFound)
	})

	t.Run("put creates and replaces", func(t *testing.T) {
		c := fullClient(t, "config-rp")
		c.Source = "config"
		wantErr(t, "PutClient new", s.PutClient(ctx, c), nil)
		got, err := s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		same(t, "put client", c, got)

		repl := &store.Client{
			ID: c.ID, Name: "renamed", AuthMethod: store.AuthNone, RedirectURIs: []string{"https://new.example/cb"},
			Claims: []string{}, Source: "config", CreatedAt: base(t),
		}
		wantErr(t, "PutClient existing", s.PutClient(ctx, repl), nil)
		got, err = s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		same(t, "replaced client", repl, got)
	})

	t.Run("sub-microsecond time", func(t *testing.T) {
		c := &store.Client{ID: "nanos", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, loadZones(t).tokyo)}
		wantErr(t, "CreateClient", s.CreateClient(ctx, c), nil)
		got, err := s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		if d := got.CreatedAt.Sub(c.CreatedAt).Abs(); d >= time.Microsecond {
			t.Errorf("CreatedAt = %v, want within 1µs of %v", got.CreatedAt, c.CreatedAt)
		}
	})

	t.Run("list and delete", func(t *testing.T) {
		want := []string{"list-a", "list-b", "list-c"}
		for _, id := range want {
			wantErr(t, "CreateClient", s.CreateClient(ctx, fullClient(t, id)), nil)
		}
		listed := func() []string {
			all, err := s.ListClients(ctx)
			wantErr(t, "ListClients", err, nil)
			var ids []string
			for _, c := range all {
				if strings.HasPrefix(c.ID, "list-") {
					ids = append(ids, c.ID)
					same(t, "listed client", fullClient(t, c.ID), c)
				}
			}
			slices.Sort(ids)
			return ids
		}
		if got := listed(); !slices.Equal(got, want) {
			t.Fatalf("ListClients = %v, want %v", got, want)
		}

		wantErr(t, "DeleteClient", s.DeleteClient(ctx, "list-b"), nil)
		_, err := s.GetClient(ctx, "list-b")
		wantErr(t, "GetClient deleted", err, store.ErrNotFound)
		wantErr(t, "DeleteClient again", s.DeleteClient(ctx, "list-b"), store.ErrNotFound)
		if got, want := listed(), []string{"list-a", "list-c"}; !slices.Equal(got, want) {
			t.Errorf("ListClients after delete = %v, want %v", got, want)
		}
	})

	t.Run("concurrent create", func(t *testing.T) {
		errs := race(contenders, func(i int) error {
			c := fullClient(t, "contested")
			c.Name = strings.Repeat("x", i)
			return s.CreateClient(ctx, c)
		})
		w := oneWinner(t, errs, store.ErrConflict)
		got, err := s.GetClient(ctx, "contested")
		wantErr(t, "GetClient", err, nil)
		if w >= 0 && got.Name != strings.Repeat("x", w) {
			t.Errorf("stored client is not the winner's")
		}
	})
}
