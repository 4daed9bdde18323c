package keys

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBoundedStuckSigner: a signer that stops answering costs each
// caller its limit, not for ever; at most one signature is left running,
// and once the signer answers again the next signature goes through.
func TestBoundedStuckSigner(t *testing.T) {
	b := NewBounded()
	release := make(chan struct{})
	var running, most atomic.Int32
	stuck := func() (string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		return "late", nil
	}
	start := time.Now()
	_, abandoned, err := b.Sign(context.Background(), 50*time.Millisecond, stuck)
	if !abandoned || err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("first signature: abandoned %v, err %v; want abandoned with the limit named", abandoned, err)
	}
	// The next callers wait for the slot the stuck one holds, within
	// their own limits, and start no signature of their own.
	for range 3 {
		if _, abandoned, err := b.Sign(context.Background(), 30*time.Millisecond, stuck); abandoned || err == nil {
			t.Fatalf("while one is stuck: abandoned %v, err %v; want refused without another left running", abandoned, err)
		}
	}
	// Their limits add up to 140ms; a caller not held to its limit waits
	// for ever, so the bound is room for a busy machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("four bounded signatures took %v", d)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d signatures ran at once, want 1", m)
	}
	close(release)
	got, abandoned, err := b.Sign(context.Background(), 2*time.Second, func() (string, error) { return "token", nil })
	if got != "token" || abandoned || err != nil {
		t.Fatalf("after the signer answered: %q, %v, %v", got, abandoned, err)
	}
}

// TestBoundedCallerGone: a caller whose context ends gets its error, not
// one about the limit.
func TestBoundedCallerGone(t *testing.T) {
	b := NewBounded()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	if _, _, err := b.Sign(ctx, time.Second, func() (string, error) { <-release; return "", nil }); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
