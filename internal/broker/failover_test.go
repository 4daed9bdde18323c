package broker_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/provider"
)

// TestFailedProviderListedLast: a person whose login through a provider
// failed is back on the choice for the same login, where the others
// come first and the one that failed comes last, still offered (a
// passing fault, or the only way the service accepts) and marked as
// having just failed, so the person does not take it again first
// while its health has not caught up. Only in the browser the failure
// happened in: the same address opened elsewhere is the plain page. A
// failure of Varde's own does not mark the provider.
func TestFailedProviderListedLast(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	next := f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "weak", "upstream_error")
	if next != "/login?err=failed&from=weak&req=r1" {
		t.Fatalf("next = %q, want the choice naming the provider that failed", next)
	}
	body := f.get(next).Body.String()
	weak, strong := strings.Index(body, `id="provider-weak" href=`), strings.Index(body, `id="provider-strong" href=`)
	if weak < 0 || strong < 0 || weak < strong || !strings.Contains(body, `<span class="hint" id="state-weak">Did not work a moment ago</span>`) {
		t.Errorf("the provider that failed is not offered last and marked:\n%s", body)
	}

	// Opened in another browser, the address is the plain choice.
	page := httptest.NewRecorder()
	f.mux.ServeHTTP(page, httptest.NewRequest(http.MethodGet, next, nil))
	plain := page.Body.String()
	if weak, strong := strings.Index(plain, `id="provider-weak"`), strings.Index(plain, `id="provider-strong"`); weak > strong || strings.Contains(plain, "Did not work") {
		t.Errorf("another browser sees the failure:\n%s", plain)
	}

	for _, reason := range []string{provider.ReasonNodeError, provider.ReasonCancelled} {
		next := f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "weak", reason)
		if strings.Contains(next, "from=") {
			t.Errorf("%s: next %q marks the provider", reason, next)
		}
	}
}
