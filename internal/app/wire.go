package app

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// providers builds the identity providers, in the order the login page
// lists them.
func (a *App) providers(cfg *config.Config, opt Options, st store.Store, sessions *session.Manager, pages *httpx.Pages, fin provider.Finisher, salt []byte, log *slog.Logger) ([]provider.Provider, error) {
	wa, err := passkey.NewWebAuthn(cfg.Passkey.RPID, "Varde", cfg.Passkey.Origins)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	browserKey, err := hkdf.Key(sha256.New, salt, nil, "varde recovery browser key v1", passkeyidp.MinBrowserKeySize)
	if err != nil {
		return nil, fmt.Errorf("recovery browser key: %w", err)
	}
	// The activity pages' cursors open on every node, and in every
	// node's lifetime: the salt is the store's, pinned.
	cursorKey, err := hkdf.Key(sha256.New, salt, nil, "varde activity cursor key v1", passkeyidp.MinCursorKeySize)
	if err != nil {
		return nil, fmt.Errorf("activity cursor key: %w", err)
	}
	pk := &passkeyidp.Provider{
		WebAuthn: &passkey.Service{WebAuthn: wa, Persons: st, Passkeys: st, Challenges: st, Now: opt.Now, Rand: opt.Rand},
		Persons:  st, Passkeys: st, RecoveryCodes: st, DeskCodes: st, Challenges: st, Limits: durable(st), BrowserKey: browserKey,
		CursorKey: cursorKey,
		Sessions:  sessions, Finisher: fin, Pages: pages, Audit: a.Audit,
		SyntheticEnrolment: cfg.Passkey.SyntheticEnrolment,
		AddressRetention:   cfg.Audit.AddressRetention,
		Now:                opt.Now, Rand: opt.Rand, Log: log,
	}
	ups, err := a.upstreams(cfg, opt, st, pages, fin, log)
	if err != nil {
		return nil, err
	}
	all := append([]provider.Provider{pk}, ups...)
	// The account page's activity names services and ways to log in,
	// and it lists the services holding offline access (Grants).
	pk.History, pk.Clients, pk.Grants = st, a.clients, st
	pk.ProviderName = func(id, lang string) string {
		for _, p := range all {
			if info := p.Info(); info.ID == id {
				if n := info.Name[lang]; n != "" {
					return n
				}
				return info.Name["en"]
			}
		}
		return ""
	}
	return all, nil
}

// openID builds the OpenID Provider endpoints, and hooks them to the
// session manager and to a.webhooks (built before).
func (a *App) openID(cfg *config.Config, opt Options, st store.Store, sessions *session.Manager, keySet *keys.Set, pages *httpx.Pages, salt []byte, reg prometheus.Registerer, log *slog.Logger) (*oidc.Provider, error) {
	metrics, err := oidc.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	var (
		requests store.AuthRequests = st
		codes    store.AuthCodes    = st
		grants   store.Grants       = st
	)
	if f, ok := st.(*flowmem.Store); ok {
		flow := &registeredFlow{Store: f, clients: a.clients}
		requests, codes, grants = flow, flow, flow
	}
	var nonces *oauth2.DPoPNonces
	if *cfg.OIDC.DPoPNonces {
		key, err := dpopNonceKey(salt)
		if err != nil {
			return nil, err
		}
		nonces = &oauth2.DPoPNonces{Key: key}
	}
	p := &oidc.Provider{
		Issuer:  cfg.Issuer,
		Clients: a.clients, AuthRequests: requests, AuthCodes: codes, Grants: grants, Tokens: st, Persons: st,
		Sessions: sessions, SessionClients: st, LiveSessions: st, LogoutOutbox: st,
		Signer: a.Signer, RSASigner: a.RSASigner, KeySet: keySet,
		ClientAuth: &oauth2.ClientAuthenticator{
			Clients: a.clients, Replay: st, Audiences: oidc.Audiences(cfg.Issuer),
			HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: opt.Now, Log: log,
		},
		// Proofs are remembered in the store's replay cache, as client
		// assertions are, so a proof is used once across every node.
		DPoP:  &oauth2.DPoPVerifier{Replay: st, Nonces: nonces, Now: opt.Now},
		Audit: a.Audit, Pages: pages, SubjectSalt: salt, AccountURL: accountURL,
		CodeLifetime:         cfg.OIDC.CodeLifetime,
		PARLifetime:          cfg.OIDC.PARLifetime,
		AuthRequestLifetime:  cfg.OIDC.AuthRequestLifetime,
		AccessTokenLifetime:  cfg.OIDC.AccessTokenLifetime,
		IDTokenLifetime:      cfg.OIDC.IDTokenLifetime,
		RefreshTokenLifetime: cfg.OIDC.RefreshTokenLifetime,
		RefreshReuseInterval: *cfg.OIDC.RefreshReuseInterval,
		Now:                  opt.Now, Rand: opt.Rand, Log: log, Metrics: metrics,
	}
	// However a session ends, the relying parties that got tokens in it
	// are told (Back-Channel Logout).
	sessions.Ended = p.SessionsEnded
	// Each attempt goes to the client's backchannel_logout_uri as
	// registered then, not when the token was queued; and a logout token
	// lives two minutes: the outbox signs it again for an attempt that
	// comes later (ADR 15).
	a.webhooks.SendTo(oidc.LogoutDeliveryEvent, oidc.LogoutURI)
	a.webhooks.RenewWith(oidc.LogoutDeliveryEvent, p.RenewLogoutToken, oidc.ErrNotLogoutDelivery)
	// A node without an RSA key cannot renew an RS256 client's token
	// (ADR 32): it leaves the delivery to a node with one, uncounted.
	a.webhooks.RenewElsewhere(oidc.LogoutDeliveryEvent, oidc.ErrNoRSAKey)
	// A relying party answers 400 when its logout failed (§2.8), which
	// may pass (a key it has not fetched yet): retried, not final.
	a.webhooks.RetryRefused(oidc.LogoutDeliveryEvent)
	return p, nil
}

// dpopNonceKey derives the key DPoP nonces are made with (ADR 14) from
// the subject salt, the one secret every node of a cluster already
// shares and the store pins (checkSalt): with HKDF-SHA256 (RFC 5869)
// and a label of its own, so that the key reveals nothing of the salt
// and serves nothing else. Every node derives the same key, so a nonce
// handed out by one is taken by all, and none is stored.
func dpopNonceKey(salt []byte) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, salt, nil, "varde dpop nonce key v1", oauth2.MinDPoPNonceKeySize)
	if err != nil {
		return nil, fmt.Errorf("dpop nonce key: %w", err)
	}
	return key, nil
}
