package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func fullAuthCode(t *testing.T, code string) *store.AuthCode {
	z := loadZones(t)
	now := base(t)
	return &store.AuthCode{
		Hash:                hash(code),
		GrantID:             "g-" + code,
		ClientID:            "bank",
		RedirectURI:         "https://bank.example/cb",
		Scope:               []string{"openid", "profile"},
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		SessionID:           "s1",
		PersonID:            "p1",
		Provider:            "passkey",
		Level:               "substantial",
		AMR:                 []string{"hwk"},
		AuthTime:            now.Add(-5 * time.Second).In(z.la),
		Degraded:            true,
		DPoPJKT:             "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		CreatedAt:           now,
		ExpiresAt:           now.Add(time.Minute).In(z.tokyo),
	}
}

func testAuthCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)

	t.Run("redeem once", func(t *testing.T) {
		tests := []struct {
			name string
			c    *store.AuthCode
		}{
			{"every field", fullAuthCode(t, "code-full")},
			{"nil slices", &store.AuthCode{Hash: hash("code-nil"), ExpiresAt: now.Add(time.Minute)}},
			{"empty slices", &store.AuthCode{Hash: hash("code-empty"), Scope: []string{}, AMR: []string{}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, tt.c), nil)
				// Reading a code spends nothing.
				for range 2 {
					got, err := s.GetAuthCode(ctx, tt.c.Hash)
					wantErr(t, "GetAuthCode", err, nil)
					same(t, "unused code", tt.c, got)
				}
				first := now.Add(10 * time.Second).In(loadZones(t).oslo)
				got, err := s.RedeemAuthCode(ctx, tt.c.Hash, first)
				wantErr(t, "RedeemAuthCode", err, nil)
				want := *tt.c
				want.UsedAt = first
				same(t, "redeemed code", &want, got)
				got, err = s.GetAuthCode(ctx, tt.c.Hash)
				wantErr(t, "GetAuthCode after redeem", err, nil)
				same(t, "read redeemed code", &want, got)

				got, err = s.RedeemAuthCode(ctx, tt.c.Hash, first.Add(time.Second))
				wantErr(t, "RedeemAuthCode again", err, store.ErrConflict)
				if got == nil {
					t.Fatal("RedeemAuthCode again returned no code with ErrConflict")
				}
				same(t, "code returned on reuse", &want, got)
			})
		}
	})

	t.Run("expiry is the caller's check", func(t *testing.T) {
		c := fullAuthCode(t, "code-late")
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
		got, err := s.RedeemAuthCode(ctx, c.Hash, c.ExpiresAt.Add(time.Hour))
		wantErr(t, "RedeemAuthCode after expiry", err, nil)
		same(t, "ExpiresAt", c.ExpiresAt, got.ExpiresAt)
	})

	t.Run("errors", func(t *testing.T) {
		c := fullAuthCode(t, "code-dup")
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
		wantErr(t, "CreateAuthCode duplicate", s.CreateAuthCode(ctx, &store.AuthCode{Hash: c.Hash}), store.ErrConflict)
		got, err := s.RedeemAuthCode(ctx, c.Hash, now)
		wantErr(t, "RedeemAuthCode", err, nil)
		c.UsedAt = now
		same(t, "code after failed create", c, got)

		got, err = s.GetAuthCode(ctx, hash("never"))
		wantErr(t, "GetAuthCode unknown", err, store.ErrNotFound)
		if got != nil {
			t.Errorf("GetAuthCode unknown returned a code")
		}
		got, err = s.RedeemAuthCode(ctx, hash("never"), now)
		wantErr(t, "RedeemAuthCode unknown", err, store.ErrNotFound)
		if got != nil {
			t.Errorf("RedeemAuthCode unknown returned a code")
		}
	})

	t.Run("concurrent redeem", func(t *testing.T) {
		c := fullAuthCode(t, "code-race")
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
		codes := make([]*store.AuthCode, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			codes[i], err = s.RedeemAuthCode(ctx, c.Hash, now.Add(time.Duration(i+1)*time.Millisecond))
			return err
		})
		w := oneWinner(t, errs, store.ErrConflict)
		if w < 0 {
			return
		}
		// Every loser sees the winner's redemption.
		for i, got := range codes {
			if got == nil {
				t.Errorf("goroutine %d got no code", i)
				continue
			}
			same(t, "UsedAt", codes[w].UsedAt, got.UsedAt)
			same(t, "GrantID", c.GrantID, got.GrantID)
		}
	})

	t.Run("create for request", func(t *testing.T) {
		req := &store.AuthRequest{ID: "req-code", ClientID: "bank", ExpiresAt: now.Add(time.Minute)}
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, req), nil)
		c := fullAuthCode(t, "code-for-req")
		wantErr(t, "CreateAuthCodeForRequest", s.CreateAuthCodeForRequest(ctx, c, req.ID), nil)
		_, err := s.GetAuthRequest(ctx, req.ID, now)
		wantErr(t, "GetAuthRequest after its code", err, store.ErrNotFound)
		got, err := s.RedeemAuthCode(ctx, c.Hash, now)
		wantErr(t, "RedeemAuthCode", err, nil)
		want := *c
		want.UsedAt = now
		same(t, "code created for a request", &want, got)

		// The request is used up: a second code is not stored.
		again := fullAuthCode(t, "code-for-req-2")
		wantErr(t, "CreateAuthCodeForRequest again", s.CreateAuthCodeForRequest(ctx, again, req.ID), store.ErrNotFound)
		_, err = s.RedeemAuthCode(ctx, again.Hash, now)
		wantErr(t, "RedeemAuthCode of the refused code", err, store.ErrNotFound)

		// A taken hash keeps the request.
		kept := &store.AuthRequest{ID: "req-kept", ClientID: "bank", ExpiresAt: now.Add(time.Minute)}
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, kept), nil)
		wantErr(t, "CreateAuthCodeForRequest with a taken hash", s.CreateAuthCodeForRequest(ctx, fullAuthCode(t, "code-for-req"), kept.ID), store.ErrConflict)
		_, err = s.GetAuthRequest(ctx, kept.ID, now)
		wantErr(t, "GetAuthRequest after a refused code", err, nil)
	})

	t.Run("concurrent create for request", func(t *testing.T) {
		req := &store.AuthRequest{ID: "req-race", ClientID: "bank", ExpiresAt: now.Add(time.Minute)}
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, req), nil)
		errs := race(contenders, func(i int) error {
			return s.CreateAuthCodeForRequest(ctx, fullAuthCode(t, id("code-race-req", i)), req.ID)
		})
		w := oneWinner(t, errs, store.ErrNotFound)
		for i := range contenders {
			_, err := s.RedeemAuthCode(ctx, hash(id("code-race-req", i)), now)
			if i == w {
				wantErr(t, "RedeemAuthCode of the winner's code", err, nil)
			} else {
				wantErr(t, "RedeemAuthCode of a loser's code", err, store.ErrNotFound)
			}
		}
	})
}

