package health

import (
	"context"
	"errors"
	"net"
)

// Prober checks a component actively. Probe returns nil if the component
// works, or an error saying why not (a *ProbeError names the reason). It
// must return soon after ctx ends; the monitor gives every probe a
// deadline.
type Prober interface {
	Probe(ctx context.Context) error
}

// PingProber is a Prober from a function, such as a store's Ping or a
// built-in provider's self-check.
type PingProber func(ctx context.Context) error

// Probe implements Prober.
func (p PingProber) Probe(ctx context.Context) error { return p(ctx) }

// ProbeError is a probe failure with its reason, one of the Failure*
// constants.
type ProbeError struct {
	Reason string
	Err    error
}

func (e *ProbeError) Error() string { return e.Reason + ": " + e.Err.Error() }

func (e *ProbeError) Unwrap() error { return e.Err }

// FailureReason classifies a probe error into one of the Failure*
// constants: the reason of a *ProbeError, FailureTimeout for deadlines,
// FailureConnect for network errors, FailureOther for anything else.
func FailureReason(err error) string {
	var pe *ProbeError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return FailureTimeout
	case errors.As(err, &ne):
		if ne.Timeout() {
			return FailureTimeout
		}
		return FailureConnect
	}
	return FailureOther
}
