package browsertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// traceLen is how many of a tab's last navigation events Trace shows:
// enough for the few pages before a step that hung.
const traceLen = 60

// trace keeps a tab's last navigation events: what the page was doing
// when a step stopped, which a test cannot ask a tab that no longer
// answers.
type trace struct {
	start time.Time
	mu    sync.Mutex
	lines []string
}

type traceKey struct{}

// Record starts keeping the navigation events of the tab of ctx, a
// chromedp context whose tab runs, and returns ctx carrying them for
// Trace. Start does it; a test that starts its browser itself calls it.
func Record(ctx context.Context) (context.Context, error) {
	tr := &trace{start: time.Now()}
	// The listener runs on chromedp's event loop: it only formats and
	// appends, and never blocks.
	if err := chromedp.Listen(ctx, func(ev any) {
		if line := describe(ev); line != "" {
			tr.add(line)
		}
	}); err != nil {
		return ctx, fmt.Errorf("listen to the tab's events: %w", err)
	}
	return context.WithValue(ctx, traceKey{}, tr), nil
}

func (tr *trace) add(line string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.lines) == traceLen {
		tr.lines = append(tr.lines[:0], tr.lines[1:]...)
	}
	tr.lines = append(tr.lines, fmt.Sprintf("%8.3fs %s", time.Since(tr.start).Seconds(), line))
}

// step returns a, noting in the trace when it begins and how it ends,
// as action n of the total; a itself for a tab without a trace.
func (tr *trace) step(n, total int, a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	if tr == nil {
		return a
	}
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		tr.add(fmt.Sprintf("action %d of %d begins", n, total))
		v, err := a(ctx, t)
		if err != nil {
			tr.add(fmt.Sprintf("action %d of %d fails: %v", n, total, err))
		} else {
			tr.add(fmt.Sprintf("action %d of %d done", n, total))
		}
		return v, err
	}
}

// Trace returns the last navigation events of the tab of ctx (a context
// from Start or Record, or one made from it), one a line with the
// seconds since recording started: the documents requested and their
// answers, the navigations the page asked for, lifecycle events, script
// errors, and the actions of Do as they begin and end. It reads only what was recorded, so it works when the
// tab or the context no longer answers; "" for a context from neither.
func Trace(ctx context.Context) string {
	tr, _ := ctx.Value(traceKey{}).(*trace)
	if tr == nil {
		return ""
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

// describe is one line about ev, or "" for an event that says nothing
// about where the page is going: sub-resources, paints, DOM changes,
// console.
func describe(ev any) string {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument {
			return ""
		}
		return fmt.Sprintf("request %s %s %s (loader %s)", ev.RequestID, ev.Request.Method, ev.Request.URL, ev.LoaderID)
	case *network.EventResponseReceived:
		if ev.Type != network.ResourceTypeDocument {
			return ""
		}
		return fmt.Sprintf("response %s %d %s", ev.RequestID, ev.Response.Status, ev.Response.URL)
	case *network.EventLoadingFailed:
		if ev.Type != network.ResourceTypeDocument {
			return ""
		}
		return fmt.Sprintf("failed %s %s canceled=%t", ev.RequestID, ev.ErrorText, ev.Canceled)
	case *page.EventFrameRequestedNavigation:
		return fmt.Sprintf("page asks to navigate (%s) to %s", ev.Reason, ev.URL)
	case *page.EventFrameStartedNavigating:
		return fmt.Sprintf("navigating (%s) frame %s to %s (loader %s)", ev.NavigationType, ev.FrameID, ev.URL, ev.LoaderID)
	case *page.EventFrameNavigated:
		return fmt.Sprintf("navigated frame %s (parent %q) to %s (loader %s)", ev.Frame.ID, ev.Frame.ParentID, ev.Frame.URL, ev.Frame.LoaderID)
	case *page.EventNavigatedWithinDocument:
		return fmt.Sprintf("navigated within the document to %s", ev.URL)
	case *page.EventLifecycleEvent:
		if strings.Contains(ev.Name, "Paint") {
			return ""
		}
		return fmt.Sprintf("lifecycle %s frame %s (loader %s)", ev.Name, ev.FrameID, ev.LoaderID)
	case *page.EventLoadEventFired:
		return "load event"
	case *page.EventFrameStartedLoading:
		return fmt.Sprintf("frame %s started loading", ev.FrameID)
	case *page.EventFrameStoppedLoading:
		return fmt.Sprintf("frame %s stopped loading", ev.FrameID)
	case *page.EventJavascriptDialogOpening:
		return fmt.Sprintf("dialog %s opens: %s", ev.Type, ev.Message)
	case *runtime.EventExceptionThrown:
		return fmt.Sprintf("script error: %s", ev.ExceptionDetails.Text)
	}
	return ""
}
