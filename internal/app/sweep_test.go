package app

import (
	"errors"
	"fmt"
	"testing"
)

// TestUnjoin: each table's sweep error, however deeply the stores
// joined them (the flow-state store joins its two parts'), is logged on
// a line of its own.
func TestUnjoin(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), fmt.Errorf("c: %w", errors.New("d"))
	got := unjoin(errors.Join(a, errors.Join(b, c), nil))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Errorf("unjoin = %v, want [a b c: d]", got)
	}
	if got := unjoin(a); len(got) != 1 || got[0] != a {
		t.Errorf("unjoin(a) = %v", got)
	}
	if got := unjoin(nil); got != nil {
		t.Errorf("unjoin(nil) = %v", got)
	}
}
