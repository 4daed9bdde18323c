package store

import (
	"errors"
	"fmt"
	"testing"
)

func TestUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"unavailable", fmt.Errorf("get client: %w: connection refused", ErrUnavailable), true},
		{"outcome unknown around unavailable", fmt.Errorf("%w: %w", ErrOutcomeUnknown, fmt.Errorf("read back: %w", ErrUnavailable)), false},
		{"outcome unknown", ErrOutcomeUnknown, false},
		{"not found", ErrNotFound, false},
		{"full", ErrFull, false},
		{"other", errors.New("scan: bad JSON"), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
