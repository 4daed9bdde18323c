package webhook

import (
	"errors"
	"fmt"
	"time"
)

// Config is the delivery schedule. Zero fields take their defaults
// (DefaultConfig) in New.
type Config struct {
	// PollInterval is how often Run looks for due deliveries (1 s).
	PollInterval time.Duration
	// Lease is how long a node holds the deliveries it claimed before
	// another node may take them over (30 s). It must exceed
	// AttemptTimeout by a safe margin, so a delivery is never in flight
	// on two nodes.
	Lease time.Duration
	// AttemptTimeout bounds one attempt (5 s): looking up where its
	// client wants it now, renewing its payload (RenewWith) and the POST,
	// connection and response included. What runs out of time is a
	// failed attempt, retried on the schedule.
	AttemptTimeout time.Duration
	// Concurrency is how many POSTs a node makes at once (4): Run claims
	// deliveries only for the slots that are free.
	Concurrency int
	// PerEndpoint is how many deliveries of one endpoint (a client and
	// an event) are in flight at once, on all nodes together (half of
	// Concurrency, at least 1): a receiver that does not answer, with a
	// backlog queued while it was down, holds at most this many slots
	// and the others keep the rest.
	PerEndpoint int
	// FirstRetry is the delay after the first failed attempt (5 s); each
	// further failure multiplies it by Factor (3), up to MaxDelay
	// (30 min): 5 s, 15 s, 45 s, 2 m 15 s, 6 m 45 s, 20 m 15 s, 30 m, …
	FirstRetry time.Duration
	Factor     float64
	MaxDelay   time.Duration
	// Jitter shortens every delay by a random share of up to Jitter
	// (0.2), so receivers that come back are not hit by every node at
	// once. A negative value means no jitter.
	Jitter float64
	// MaxAttempts is how many attempts a delivery gets before it is
	// abandoned (12: about three hours with the defaults).
	MaxAttempts int
	// QueueSize bounds the transitions waiting to be written to the
	// outbox (256). Beyond it, the oldest change of a component with a
	// later one waiting is merged into that one, or, if every component
	// has one only, the oldest is dropped; either is counted.
	QueueSize int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		PollInterval:   time.Second,
		Lease:          30 * time.Second,
		AttemptTimeout: 5 * time.Second,
		Concurrency:    4,
		PerEndpoint:    2,
		FirstRetry:     5 * time.Second,
		Factor:         3,
		MaxDelay:       30 * time.Minute,
		Jitter:         0.2,
		MaxAttempts:    12,
		QueueSize:      256,
	}
}

// WithDefaults returns c with every zero field set to its default and a
// negative Jitter set to 0.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.PollInterval, d.PollInterval)
	setDefault(&c.Lease, d.Lease)
	setDefault(&c.AttemptTimeout, d.AttemptTimeout)
	setDefault(&c.Concurrency, d.Concurrency)
	setDefault(&c.PerEndpoint, max(1, c.Concurrency/2))
	setDefault(&c.FirstRetry, d.FirstRetry)
	setDefault(&c.Factor, d.Factor)
	setDefault(&c.MaxDelay, d.MaxDelay)
	switch {
	case c.Jitter == 0:
		c.Jitter = d.Jitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	setDefault(&c.MaxAttempts, d.MaxAttempts)
	setDefault(&c.QueueSize, d.QueueSize)
	return c
}

// Validate reports every problem with c (after WithDefaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.PollInterval < 10*time.Millisecond {
		bad("poll interval %v is under 10ms", c.PollInterval)
	}
	if c.AttemptTimeout <= 0 {
		bad("attempt timeout %v is not positive", c.AttemptTimeout)
	}
	if c.Lease < 2*c.AttemptTimeout {
		bad("lease %v is under twice the attempt timeout %v", c.Lease, c.AttemptTimeout)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		bad("concurrency %d is not in [1, 256]", c.Concurrency)
	}
	if c.PerEndpoint < 1 || c.PerEndpoint > c.Concurrency {
		bad("per endpoint %d is not in [1, concurrency %d]", c.PerEndpoint, c.Concurrency)
	}
	if c.FirstRetry <= 0 {
		bad("first retry %v is not positive", c.FirstRetry)
	}
	if c.Factor < 1 {
		bad("factor %v is under 1", c.Factor)
	}
	if c.MaxDelay < c.FirstRetry {
		bad("max delay %v is under the first retry %v", c.MaxDelay, c.FirstRetry)
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		bad("jitter %v is not in [0, 1)", c.Jitter)
	}
	if c.MaxAttempts < 1 {
		bad("max attempts %d is under 1", c.MaxAttempts)
	}
	if c.QueueSize < 1 {
		bad("queue size %d is under 1", c.QueueSize)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("webhook config: %w", errors.Join(errs...))
}

// Backoff returns the delay before the next attempt after failed
// attempts (1 or more), before jitter: FirstRetry * Factor^(failed-1),
// at most MaxDelay.
func (c Config) Backoff(failed int) time.Duration {
	d := float64(c.FirstRetry)
	for i := 1; i < failed && d < float64(c.MaxDelay); i++ {
		d *= c.Factor
	}
	return min(time.Duration(d), c.MaxDelay)
}

// giveUpAfter is the longest a delivery's attempts take on the
// schedule, from its first to the delay after its last: how long one
// that only another node can renew (RenewElsewhere) waits for one
// before it is abandoned.
func (c Config) giveUpAfter() time.Duration {
	var d time.Duration
	for i := 1; i <= c.MaxAttempts; i++ {
		d += c.Backoff(i)
	}
	return d
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
