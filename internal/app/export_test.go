package app

import "context"

// Housekeep runs one round of the node's housekeeping, for tests.
func (a *App) Housekeep(ctx context.Context) { a.housekeep(ctx) }

// CheckSectors is checkSectors, for tests.
var CheckSectors = checkSectors
