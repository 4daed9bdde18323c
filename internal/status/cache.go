package status

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// memo holds one computed value for a while and shares its computation:
// callers that arrive while it is being computed wait for that result
// instead of computing it again. Errors are not kept. The zero memo is
// empty.
type memo[T any] struct {
	mu     sync.Mutex
	val    T
	at     time.Time // when val was computed; zero when there is none
	flight *flight[T]
}

// flight is one computation in progress.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// get returns the value computed at or after now - ttl, or computes it
// with compute. The computation runs to its end even if the caller that
// started it gives up (other callers may be waiting for it); a waiting
// caller whose ctx ends returns ctx's error.
func (m *memo[T]) get(ctx context.Context, now time.Time, ttl time.Duration, compute func(context.Context) (T, error)) (T, error) {
	m.mu.Lock()
	if !m.at.IsZero() && !now.Before(m.at) && now.Sub(m.at) < ttl {
		v := m.val
		m.mu.Unlock()
		return v, nil
	}
	if f := m.flight; f != nil {
		m.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
	f := &flight[T]{done: make(chan struct{})}
	m.flight = f
	m.mu.Unlock()

	f.val, f.err = compute(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.flight = nil
	if f.err == nil {
		m.val, m.at = f.val, now
	}
	m.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// settleAfter is how long after a UTC day ends its probe counts are
// still read again: a node that could not reach the store writes its
// probe results late (at most health.Config.MaxPending of them, about an
// hour and a half of a dozen components with the defaults).
const settleAfter = 2 * time.Hour

// dayCounts keeps the daily probe counts of settled days in memory, so
// that each refresh of the page reads only the days still changing.
type dayCounts struct {
	mu sync.Mutex
	// settled holds the buckets of [first day shown, until), ordered by
	// component, then day.
	settled []*store.ProbeBucket
	until   time.Time
}

// read returns the daily counts of [first, end) (first and end UTC
// midnights): the settled days from memory, the others from st.
func (d *dayCounts) read(ctx context.Context, st Store, now, first, end time.Time) ([]*store.ProbeBucket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	open := later(dayStart(now.Add(-settleAfter)), first)
	if d.until.Before(first) || d.until.After(open) {
		d.settled, d.until = nil, first // cold, or the clock went back
	}
	d.settled = slices.DeleteFunc(d.settled, func(b *store.ProbeBucket) bool { return b.Start.Before(first) })
	if d.until.Before(open) {
		more, err := summarizeDays(ctx, st, d.until, open)
		if err != nil {
			return nil, err
		}
		d.settled = append(d.settled, more...)
		slices.SortStableFunc(d.settled, byComponentDay)
		d.until = open
	}
	fresh, err := summarizeDays(ctx, st, open, end)
	if err != nil {
		return nil, err
	}
	out := append(slices.Clip(d.settled), fresh...)
	slices.SortStableFunc(out, byComponentDay)
	return out, nil
}

func summarizeDays(ctx context.Context, st Store, from, to time.Time) ([]*store.ProbeBucket, error) {
	if !to.After(from) {
		return nil, nil
	}
	bs, err := st.SummarizeProbes(ctx, store.HealthQuery{Since: from, Until: to}, 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("summarize probes: %w", err)
	}
	return bs, nil
}

func byComponentDay(a, b *store.ProbeBucket) int {
	return cmp.Or(cmp.Compare(a.Component, b.Component), a.Start.Compare(b.Start))
}
