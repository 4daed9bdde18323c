//go:build race

package flowmem_test

// raceEnabled: the race detector makes every allocation larger, so the
// heap a record keeps is not what it keeps in a node.
const raceEnabled = true
