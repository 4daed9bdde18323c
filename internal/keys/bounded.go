package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bounded runs signatures within a time limit for a signer that takes
// no context: a hardware module may stop answering, and a caller must
// not wait on it for ever. Each signature runs on its own goroutine;
// while one that nobody waits for any more is still running, the next
// waits for it within its own limit, so a stuck signer holds at most one
// goroutine however many callers give up on it. Make one with
// NewBounded.
type Bounded struct {
	slot chan struct{} // held while a signature runs
}

// NewBounded returns a Bounded with no signature running.
func NewBounded() *Bounded { return &Bounded{slot: make(chan struct{}, 1)} }

// Sign runs sign within timeout and ctx. abandoned reports a signature
// left running because the limit came first (the caller may count it);
// the error then says how long it waited.
func (b *Bounded) Sign(ctx context.Context, timeout time.Duration, sign func() (string, error)) (token string, abandoned bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	slot := b.slot
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return "", false, timedOut(ctx, timeout)
	}
	type result struct {
		token string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-slot }()
		token, err := sign()
		done <- result{token, err}
	}()
	select {
	case res := <-done:
		return res.token, false, res.err
	case <-ctx.Done():
		return "", true, timedOut(ctx, timeout)
	}
}

func timedOut(ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("signer gave no answer within %v", timeout)
	}
	return ctx.Err()
}
