package passkeyidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/varde-eid/varde/internal/store/flowmem"
)

func cursorProvider() *Provider {
	return &Provider{CursorKey: bytes.Repeat([]byte{6}, MinCursorKeySize)}
}

// pageCursor is the cursor a page links to for an event seq: older
// lines before it, or newer lines after it. Seqs start at 1.
func pageCursor(older bool, seq int64) (cursor, bool) {
	if older {
		return cursor{before: seq}, seq >= 1
	}
	return cursor{after: seq}, seq >= 1 && seq < math.MaxInt64
}

// FuzzCursor seals the cursor of any page a person can be linked to:
// opened for the same person it is what was sealed; for anyone else,
// or with any byte changed, it is errBadCursor.
func FuzzCursor(f *testing.F) {
	f.Add("p-1", "p-2", true, int64(noCursor), uint(0))
	f.Add("p-1", "", false, int64(1), uint(10))
	f.Add("", "p-1", true, int64(1), uint(40))
	f.Add("person", "person ", false, int64(math.MaxInt64-1), uint(3))
	p := cursorProvider()
	f.Fuzz(func(t *testing.T, person, other string, older bool, seq int64, flip uint) {
		c, ok := pageCursor(older, seq)
		if !ok {
			return
		}
		token, err := p.sealCursor(person, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.openCursor(person, token)
		if err != nil || got != c {
			t.Fatalf("sealed %+v for %q, opened %+v, %v", c, person, got, err)
		}
		if other != person {
			if got, err := p.openCursor(other, token); !errors.Is(err, errBadCursor) {
				t.Fatalf("sealed for %q, opened for %q: %+v, %v", person, other, got, err)
			}
		}
		changed := []byte(token)
		i := flip % uint(len(changed))
		if changed[i] == 'A' {
			changed[i] = 'B'
		} else {
			changed[i] = 'A'
		}
		if got, err := p.openCursor(person, string(changed)); !errors.Is(err, errBadCursor) {
			t.Fatalf("changed at %d, opened %+v, %v", i, got, err)
		}
	})
}

// FuzzParseCursor reads any query as an activity page's: a link in the
// clear is errOldCursor, anything else this server did not seal for the
// person is errBadCursor, and what it accepts is a cursor of a page.
func FuzzParseCursor(f *testing.F) {
	p := cursorProvider()
	for _, c := range []cursor{{before: 7}, {after: 7}, {before: noCursor}} {
		token, err := p.sealCursor("p-1", c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("p-1", url.Values{cursorParam: {token}}.Encode())
		f.Add("p-1", url.Values{cursorParam: {token, token}}.Encode())
		f.Add("p-2", url.Values{cursorParam: {token}, "lang": {"en"}}.Encode())
		f.Add("p-1", url.Values{cursorParam: {token + "="}}.Encode())
	}
	f.Add("p-1", "before=12")
	f.Add("p-1", "after=12&page=x")
	f.Add("p-1", "lang=da")
	f.Add("p-1", "page=")
	f.Fuzz(func(t *testing.T, person, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		c, err := p.parseCursor(person, q)
		switch {
		case errors.Is(err, errOldCursor):
			if !q.Has("before") && !q.Has("after") {
				t.Fatalf("%q is not a link in the clear", query)
			}
			return
		case errors.Is(err, errBadCursor):
			return
		case err != nil:
			t.Fatalf("%q: %v", query, err)
		}
		if !q.Has(cursorParam) {
			if c != (cursor{before: noCursor}) {
				t.Fatalf("%q without a cursor reads from %+v", query, c)
			}
			return
		}
		if _, ok := pageCursor(c.older(), max(c.before, c.after)); !ok || c.before != 0 && c.after != 0 {
			t.Fatalf("%q opened to %+v, no page's cursor", query, c)
		}
	})
}

// FuzzRenameDraft keeps any typed name as the rename draft does: taken
// with its token and binding it is what was kept, and once only; any
// other token or person finds nothing (errNoTicket) and leaves it for
// its owner.
func FuzzRenameDraft(f *testing.F) {
	f.Add("p-1", "Min telefon", "cred-1", "p-2", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("p-1", "\xff\x00 æøå 🔑", "", "p-1", "")
	f.Add("", "x", "c", "", "short")
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	p := &Provider{Challenges: flowmem.New(flowmem.Options{}), Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, person, name, credential, other, guess string) {
		if !utf8.ValidString(credential) {
			return // a passkey's ID is base64url: keepDraft's form has no other
		}
		// keepDraft keeps the name as valid UTF-8.
		name = strings.ToValidUTF8(name, "")
		want := renameDraft{Credential: credential, Name: name, Expires: now.Add(draftLifetime)}
		token, err := p.putTicket(ctx, "rename-draft", person, want, draftLifetime)
		if err != nil {
			t.Fatal(err)
		}
		if guess != token {
			var d renameDraft
			if err := p.takeTicket(ctx, "rename-draft", person, guess, &d); !errors.Is(err, errNoTicket) {
				t.Fatalf("token %q took %+v, %v", guess, d, err)
			}
		}
		if other != person {
			var d renameDraft
			if err := p.takeTicket(ctx, "rename-draft", other, token, &d); !errors.Is(err, errNoTicket) {
				t.Fatalf("%q took %q's draft: %+v, %v", other, person, d, err)
			}
		}
		var got renameDraft
		if err := p.takeTicket(ctx, "rename-draft", person, token, &got); err != nil {
			t.Fatalf("take: %v", err)
		}
		if got.Credential != want.Credential || got.Name != want.Name || !got.Expires.Equal(want.Expires) {
			t.Fatalf("kept %+v, took %+v", want, got)
		}
		if err := p.takeTicket(ctx, "rename-draft", person, token, &got); !errors.Is(err, errNoTicket) {
			t.Fatalf("taken twice: %v", err)
		}
	})
}

// FuzzKnownBrowser reads any pair of form cookie and recovery mark: the
// browser is known only with the form cookie the mark was made for, and
// a mark whose time and MAC are the ones made for it, still in time.
func FuzzKnownBrowser(f *testing.F) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	p := &Provider{BrowserKey: bytes.Repeat([]byte{7}, MinBrowserKeySize), Now: func() time.Time { return now }}
	const form = "form-cookie-value"
	w := httptest.NewRecorder()
	if err := p.knowBrowser(w, form); err != nil {
		f.Fatal(err)
	}
	made := w.Result().Cookies()[0].Value
	madeExp, madeMAC, _ := strings.Cut(made, ".")
	r := httptest.NewRequest(http.MethodGet, "/recover", nil)
	r.AddCookie(&http.Cookie{Name: p.formCookieName(), Value: form})
	r.AddCookie(&http.Cookie{Name: p.knownCookieName(), Value: made})
	if known, err := p.browserKnown(r); !known || err != nil {
		f.Fatalf("the mark made is not known: %v", err)
	}
	f.Add(form, made)
	f.Add(form+"x", made)
	f.Add(form, "+"+made)
	f.Add(form, made+"A")
	f.Add("", "0.")
	f.Add(form, "99999999999999999999."+madeMAC)
	f.Fuzz(func(t *testing.T, formValue, mark string) {
		r := httptest.NewRequest(http.MethodGet, "/recover", nil)
		r.AddCookie(&http.Cookie{Name: p.formCookieName(), Value: formValue})
		r.Header.Add("Cookie", p.knownCookieName()+"="+mark)
		known, err := p.browserKnown(r)
		if err != nil {
			t.Fatalf("%q, %q: %v", formValue, mark, err)
		}
		if !known {
			return
		}
		c, err := r.Cookie(p.knownCookieName())
		if err != nil {
			t.Fatalf("known without a mark: %v", err)
		}
		exp, mac, _ := strings.Cut(c.Value, ".")
		gotMAC, _ := base64.RawURLEncoding.DecodeString(mac)
		wantMAC, _ := base64.RawURLEncoding.DecodeString(madeMAC)
		if formBinding(p.formCookieValue(r)) != formBinding(form) || exp != madeExp || !bytes.Equal(gotMAC, wantMAC) {
			t.Fatalf("known with form cookie %q and mark %q", formValue, mark)
		}
	})
}
