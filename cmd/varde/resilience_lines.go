package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Every kind of resilience run (an eID killed, a node killed, the
// database's primary killed) ends its report with the same two lines,
// load: and kill:, and writes the same figures as "load" and "kill" in
// --json, so that runs of different kinds, and runs on machines of
// different business, can be set side by side.

// runPhaseLogins is the logins that started in one phase of a run:
// started, of which completed and failed (the rest still waited when
// the run ended).
type runPhaseLogins struct {
	Phase     string `json:"phase"`
	Started   int    `json:"started"`
	Completed int    `json:"completed"`
	Failed    int    `json:"failed"`
}

// loadFigures is the load a run offered and what the machine was doing
// meanwhile: the load: line.
type loadFigures struct {
	People int    `json:"people"`
	Think  string `json:"think"`
	// Phases are the logins of each phase of the report, in its order;
	// Started, Completed and Failed their sums, Success Completed of
	// Completed and Failed.
	Phases    []runPhaseLogins `json:"logins_by_phase"`
	Started   int              `json:"logins_started"`
	Completed int              `json:"logins_completed"`
	Failed    int              `json:"logins_failed"`
	Success   float64          `json:"success_rate"`
	// runLoad is how busy the machine was from the first login to the
	// last; OthersInclude names what of the run's own counts among the
	// other processes (a database server it did not start).
	runLoad
	OthersInclude string `json:"others_include,omitempty"`
}

// newLoadFigures counts phases (in order) into the load: line's figures.
func newLoadFigures(people int, think time.Duration, phases []runPhaseLogins, machine runLoad) loadFigures {
	l := loadFigures{People: people, Think: think.String(), Phases: phases, runLoad: machine}
	for _, p := range phases {
		l.Started += p.Started
		l.Completed += p.Completed
		l.Failed += p.Failed
	}
	if n := l.Completed + l.Failed; n > 0 {
		l.Success = float64(l.Completed) / float64(n)
	}
	return l
}

// nodesPhaseLogins is the node and database runs' rows as load figures.
func nodesPhaseLogins(rows []nodesPhase) []runPhaseLogins {
	out := make([]runPhaseLogins, 0, len(rows))
	for _, p := range rows {
		out = append(out, runPhaseLogins{Phase: p.Phase, Started: p.Logins, Completed: p.OK, Failed: p.Failed})
	}
	return out
}

// killFigures is the fault a run made and what came of it: the kill:
// line. Seconds are -1 where it never happened.
type killFigures struct {
	// Fault is what was done ("SIGKILL node b"); AtS when, in seconds
	// from the first login; Note says why then, if not plain.
	Fault string  `json:"fault"`
	AtS   float64 `json:"at_s"`
	Note  string  `json:"note,omitempty"`
	// DetectS is from the fault until Varde's side saw it (DetectedBy
	// says how); RecoverS from RecoverFrom ("kill", or "restart" where
	// the run restarts what it killed) until it was whole again
	// (RecoveredBy).
	DetectS     float64 `json:"detect_s"`
	DetectedBy  string  `json:"detected_by"`
	RecoverS    float64 `json:"recover_s"`
	RecoverFrom string  `json:"recover_from"`
	RecoveredBy string  `json:"recovered_by"`
	// InFlight is the logins started before the fault and not ended at
	// it; InFlightFailed of them failed.
	InFlight       int `json:"in_flight"`
	InFlightFailed int `json:"in_flight_failed"`
	// FailoverLogins are the completed logins that met the failover
	// (Failover says which), with their p99 latency.
	Failover       string  `json:"failover"`
	FailoverLogins int     `json:"failover_logins"`
	FailoverP99MS  float64 `json:"failover_p99_ms"`
}

// noKill is the kill figures of a run whose fault never came.
func noKill(fault string) killFigures {
	return killFigures{Fault: fault, AtS: -1, DetectS: -1, RecoverS: -1, RecoverFrom: "kill"}
}

// checkLoad tells problem of the load a run needed and did not have: a
// run whose fault came with no login in flight checked nothing of what
// happens to a login the fault interrupts, and one in which no login
// met the failover measured nothing of it. Only a run that completed
// its phases is judged.
func checkLoad(k killFigures, completed bool, problem func(string, ...any)) {
	if !completed || k.AtS < 0 {
		return
	}
	if k.InFlight == 0 {
		problem("no login was in flight at the kill, so none was checked to recover from it; run more --users or a shorter --think")
	}
	if k.FailoverLogins == 0 {
		problem("no completed %s, so the failover's latency was not measured; run more --users or a shorter --think", k.Failover)
	}
}

// printLoadKill prints the load: and kill: lines.
func printLoadKill(w io.Writer, l loadFigures, k killFigures) {
	var phases []string
	for _, p := range l.Phases {
		phases = append(phases, fmt.Sprintf("%s %s/%s/%s", p.Phase, thousands(p.Started), thousands(p.Completed), thousands(p.Failed)))
	}
	think, _ := time.ParseDuration(l.Think)
	fmt.Fprintf(w, "load:       %d people, %v between logins on average (%v to %v); logins started/completed/failed: %s; in all %s/%s/%s, %.2f %% completed; %s\n",
		l.People, think, think/2, think*3/2, strings.Join(phases, ", "),
		thousands(l.Started), thousands(l.Completed), thousands(l.Failed), 100*l.Success, l.describe(l.OthersInclude))
	if k.AtS < 0 {
		fmt.Fprintf(w, "kill:       %s: never, the run ended before it\n", k.Fault)
		return
	}
	at := fmt.Sprintf("%.2fs from the first login", k.AtS)
	if k.Note != "" {
		at += " (" + k.Note + ")"
	}
	detected := "never detected"
	if k.DetectS >= 0 {
		detected = fmt.Sprintf("detected after %s (%s)", briefSecs(k.DetectS), k.DetectedBy)
	}
	recovered := "never recovered"
	if k.RecoverS >= 0 {
		recovered = fmt.Sprintf("recovered %s after the %s (%s)", briefSecs(k.RecoverS), k.RecoverFrom, k.RecoveredBy)
	}
	failover := "none completed"
	if k.FailoverLogins > 0 {
		failover = fmt.Sprintf("p99 %s ms of %s", thousands(int(k.FailoverP99MS+0.5)), thousands(k.FailoverLogins))
	}
	fmt.Fprintf(w, "kill:       %s at %s; %s; %s; in flight at the kill %d, %d of them failed; %s: %s\n",
		k.Fault, at, detected, recovered, k.InFlight, k.InFlightFailed, k.Failover, failover)
}

// briefSecs is s seconds, in milliseconds under one second.
func briefSecs(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.1f ms", 1000*s)
	}
	return fmt.Sprintf("%.2fs", s)
}

// thousands is n with a comma between thousands, as the docs write it.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
