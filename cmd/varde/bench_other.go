//go:build !linux

package main

import (
	"os"
	"os/exec"
	"time"
)

// CPU accounting of the node and the load generator is Linux-only; the
// bench still measures flows and latency elsewhere.
func processCPU(int) (time.Duration, bool) { return 0, false }
func selfCPU() (time.Duration, bool)       { return 0, false }
func childrenCPU() (time.Duration, bool)   { return 0, false }
func dieWithParent(*exec.Cmd)              {}
func interrupt(p *os.Process) error        { return p.Signal(os.Interrupt) }

func machineCPU() (busy, total time.Duration, ok bool) { return 0, 0, false }

func processMaxRSSMB(int) float64 { return 0 }