func fullGrant(t *testing.T, id string) *store.Grant {
	z := loadZones(t)
	now := base(t)
	return &store.Grant{
		ID:        id,
		ClientID:  "bank",
		PersonID:  "p1",
		SessionID: "s1",
		Scope:     []string{"openid", "offline_access"},
		Provider:  "passkey",
		Level:     "high",
		AMR:       []string{"hwk", "pin"},
		AuthTime:  now.In(z.la),
		Degraded:  true,
		CreatedAt: now.Add(time.Second).In(z.tokyo),
	}
}

func testGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)

	t.Run("round trip", func(t *testing.T) {
		for _, g := range []*store.Grant{
			fullGrant(t, "g-full"),
			{ID: "g-nil"},
			{ID: "g-empty", Scope: []string{}, AMR: []string{}, RevokedAt: now},
		} {
			wantErr(t, "CreateGrant", s.CreateGrant(ctx, g), nil)
			got, err := s.GetGrant(ctx, g.ID)
			wantErr(t, "GetGrant", err, nil)
			same(t, "grant "+g.ID, g, got)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		g := fullGrant(t, "g-rev")
		wantErr(t, "CreateGrant", s.CreateGrant(ctx, g), nil)
		first := now.Add(time.Minute).In(loadZones(t).la)
		wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, g.ID, first), nil)
		wantErr(t, "RevokeGrant again", s.RevokeGrant(ctx, g.ID, first.Add(time.Hour)), nil)
		got, err := s.GetGrant(ctx, g.ID)
		wantErr(t, "GetGrant", err, nil)
		g.RevokedAt = first
		same(t, "revoked grant (first revocation kept)", g, got)
	})

	t.Run("errors", func(t *testing.T) {
		g := fullGrant(t, "g-dup")
		wantErr(t, "CreateGrant", s.CreateGrant(ctx, g), nil)
		wantErr(t, "CreateGrant duplicate", s.CreateGrant(ctx, &store.Grant{ID: g.ID}), store.ErrConflict)
		got, err := s.GetGrant(ctx, g.ID)
		wantErr(t, "GetGrant", err, nil)
		same(t, "grant after failed create", g, got)
		_, err = s.GetGrant(ctx, "never")
		wantErr(t, "GetGrant unknown", err, store.ErrNotFound)
		wantErr(t, "RevokeGrant unknown", s.RevokeGrant(ctx, "never", now), store.ErrNotFound)
	})

	t.Run("create with tokens", func(t *testing.T) {
		g := fullGrant(t, "g-tok")
		at, rt := fullToken(t, "gt-at", store.TokenAccess), fullToken(t, "gt-rt", store.TokenRefresh)
		at.GrantID, rt.GrantID = g.ID, g.ID
		wantErr(t, "CreateGrantTokens", s.CreateGrantTokens(ctx, g, nil, at, rt), nil)
		got, err := s.GetGrant(ctx, g.ID)
		wantErr(t, "GetGrant", err, nil)
		same(t, "grant created with tokens", g, got)
		for _, tok := range []*store.Token{at, rt} {
			got, err := s.GetToken(ctx, tok.Hash)
			wantErr(t, "GetToken", err, nil)
			same(t, "token created with its grant", tok, got)
		}
		alone := fullGrant(t, "g-tok-alone")
		wantErr(t, "CreateGrantTokens without tokens", s.CreateGrantTokens(ctx, alone, nil), nil)
		got, err = s.GetGrant(ctx, alone.ID)
		wantErr(t, "GetGrant", err, nil)
		same(t, "grant created without tokens", alone, got)
	})

	t.Run("create with tokens is atomic", func(t *testing.T) {
		taken := fullGrant(t, "g-taken")
		wantErr(t, "CreateGrant", s.CreateGrant(ctx, taken), nil)
		wantErr(t, "CreateToken", s.CreateToken(ctx, fullToken(t, "tok-taken", store.TokenAccess)), nil)
		tests := []struct {
			name   string
			g      *store.Grant
			tokens []*store.Token
		}{
			// A concurrent replay of the code created the grant (revoked)
			// first: no token may be stored.
			{"grant ID taken", &store.Grant{ID: taken.ID}, []*store.Token{
				fullToken(t, "tok-a1", store.TokenAccess), fullToken(t, "tok-a2", store.TokenRefresh)}},
			{"token hash taken", &store.Grant{ID: "g-new-1"}, []*store.Token{
				fullToken(t, "tok-b1", store.TokenAccess), fullToken(t, "tok-taken", store.TokenRefresh)}},
			{"two tokens with one hash", &store.Grant{ID: "g-new-2"}, []*store.Token{
				fullToken(t, "tok-c1", store.TokenAccess), fullToken(t, "tok-c1", store.TokenRefresh)}},
		}
		for _, tt := range tests {
			wantErr(t, "CreateGrantTokens "+tt.name, s.CreateGrantTokens(ctx, tt.g, nil, tt.tokens...), store.ErrConflict)
			if tt.g.ID != taken.ID {
				_, err := s.GetGrant(ctx, tt.g.ID)
				wantErr(t, "GetGrant after "+tt.name, err, store.ErrNotFound)
			}
			for _, tok := range tt.tokens[:1] {
				_, err := s.GetToken(ctx, tok.Hash)
				wantErr(t, "GetToken after "+tt.name, err, store.ErrNotFound)
			}
		}
		got, err := s.GetGrant(ctx, taken.ID)
		wantErr(t, "GetGrant", err, nil)
		same(t, "grant after a failed create with tokens", taken, got)
	})

	t.Run("create with tokens and their audit event", func(t *testing.T) {
		// Appended before, as AppendAudit would: the audited write links
		// to it.
		first := &store.AuditEvent{Time: base(t), Type: "consent", ClientID: "bank", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, first), nil)
		g := fullGrant(t, "g-audited")
		at, rt := fullToken(t, "ga-at", store.TokenAccess), fullToken(t, "ga-rt", store.TokenRefresh)
		at.GrantID, rt.GrantID = g.ID, g.ID
		ev := &store.AuditEvent{Time: base(t).Add(time.Second), Type: "token", PersonID: "p1", ClientID: "bank",
			Result: store.ResultSuccess, Details: map[string]string{"grant": g.ID}}
		want := *ev
		wantErr(t, "CreateGrantTokens with an event", s.CreateGrantTokens(ctx, g, ev, at, rt), nil)
		if ev.Seq != first.Seq+1 {
			t.Errorf("event Seq = %d, want %d", ev.Seq, first.Seq+1)
		}
		want.Seq, want.PrevHash, want.Hash = ev.Seq, ev.PrevHash, ev.Hash
		events, err := s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		same(t, "audit log after an audited write", []*store.AuditEvent{first, &want}, events)
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
		for _, tok := range []*store.Token{at, rt} {
			_, err := s.GetToken(ctx, tok.Hash)
			wantErr(t, "GetToken", err, nil)
		}

		// A conflict stores nothing and appends nothing; the log goes on
		// from the last event.
		conflict := &store.AuditEvent{Time: base(t), Type: "token", ClientID: "bank", Result: store.ResultSuccess}
		wantErr(t, "CreateGrantTokens with an event, grant ID taken",
			s.CreateGrantTokens(ctx, &store.Grant{ID: g.ID}, conflict, fullToken(t, "ga-new", store.TokenAccess)), store.ErrConflict)
		_, err = s.GetToken(ctx, hash("ga-new"))
		wantErr(t, "GetToken after a conflict", err, store.ErrNotFound)
		last := &store.AuditEvent{Time: base(t), Type: "logout", ClientID: "bank", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, last), nil)
		events, err = s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		if len(events) != 3 || events[2].Type != "logout" || events[2].Seq != want.Seq+1 {
			t.Errorf("after a refused audited write the log holds %d events, last %+v; want 3, the last a logout at seq %d", len(events), events[len(events)-1], want.Seq+1)
		}
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
	})
	t.Run("create with tokens for a code", func(t *testing.T) {
		c := fullAuthCode(t, "code-grant")
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
		g := fullGrant(t, c.GrantID)
		at, rt := fullToken(t, "cg-at", store.TokenAccess), fullToken(t, "cg-rt", store.TokenRefresh)
		at.GrantID, rt.GrantID = g.ID, g.ID
		ev := &store.AuditEvent{Time: base(t), Type: "token", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{"grant": g.ID}}
		used := now.Add(10 * time.Second).In(loadZones(t).oslo)
		got, err := s.CreateGrantTokensForCode(ctx, c.Hash, used, g, ev, at, rt)
		wantErr(t, "CreateGrantTokensForCode", err, nil)
		want := *c
		want.UsedAt = used
		same(t, "code returned", &want, got)
		got, err = s.GetAuthCode(ctx, c.Hash)
		wantErr(t, "GetAuthCode", err, nil)
		same(t, "code after its grant", &want, got)
		gotG, err := s.GetGrant(ctx, g.ID)
		wantErr(t, "GetGrant", err, nil)
		same(t, "grant created for a code", g, gotG)
		for _, tok := range []*store.Token{at, rt} {
			got, err := s.GetToken(ctx, tok.Hash)
			wantErr(t, "GetToken", err, nil)
			same(t, "token created for a code", tok, got)
		}
		if ev.Seq == 0 {
			t.Error("the event was not appended")
		}

		// A used code changes nothing and is returned for revocation.
		again := fullGrant(t, "g-code-grant-again")
		at2 := fullToken(t, "cg-at-2", store.TokenAccess)
		got, err = s.CreateGrantTokensForCode(ctx, c.Hash, used.Add(time.Second), again, nil, at2)
		wantErr(t, "CreateGrantTokensForCode with a used code", err, store.ErrUsed)
		if errors.Is(err, store.ErrConflict) {
			t.Errorf("a used code is not a taken hash: %v", err)
		}
		same(t, "code returned on reuse", &want, got)
		_, err = s.GetGrant(ctx, again.ID)
		wantErr(t, "GetGrant after a used code", err, store.ErrNotFound)
		_, err = s.GetToken(ctx, at2.Hash)
		wantErr(t, "GetToken after a used code", err, store.ErrNotFound)

		got, err = s.CreateGrantTokensForCode(ctx, hash("never"), used, fullGrant(t, "g-never"), nil)
		wantErr(t, "CreateGrantTokensForCode with an unknown code", err, store.ErrNotFound)
		if got != nil {
			t.Error("an unknown code returned a code")
		}
		_, err = s.GetGrant(ctx, "g-never")
		wantErr(t, "GetGrant after an unknown code", err, store.ErrNotFound)
	})

	t.Run("create with tokens for a code is atomic", func(t *testing.T) {
		wantErr(t, "CreateToken", s.CreateToken(ctx, fullToken(t, "cg-taken", store.TokenRefresh)), nil)
		wantErr(t, "CreateGrant", s.CreateGrant(ctx, fullGrant(t, "g-cg-taken")), nil)
		tests := []struct {
			name   string
			g      *store.Grant
			tokens []*store.Token
		}{
			{"token hash taken", fullGrant(t, "g-cg-1"), []*store.Token{
				fullToken(t, "cg-b1", store.TokenAccess), fullToken(t, "cg-taken", store.TokenRefresh)}},
			{"grant ID taken", fullGrant(t, "g-cg-taken"), []*store.Token{fullToken(t, "cg-c1", store.TokenAccess)}},
		}
		for i, tt := range tests {
			c := fullAuthCode(t, id("code-cg-atomic", i))
			wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
			got, err := s.CreateGrantTokensForCode(ctx, c.Hash, now, tt.g, nil, tt.tokens...)
			wantErr(t, "CreateGrantTokensForCode "+tt.name, err, store.ErrConflict)
			if errors.Is(err, store.ErrUsed) || got != nil {
				t.Errorf("%s: a taken hash reads as a used code: %v", tt.name, err)
			}
			got, err = s.GetAuthCode(ctx, c.Hash)
			wantErr(t, "GetAuthCode after "+tt.name, err, nil)
			if !got.UsedAt.IsZero() {
				t.Errorf("%s: code spent, UsedAt %v", tt.name, got.UsedAt)
			}
			_, err = s.GetToken(ctx, tt.tokens[0].Hash)
			wantErr(t, "GetToken after "+tt.name, err, store.ErrNotFound)
			// The code is left for a retry.
			g := fullGrant(t, id("g-cg-retry", i))
			_, err = s.CreateGrantTokensForCode(ctx, c.Hash, now, g, nil, fullToken(t, id("cg-retry", i), store.TokenAccess))
			wantErr(t, "CreateGrantTokensForCode retry after "+tt.name, err, nil)
		}
		_, err := s.GetGrant(ctx, "g-cg-1")
		wantErr(t, "GetGrant after a taken token hash", err, store.ErrNotFound)
	})

	t.Run("concurrent create with tokens for a code", func(t *testing.T) {
		c := fullAuthCode(t, "code-cg-race")
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, c), nil)
		codes := make([]*store.AuthCode, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			codes[i], err = s.CreateGrantTokensForCode(ctx, c.Hash, now.Add(time.Duration(i+1)*time.Millisecond),
				fullGrant(t, c.GrantID), nil, fullToken(t, id("cg-race", i), store.TokenAccess))
			return err
		})
		w := oneWinner(t, errs, store.ErrUsed)
		if w < 0 {
			return
		}
		for i := range contenders {
			_, err := s.GetToken(ctx, hash(id("cg-race", i)))
			if i == w {
				wantErr(t, "GetToken of the winner", err, nil)
			} else {
				wantErr(t, "GetToken of a loser", err, store.ErrNotFound)
			}
			if codes[i] == nil {
				t.Errorf("goroutine %d got no code", i)
				continue
			}
			same(t, "UsedAt", codes[w].UsedAt, codes[i].UsedAt)
		}
	})

	t.Run("a person's grants", func(t *testing.T) {
		z := loadZones(t)
		later := now.Add(24 * time.Hour)
		grant := func(id, client, person string, made time.Time) *store.Grant {
			return &store.Grant{ID: id, ClientID: client, PersonID: person, SessionID: "s-" + person, Scope: []string{"openid", store.ScopeOfflineAccess},
				Provider: "passkey", Level: "high", AMR: []string{"hwk"}, AuthTime: made, CreatedAt: made}
		}
		// The bank: refreshed once (its first token used, the second
		// live), with an access token from the refresh; the tax office:
		// never refreshed, its token expired; the shop: revoked; another
		// person's grant at the bank.
		bank := grant("g-mine-bank", "bank", "p-mine", now.Add(-2*time.Hour).In(z.la))
		tax := grant("g-mine-tax", "tax", "p-mine", now.Add(-time.Hour))
		shop := grant("g-mine-shop", "shop", "p-mine", now.Add(-time.Hour))
		shop.RevokedAt = now.Add(-time.Minute)
		stranger := grant("g-mine-stranger", "bank", "p-other", now.Add(-3*time.Hour))
		createGrantsWithTokens(t, s, []grantWithTokens{
			{bank, []*store.Token{
				refreshToken("rt-mine-bank-a", bank, bank.CreatedAt, later, now.Add(-30*time.Minute)),
				refreshToken("rt-mine-bank-b", bank, now.Add(-30*time.Minute).In(z.tokyo), later, time.Time{}),
				{Hash: hash("at-mine-bank"), Kind: store.TokenAccess, GrantID: bank.ID, ClientID: "bank", CreatedAt: now.Add(-30 * time.Minute), ExpiresAt: later},
			}},
			{tax, []*store.Token{refreshToken("rt-mine-tax", tax, tax.CreatedAt, now, time.Time{})}},
			{shop, []*store.Token{refreshToken("rt-mine-shop", shop, shop.CreatedAt, later, time.Time{})}},
			{stranger, []*store.Token{refreshToken("rt-mine-stranger", stranger, stranger.CreatedAt, later, time.Time{})}},
		})
		got, err := s.ListPersonGrants(ctx, "p-mine", now)
		wantErr(t, "ListPersonGrants", err, nil)
		// Oldest first, then by ID; a revoked grant's live token is
		// still said, with the grant's RevokedAt, which stops it.
		same(t, "the person's grants", []*store.PersonGrant{
			{Grant: *bank, RefreshedAt: now.Add(-30 * time.Minute), RefreshUntil: later},
			{Grant: *shop, RefreshUntil: later},
			{Grant: *tax},
		}, got)
		for _, who := range []string{"p-nobody", ""} {
			got, err := s.ListPersonGrants(ctx, who, now)
			wantErr(t, "ListPersonGrants "+who, err, nil)
			if len(got) != 0 {
				t.Errorf("ListPersonGrants(%q) = %d grants, want none", who, len(got))
			}
		}
	})

	t.Run("offline access", func(t *testing.T) {
		z := loadZones(t)
		grant := func(id, client string, offline bool, made time.Time) *store.Grant {
			g := &store.Grant{ID: id, ClientID: client, PersonID: "p-away", SessionID: "s-away", Scope: []string{"openid"}, CreatedAt: made}
			if offline {
				g.Scope = append(g.Scope, store.ScopeOfflineAccess)
			}
			return g
		}
		later := now.Add(24 * time.Hour)
		// The bank: two offline grants, one refreshed since (its first
		// token used, the second live), one not.
		bank1 := grant("g-away-bank1", "bank", true, now.Add(-2*time.Hour).In(z.la))
		bank2 := grant("g-away-bank2", "bank", true, now.Add(-time.Hour))
		// The tax office: session-bound only; the shop: an offline grant
		// whose token expired; the pension fund: one whose token was used
		// and not replaced (a reuse revoked it or it is being rotated);
		// another person's grant at the bank.
		tax := grant("g-away-tax", "tax", false, now.Add(-time.Hour))
		shop := grant("g-away-shop", "shop", true, now.Add(-time.Hour))
		pension := grant("g-away-pension", "pension", true, now.Add(-time.Hour))
		stranger := grant("g-away-stranger", "bank", true, now.Add(-time.Hour))
		stranger.PersonID = "p-stranger"
		createGrantsWithTokens(t, s, []grantWithTokens{
			{bank1, []*store.Token{
				refreshToken("rt-bank1-a", bank1, bank1.CreatedAt, later, now.Add(-30*time.Minute)),
				refreshToken("rt-bank1-b", bank1, now.Add(-30*time.Minute).In(z.tokyo), later, time.Time{}),
				{Hash: hash("at-bank1"), Kind: store.TokenAccess, GrantID: bank1.ID, ClientID: "bank", CreatedAt: now, ExpiresAt: later},
			}},
			{bank2, []*store.Token{refreshToken("rt-bank2", bank2, bank2.CreatedAt, later, time.Time{})}},
			{tax, []*store.Token{refreshToken("rt-tax", tax, tax.CreatedAt, later, time.Time{})}},
			{shop, []*store.Token{refreshToken("rt-shop", shop, shop.CreatedAt, now, time.Time{})}},
			{pension, []*store.Token{refreshToken("rt-pension", pension, pension.CreatedAt, later, now.Add(-time.Minute))}},
			{stranger, []*store.Token{refreshToken("rt-stranger", stranger, stranger.CreatedAt, later, time.Time{})}},
		})
		got, err := s.ListOfflineAccess(ctx, "p-away", now)
		wantErr(t, "ListOfflineAccess", err, nil)
		same(t, "offline access", []*store.OfflineAccess{
			{ClientID: "bank", GrantedAt: bank1.CreatedAt, RefreshedAt: now.Add(-30 * time.Minute)},
		}, got)

		// Stopping the bank's access revokes both its grants, and the
		// person's grant at the tax office stays; the event is stored
		// with it.
		at := now.Add(time.Minute).In(z.oslo)
		e := &store.AuditEvent{Time: now, Type: "offline_access_stopped", PersonID: "p-away", ClientID: "bank", Result: store.ResultSuccess}
		n, err := s.RevokePersonClientGrants(ctx, "p-away", "bank", "", at, e)
		wantErr(t, "RevokePersonClientGrants", err, nil)
		if n != 2 {
			t.Errorf("RevokePersonClientGrants = %d, want 2", n)
		}
		for _, g := range []*store.Grant{bank1, bank2} {
			got, err := s.GetGrant(ctx, g.ID)
			wantErr(t, "GetGrant", err, nil)
			if !got.RevokedAt.Equal(at) {
				t.Errorf("grant %s: RevokedAt = %v, want %v", g.ID, got.RevokedAt, at)
			}
		}
		for _, id := range []string{tax.ID, stranger.ID} {
			got, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant", err, nil)
			if !got.RevokedAt.IsZero() {
				t.Errorf("grant %s revoked with another's", id)
			}
		}
		evs, err := s.ListPersonAudit(ctx, "p-away", 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if len(evs) != 1 || evs[0].Type != e.Type || evs[0].ClientID != "bank" {
			t.Errorf("audit after RevokePersonClientGrants = %v, want the one event", evs)
		}
		got, err = s.ListOfflineAccess(ctx, "p-away", now)
		wantErr(t, "ListOfflineAccess after revoking", err, nil)
		if len(got) != 0 {
			t.Errorf("ListOfflineAccess after revoking = %v, want none", got)
		}

		// Again: nothing left to revoke, and the event is stored all the
		// same (the person asked).
		again := &store.AuditEvent{Time: now, Type: "offline_access_stopped", PersonID: "p-away", ClientID: "bank", Result: store.ResultSuccess}
		n, err = s.RevokePersonClientGrants(ctx, "p-away", "bank", "", at.Add(time.Minute), again)
		wantErr(t, "RevokePersonClientGrants again", err, nil)
		if n != 0 {
			t.Errorf("RevokePersonClientGrants again = %d, want 0", n)
		}
		got1, err := s.GetGrant(ctx, bank1.ID)
		wantErr(t, "GetGrant", err, nil)
		if !got1.RevokedAt.Equal(at) {
			t.Errorf("a second revocation moved RevokedAt to %v, want %v kept", got1.RevokedAt, at)
		}
		if evs, _ := s.ListPersonAudit(ctx, "p-away", 10); len(evs) != 2 {
			t.Errorf("audit after a second revocation has %d events, want 2", len(evs))
		}
	})
}

