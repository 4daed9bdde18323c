//go:build !race

package flowmem_test

const raceEnabled = false
