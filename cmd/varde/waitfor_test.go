package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChildWaitFor: a child process is waited for until it is ready;
// one that exits first fails the wait at once, with its exit and the
// end of its log, and so does a context that ends.
func TestChildWaitFor(t *testing.T) {
	start := func(t *testing.T, script string) *resChild {
		t.Helper()
		c := &resChild{name: "test child", log: filepath.Join(t.TempDir(), "child.log")}
		if err := c.start("/bin/sh", nil, "-c", script); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.kill)
		return c
	}
	ctx := context.Background()

	c := start(t, "echo about to fail; exit 3")
	err := c.waitFor(ctx, 10*time.Millisecond, "ready", func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "test child exited before it was ready (exit status 3)") || !strings.Contains(err.Error(), "about to fail") {
		t.Errorf("child that exits: %v", err)
	}

	c = start(t, "sleep 30")
	asked := 0
	if err := c.waitFor(ctx, time.Millisecond, "ready", func() bool { asked++; return asked == 3 }); err != nil || asked != 3 {
		t.Errorf("child ready at the third ask: %v, asked %d times", err, asked)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.waitFor(done, time.Millisecond, "ready", func() bool { return false }); err != context.Canceled {
		t.Errorf("ended context: %v", err)
	}
}
