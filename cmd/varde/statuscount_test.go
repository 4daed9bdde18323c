package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/status/statuspage"
	"github.com/varde-eid/varde/internal/store"
)

// TestStatusCountsAFailedEIDLoginOnce: a simulated eID that fails every
// login (its PAR endpoint answers 500) opens an incident from those
// failures alone. Each failed login is one failed attempt and each
// browser one person, although the eID's own code and the broker each
// audit the failure; and callbacks with a made-up, missing or repeated
// state, which anyone can send, count no one.
func TestStatusCountsAFailedEIDLoginOnce(t *testing.T) {
	d, issuer := startTunedDemo(t, demoTuning{Config: func(c *config.Config) {
		c.Health.Interval, c.Health.ProbeTimeout, c.Health.SlowProbe = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		c.Status.OpenAfter, c.Status.ResolveAfter = time.Second, time.Second
	}})
	ctx := context.Background()
	var bankid *providersim.Sim
	for _, s := range d.sims {
		if s.ID() == "bankid" {
			bankid = s
		}
	}
	rp := newFedRPFor(t, d, issuer, "rp-count", nil)
	waitFor(t, "bankid up", 10*time.Second, func() bool { return d.app.Health.State("bankid") == health.Up })
	faultAt := time.Now()
	if _, err := bankid.SetFault(providersim.Fault{Mode: providersim.ModeFailing}); err != nil {
		t.Fatal(err)
	}

	// Each person tries BankID until Varde stops offering it; the
	// first tries twice.
	var people, failed int64
	try := func(p *fedRP) bool {
		req := p.start("s", "n", "v-0123456789012345678901234567890123456789012")
		res, _ := p.get(issuer + "/login/start?" + url.Values{"req": {req}, "provider": {"bankid"}}.Encode())
		if res.Request.URL.Query().Get("err") != "failed" {
			return false
		}
		failed++
		return true
	}
	for d.app.Health.State("bankid") == health.Up && people < 30 {
		p := rp.browser()
		if !try(p) {
			break
		}
		people++
		if people == 1 {
			try(p)
		}
	}
	if people == 0 || d.app.Health.State("bankid") == health.Up {
		t.Fatalf("bankid %s after %d people failed", d.app.Health.State("bankid"), people)
	}
	waitOpened(t, d, "bankid", 10*time.Second)
	// Forged callbacks during the outage, each from another browser.
	cb := issuer + oidcup.CallbackPath("bankid")
	for _, q := range []string{"?state=made-up&code=x", "?code=x", "?state=a&state=b"} {
		rp.browser().get(cb + q)
	}

	// Counted as the engine counts the open incident, over the outage
	// so far.
	got, err := d.app.Status.Affected(ctx, []string{"bankid"}, faultAt, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.People != people || got.FailedAttempts != failed {
		t.Errorf("people affected %d, failed attempts %d; want %d, %d", got.People, got.FailedAttempts, people, failed)
	}
}

// TestStatusReportOfANodeThatRecordedNothing: each node reports its own
// view, so a report made with the configuration of a node that recorded
// no health checks in the store measures nothing; varde status report
// and export say so, and how to get the view of a node that ran, rather
// than hand over figures with no outage in them.
func TestStatusReportOfANodeThatRecordedNothing(t *testing.T) {
	cfgPath := adminConfig(t)
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	quarter := statuspage.QuarterOf(time.Now(), time.UTC)
	inStore(t, filepath.Dir(cfgPath), func(ctx context.Context, st store.Store) error {
		err := st.RecordHealthTransitions(ctx, []*store.HealthTransition{
			{Component: "store", Node: "n1", Time: at, From: store.HealthUnknown, To: store.HealthUp, Reason: "probes_ok", Since: at},
			{Component: "store", Node: "n1", Time: at.Add(time.Hour), From: store.HealthUp, To: store.HealthDown, Reason: "probe_failures", Since: at.Add(time.Hour)},
		})
		if err != nil {
			return err
		}
		return st.RecordProbes(ctx, []*store.ProbeRecord{{Component: "store", Node: "n1", Time: at.Add(time.Hour), State: store.HealthDown}})
	})
	const warning = `varde: node "n2" (this configuration's) has recorded no health checks in this store`
	appendFile(t, cfgPath, "node: n2\n")
	if _, words := statusReport(t, cfgPath, quarter); !strings.Contains(words, warning) || !strings.Contains(words, "varde nodes list") {
		t.Errorf("stderr %q, want %q and where to find the nodes that ran", words, warning)
	}
	var out, words bytes.Buffer
	if err := run([]string{"status", "export", "--config", cfgPath, t.TempDir()}, &out, &words); err != nil || !strings.Contains(words.String(), warning) {
		t.Errorf("export: %v, stderr %q, want %q", err, words.String(), warning)
	}
	cfgPath = strings.TrimSuffix(cfgPath, "varde.yaml") + "n1.yaml"
	raw, err := os.ReadFile(strings.TrimSuffix(cfgPath, "n1.yaml") + "varde.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, bytes.Replace(raw, []byte("node: n2"), []byte("node: n1"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, words := statusReport(t, cfgPath, quarter); strings.Contains(words, "recorded no health checks") || rep.Total.DowntimeMinutes == 0 {
		t.Errorf("n1's report: downtime %v min, stderr %q", rep.Total.DowntimeMinutes, words)
	}
}
