package app

import (
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
func (a *App) providers(cfg *config.Config, opt Options, st store.Store, sessions *session.Manager, pages *httpx.Pages, fin provider.Finisher, log *slog.Logger) ([]provider.Provider, error) {
	wa, err := passkey.NewWebAuthn(cfg.Passkey.RPID, "Varde", cfg.Passkey.Origins)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	pk := &passkeyidp.Provider{
		WebAuthn: &passkey.Service{WebAuthn: wa, Persons: st, Passkeys: st, Challenges: st, Now: opt.Now, Rand: opt.Rand},
		Persons:  st, Passkeys: st, RecoveryCodes: st, Challenges: st, Limits: durable(st),
		Sessions: sessions, Finisher: fin, Pages: pages, Audit: a.Audit,
		SyntheticEnrolment: cfg.Passkey.SyntheticEnrolment,
		Now:                opt.Now, Rand: opt.Rand, Log: log,
	}
	ups, err := a.upstreams(cfg, opt, st, pages, fin, log)
	if err != nil {
		return nil, err
	}
	all := append([]provider.Provider{pk}, ups...)
	// The account page's activity names services and ways to log in.
	pk.History, pk.Clients = st, a.clients
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
	)
	if f, ok := st.(*flowmem.Store); ok {
		flow := &registeredFlow{Store: f, clients: a.clients}
		requests, codes = flow, flow
	}
	p := &oidc.Provider{
		Issuer:  cfg.Issuer,
		Clients: a.clients, AuthRequests: requests, AuthCodes: codes, Grants: st, Tokens: st, Persons: st,
		Sessions: sessions, SessionClients: st, LogoutOutbox: st,
		Signer: a.Signer, KeySet: keySet,
		ClientAuth: &oauth2.ClientAuthenticator{
			Clients: a.clients, Replay: st, Audiences: oidc.Audiences(cfg.Issuer),
			HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: opt.Now,
		},
		Audit: a.Audit, Pages: pages, SubjectSalt: salt, AccountURL: accountURL,
		CodeLifetime:         cfg.OIDC.CodeLifetime,
		PARLifetime:          cfg.OIDC.PARLifetime,
		AuthRequestLifetime:  cfg.OIDC.AuthRequestLifetime,
		AccessTokenLifetime:  cfg.OIDC.AccessTokenLifetime,
		IDTokenLifetime:      cfg.OIDC.IDTokenLifetime,
		RefreshTokenLifetime: cfg.OIDC.RefreshTokenLifetime,
		Now:                  opt.Now, Rand: opt.Rand, Log: log, Metrics: metrics,
	}
	// However a session ends, the relying parties that got tokens in it
	// are told (Back-Channel Logout).
	sessions.Ended = p.SessionsEnded
	// A logout token lives two minutes: the outbox signs it again for an
	// attempt that comes later (ADR 15).
	a.webhooks.RenewWith(oidc.LogoutDeliveryEvent, p.RenewLogoutToken)
	return p, nil
}
