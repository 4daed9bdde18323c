package app

import (
	"context"
	"time"
)

// Housekeep runs one round of the node's housekeeping, for tests.
func (a *App) Housekeep(ctx context.Context) { a.housekeep(ctx) }

// CheckSectors is checkSectors, for tests.
var CheckSectors = checkSectors

// SetSettleEndsRound sets how long a housekeeping round settles pending
// session ends at most, for tests.
func (a *App) SetSettleEndsRound(d time.Duration) { a.settleEndsFor = d }

// SyncBuffer is syncBuffer, a log buffer safe to write from a running
// node and read from a test, for the tests outside the package.
type SyncBuffer = syncBuffer
