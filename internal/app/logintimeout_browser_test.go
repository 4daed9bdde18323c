package app_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/config"
)

// TestBrowserLoginTimeout: in Chromium, a service's login whose request
// lives 30 s (oidc.auth_request_lifetime) says until when on the login
// page and warns 15 s before the end in a modal dialog with its one
// button focused; Enter gives more time. Past the end the login first
// had, the warning comes again and gives more time again, and the
// person logs in on the passkey login page (a test person with a
// passkey): the service gets a code that x/oauth2 redeems at the token
// endpoint. A login left alone ends, and its dialog says so (ADR 50,
// WCAG 2.2 SC 2.2.1).
func TestBrowserLoginTimeout(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	const lifetime = 30 * time.Second
	n := startNodeAtPath(t, "", func(c *config.Config) { c.OIDC.AuthRequestLifetime = lifetime })
	codes := make(chan string, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		_, _ = w.Write([]byte("back at the service"))
	}))
	t.Cleanup(rp.Close)
	oc := shopClient(t, n, rp.URL+"/callback")
	verifier := oauth2.GenerateVerifier()
	start := oc.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))

	dialog := `dialog#login-timeout`
	keep := dialog + ` [data-role=keep]`
	focusedKeep := `document.activeElement === document.querySelector("#login-timeout [data-role=keep]")`
	var loaded time.Time
	var focused, again bool
	var status string
	err := browsertest.Do(ctx,
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(new(webauthn.AuthenticatorID)),
		chromedp.Navigate(start),
		chromedp.WaitVisible(`#login-timeout-info`),
		chromedp.Func(func(context.Context, *chromedp.Target) error { loaded = time.Now(); return nil }),
		chromedp.WaitVisible(dialog+`[open]`),
		into(&focused, chromedp.Evaluate[bool](focusedKeep)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitNotVisible(dialog),
		into(&status, chromedp.Poll[string](`document.querySelector("#login-timeout-status").textContent`)),
	)
	if err != nil {
		t.Fatalf("warning on the login page: %v", err)
	}
	if !focused || status != "You have more time to log in." {
		t.Errorf("warning: focus on its button %v, status %q", focused, status)
	}
	// Past the end the login had, the warning comes again, and gives
	// more time again; the login goes on, on the passkey login page.
	time.Sleep(time.Until(loaded.Add(lifetime + time.Second)))
	err = browsertest.Do(ctx, append([]chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(dialog + `[open]`),
		into(&again, chromedp.Evaluate[bool](focusedKeep)),
		chromedp.Click(keep),
		chromedp.WaitNotVisible(dialog),
		chromedp.Click(`#provider-passkey`),
		chromedp.WaitVisible(`#login-timeout-info`),
	}, enrolTestPerson()...)...)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("login past the first end: %v (at %s)", err, loc)
	}
	if !again {
		t.Error("the second warning: focus not on its button")
	}
	var code string
	select {
	case code = <-codes:
	case <-time.After(10 * time.Second):
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("the service got no code (browser at %s)", loc)
	}
	tok, err := oc.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil || tok.Extra("id_token") == nil {
		t.Fatalf("redeem the code: %v", err)
	}

	// A login left alone ends: the dialog says so and to start again
	// from the service, with the focus on Close; the page, loaded
	// again, says the login ran out of time.
	var closeFocused bool
	var title, after string
	err = browsertest.Do(ctx,
		// prompt=login: the person is logged in now, and would otherwise
		// go straight back to the service.
		chromedp.Navigate(oc.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login"))),
		chromedp.WaitVisible(`#login-timeout-info`),
		chromedp.WaitVisible(dialog+` [data-role=ended]`),
		into(&closeFocused, chromedp.Evaluate[bool](`document.activeElement === document.querySelector("#login-timeout [data-role=close]")`)),
		into(&title, chromedp.Text(`#login-timeout-title`)),
		chromedp.Reload(),
		into(&after, chromedp.Text(`main h1`)),
	)
	if err != nil {
		t.Fatalf("a login left alone: %v", err)
	}
	if !closeFocused || title != "This login has ended" {
		t.Errorf("ended: focus on Close %v, title %q", closeFocused, title)
	}
	if after != "This login can no longer be used" {
		t.Errorf("the login page after the end: %q, want the page saying it ran out of time", after)
	}
}

// into runs a and keeps its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v, err := a(ctx, t)
		*dst = v
		return err
	})
}
