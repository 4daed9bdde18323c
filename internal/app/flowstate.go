package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// flowMetrics reports a node's flow state in memory (flowmem.Mem.Stats)
// at every scrape: how full it is, against which bound, and the writes
// its bounds refused, which a flood, or more logins than a node may
// hold, shows in first.
type flowMetrics struct {
	mem                                *flowmem.Mem
	records, maxRecords                *prometheus.Desc
	frontBytes, maxFrontBytes, refused *prometheus.Desc
}

func newFlowMetrics(mem *flowmem.Mem) *flowMetrics {
	return &flowMetrics{
		mem: mem,
		records: prometheus.NewDesc("varde_flow_state_records",
			"Login flow records this node holds in memory, by kind: front_requests (authorization requests made at the front channel), pushed_requests, challenges, codes and replay (used client assertion and DPoP proof IDs).",
			[]string{"kind"}, nil),
		maxRecords: prometheus.NewDesc("varde_flow_state_max_records",
			"The bound on all of this node's flow records together.", nil, nil),
		frontBytes: prometheus.NewDesc("varde_flow_state_front_request_bytes",
			"About the memory this node's front-channel authorization requests take.", nil, nil),
		maxFrontBytes: prometheus.NewDesc("varde_flow_state_max_front_request_bytes",
			"The bound on the memory front-channel authorization requests may take.", nil, nil),
		refused: prometheus.NewDesc("varde_flow_state_refused_total",
			"Writes of flow state refused as full, by the bound that refused them: entries (all records), challenges (one namespace's), front_requests or pushed_requests (one client's). Each is a login, or a step of one, answered as busy.",
			[]string{"bound"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *flowMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.records, m.maxRecords, m.frontBytes, m.maxFrontBytes, m.refused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *flowMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.mem.Stats()
	for kind, n := range map[string]int{
		"front_requests": st.FrontRequests, "pushed_requests": st.Requests - st.FrontRequests,
		"challenges": st.Challenges, "codes": st.Codes, "replay": st.Replay,
	} {
		ch <- prometheus.MustNewConstMetric(m.records, prometheus.GaugeValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(m.maxRecords, prometheus.GaugeValue, float64(st.MaxEntries))
	ch <- prometheus.MustNewConstMetric(m.frontBytes, prometheus.GaugeValue, float64(st.FrontBytes))
	ch <- prometheus.MustNewConstMetric(m.maxFrontBytes, prometheus.GaugeValue, float64(st.MaxFrontBytes))
	for _, b := range flowmem.Bounds {
		ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(st.Refused[b]), b.String())
	}
}

// registeredFlow is the login flow state of a node that keeps it in
// memory (ADR 7), as its OpenID endpoints use it. Removing a client ends
// its logins in flight (store.Clients.DeleteClient), but `varde clients
// remove`, run beside the node, removes them from the database file and
// cannot reach the node's memory: were a client with the same ID added
// again, a request the old one pushed would start a login for the new
// one, and a code issued to the old one would be redeemed by it. So a
// pushed request is used, a request becomes a code and a code is read
// or redeemed only if its client's registration is no newer than the
// request or code. The clients of the configuration file are written
// when the node starts, before it serves, so only a client added since
// can be newer.
type registeredFlow struct {
	*flowmem.Store
	// clients is the node's client cache: the endpoints have just read
	// the client through it, so reading it again costs no query.
	clients store.Clients
}

var (
	_ store.AuthRequests = (*registeredFlow)(nil)
	_ store.AuthCodes    = (*registeredFlow)(nil)
	_ store.Grants       = (*registeredFlow)(nil)
)

// UseAuthRequest implements store.AuthRequests.
func (f *registeredFlow) UseAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time) error {
	if err := f.requestRegistered(ctx, id, now); err != nil {
		return fmt.Errorf("use auth request: %w", err)
	}
	return f.Store.UseAuthRequest(ctx, id, browser, expiresAt, now)
}

// CreateAuthCodeForRequest implements store.AuthCodes.
func (f *registeredFlow) CreateAuthCodeForRequest(ctx context.Context, c *store.AuthCode, requestID string) error {
	if err := f.requestRegistered(ctx, requestID, c.CreatedAt); err != nil {
		return fmt.Errorf("create auth code for request %s: %w", requestID, err)
	}
	return f.Store.CreateAuthCodeForRequest(ctx, c, requestID)
}

// GetAuthCode implements store.AuthCodes. A code whose client is gone
// or newer is not found, as RedeemAuthCode has it, so the token endpoint
// refuses it as unknown before it checks anything else.
func (f *registeredFlow) GetAuthCode(ctx context.Context, hash []byte) (*store.AuthCode, error) {
	c, err := f.Store.GetAuthCode(ctx, hash)
	if err != nil {
		return c, err
	}
	if err := f.registered(ctx, c.ClientID, c.CreatedAt); err != nil {
		return nil, fmt.Errorf("get auth code: %w", err)
	}
	return c, nil
}

// RedeemAuthCode implements store.AuthCodes. A code already used
// (ErrConflict) is checked too: one of a client gone or newer is not
// found, so its replay revokes nothing of the client added again.
func (f *registeredFlow) RedeemAuthCode(ctx context.Context, hash []byte, now time.Time) (*store.AuthCode, error) {
	c, err := f.Store.RedeemAuthCode(ctx, hash, now)
	if c == nil {
		return c, err
	}
	if err := f.registered(ctx, c.ClientID, c.CreatedAt); err != nil {
		return nil, fmt.Errorf("redeem auth code: %w", err)
	}
	return c, err
}

// CreateGrantTokensForCode implements store.Grants. A code already used
// (ErrUsed) is checked as in RedeemAuthCode: one of a client gone or
// newer is not found.
func (f *registeredFlow) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	c, err := f.Store.CreateGrantTokensForCode(ctx, codeHash, now, g, e, tokens...)
	if c == nil || err == nil {
		return c, err
	}
	if err := f.registered(ctx, c.ClientID, c.CreatedAt); err != nil {
		return nil, fmt.Errorf("create grant with tokens for code: %w", err)
	}
	return c, err
}

// requestRegistered is registered for request id, which it deletes if
// its client is newer. A request that is not there is left to the
// operation that follows to report.
func (f *registeredFlow) requestRegistered(ctx context.Context, id string, now time.Time) error {
	r, err := f.Store.GetAuthRequest(ctx, id, now)
	if err != nil {
		return nil
	}
	err = f.registered(ctx, r.ClientID, r.CreatedAt)
	if errors.Is(err, store.ErrNotFound) {
		_ = f.Store.DeleteAuthRequest(ctx, id)
	}
	return err
}

// registered returns nil if client id is registered and its registration
// is no newer than created; an error wrapping store.ErrNotFound if it is
// gone or newer.
func (f *registeredFlow) registered(ctx context.Context, id string, created time.Time) error {
	c, err := f.clients.GetClient(ctx, id)
	if err != nil {
		return err
	}
	if c.CreatedAt.After(created) {
		return fmt.Errorf("client %s was added again since: %w", id, store.ErrNotFound)
	}
	return nil
}
