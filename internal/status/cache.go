package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// ErrBusy is returned when a value would have to be computed while as
// many computations as the node allows are already running: the caller
// should try again shortly (a page answers 503 with Retry-After).
var ErrBusy = errors.New("status: busy computing as many reports or incidents as the node allows at once; try again shortly")

// memo keeps computed values by key, each until the time its
// computation said it expires, and shares their computation: callers
// that arrive while a key's value is being computed wait for that result
// instead of computing it again. Errors are not kept. The zero memo is
// empty.
type memo[K comparable, T any] struct {
	mu      sync.Mutex
	vals    map[K]memoEntry[T]
	flights map[K]*flight[T]
	// running counts the computations in progress, those forget let go
	// of included; gen counts the calls of forget.
	running int
	gen     int
}

// memoEntry is one kept value, computed at at and good until until.
type memoEntry[T any] struct {
	val       T
	at, until time.Time
}

// memoBounds bound a memo; zero fields do not.
type memoBounds struct {
	// keep is how many values it keeps: those soonest to expire make way.
	keep int
	// running is how many computations may run at once: a caller that
	// would start one more gets ErrBusy. Callers that join a computation
	// already running never do.
	running int
}

// flight is one computation in progress.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
	gen  int // the memo's gen when it started
}

// get returns key's value if it was computed at or before now and
// expires after now, or computes it with compute, which returns the
// value and when it expires. The computation runs to its end even if
// the caller that started it gives up (other callers may be waiting for
// it, and it keeps its place among b.running until then); a waiting
// caller whose ctx ends returns ctx's error.
func (m *memo[K, T]) get(ctx context.Context, key K, now time.Time, b memoBounds, compute func(context.Context) (T, time.Time, error)) (T, error) {
	var zero T
	m.mu.Lock()
	if e, ok := m.vals[key]; ok && !now.Before(e.at) && now.Before(e.until) {
		m.mu.Unlock()
		return e.val, nil
	}
	if f := m.flights[key]; f != nil {
		m.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
	if b.running > 0 && m.running >= b.running {
		m.mu.Unlock()
		return zero, ErrBusy
	}
	f := &flight[T]{done: make(chan struct{}), gen: m.gen}
	if m.flights == nil {
		m.flights = map[K]*flight[T]{}
	}
	m.flights[key] = f
	m.running++
	m.mu.Unlock()

	var until time.Time
	f.val, until, f.err = compute(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.running--
	if m.flights[key] == f {
		delete(m.flights, key)
	}
	if f.err == nil && f.gen == m.gen {
		if m.vals == nil {
			m.vals = map[K]memoEntry[T]{}
		}
		m.vals[key] = memoEntry[T]{val: f.val, at: now, until: until}
		m.trim(now, b.keep)
	}
	m.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// trim drops the values that expired by now and, while more than keep
// (if positive) remain, those soonest to expire.
func (m *memo[K, T]) trim(now time.Time, keep int) {
	maps.DeleteFunc(m.vals, func(_ K, e memoEntry[T]) bool { return !now.Before(e.until) })
	for keep > 0 && len(m.vals) > keep {
		var first K
		var soonest time.Time
		for k, e := range m.vals {
			if soonest.IsZero() || e.until.Before(soonest) {
				first, soonest = k, e.until
			}
		}
		delete(m.vals, first)
	}
}

// forget drops every kept value. Computations in progress finish for
// the callers waiting for them, but their values are not kept, and
// later callers start afresh: they may have read the store before the
// change that made the caller forget.
func (m *memo[K, T]) forget() {
	m.mu.Lock()
	clear(m.vals)
	clear(m.flights)
	m.gen++
	m.mu.Unlock()
}

// settleAfter is how long after a day ends its probe counts are still
// read again: a node that could not reach the store writes its probe
// results late (at most health.Config.MaxPending of them, about an hour
// and a half of a dozen components with the defaults).
const settleAfter = 2 * time.Hour

// dayCounts keeps the daily probe counts of settled days in memory, so
// that each refresh of the page reads only the days still changing.
type dayCounts struct {
	mu sync.Mutex
	// settled holds the buckets of [first day shown, until), ordered by
	// component, then day; the days are those of the zone named zone.
	settled []*store.ProbeBucket
	until   time.Time
	zone    string
}

// read returns the daily counts of [first, end) (first and end the
// starts of days in loc): the settled days from memory, the others from
// st. Counts kept for the days of another zone are dropped: their
// buckets start at another hour.
func (d *dayCounts) read(ctx context.Context, st Store, now, first, end time.Time, loc *time.Location) ([]*store.ProbeBucket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	open := later(dayStart(now.Add(-settleAfter), loc), first)
	if d.zone != loc.String() || d.until.Before(first) || d.until.After(open) {
		d.settled, d.until, d.zone = nil, first, loc.String() // cold, another zone, or the clock went back
	}
	d.settled = slices.DeleteFunc(d.settled, func(b *store.ProbeBucket) bool { return b.Start.Before(first) })
	if d.until.Before(open) {
		more, err := summarizeDays(ctx, st, d.until, open, loc)
		if err != nil {
			return nil, err
		}
		d.settled = append(d.settled, more...)
		slices.SortStableFunc(d.settled, byComponentDay)
		d.until = open
	}
	fresh, err := summarizeDays(ctx, st, open, end, loc)
	if err != nil {
		return nil, err
	}
	out := append(slices.Clip(d.settled), fresh...)
	slices.SortStableFunc(out, byComponentDay)
	return out, nil
}

// summarizeDays counts the probe results of the days of [from, to) in
// loc (from and to the starts of days), one bucket per component and
// day. The store counts in buckets of one width, and a day where the
// clocks change lasts 23 or 25 hours, so the days are read in runs of
// days of the same length: one read for the days between two changes,
// one for each day of a change.
func summarizeDays(ctx context.Context, st Store, from, to time.Time, loc *time.Location) ([]*store.ProbeBucket, error) {
	var out []*store.ProbeBucket
	for start := from; start.Before(to); {
		next := addDays(start, 1, loc)
		width := next.Sub(start)
		end := next
		for end.Before(to) {
			after := addDays(end, 1, loc)
			if after.Sub(end) != width {
				break
			}
			end = after
		}
		bs, err := st.SummarizeProbes(ctx, store.HealthQuery{Since: start, Until: end}, width)
		if err != nil {
			return nil, fmt.Errorf("summarize probes: %w", err)
		}
		out = append(out, bs...)
		start = end
	}
	slices.SortStableFunc(out, byComponentDay)
	return out, nil
}

func byComponentDay(a, b *store.ProbeBucket) int {
	return cmp.Or(cmp.Compare(a.Component, b.Component), a.Start.Compare(b.Start))
}
