package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/webhook"
)

// Public status paths, published in the discovery document.
const (
	statusPagePath = "/status"
	statusAPIPath  = "/status/api/v1/summary"
)

// selfProbe marks the node's own in-process /readyz request: it asks
// whether the node works, not whether a load balancer should send it
// traffic yet.
type selfProbe struct{}

// nodeComponent is this node's component name.
func (a *App) nodeComponent() string { return status.NodePrefix + a.Config.Node }

// addNodeComponent makes the node itself a monitored component: each
// round it asks its own mux for /readyz in process, so the node is up
// while it can serve requests and reach its store.
func (a *App) addNodeComponent(mux *http.ServeMux) error {
	return a.Health.Add(a.nodeComponent(), health.PingProber(func(ctx context.Context) error {
		req := httptest.NewRequestWithContext(context.WithValue(ctx, selfProbe{}, true), http.MethodGet, "/readyz", nil)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return &health.ProbeError{Reason: health.FailureStatus, Err: fmt.Errorf("readyz answered %d", rec.Code)}
		}
		return nil
	}))
}

// componentInfos names the components a node with cfg has: the store,
// the built-in passkey provider and every upstream. Nodes are named by
// package status.
func componentInfos(cfg *config.Config) []status.Info {
	pk := (&passkeyidp.Provider{}).Info()
	infos := []status.Info{
		{ID: "store", Kind: status.KindStore, Name: map[string]string{"en": "Data store", "nb": "Datalager", "da": "Datalager"}},
		{ID: pk.ID, Kind: status.KindProvider, Name: pk.Name},
	}
	for _, u := range cfg.Upstreams {
		infos = append(infos, status.Info{ID: u.ID, Kind: status.KindProvider, Name: u.Name})
	}
	return infos
}

// statusService builds the status service over this node's monitor.
func (a *App) statusService(opt Options) *status.Service {
	return &status.Service{
		Store: a.Store, Monitor: a.Health, Node: a.Config.Node, Components: componentInfos(a.Config),
		Config: status.Config{OpenAfter: a.Config.Status.OpenAfter, ResolveAfter: a.Config.Status.ResolveAfter, Interval: a.Config.Health.Interval,
			NodeGoneAfter: a.Config.Status.NodeGoneAfter},
		Zone: a.Config.Pages.Location(), Now: opt.Now, Rand: opt.Rand, Log: a.log,
	}
}

// StatusReader builds a status service for tools that run beside the
// nodes (varde status …): components' states come from the health
// records the nodes wrote to st, as any node saw them.
func StatusReader(ctx context.Context, cfg *config.Config, st store.Store, now func() time.Time) (*status.Service, error) {
	if now == nil {
		now = time.Now
	}
	rec := &status.Recorded{Store: st, Health: cfg.Health.Monitor(), Now: now}
	if err := rec.Load(ctx); err != nil {
		return nil, fmt.Errorf("read health records: %w", err)
	}
	return &status.Service{
		Store: st, Monitor: rec, Node: cfg.Node, Components: componentInfos(cfg),
		Config: status.Config{OpenAfter: cfg.Status.OpenAfter, ResolveAfter: cfg.Status.ResolveAfter, NodeGoneAfter: cfg.Status.NodeGoneAfter},
		Zone:   cfg.Pages.Location(),
		Now:    now,
	}, nil
}

// notifier builds the webhook notifier and subscribes it to the monitor.
func (a *App) notifier(providers []provider.Provider, reg prometheus.Registerer, opt Options) (*webhook.Notifier, error) {
	ids := make([]string, 0, len(providers))
	for _, p := range providers {
		ids = append(ids, p.Info().ID)
	}
	// Each attempt reads its client from the store, not through the
	// client cache: a webhook URL an operator changed or removed gets
	// nothing more once the change is stored, on any node.
	n, err := webhook.New(webhook.Options{
		Issuer: a.Config.Issuer, Node: a.Config.Node, Signer: a.Signer,
		Clients: a.Store, Outbox: a.Store, Providers: ids,
		StatusURL:  func(string) string { return a.Config.Issuer + statusAPIPath },
		Registerer: reg, Now: opt.Now, Rand: opt.Rand, Log: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	a.Health.Subscribe(n.OnTransition)
	return n, nil
}