// grantWithTokens is a grant and the tokens issued under it.
type grantWithTokens struct {
	g      *store.Grant
	tokens []*store.Token
}

// createGrantsWithTokens stores each grant with its tokens.
func createGrantsWithTokens(t *testing.T, s store.Store, gs []grantWithTokens) {
	t.Helper()
	for _, c := range gs {
		wantErr(t, "CreateGrantTokens "+c.g.ID, s.CreateGrantTokens(t.Context(), c.g, nil, c.tokens...), nil)
	}
}

// refreshToken is a refresh token named name under g, made, expiring
// and used (zero: not) at those times.
func refreshToken(name string, g *store.Grant, made, expires, used time.Time) *store.Token {
	return &store.Token{Hash: hash(name), Kind: store.TokenRefresh, GrantID: g.ID, ClientID: g.ClientID,
		Scope: g.Scope, CreatedAt: made, ExpiresAt: expires, UsedAt: used}
}

func fullToken(t *testing.T, tok, kind string) *store.Token {
	z := loadZones(t)
	now := base(t)
	return &store.Token{
		Hash:      hash(tok),
		Kind:      kind,
		GrantID:   "g1",
		ClientID:  "bank",
		Scope:     []string{"openid", "profile"},
		CreatedAt: now.In(z.la),
		ExpiresAt: now.Add(30 * 24 * time.Hour).In(z.tokyo),
		JKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)

	t.Run("round trip", func(t *testing.T) {
		for _, tok := range []*store.Token{
			fullToken(t, "at-full", store.TokenAccess),
			fullToken(t, "rt-full", store.TokenRefresh),
			{Hash: hash("t-nil"), Kind: store.TokenRefresh},
			{Hash: hash("t-empty"), Kind: store.TokenAccess, Scope: []string{}, UsedAt: now},
			{Hash: hash("t-replaced"), Kind: store.TokenRefresh, Parent: hash("t-parent"), UsedAt: now, RevokedAt: now.Add(time.Second)},
		} {
			wantErr(t, "CreateToken", s.CreateToken(ctx, tok), nil)
			got, err := s.GetToken(ctx, tok.Hash)
			wantErr(t, "GetToken", err, nil)
			same(t, "token", tok, got)
		}
	})

	t.Run("use once", func(t *testing.T) {
		tok := fullToken(t, "rt-use", store.TokenRefresh)
		wantErr(t, "CreateToken", s.CreateToken(ctx, tok), nil)
		first := now.Add(time.Hour).In(loadZones(t).oslo)
		got, err := s.RotateToken(ctx, tok.Hash, first, nil)
		wantErr(t, "RotateToken", err, nil)
		tok.UsedAt = first
		same(t, "used token", tok, got)

		got, err = s.RotateToken(ctx, tok.Hash, first.Add(time.Minute), nil)
		wantErr(t, "RotateToken again", err, store.ErrConflict)
		if got == nil {
			t.Fatal("RotateToken again returned no token with ErrConflict")
		}
		same(t, "token returned on reuse", tok, got)

		got, err = s.GetToken(ctx, tok.Hash)
		wantErr(t, "GetToken", err, nil)
		same(t, "token after use", tok, got)
	})

	t.Run("errors", func(t *testing.T) {
		tok := fullToken(t, "rt-dup", store.TokenRefresh)
		wantErr(t, "CreateToken", s.CreateToken(ctx, tok), nil)
		wantErr(t, "CreateToken duplicate",
			s.CreateToken(ctx, &store.Token{Hash: tok.Hash, Kind: store.TokenAccess}), store.ErrConflict)
		got, err := s.GetToken(ctx, tok.Hash)
		wantErr(t, "GetToken", err, nil)
		same(t, "token after failed create", tok, got)
		_, err = s.GetToken(ctx, hash("never"))
		wantErr(t, "GetToken unknown", err, store.ErrNotFound)
		got, err = s.RotateToken(ctx, hash("never"), now, nil, fullToken(t, "never-next", store.TokenRefresh))
		wantErr(t, "RotateToken unknown", err, store.ErrNotFound)
		if got != nil {
			t.Errorf("RotateToken unknown returned a token")
		}
		_, err = s.GetToken(ctx, hash("never-next"))
		wantErr(t, "GetToken of the successor of an unknown token", err, store.ErrNotFound)
	})

	t.Run("rotate with successors and their event", func(t *testing.T) {
		old := fullToken(t, "rt-rotate", store.TokenRefresh)
		wantErr(t, "CreateToken", s.CreateToken(ctx, old), nil)
		first := &store.AuditEvent{Time: now, Type: "authentication", ClientID: "bank", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, first), nil)
		at, rt := fullToken(t, "rt-rotate-at", store.TokenAccess), fullToken(t, "rt-rotate-rt", store.TokenRefresh)
		ev := &store.AuditEvent{Time: now.Add(time.Second), Type: "token", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{"grant_type": "refresh_token"}}
		when := now.Add(time.Hour)
		got, err := s.RotateToken(ctx, old.Hash, when, ev, at, rt)
		wantErr(t, "RotateToken", err, nil)
		old.UsedAt = when
		same(t, "rotated token", old, got)
		for _, tok := range []*store.Token{at, rt} {
			got, err := s.GetToken(ctx, tok.Hash)
			wantErr(t, "GetToken of a successor", err, nil)
			same(t, "successor", tok, got)
		}
		if ev.Seq != first.Seq+1 {
			t.Errorf("event Seq = %d, want %d", ev.Seq, first.Seq+1)
		}
		events, err := s.ListAudit(ctx, first.Seq-1, 100)
		wantErr(t, "ListAudit", err, nil)
		if len(events) != 2 || events[1].Type != "token" || events[1].Details["grant_type"] != "refresh_token" {
			t.Errorf("audit log after a rotation: %d events from the one before, want it and the token event", len(events))
		}
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}

		// A reuse stores no successor and appends nothing.
		again := &store.AuditEvent{Time: now, Type: "token", ClientID: "bank", Result: store.ResultSuccess}
		got, err = s.RotateToken(ctx, old.Hash, when.Add(time.Minute), again, fullToken(t, "rt-rotate-reuse", store.TokenRefresh))
		wantErr(t, "RotateToken of a used token", err, store.ErrConflict)
		same(t, "token returned on reuse", old, got)
		_, err = s.GetToken(ctx, hash("rt-rotate-reuse"))
		wantErr(t, "GetToken of a reuse's successor", err, store.ErrNotFound)
		if again.Seq != 0 {
			t.Errorf("a refused rotation's event got Seq %d", again.Seq)
		}
	})

	t.Run("rotate is atomic", func(t *testing.T) {
		// A failed rotation must leave the old token usable: otherwise the
		// relying party's retry would look like a reuse and revoke the
		// family.
		old := fullToken(t, "rt-atomic", store.TokenRefresh)
		taken := fullToken(t, "rt-atomic-taken", store.TokenAccess)
		wantErr(t, "CreateToken", s.CreateToken(ctx, old), nil)
		wantErr(t, "CreateToken", s.CreateToken(ctx, taken), nil)
		before, err := s.ListAudit(ctx, 0, 10000)
		wantErr(t, "ListAudit", err, nil)
		ev := &store.AuditEvent{Time: now, Type: "token", ClientID: "bank", Result: store.ResultSuccess}
		got, err := s.RotateToken(ctx, old.Hash, now.Add(time.Hour), ev, fullToken(t, "rt-atomic-new", store.TokenRefresh), taken)
		wantErr(t, "RotateToken with a successor's hash taken", err, store.ErrConflict)
		if got != nil {
			t.Errorf("a rotation refused for its successor returned a token, as a reuse does")
		}
		_, err = s.GetToken(ctx, hash("rt-atomic-new"))
		wantErr(t, "GetToken of the other successor", err, store.ErrNotFound)
		got, err = s.GetToken(ctx, old.Hash)
		wantErr(t, "GetToken", err, nil)
		same(t, "old token after a failed rotation", old, got)
		after, err := s.ListAudit(ctx, 0, 10000)
		wantErr(t, "ListAudit", err, nil)
		if len(after) != len(before) {
			t.Errorf("a failed rotation appended %d audit events", len(after)-len(before))
		}
		next := fullToken(t, "rt-atomic-retry", store.TokenRefresh)
		_, err = s.RotateToken(ctx, old.Hash, now.Add(time.Hour), nil, next)
		wantErr(t, "RotateToken retried", err, nil)
		_, err = s.GetToken(ctx, next.Hash)
		wantErr(t, "GetToken of the retry's successor", err, nil)
	})

	t.Run("concurrent rotation", func(t *testing.T) {
		tok := fullToken(t, "rt-race", store.TokenRefresh)
		wantErr(t, "CreateToken", s.CreateToken(ctx, tok), nil)
		toks := make([]*store.Token, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			toks[i], err = s.RotateToken(ctx, tok.Hash, now.Add(time.Duration(i+1)*time.Millisecond), nil,
				fullToken(t, fmt.Sprint("rt-race-next-", i), store.TokenRefresh))
			return err
		})
		w := oneWinner(t, errs, store.ErrConflict)
		if w < 0 {
			return
		}
		for i, got := range toks {
			if got == nil {
				t.Errorf("goroutine %d got no token", i)
				continue
			}
			same(t, "UsedAt", toks[w].UsedAt, got.UsedAt)
			_, err := s.GetToken(ctx, hash(fmt.Sprint("rt-race-next-", i)))
			if i == w {
				wantErr(t, "GetToken of the winner's successor", err, nil)
			} else {
				wantErr(t, "GetToken of a loser's successor", err, store.ErrNotFound)
			}
		}
	})
}

