package storetest

import (
	"encoding/json"
	"errors"
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
		DPoPBoundAccessTokens:  true,
		RefreshTokens:          true,
		IDTokenAlg:             store.IDTokenRS256,
		BackchannelLogoutURI:   "https://rp.example/varde/logout",
		IntrospectTokensOf:     []string{"rp-web", "rp-app"},
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
				IntrospectTokensOf: []string{},
				CreatedAt:          base(t),
			}},
			{"secret only", &store.Client{
				ID: "basic", AuthMethod: store.AuthClientSecretBasic, SecretHash: []byte{0, 1, 0, 0xff},
				RedirectURIs: []string{""}, IDTokenAlg: store.IDTokenES256, CreatedAt: base(t).In(time.UTC),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "AddClient", s.AddClient(ctx, tt.c, nil), nil)
				got, err := s.GetClient(ctx, tt.c.ID)
				wantErr(t, "GetClient", err, nil)
				same(t, "client", tt.c, got)
				if want := tt.c.IDTokenSigningAlg(); got.IDTokenSigningAlg() != want || (want != store.IDTokenES256 && want != store.IDTokenRS256) {
					t.Errorf("ID token alg read back = %q, want %q", got.IDTokenSigningAlg(), want)
				}
			})
		}
	})

	t.Run("create conflict", func(t *testing.T) {
		orig := fullClient(t, "taken")
		wantErr(t, "AddClient", s.AddClient(ctx, orig, nil), nil)
		dup := &store.Client{ID: "taken", Name: "impostor"}
		wantErr(t, "AddClient duplicate", s.AddClient(ctx, dup, nil), store.ErrConflict)
		got, err := s.GetClient(ctx, "taken")
		wantErr(t, "GetClient", err, nil)
		same(t, "client after failed create", orig, got)
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.GetClient(ctx, "nobody")
		wantErr(t, "GetClient unknown", err, store.ErrNotFound)
		_, err = s.DeleteClient(ctx, "nobody", base(t), nil)
		wantErr(t, "DeleteClient unknown", err, store.ErrNotFound)
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
			SectorID: c.SectorID, Claims: []string{}, Source: "config", CreatedAt: base(t),
		}
		wantErr(t, "PutClient existing", s.PutClient(ctx, repl), nil)
		got, err = s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		same(t, "replaced client", repl, got)

		// Another sector, or none (the ID as the sector), is refused:
		// only ChangeClientSector changes it.
		for _, sector := range []string{"", "other.example"} {
			moved := repl.Clone()
			moved.SectorID, moved.Name = sector, "moved"
			wantErr(t, "PutClient with the sector "+sector, s.PutClient(ctx, moved), store.ErrConflict)
			got, err = s.GetClient(ctx, c.ID)
			wantErr(t, "GetClient", err, nil)
			same(t, "client after a refused put", repl, got)
		}
		// The ID named as the sector is the sector it has without one.
		own := &store.Client{ID: "own-sector", Claims: []string{}, CreatedAt: base(t)}
		wantErr(t, "PutClient without a sector", s.PutClient(ctx, own), nil)
		own.SectorID = "own-sector"
		wantErr(t, "PutClient naming its ID as its sector", s.PutClient(ctx, own), nil)
	})

	t.Run("sub-microsecond time", func(t *testing.T) {
		c := &store.Client{ID: "nanos", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, loadZones(t).tokyo)}
		wantErr(t, "AddClient", s.AddClient(ctx, c, nil), nil)
		got, err := s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		if d := got.CreatedAt.Sub(c.CreatedAt).Abs(); d >= time.Microsecond {
			t.Errorf("CreatedAt = %v, want within 1µs of %v", got.CreatedAt, c.CreatedAt)
		}
	})

	t.Run("list and delete", func(t *testing.T) {
		want := []string{"list-a", "list-b", "list-c"}
		for _, id := range want {
			wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, id), nil), nil)
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

		_, err := s.DeleteClient(ctx, "list-b", base(t), nil)
		wantErr(t, "DeleteClient", err, nil)
		_, err = s.GetClient(ctx, "list-b")
		wantErr(t, "GetClient deleted", err, store.ErrNotFound)
		_, err = s.DeleteClient(ctx, "list-b", base(t), nil)
		wantErr(t, "DeleteClient again", err, store.ErrNotFound)
		if got, want := listed(), []string{"list-a", "list-c"}; !slices.Equal(got, want) {
			t.Errorf("ListClients after delete = %v, want %v", got, want)
		}
	})

	t.Run("add appends its audit event in the same write", func(t *testing.T) {
		now := base(t)
		before, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		ev := &store.AuditEvent{Time: now, Type: "client_added", ClientID: "arriving", Result: store.ResultSuccess,
			Details: map[string]string{"via": "cli"}}
		wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, "arriving"), ev), nil)
		if _, err := s.GetClient(ctx, "arriving"); err != nil {
			t.Fatalf("GetClient after AddClient: %v", err)
		}
		after, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		if len(after) != len(before)+1 || after[len(after)-1].Type != "client_added" || ev.Seq != after[len(after)-1].Seq {
			t.Fatalf("audit log after AddClient: %d events, want %d, the last the addition", len(after), len(before)+1)
		}
		if err := store.VerifyAuditChain(nil, after); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
		// Taken: nothing changed, nothing appended.
		again := fullClient(t, "arriving")
		again.Name = "Someone else"
		wantErr(t, "AddClient again", s.AddClient(ctx, again, &store.AuditEvent{Time: now, Type: "client_added",
			ClientID: "arriving", Result: store.ResultSuccess}), store.ErrConflict)
		if c, err := s.GetClient(ctx, "arriving"); err != nil || c.Name == again.Name {
			t.Errorf("a refused AddClient changed the client: %+v, %v", c, err)
		}
		if events, err := s.ListAudit(ctx, 0, 1000); err != nil || len(events) != len(after) {
			t.Errorf("a refused AddClient appended to the audit log: %d events, want %d (%v)", len(events), len(after), err)
		}
		wantErr(t, "AddClient without an event", s.AddClient(ctx, fullClient(t, "quiet"), nil), nil)
	})

	t.Run("declare audits each change once", func(t *testing.T) {
		now := base(t)
		var olds []*store.Client
		audit := func(old *store.Client) *store.AuditEvent {
			olds = append(olds, old)
			return &store.AuditEvent{Time: now, Type: "client_declared", ClientID: "declared", Result: store.ResultSuccess}
		}
		events := func() int {
			t.Helper()
			evs, err := s.ListAuditRange(ctx, store.AuditQuery{ClientID: "declared", Types: []string{"client_declared"}})
			wantErr(t, "ListAuditRange", err, nil)
			return len(evs)
		}
		declare := func(what string, c *store.Client, want bool) {
			t.Helper()
			changed, err := s.DeclareClient(ctx, c, audit)
			wantErr(t, "DeclareClient "+what, err, nil)
			if changed != want {
				t.Errorf("DeclareClient %s: changed %t, want %t", what, changed, want)
			}
		}
		c := fullClient(t, "declared")
		c.Source = "config"
		declare("new", c, true)
		got, err := s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		same(t, "declared client", c, got)
		if len(olds) != 1 || olds[0] != nil || events() != 1 {
			t.Fatalf("a new client declared: audit called with %v, %d events; want once with none stored, 1 event", olds, events())
		}

		// Declared again as it is, a second later (another node's start):
		// nothing is written.
		again := c.Clone()
		again.CreatedAt = now.Add(time.Second)
		declare("unchanged", again, false)
		if len(olds) != 1 || events() != 1 {
			t.Errorf("a client declared unchanged: audit called %d times, %d events; want 1, 1", len(olds), events())
		}

		// Changed: stored with the time it was first stored, audited
		// with the client it replaced.
		changed := again.Clone()
		changed.Name, changed.RedirectURIs = "Renamed", []string{"https://declared.example/new"}
		declare("changed", changed, true)
		got, err = s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		want := changed.Clone()
		want.CreatedAt = c.CreatedAt
		same(t, "changed client", want, got)
		if len(olds) != 2 || olds[1] == nil || olds[1].Name != c.Name || events() != 2 {
			t.Errorf("a client declared changed: audit given %+v, %d events; want the client before, 2 events", olds[len(olds)-1], events())
		}

		// Another sector: refused, nothing changed, nothing appended.
		moved := changed.Clone()
		moved.SectorID, moved.Name = "elsewhere.example", "Moved"
		if _, err := s.DeclareClient(ctx, moved, audit); !errors.Is(err, store.ErrConflict) {
			t.Errorf("DeclareClient with another sector: %v, want ErrConflict", err)
		}
		got, err = s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient", err, nil)
		same(t, "client after a refused declaration", want, got)
		if events() != 2 {
			t.Errorf("a refused declaration appended to the audit log: %d events, want 2", events())
		}
	})

	t.Run("delete revokes the client's grants", func(t *testing.T) {
		now := base(t)
		earlier := now.Add(-time.Hour)
		for _, id := range []string{"leaving", "staying"} {
			wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, id), nil), nil)
		}
		// Two grants of the leaving client, one already revoked, and one
		// of the staying client, each with an access and a refresh token.
		grants := map[string]string{"gl-live": "leaving", "gl-revoked": "leaving", "gs-live": "staying"}
		for id, client := range grants {
			g := fullGrant(t, id)
			g.ClientID = client
			if id == "gl-revoked" {
				g.RevokedAt = earlier
			}
			at, rt := fullToken(t, id+"-at", store.TokenAccess), fullToken(t, id+"-rt", store.TokenRefresh)
			at.GrantID, rt.GrantID, at.ClientID, rt.ClientID = id, id, client, client
			wantErr(t, "CreateGrantTokens", s.CreateGrantTokens(ctx, g, nil, at, rt), nil)
		}
		before, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		ev := &store.AuditEvent{Time: now, Type: "client_removed", ClientID: "leaving", Result: store.ResultSuccess,
			Details: map[string]string{"via": "cli"}}
		n, err := s.DeleteClient(ctx, "leaving", now.In(loadZones(t).tokyo), ev)
		wantErr(t, "DeleteClient", err, nil)
		if n != 1 {
			t.Errorf("DeleteClient revoked %d grants, want 1 (the other was revoked already)", n)
		}
		for id, want := range map[string]time.Time{"gl-live": now, "gl-revoked": earlier, "gs-live": {}} {
			g, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant", err, nil)
			if !g.RevokedAt.Equal(want) {
				t.Errorf("grant %s: RevokedAt %v, want %v", id, g.RevokedAt, want)
			}
		}
		after, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		if len(after) != len(before)+1 || after[len(after)-1].Type != "client_removed" || ev.Seq != after[len(after)-1].Seq {
			t.Fatalf("audit log after DeleteClient: %d events, want %d, the last the removal", len(after), len(before)+1)
		}
		if err := store.VerifyAuditChain(nil, after); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}

		// Unknown now: nothing revoked, nothing appended. A client added
		// again under the same ID does not bring its grants back.
		n, err = s.DeleteClient(ctx, "leaving", now, &store.AuditEvent{Time: now, Type: "client_removed", Result: store.ResultSuccess})
		wantErr(t, "DeleteClient again", err, store.ErrNotFound)
		if n != 0 {
			t.Errorf("DeleteClient of an unknown client revoked %d grants", n)
		}
		wantErr(t, "AddClient again", s.AddClient(ctx, fullClient(t, "leaving"), nil), nil)
		g, err := s.GetGrant(ctx, "gl-live")
		wantErr(t, "GetGrant", err, nil)
		if !g.RevokedAt.Equal(now) {
			t.Errorf("grant of a client added again: revoked at %v, want still %v", g.RevokedAt, now)
		}
		if events, err := s.ListAudit(ctx, 0, 1000); err != nil || len(events) != len(after) {
			t.Errorf("a refused DeleteClient appended to the audit log: %d events, want %d (%v)", len(events), len(after), err)
		}
	})

	t.Run("a sector changes only from the one stored, revoking the grants", func(t *testing.T) {
		now := base(t)
		for _, id := range []string{"moving", "still"} {
			wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, id), nil), nil)
		}
		for id, client := range map[string]string{"gm-live": "moving", "gst-live": "still"} {
			g := fullGrant(t, id)
			g.ClientID = client
			rt := fullToken(t, id+"-rt", store.TokenRefresh)
			rt.GrantID, rt.ClientID = id, client
			wantErr(t, "CreateGrantTokens", s.CreateGrantTokens(ctx, g, nil, rt), nil)
		}
		before, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		moved := fullClient(t, "moving")
		moved.SectorID, moved.Name = "", "Moved"
		event := func() *store.AuditEvent {
			return &store.AuditEvent{Time: now, Type: "client_sector_changed", ClientID: "moving", Result: store.ResultSuccess,
				Details: map[string]string{"from": "rp.example", "to": "moving"}}
		}

		// The stored sector is rp.example, not the client ID: refused.
		n, err := s.ChangeClientSector(ctx, moved, "moving", now, event())
		wantErr(t, "ChangeClientSector from another sector", err, store.ErrConflict)
		n2, err := s.ChangeClientSector(ctx, fullClient(t, "nobody"), "rp.example", now, event())
		wantErr(t, "ChangeClientSector of an unknown client", err, store.ErrNotFound)
		if n+n2 != 0 {
			t.Errorf("refused changes revoked %d grants", n+n2)
		}
		got, err := s.GetClient(ctx, "moving")
		wantErr(t, "GetClient", err, nil)
		same(t, "client after a refused change", fullClient(t, "moving"), got)
		if events, err := s.ListAudit(ctx, 0, 1000); err != nil || len(events) != len(before) {
			t.Errorf("a refused change appended to the audit log: %d events, want %d (%v)", len(events), len(before), err)
		}

		ev := event()
		n, err = s.ChangeClientSector(ctx, moved, "rp.example", now.In(loadZones(t).la), ev)
		wantErr(t, "ChangeClientSector", err, nil)
		if n != 1 {
			t.Errorf("ChangeClientSector revoked %d grants, want 1", n)
		}
		got, err = s.GetClient(ctx, "moving")
		wantErr(t, "GetClient", err, nil)
		same(t, "client after the change", moved, got)
		for id, want := range map[string]time.Time{"gm-live": now, "gst-live": {}} {
			g, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant", err, nil)
			if !g.RevokedAt.Equal(want) {
				t.Errorf("grant %s: RevokedAt %v, want %v", id, g.RevokedAt, want)
			}
		}
		after, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		if len(after) != len(before)+1 || ev.Seq != after[len(after)-1].Seq || after[len(after)-1].Type != "client_sector_changed" {
			t.Fatalf("audit log after ChangeClientSector: %d events, want %d, the last the change", len(after), len(before)+1)
		}
		if err := store.VerifyAuditChain(nil, after); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}

		// Back again, from the client ID as its sector.
		n, err = s.ChangeClientSector(ctx, fullClient(t, "moving"), "moving", now, nil)
		wantErr(t, "ChangeClientSector back", err, nil)
		if n != 0 {
			t.Errorf("ChangeClientSector back revoked %d grants, want 0 (revoked already)", n)
		}
	})

	t.Run("delete ends the client's logins in flight", func(t *testing.T) {
		now := base(t)
		for _, id := range []string{"ending", "other"} {
			wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, id), nil), nil)
		}
		request := func(id, client string) {
			r := fullAuthRequest(t, id)
			r.ClientID = client
			wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		}
		code := func(c, client string) {
			a := fullAuthCode(t, c)
			a.ClientID = client
			wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, a), nil)
		}
		request("r-pushed", "ending")
		request("r-started", "ending")
		wantErr(t, "UseAuthRequest", s.UseAuthRequest(ctx, "r-started", "browser", now.Add(10*time.Minute), now), nil)
		request("r-staying", "other")
		code("c-going", "ending")
		code("c-redeemed", "ending")
		_, err := s.RedeemAuthCode(ctx, hash("c-redeemed"), now)
		wantErr(t, "RedeemAuthCode", err, nil)
		code("c-staying", "other")

		_, err = s.DeleteClient(ctx, "ending", now, nil)
		wantErr(t, "DeleteClient", err, nil)
		// Added again at once under the same ID, the client is a new one:
		// nothing of the old one's logins is its.
		wantErr(t, "AddClient again", s.AddClient(ctx, fullClient(t, "ending"), nil), nil)
		for _, id := range []string{"r-pushed", "r-started"} {
			_, err := s.GetAuthRequest(ctx, id, now)
			wantErr(t, "GetAuthRequest "+id, err, store.ErrNotFound)
		}
		wantErr(t, "UseAuthRequest r-pushed", s.UseAuthRequest(ctx, "r-pushed", "browser", now.Add(10*time.Minute), now), store.ErrNotFound)
		next := fullAuthCode(t, "c-next")
		next.ClientID = "ending"
		wantErr(t, "CreateAuthCodeForRequest r-started", s.CreateAuthCodeForRequest(ctx, next, "r-started"), store.ErrNotFound)
		_, err = s.RedeemAuthCode(ctx, hash("c-going"), now)
		wantErr(t, "RedeemAuthCode c-going", err, store.ErrNotFound)
		// A redeemed code is kept until it expires, so that a replay is
		// still told apart (and revokes what the code gave).
		_, err = s.RedeemAuthCode(ctx, hash("c-redeemed"), now)
		wantErr(t, "RedeemAuthCode c-redeemed again", err, store.ErrConflict)

		// Another client's are left alone.
		_, err = s.GetAuthRequest(ctx, "r-staying", now)
		wantErr(t, "GetAuthRequest r-staying", err, nil)
		_, err = s.RedeemAuthCode(ctx, hash("c-staying"), now)
		wantErr(t, "RedeemAuthCode c-staying", err, nil)
	})

	t.Run("delete abandons the client's deliveries", func(t *testing.T) {
		now := base(t)
		for _, id := range []string{"gone", "kept"} {
			wantErr(t, "AddClient", s.AddClient(ctx, fullClient(t, id), nil), nil)
		}
		delivery := func(id, client string) *store.WebhookDelivery {
			return &store.WebhookDelivery{ID: id, ClientID: client, URL: "https://" + client + ".example/logout",
				Event: "backchannel_logout", Payload: []byte("logout_token=" + id), ContentType: "application/x-www-form-urlencoded",
				CreatedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Minute)}
		}
		wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, []*store.WebhookDelivery{
			delivery("dg-leased", "gone"), delivery("dg-delivered", "gone"),
		}), nil)
		// One is in flight at a node, another delivered; then two more wait.
		leased, err := s.ClaimWebhooks(ctx, "node-a", now, now.Add(30*time.Second), 2, 0)
		wantErr(t, "ClaimWebhooks", err, nil)
		if len(leased) != 2 || leased[0].ID != "dg-delivered" {
			t.Fatalf("claimed %d deliveries, want 2, dg-delivered first", len(leased))
		}
		done, flight := leased[0], leased[1]
		done.Attempts, done.DeliveredAt = 1, now
		wantErr(t, "FinishWebhookAttempt", s.FinishWebhookAttempt(ctx, "node-a", done), nil)
		wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, []*store.WebhookDelivery{
			delivery("dg-waiting", "gone"), delivery("dk-waiting", "kept"),
		}), nil)

		_, err = s.DeleteClient(ctx, "gone", now.In(loadZones(t).tokyo), nil)
		wantErr(t, "DeleteClient", err, nil)

		got, err := s.ListWebhookDeliveries(ctx, "gone", 0)
		wantErr(t, "ListWebhookDeliveries", err, nil)
		if len(got) != 3 {
			t.Errorf("the removed client has %d deliveries, want 3", len(got))
		}
		for _, d := range got {
			abandoned := d.ID != done.ID
			if abandoned != d.AbandonedAt.Equal(now) || abandoned != (d.LastError == store.DeliveryClientRemoved) ||
				abandoned == d.DeliveredAt.Equal(now) || len(d.Payload) != 0 {
				t.Errorf("%s after its client was removed: delivered %v, abandoned %v, error %q, payload %q (want none kept)",
					d.ID, d.DeliveredAt, d.AbandonedAt, d.LastError, d.Payload)
			}
		}
		// The attempt in flight cannot bring its delivery back, and only
		// the other client's is still due, even once every lease is out.
		flight.Attempts, flight.NextAttemptAt = 1, now.Add(5*time.Second)
		wantErr(t, "FinishWebhookAttempt in flight", s.FinishWebhookAttempt(ctx, "node-a", flight), store.ErrConflict)
		later := now.Add(time.Hour)
		due, err := s.ClaimWebhooks(ctx, "node-b", later, later.Add(30*time.Second), 10, 0)
		wantErr(t, "ClaimWebhooks", err, nil)
		var ids []string
		for _, d := range due {
			ids = append(ids, d.ClientID+":"+d.ID)
		}
		if !slices.Equal(ids, []string{"kept:dk-waiting"}) {
			t.Errorf("due after the removal: %v, want only the other client's", ids)
		}
	})

	t.Run("concurrent create", func(t *testing.T) {
		// Each addition with its event: the one that wins is audited,
		// once, and those refused append nothing.
		errs := race(contenders, func(i int) error {
			c := fullClient(t, "contested")
			c.Name = strings.Repeat("x", i)
			return s.AddClient(ctx, c, &store.AuditEvent{Time: base(t), Type: "client_added", ClientID: "contested",
				Result: store.ResultSuccess, Details: map[string]string{"name": c.Name}})
		})
		w := oneWinner(t, errs, store.ErrConflict)
		got, err := s.GetClient(ctx, "contested")
		wantErr(t, "GetClient", err, nil)
		if w >= 0 && got.Name != strings.Repeat("x", w) {
			t.Errorf("stored client is not the winner's")
		}
		evs, err := s.ListAuditRange(ctx, store.AuditQuery{ClientID: "contested", Types: []string{"client_added"}})
		wantErr(t, "ListAuditRange", err, nil)
		if len(evs) != 1 || w >= 0 && evs[0].Details["name"] != got.Name {
			t.Errorf("%d additions audited, want the winner's alone", len(evs))
		}
	})
}
