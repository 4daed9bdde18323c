package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

func testPins(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base(t)
	first := []byte("fingerprint-1")
	if got, err := s.Pinned(ctx, "salt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Pinned before any Pin = %q, %v; want ErrNotFound", got, err)
	}
	got, err := s.Pin(ctx, "salt", first, now)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first Pin = %q, %v; want %q", got, err, first)
	}
	got, err = s.Pin(ctx, "salt", []byte("fingerprint-2"), now)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("second Pin = %q, %v; want the first value %q", got, err, first)
	}
	if got, err := s.Pin(ctx, "other", []byte("x"), now); err != nil || string(got) != "x" {
		t.Fatalf("Pin of another name = %q, %v", got, err)
	}
	if got, err := s.Pinned(ctx, "salt"); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("Pinned = %q, %v; want the first value %q", got, err, first)
	}
	if _, err := s.Pin(ctx, "empty", nil, now); err == nil {
		t.Error("Pin of an empty value succeeded")
	}

	// Racing first pins: every caller learns the one value that won.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for i := range contenders {
		wg.Go(func() {
			got, err := s.Pin(ctx, "race", fmt.Appendf(nil, "v%02d", i), now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			seen[string(got)]++
		})
	}
	wg.Wait()
	if len(seen) != 1 {
		t.Errorf("racing pins returned %d different values: %v", len(seen), seen)
	}
}
