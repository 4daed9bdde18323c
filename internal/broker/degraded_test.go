package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// TestDegradedModeEndsWhileThePersonChooses: a person offered a lower
// level under the client's degraded-mode policy who picks it just as a
// way to log in that reaches the level asked for comes back is not told
// the request was not understood, nor that the way they logged in is
// not secure enough as if they had chosen wrong: they are back on the
// choice, for the same login, which says the usual way works again and
// offers it. The audit keeps the refusal's reason.
func TestDegradedModeEndsWhileThePersonChooses(t *testing.T) {
	f := newFixture(t)
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, DegradedLevel: "substantial"}))
	f.request(t, "r1", assurance.ACRHigh)
	f.b.Health = downMonitor(t, f, "strong")
	if body := f.get("/login?req=r1").Body.String(); !strings.Contains(body, `id="degraded"`) || !strings.Contains(body, `id="provider-weak" href=`) {
		t.Fatalf("with strong down, the page does not offer the lower level:\n%s", body)
	}

	// Strong is back before the person's choice reaches Varde.
	f.b.Health = downMonitor(t, f)
	w := f.get("/login/start?req=r1&provider=weak")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?err=restored&req=r1" {
		t.Fatalf("start at the lower level once strong is back: %d to %q, want 303 to the choice saying the usual way is back\n%s",
			w.Code, w.Header().Get("Location"), w.Body.String())
	}
	restored := func(next string) {
		t.Helper()
		w := f.get(next)
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(body, "The usual way to log in to this service works again") ||
			!strings.Contains(body, `id="provider-strong" href=`) || strings.Contains(body, `id="provider-weak"`) {
			t.Errorf("%s: %d, want the choice saying the usual way works again and offering it:\n%s", next, w.Code, body)
		}
	}
	restored(w.Header().Get("Location"))

	// The person had already logged in at the lower level when strong
	// came back: refused, as the policy says, with the same words.
	next, err, w := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial})
	if err != nil || next != "/login?err=restored&req=r1" || len(sessionCookies(w)) != 0 {
		t.Fatalf("finish at the lower level once strong is back: %q, %v, cookies %v", next, err, sessionCookies(w))
	}
	restored(next)
	ev := f.events(t)
	if last := ev[len(ev)-1]; last.Result != store.ResultFailure || last.Reason != "insufficient_level" {
		t.Errorf("audit: %+v, want the failure as insufficient_level", last)
	}

	// Without a degraded-mode policy a lower login is the person's
	// wrong choice, and the page says so as before.
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}}))
	if next, err, _ := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial}); err != nil || next != "/login?err=level&req=r1" {
		t.Errorf("finish at the lower level without a policy: %q, %v", next, err)
	}
	if w := f.get("/login/start?req=r1&provider=weak"); w.Code != http.StatusBadRequest {
		t.Errorf("start at the lower level without a policy: %d, want 400", w.Code)
	}
}

// TestDegradedLoginsCounted: a login let through below the level asked
// for under the client's degraded-mode policy is counted apart, by the
// provider and the level it reached, so an operator sees how many
// people logged in degraded during an outage; a login at the level
// asked for is not.
func TestDegradedLoginsCounted(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	f.b.Metrics = broker.NewMetrics(reg)
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, DegradedLevel: "substantial"}))
	f.b.Health = downMonitor(t, f, "strong")
	f.request(t, "r1", assurance.ACRHigh)
	f.request(t, "r2", assurance.ACRSubstantial)
	for _, id := range []string{"r1", "r2"} {
		if _, err, w := finish(f, id, provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial}); err != nil || len(sessionCookies(w)) == 0 {
			t.Fatalf("%s: login at substantial: %v", id, err)
		}
	}
	families, err := reg.Gather()
	must(t, err)
	var got []string
	for _, mf := range families {
		if mf.GetName() != "varde_logins_degraded_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			got = append(got, fmt.Sprintf("%s%v", labels, m.GetCounter().GetValue()))
		}
	}
	if want := []string{"acr=substantial provider=weak 1"}; !slices.Equal(got, want) {
		t.Errorf("varde_logins_degraded_total: %q, want %q (r1's; r2 asked for substantial)", got, want)
	}
}

// enrolledProvider is a staticProvider that logs in only persons who
// enrolled with it at Varde, as the passkey provider does.
type enrolledProvider struct{ staticProvider }

func (p enrolledProvider) Info() provider.Info {
	info := p.staticProvider.Info()
	info.Enrolled = true
	return info
}

// TestDegradedModeDoesNotWaitForEnrolledProviders: a provider that logs
// in only the persons who enrolled with it (the passkey provider) is no
// way in for everyone, so while every eID that reaches the level asked
// for is down, a client's degraded-mode policy applies though it is up:
// it is offered still, and a login through it at the level asked for is
// not degraded. With no eID that reaches the level at all, the policy
// never applies (it is for an outage), and with the enrolled provider
// down too, it applies as before.
func TestDegradedModeDoesNotWaitForEnrolledProviders(t *testing.T) {
	f := newFixture(t)
	f.b.Providers = append(f.b.Providers, enrolledProvider{staticProvider{"passkey", assurance.High}})
	put := func(providers ...string) {
		must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://bank.example/cb"}, DegradedLevel: "substantial", Providers: providers}))
	}
	put()
	f.request(t, "r1", assurance.ACRHigh)
	f.b.Health = downMonitor(t, f, "strong")
	body := f.get("/login?req=r1").Body.String()
	if !strings.Contains(body, `id="degraded"`) || !strings.Contains(body, `id="provider-weak" href=`) || !strings.Contains(body, `id="provider-passkey" href=`) {
		t.Fatalf("strong down, passkey up: the page does not offer the lower level beside the passkey:\n%s", body)
	}
	if s := finishSession(t, f, "r1", provider.Result{Provider: "passkey", PersonID: "p1", Level: assurance.High}); s.Degraded || s.Level != "high" {
		t.Errorf("passkey login at high during the outage: %+v, want high, not degraded", s)
	}
	f.request(t, "r2", assurance.ACRHigh)
	if s := finishSession(t, f, "r2", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial}); !s.Degraded {
		t.Errorf("weak login at substantial during the outage: %+v, want degraded", s)
	}

	// No eID the client accepts reaches high: nothing is lowered.
	put("weak", "passkey")
	f.request(t, "r3", assurance.ACRHigh)
	f.b.Health = downMonitor(t, f)
	if body := f.get("/login?req=r3").Body.String(); strings.Contains(body, `id="degraded"`) || strings.Contains(body, `id="provider-weak"`) {
		t.Errorf("only the passkey reaches high: the lower level is offered:\n%s", body)
	}

	// Everything that reaches high down, the passkey too: lowered.
	put()
	f.b.Health = downMonitor(t, f, "strong", "passkey")
	if body := f.get("/login?req=r3").Body.String(); !strings.Contains(body, `id="degraded"`) || !strings.Contains(body, `id="provider-weak" href=`) {
		t.Errorf("strong and passkey down: the lower level is not offered:\n%s", body)
	}
}