func testReplayCache(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	z := loadZones(t)

	t.Run("remember until expiry", func(t *testing.T) {
		exp := now.Add(5 * time.Minute)
		steps := []struct {
			name      string
			expiresAt time.Time
			now       time.Time
			want      error
		}{
			{"first", exp.In(z.la), now, nil},
			{"replay", exp, now.Add(time.Minute).In(z.tokyo), store.ErrConflict},
			{"replay 1µs before expiry", exp, exp.Add(-time.Microsecond), store.ErrConflict},
			{"at expiry", exp.Add(5 * time.Minute), exp.In(z.oslo), nil},
			{"replay of the renewed entry", exp.Add(time.Hour), exp.Add(time.Minute), store.ErrConflict},
			{"after renewed expiry", exp.Add(time.Hour), exp.Add(5 * time.Minute), nil},
		}
		for _, st := range steps {
			wantErr(t, "Remember "+st.name, s.Remember(ctx, "jti-1", st.expiresAt, st.now), st.want)
		}
		wantErr(t, "Remember another key", s.Remember(ctx, "jti-2", exp, now), nil)
	})

	t.Run("remembered", func(t *testing.T) {
		exp := now.Add(5 * time.Minute)
		wantErr(t, "Remember", s.Remember(ctx, "jti-read", exp, now), nil)
		steps := []struct {
			name string
			key  string
			now  time.Time
			want bool
		}{
			{"unknown key", "jti-never", now, false},
			{"remembered", "jti-read", now.In(z.tokyo), true},
			{"1µs before expiry", "jti-read", exp.Add(-time.Microsecond), true},
			{"at expiry", "jti-read", exp.In(z.la), false},
		}
		for _, st := range steps {
			got, err := s.Remembered(ctx, st.key, st.now)
			wantErr(t, "Remembered "+st.name, err, nil)
			if got != st.want {
				t.Errorf("Remembered %s = %v, want %v", st.name, got, st.want)
			}
		}
		// Reading changes nothing: the key is still refused until expiry
		// and free after it.
		wantErr(t, "Remember after read", s.Remember(ctx, "jti-read", exp, now), store.ErrConflict)
		wantErr(t, "Remember at expiry", s.Remember(ctx, "jti-read", exp.Add(time.Minute), exp), nil)
	})

	t.Run("concurrent remember", func(t *testing.T) {
		errs := race(contenders, func(int) error {
			return s.Remember(ctx, "jti-race", now.Add(time.Minute), now)
		})
		oneWinner(t, errs, store.ErrConflict)
	})

	// Keys carry values from requests (a DPoP proof's or a client
	// assertion's jti, which JSON lets hold NUL), so any string is a key,
	// remembered once and apart from every other.
	t.Run("keys that are not text", func(t *testing.T) {
		exp := now.Add(time.Minute)
		keys := []string{"jti:\x00", "jti:\xff", "jti:", "\x01hex:6a74693a00", "jti:\uFFFD"}
		for _, k := range keys {
			wantErr(t, fmt.Sprintf("Remember %q", k), s.Remember(ctx, k, exp, now), nil)
		}
		for _, k := range keys {
			wantErr(t, fmt.Sprintf("Remember %q again", k), s.Remember(ctx, k, exp, now), store.ErrConflict)
		}
	})
}
