package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// holdIn is Hold for attempt, asked by a page in the browser marked
// mark, for the provider "strong" at level High.
func (f *fixture) holdIn(t *testing.T, mark, attempt string) (provider.Hold, *http.Request) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/passkey/recover", nil)
	r.AddCookie(&http.Cookie{Name: broker.BrowserCookie, Value: mark})
	h, err := f.b.Hold(r, attempt, "strong", assurance.High, "en")
	must(t, err)
	return h, r
}

// TestHoldFinishesOnItsRead: what Hold answers for a relying party's
// login (held, acceptable, its end) comes with a Finish that decides
// on the same read, as Finish would on a read of its own: the login
// ends while that read's end is ahead, and past it only if the store
// says a keep moved the end on; another browser's hold says so
// (Elsewhere) and is no key to the login.
func TestHoldFinishesOnItsRead(t *testing.T) {
	res := provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High}
	tests := []struct {
		name string
		mark string
		// later is what happens between the hold and the finish.
		later      func(f *fixture)
		next, why  string
		wantsTimer bool
	}{
		{"within its end", keepMark, func(*fixture) {}, "/authorize/resume?req=r1", "", true},
		{"past its end, moved on meanwhile", keepMark, func(f *fixture) {
			must(t, f.st.ExtendAuthRequest(context.Background(), "r1", oidc.BrowserBinding(keepMark), f.now.Add(20*time.Minute), f.now, broker.MaxLoginTime))
			f.now = f.now.Add(15 * time.Minute)
		}, "/authorize/resume?req=r1", "", true},
		{"past its end", keepMark, func(f *fixture) { f.now = f.now.Add(15 * time.Minute) },
			"/login?req=r1", broker.ReasonAttemptExpired, true},
		{"in another browser", otherMark, func(*fixture) {}, "/login?req=r1", broker.ReasonOtherBrowser, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.boundRequest(t, "r1")
			h, r := f.holdIn(t, tt.mark, "r1")
			if !h.Pending || h.Accepts != tt.wantsTimer || (h.Timeout != nil) != tt.wantsTimer || h.Finish == nil || h.Elsewhere != (tt.mark != keepMark) {
				t.Fatalf("hold = pending %v, accepts %v, timeout %v, finish %v, elsewhere %v", h.Pending, h.Accepts, h.Timeout != nil, h.Finish != nil, h.Elsewhere)
			}
			tt.later(f)
			w := httptest.NewRecorder()
			next, err := h.Finish(w, r, res)
			must(t, err)
			if next != tt.next {
				t.Errorf("next = %q, want %q", next, tt.next)
			}
			if started := len(sessionCookies(w)) != 0; started != (tt.why == "") {
				t.Errorf("session started: %v", started)
			}
			ev := f.events(t)
			last := ev[len(ev)-1]
			if tt.why != "" && (last.Result != store.ResultFailure || last.Reason != tt.why) {
				t.Errorf("audit = %+v, want a failure with reason %s", last, tt.why)
			}
		})
	}
}

// TestHoldOfNoLogin: a login nobody holds, or a link's, is not held,
// and comes with no Finish; the account login is held, with no time
// limit of its own.
func TestHoldOfNoLogin(t *testing.T) {
	f := newFixture(t)
	for _, attempt := range []string{"unknown", "link:abc"} {
		if h, _ := f.holdIn(t, keepMark, attempt); h.Pending || h.Accepts || h.Timeout != nil || h.Finish != nil {
			t.Errorf("%s: hold = %+v, want nothing held", attempt, h)
		}
	}
	if h, _ := f.holdIn(t, keepMark, broker.AccountAttempt); !h.Pending || !h.Accepts || h.Timeout != nil {
		t.Errorf("account login: hold = %+v, want held, accepted, no time limit", h)
	}
}
