package browsertest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/browsertest"
)

// TestSettledClickAcrossRenewedNodeIDs: a click on a button found while
// its page is still loading, whose node id Chromium renews (when the
// page's deferred script has run) before the click reaches it, fails in
// chromedp alone with "Could not find node with given id" and, through
// Do, finds the button again and clicks it once. The test holds the
// deferred script back and lets it go between finding and clicking, so
// the race that a loaded machine hits now and then happens every time.
func TestSettledClickAcrossRenewedNodeIDs(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	gates := map[string]chan struct{}{"plain": make(chan struct{}), "settled": make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gate, ok := gates[r.URL.Query().Get("page")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/late.js" {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.body.dataset.late = "ran";`)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Late</title></head><body>
<button id="b" onclick="this.dataset.clicks = Number(this.dataset.clicks || 0) + 1">Go</button>
<script src="/late.js?page=%s" defer></script></body></html>`, r.URL.Query().Get("page"))
	}))
	t.Cleanup(srv.Close)
	// Clicks the button once found, after letting the page's script
	// run and waiting for Chromium to say the page's node ids are
	// renewed; only the first time it finds the button.
	clickAfterRenewal := func(page string) chromedp.Action[chromedp.Void] {
		released := false
		return chromedp.Click(`#b`, chromedp.After(func(ctx context.Context, tg *chromedp.Target, _ []*chromedp.Node) error {
			if released {
				return nil
			}
			released = true
			_, err := chromedp.WaitEvent(dom.DocumentUpdated, nil, chromedp.Func(func(context.Context, *chromedp.Target) error {
				close(gates[page])
				return nil
			}))(ctx, tg)
			return err
		}))
	}
	// open starts loading the page without waiting for it to load, and
	// waits for the button, which is there before the script runs.
	open := func(t *testing.T, name string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: srv.URL + "/?page=" + name})
				return err
			}),
			chromedp.WaitVisible(`#b`),
		)
		if err != nil {
			t.Fatalf("open the page: %v", err)
		}
	}
	clicks := func(t *testing.T) string {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#b").dataset.clicks || "0") + " " + (document.body.dataset.late || "")`))
		if err != nil {
			t.Fatalf("count clicks: %v", err)
		}
		return got
	}

	t.Run("chromedp alone", func(t *testing.T) {
		open(t, "plain")
		err := chromedp.Do(ctx, clickAfterRenewal("plain"))
		if !browsertest.NodeGone(err) {
			t.Fatalf("click on a node whose id was renewed: %v, want Chromium's node-not-found error", err)
		}
		if got := clicks(t); got != "0 ran" {
			t.Errorf("clicks and script after the failed click = %q, want %q", got, "0 ran")
		}
	})
	t.Run("settled", func(t *testing.T) {
		open(t, "settled")
		if err := browsertest.Do(ctx, clickAfterRenewal("settled")); err != nil {
			t.Fatalf("click through Do: %v", err)
		}
		if got := clicks(t); got != "1 ran" {
			t.Errorf("clicks and script after the click = %q, want %q", got, "1 ran")
		}
	})
}

// TestNodeGone: only Chromium's answers about node ids it no longer
// knows, or nodes no longer in the page, count, however wrapped.
func TestNodeGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("click: %w", &cdproto.Error{Code: -32000, Message: "Could not find node with given id"}), true},
		{&cdproto.Error{Code: -32000, Message: "No node with given id found"}, true},
		{&cdproto.Error{Code: -32000, Message: "Node with given id does not belong to the document"}, true},
		{&cdproto.Error{Code: -32000, Message: "Node is detached from document"}, true},
		{&cdproto.Error{Code: -32000, Message: "Could not compute content quads."}, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := browsertest.NodeGone(tc.err); got != tc.want {
			t.Errorf("NodeGone(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestLoaded: Loaded waits for the page's load event, held here by an
// image the server answers only when the test lets it, and the page is
// complete when it returns.
func TestLoaded(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	asked, gate := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held.gif" {
			close(asked)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			w.Header().Set("Content-Type", "image/gif")
			_, _ = w.Write([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Held</title></head><body><p>Held <img src="/held.gif" alt=""></p></body></html>`)
	}))
	t.Cleanup(srv.Close)
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: srv.URL + "/"})
		return err
	}))
	if err != nil {
		t.Fatalf("open the page: %v", err)
	}
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatalf("the page never asked for its image: %v", ctx.Err())
	}
	done := make(chan error, 1)
	go func() { done <- browsertest.Do(ctx, browsertest.Loaded()) }()
	select {
	case err := <-done:
		t.Fatalf("Loaded returned (%v) while the page's image was held", err)
	default:
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("Loaded: %v", err)
	}
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState`))
	if err != nil || state != "complete" {
		t.Errorf("document.readyState after Loaded = %q (%v), want complete", state, err)
	}
}

// TestTrace: the trace of a tab names each document it loaded and why,
// here a page the server redirects to a second that its script replaces
// with a third, and each action of Do, and still answers once the
// step's context has ended.
func TestTrace(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/first":
			http.Redirect(w, r, "/second", http.StatusSeeOther)
		case "/second":
			fmt.Fprint(w, `<!doctype html><html lang="en"><title>Second</title><script>location.replace("/third")</script></html>`)
		case "/third":
			fmt.Fprint(w, `<!doctype html><html lang="en"><title>Third</title><p id="third">Third</p></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	step, cancel := context.WithCancel(ctx)
	err := browsertest.Do(step, chromedp.Navigate(srv.URL+"/first"), chromedp.WaitVisible(chromedp.ID("third")))
	cancel()
	if err != nil {
		t.Fatalf("open the pages: %v", err)
	}
	got := browsertest.Trace(step)
	t.Logf("trace:\n%s", got)
	for _, want := range []string{
		"GET " + srv.URL + "/first", "response", "GET " + srv.URL + "/second",
		"page asks to navigate (scriptInitiated) to " + srv.URL + "/third", "GET " + srv.URL + "/third",
		"lifecycle load", "load event", "action 1 of 2 begins", "action 1 of 2 done", "action 2 of 2 done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
	boom := errors.New("boom")
	if err := browsertest.Do(ctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return boom })); !errors.Is(err, boom) {
		t.Fatalf("Do of a failing action: %v", err)
	}
	if got := browsertest.Trace(ctx); !strings.HasSuffix(got, "action 1 of 1 fails: boom") {
		t.Errorf("trace after a failing action ends:\n%s", got[strings.LastIndex(got, "\n")+1:])
	}
	if browsertest.Trace(context.Background()) != "" {
		t.Error("a context not from Start has a trace")
	}
}
