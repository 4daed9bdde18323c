package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
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
