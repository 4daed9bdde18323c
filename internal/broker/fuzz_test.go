package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/broker"
)

// FuzzBrowserMark reads any browser cookie: the mark it gives is none,
// or one the broker could have made, 128 bits written once in
// base64url; one it would not make is not a mark.
func FuzzBrowserMark(f *testing.F) {
	f.Add(keepMark)
	f.Add("AAAAAAAAAAAAAAAAAAAAAB")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("AAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	marks := (&broker.Broker{}).BrowserMarks()
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.Header["Cookie"] = []string{broker.BrowserCookie + "=" + value}
		mark := marks.Of(r)
		if mark == "" {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(mark)
		if err != nil || len(raw) != 16 || base64.RawURLEncoding.EncodeToString(raw) != mark {
			t.Fatalf("cookie %q read as the mark %q", value, mark)
		}
	})
}

// FuzzKeepLogin posts any JSON keep from any browser with any token:
// only the browser the login is bound to, with its page's token, keeps
// it (200); anything else gets a JSON error the dialog knows, and the
// login's end stays where it was.
func FuzzKeepLogin(f *testing.F) {
	fx := newFixture(f)
	ctx := context.Background()
	fx.boundRequest(f, "r1")
	token := fx.pageTimeout(f, "/login?req=r1", keepMark)["keep-csrf"]
	if token == "" {
		f.Fatal("no keep token on the login page")
	}
	if w := fx.keep(keepMark, token, `{"req":"r1"}`); w.Code != http.StatusOK {
		f.Fatalf("the page's own keep: %d %s", w.Code, w.Body)
	}
	f.Add(keepMark, token, `{"req":"r1","lang":"nb"}`)
	f.Add(keepMark, token, `{"req":"r2"}`)
	f.Add(otherMark, token, `{"req":"r1"}`)
	f.Add(keepMark, token+"x", `{"req":"r1"}`)
	f.Add(keepMark, token, `{"req":"r1"`)
	f.Add("", "", `{"req":""}`)
	f.Add(keepMark, token, `[1,2]`)
	known := map[string]bool{"bad_request": true, "login": true, "csrf": true}
	f.Fuzz(func(t *testing.T, mark, csrf, body string) {
		before, err := fx.st.GetAuthRequest(ctx, "r1", fx.now)
		must(t, err)
		w := fx.keep(mark, csrf, body)
		after, err := fx.st.GetAuthRequest(ctx, "r1", fx.now)
		must(t, err)
		var a keepAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("status %d, not JSON: %q", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			var in struct{ Req string }
			_ = json.NewDecoder(strings.NewReader(body)).Decode(&in)
			if mark != keepMark || in.Req != "r1" || a.EndsIn <= 0 {
				t.Fatalf("kept from %q with %q: %+v", mark, body, a)
			}
			return
		}
		if !known[a.Error] || w.Code < 400 || w.Code >= 500 {
			t.Fatalf("status %d, %q", w.Code, w.Body)
		}
		if !after.ExpiresAt.Equal(before.ExpiresAt) {
			t.Fatalf("refused (%d %s), yet moved the end from %v to %v", w.Code, a.Error, before.ExpiresAt, after.ExpiresAt)
		}
	})
}
