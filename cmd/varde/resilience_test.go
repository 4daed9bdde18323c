package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
)

// TestResilience runs the real resilience command with short phases:
// Varde and both simulated eIDs as child processes, BankID SIGKILLed
// under concurrent logins, MinID made slow, BankID restarted. The
// command's own assertions must hold, and the report must say so.
func TestResilience(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes and runs logins for about 20 seconds")
	}
	jsonFile := filepath.Join(t.TempDir(), "resilience.json")
	var out, errOut bytes.Buffer
	o, err := parseResilienceFlags([]string{"--users", "6", "--bankid-only-users", "2", "--needs-high-users", "2",
		"--before", "2s", "--killed", "5s", "--slow", "3s", "--restarted", "6s", "--json", jsonFile}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.childEnv = []string{childEnvMarker + "=1"}
	start := time.Now()
	rep, err := runResilience(context.Background(), o, &out, &errOut)
	t.Logf("resilience took %v\n%s%s", time.Since(start), out.String(), errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || !rep.SubsStable {
		t.Errorf("problems %v, subs stable %v", rep.Problems, rep.SubsStable)
	}
	// Every login of the client that accepts either eID succeeded, in
	// every phase, and the outage phases went through MinID.
	seen := map[string]bool{}
	for _, p := range rep.Phases {
		seen[p.Phase+"/"+p.Client] = true
		if p.Client == resEither && (p.Failed > 0 || p.OK == 0 || p.Success != 1) {
			t.Errorf("%s/%s: %d ok, %d failed", p.Phase, p.Client, p.OK, p.Failed)
		}
		if p.Client == resEither && (p.Phase == "bankid killed" || p.Phase == "minid slow") && p.ViaBankID > 0 {
			t.Errorf("%s: %d logins through the dead BankID", p.Phase, p.ViaBankID)
		}
		if p.Client == resOnlyBank && (p.Failed > 0 || p.ViaMinID > 0) {
			t.Errorf("%s/%s: %d failed, %d through MinID", p.Phase, p.Client, p.Failed, p.ViaMinID)
		}
		// The client that asks for high: nothing fails; of the logins
		// started before the kill only those that met BankID dead are
		// degraded; of those started while BankID is dead, every one
		// (through MinID, at substantial: the command checks each).
		outage := p.Phase == "bankid killed" || p.Phase == "minid slow"
		if p.Client == resNeedsHigh && (p.Failed > 0 || (p.Phase == "before" && p.Degraded > p.Retried) || (outage && p.Degraded != p.OK)) {
			t.Errorf("%s/%s: %d ok, %d failed, %d degraded", p.Phase, p.Client, p.OK, p.Failed, p.Degraded)
		}
	}
	if h := rep.NeedsHigh; h.BeforeHigh == 0 || h.Degraded == 0 || h.AfterHigh == 0 || h.BothSameSub == 0 || h.FirstDegradedS < 0 ||
		h.NodeCounted != float64(h.Degraded) {
		t.Errorf("needs-high client: %+v; want logins at high before and after, degraded between and counted so by the node, one sub per person", h)
	}
	for _, want := range []string{"before/either", "bankid killed/either", "minid slow/either", "bankid restarted/either", "bankid restarted/bankid-only",
		"before/needs-high", "bankid restarted/needs-high"} {
		if !seen[want] {
			t.Errorf("no logins in %s", want)
		}
	}
	// Detection: three failed probes 1 s apart, so between 2 s and a
	// few seconds on a loaded machine; never before the kill.
	if rep.DetectPageS < 0.5 || rep.DetectPageS > 8 || rep.DetectMetricS < 0.5 {
		t.Errorf("detection: page %.2fs, metrics %.2fs", rep.DetectPageS, rep.DetectMetricS)
	}
	if rep.RecoverPageS < 0 || rep.RecoverPageS > 8 {
		t.Errorf("recovery: %.2fs", rep.RecoverPageS)
	}
	if rep.OnlyWaited == 0 {
		t.Error("no bankid-only login waited through the outage and finished")
	}
	if rep.FailoverLogins == 0 || rep.FailoverP99MS <= 0 {
		t.Errorf("no failover measured: %d logins, p99 %.0f ms", rep.FailoverLogins, rep.FailoverP99MS)
	}
	// Every login in flight at the kill finishes; those the kill caught
	// at BankID by the mid-flow retry, the others (past BankID already,
	// or at MinID) without one.
	if rep.InFlightAtKill == 0 || rep.FinishedInFlight != rep.InFlightAtKill {
		t.Errorf("%d of %d logins in flight at the kill finished", rep.FinishedInFlight, rep.InFlightAtKill)
	}
	fromFile := checkRun[resReport](t, out.String(), jsonFile, "SIGKILL Demo BankID", "detection:", "recovery:", "failover:", "needs-high: ", "load:       10 people", "kill:       SIGKILL Demo BankID at", "p99 ms", "verdict:    pass")
	if fromFile.Logins != rep.Logins || fromFile.DetectPageS != rep.DetectPageS {
		t.Errorf("json: %d logins vs %d", fromFile.Logins, rep.Logins)
	}
}

// checkRun checks that a run's output says each of want, and returns
// the report it wrote to jsonFile.
func checkRun[T any](t *testing.T, out, jsonFile string, want ...string) T {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	var rep T
	raw, err := os.ReadFile(jsonFile)
	if err == nil {
		err = json.Unmarshal(raw, &rep)
	}
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return rep
}

// TestResilienceNodes runs the node run with short phases: two nodes
// over a PostgreSQL database behind the balancer, node b SIGKILLed under
// concurrent passkey logins, then restarted with its key. A login that
// started after node b was gone (its process reaped, so every connection
// to it is refused and the balancer passes it over) must complete; a
// login that started before and had a request at node b when it died may
// fail (502), and the report must count it. The restarted node must get
// requests again, and the audit chain both nodes wrote must be unbroken.
func TestResilienceNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes over PostgreSQL and runs logins for about 15 seconds")
	}
	dsn := pgtest.NewDatabase(t)
	jsonFile := filepath.Join(t.TempDir(), "nodes.json")
	var out, errOut bytes.Buffer
	o, err := parseResilienceFlags([]string{"--nodes", "--postgres", dsn, "--users", "6", "--think", "20ms",
		"--before", "2s", "--killed", "3s", "--restarted", "3s", "--json", jsonFile}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.childEnv = []string{childEnvMarker + "=1"}
	o.command = "varde resilience --nodes --postgres DSN"
	start := time.Now()
	rep, err := runNodeFailover(context.Background(), o, &out, &errOut)
	t.Logf("node run took %v\n%s%s", time.Since(start), out.String(), errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || !rep.SubsStable || !rep.AuditOK {
		t.Errorf("problems %v, subs stable %v, audit %q", rep.Problems, rep.SubsStable, rep.Audit)
	}
	phases := map[string]nodesPhase{}
	for _, p := range rep.Phases {
		phases[p.Phase] = p
	}
	for _, name := range []string{nodesBefore, nodesDead, nodesBack} {
		if p := phases[name]; p.OK == 0 || p.Failed != 0 || p.Success != 1 || p.P50MS <= 0 || p.P50MS > p.P99MS {
			t.Errorf("%s: %+v, want logins, all completed", name, p)
		}
	}
	if p := phases[nodesInFlight]; p.Logins != rep.InFlight || p.Failed != rep.InFlightFailed || rep.InFlightFailed > rep.InFlight {
		t.Errorf("in flight at the kill: row %+v, report %d of %d failed", p, rep.InFlightFailed, rep.InFlight)
	}
	// Requests by when they were sent. Every 502 is a request node b
	// had when it died, sent before it was gone: the in-flight logins'
	// failures. Sent after, none reaches node b until the restart.
	if len(rep.Windows) != 3 {
		t.Fatalf("windows %+v", rep.Windows)
	}
	before, dead, back := rep.Windows[0], rep.Windows[1], rep.Windows[2]
	if before.A == 0 || before.B == 0 || before.BadGateway > rep.InFlightFailed {
		t.Errorf("both up: %+v, want requests at both nodes, at most %d failed", before, rep.InFlightFailed)
	}
	if dead.B != 0 || dead.A == 0 || dead.PassedOver == 0 || dead.BadGateway != 0 {
		t.Errorf("node b dead: %+v, want requests at node a only, node b's turns passed over, none failed", dead)
	}
	if back.B == 0 || back.BadGateway != 0 {
		t.Errorf("node b restarted: %+v, want requests at node b again, none failed", back)
	}
	if rep.DownMS < 0 || rep.UpS < 0 || rep.UpS > 5 || rep.TrafficS < rep.UpS || rep.TrafficS > 6 {
		t.Errorf("marked down %.1f ms after the kill, up %.2fs and used %.2fs after the restart", rep.DownMS, rep.UpS, rep.TrafficS)
	}
	if strings.Contains(out.String()+errOut.String(), dsn) {
		t.Error("the output shows the DSN")
	}
	fromFile := checkRun[nodesReport](t, out.String(), jsonFile, "SIGKILL node b", "in flight:", "restart:", "load:       6 people", "kill:       SIGKILL node b at", "an unbroken hash chain", "p99 ms", "verdict:    pass")
	if fromFile.Logins != rep.Logins || fromFile.InFlight != rep.InFlight {
		t.Errorf("json: %d logins vs %d", fromFile.Logins, rep.Logins)
	}
}

func TestResilienceFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{nil, ""},
		{[]string{"--users", "0"}, "--users"},
		{[]string{"--needs-high-users", "-1"}, "--needs-high-users"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--needs-high-users", "1"}, "--needs-high-users not with --nodes"},
		{[]string{"--killed", "0s"}, "durations must be positive"},
		{[]string{"--before", "5m", "--killed", "6m"}, "must not exceed"},
		{[]string{"--slow-delay", "10s"}, "--slow-delay"},
		{[]string{"--probe-interval", "10ms"}, "--probe-interval"},
		{[]string{"--probe-timeout", "2s"}, "at most --probe-interval (1s)"},
		{[]string{"--probe-timeout", "250ms"}, "--probe-timeout must be over --slow-probe (250ms)"},
		{[]string{"--probe-interval", "500ms", "--probe-timeout", "500ms"}, ""},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--probe-timeout", "1s"}, "--probe-timeout not with --nodes"},
		{[]string{"--failures-to-down", "0"}, "--failures-to-down"},
		{[]string{"--think", "-1s"}, "must not be negative"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--users", "4", "--killed", "1s"}, ""},
		{[]string{"--nodes"}, "--nodes needs --postgres"},
		{[]string{"--postgres", "postgres://x/y"}, "--postgres not without --nodes"},
		{[]string{"--readyz-interval", "1s"}, "--readyz-interval not without --nodes"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--slow", "1s", "--typing", "0s"}, "--slow, --typing not with --nodes"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--readyz-interval", "1ms"}, "--readyz-interval must be"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--before", "5m", "--killed", "4m", "--restarted", "2m"}, "must not exceed"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--kill-primary", "kill-it", "--before", "5m", "--killed", "4m"}, ""},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--kill-primary", "kill-it", "--before", "5m", "--killed", "6m"}, "must not exceed"},
		{[]string{"--kill-primary", "kill-it"}, "--kill-primary not without --nodes"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--kill-primary", " "}, "--kill-primary needs a command"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--kill-primary", "kill-it", "--restarted", "1s"}, "--restarted not with --kill-primary"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--gently"}, ""},
		{[]string{"--gently"}, "--gently not without --nodes"},
		{[]string{"--nodes", "--postgres", "postgres://x/y", "--kill-primary", "kill-it", "--gently"}, "--gently not with --kill-primary"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseResilienceFlags(tc.args, io.Discard)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOutage finds an outage in a probe's results: the first failure
// from a given instant on, and the first success after it.
func TestOutage(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	probes := func(oks ...bool) []probeResult {
		var ps []probeResult
		for i, ok := range oks {
			ps = append(ps, probeResult{at: at(100 * i), ok: ok})
		}
		return ps
	}
	for _, tc := range []struct {
		name     string
		results  []probeResult
		from     time.Time
		down, up time.Time
	}{
		{"none", nil, at(0), time.Time{}, time.Time{}},
		{"never down", probes(true, true, true), at(0), time.Time{}, time.Time{}},
		{"down and up", probes(true, false, false, true, true), at(0), at(100), at(300)},
		{"a failure before from does not count", probes(false, true, true, false, true), at(50), at(300), at(400)},
		{"from on a failure", probes(true, false, true), at(100), at(100), at(200)},
		{"never up again", probes(true, false, false), at(0), at(100), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down, up := outage(tc.results, tc.from)
			if !down.Equal(tc.down) || !up.Equal(tc.up) {
				t.Errorf("outage = %v, %v; want %v, %v", down, up, tc.down, tc.up)
			}
		})
	}
	if s := since(time.Time{}, t0); s != -1 {
		t.Errorf("since(zero) = %v, want -1", s)
	}
}

// TestLoginPageChoices reads the login template's markup for offered and
// unavailable providers.
func TestLoginPageChoices(t *testing.T) {
	page := `<ul class="choices" aria-labelledby="choose">
<li><a class="button" id="provider-passkey" href="/login/start?provider=passkey&amp;req=x">Passkey</a></li>
<li><span class="unavailable" id="provider-bankid">Demo BankID</span> <span class="hint" id="state-bankid">Unavailable</span></li>
<li><a class="button" id="provider-minid" href="/login/start?provider=minid&amp;req=x">Demo MinID</a> <span class="hint" id="state-minid">Slow</span></li>
</ul>`
	offered, unavailable := choices(page)
	if !slices.Equal(offered, []string{"passkey", "minid"}) || !slices.Equal(unavailable, []string{"bankid"}) {
		t.Errorf("offered %v, unavailable %v", offered, unavailable)
	}
	for line, want := range map[string][]string{
		`varde_component_state{component="bankid",state="down"} 1`:             {"bankid", "down"},
		`varde_component_state{component="bankid",state="up"} 0`:               nil,
		`varde_component_transitions_total{component="bankid",state="down"} 1`: nil,
	} {
		m := stateMetric.FindStringSubmatch(line)
		if (want == nil) != (m == nil) || (m != nil && (m[1] != want[0] || m[2] != want[1])) {
			t.Errorf("%s: %v", line, m)
		}
	}
}

// TestSpread: the people's pauses between logins differ, so that they do
// not keep in step and some are in a login at the kill.
func TestSpread(t *testing.T) {
	if got := spread(0); got != 0 {
		t.Errorf("spread(0) = %v, want 0", got)
	}
	const think = 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := spread(think)
		if d < think/2 || d >= think*3/2 {
			t.Fatalf("spread(%v) = %v, want in [%v, %v)", think, d, think/2, think*3/2)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("spread(%v) gave %d distinct pauses in 1000 draws, want them spread", think, len(seen))
	}
}

// TestResilienceNothingInFlight: a run in which no login of the either
// client was in flight at the kill checked nothing about recovery, and
// fails saying so.
func TestResilienceNothingInFlight(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := &resRun{o: &resOptions{users: 1}, marks: map[string]time.Time{
		"start": at(0), "kill": at(2), "page-down": at(3), "metric-down": at(3),
		"slow": at(5), "restart": at(8), "page-up": at(9), "metric-up": at(9),
	}}
	r.logins = []*resLogin{
		{client: resEither, person: "p", start: at(1), end: at(1.5), ok: true, provider: "bankid", sub: "s"},
		{client: resEither, person: "p", start: at(4), end: at(4.5), ok: true, provider: "minid", sub: "s"},
		{client: resEither, person: "p", start: at(10), end: at(10.5), ok: true, provider: "bankid", sub: "s"},
	}
	rep := r.summarise(true)
	if rep.InFlightAtKill != 0 || !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "no login was in flight at the kill") }) {
		t.Errorf("in flight %d, problems %q", rep.InFlightAtKill, rep.Problems)
	}
	// With one login across the kill, that problem is gone.
	r.logins = append(r.logins, &resLogin{client: resEither, person: "p", start: at(1.9), end: at(2.6), ok: true, provider: "minid", sub: "s", retried: []string{"bankid: gone"}})
	rep = r.summarise(true)
	if rep.InFlightAtKill != 1 || slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "in flight") }) {
		t.Errorf("in flight %d, problems %q", rep.InFlightAtKill, rep.Problems)
	}
}

// TestDBReportKillTime: the database run's kill: line says when the
// kill came, which is --before plus the time reading the audit log's
// head took.
func TestDBReportKillTime(t *testing.T) {
	r := &dbRun{nodesRun: &nodesRun{o: &resOptions{before: 8 * time.Second}}}
	rep := &dbReport{KillS: 8.52, HeadReadS: 0.52, DBDownS: -1, DBUpS: -1, FirstLoginS: -1, SwitchS: -1}
	rep.Kill = r.killFigures(rep, &loginTally{})
	var out bytes.Buffer
	r.report(rep, &out)
	if want := "kill:       the database's primary killed at 8.52s from the first login (--before 8s, then 0.52s reading the audit log's head);"; !strings.Contains(out.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, out.String())
	}
}

// TestLoadKillLines: the load: and kill: lines, as every kind of run
// prints them.
func TestLoadKillLines(t *testing.T) {
	l := newLoadFigures(8, 100*time.Millisecond, []runPhaseLogins{
		{Phase: "both up", Started: 295, Completed: 295},
		{Phase: "in flight at the kill", Started: 5, Completed: 2, Failed: 3},
		{Phase: "b dead", Started: 1473, Completed: 1473},
	}, runLoad{Load1Start: 9.5, Load1End: 11.25, OursBusy: 0.41, OtherBusy: 0.57})
	l.OthersInclude = nodesOthers
	k := killFigures{Fault: "SIGKILL node b", AtS: 8, DetectS: 0.0263, DetectedBy: "the balancer marked node b down: connection refused",
		RecoverS: 1.5, RecoverFrom: "restart", RecoveredBy: "the balancer marked node b up", InFlight: 5, InFlightFailed: 3,
		Failover: "logins started while node b was gone", FailoverLogins: 1473, FailoverP99MS: 1096.6}
	var out bytes.Buffer
	printLoadKill(&out, l, k)
	want := "load:       8 people, 100ms between logins on average (50ms to 150ms); logins started/completed/failed: both up 295/295/0, in flight at the kill 5/2/3, b dead 1,473/1,473/0; in all 1,773/1,770/3, 99.83 % completed; " +
		"1-min load average 9.50 at the start, 11.25 at the end; of the machine's CPU time, the run's processes used 41 %, other processes (the database's servers among them) 57 %\n" +
		"kill:       SIGKILL node b at 8.00s from the first login; detected after 26.3 ms (the balancer marked node b down: connection refused); recovered 1.50s after the restart (the balancer marked node b up); " +
		"in flight at the kill 5, 3 of them failed; logins started while node b was gone: p99 1,097 ms of 1,473\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	printLoadKill(&out, newLoadFigures(1, 0, nil, runLoad{-1, -1, -1, -1}), noKill("SIGKILL Demo BankID"))
	want = "load:       1 people, 0s between logins on average (0s to 0s); logins started/completed/failed: ; in all 0/0/0, 0.00 % completed; 1-min load average unknown; CPU shares unknown\n" +
		"kill:       SIGKILL Demo BankID: never, the run ended before it\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	k = noKill("SIGKILL node b")
	k.AtS, k.InFlight, k.Failover = 8.5, 2, "logins started while node b was gone"
	printLoadKill(&out, l, k)
	if want := "kill:       SIGKILL node b at 8.50s from the first login; never detected; never recovered; in flight at the kill 2, 0 of them failed; logins started while node b was gone: none completed\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("got\n%s\nwant it to end\n%s", out.String(), want)
	}
}

// TestEveryRunPrintsLoadKill: the eID, node and database runs' reports
// each end with the one load: line and the one kill: line.
func TestEveryRunPrintsLoadKill(t *testing.T) {
	o := &resOptions{before: time.Second}
	for name, report := range map[string]func(io.Writer){
		"eid":      func(w io.Writer) { (&resRun{o: o}).report(&resReport{}, w) },
		"nodes":    func(w io.Writer) { (&nodesRun{o: o}).report(&nodesReport{}, w) },
		"database": func(w io.Writer) { (&dbRun{nodesRun: &nodesRun{o: o}}).report(&dbReport{}, w) },
	} {
		var out bytes.Buffer
		report(&out)
		var load, kill int
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "load:       ") && strings.Contains(line, "logins started/completed/failed") {
				load++
			}
			if strings.HasPrefix(line, "kill:       ") && strings.Contains(line, "in flight at the kill") {
				kill++
			}
		}
		if load != 1 || kill != 1 {
			t.Errorf("%s: %d load: lines and %d kill: lines, want one each:\n%s", name, load, kill, out.String())
		}
	}
}

// TestNodesNothingInFlight: a node run in which no login was in flight
// when node b was killed checked nothing of the logins a dying node
// interrupts, and fails saying so; one login across the kill is enough.
func TestNodesNothingInFlight(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	newRun := func() *nodesRun {
		return &nodesRun{o: &resOptions{users: 1, think: 100 * time.Millisecond, postgres: "postgres://%zz"},
			c: &nodeCluster{bal: &balancer{}}, start: at(0), sigkill: at(2), dead: at(2.01), restart: at(5), end: at(8),
			logins: []*nodesLogin{{start: at(1), end: at(1.5), sub: "s"}, {start: at(3), end: at(3.5), sub: "s"}, {start: at(6), end: at(6.5), sub: "s"}}}
	}
	rep := newRun().summarise(context.Background(), true)
	if rep.Kill.InFlight != 0 || !hasProblem(rep.Problems, "no login was in flight at the kill") {
		t.Errorf("in flight %d, problems %q", rep.Kill.InFlight, rep.Problems)
	}
	if rep.Load.Started != 3 || rep.Load.Completed != 3 || rep.Kill.AtS != 2 || rep.Kill.FailoverLogins != 1 {
		t.Errorf("load %+v, kill %+v", rep.Load, rep.Kill)
	}
	r := newRun()
	r.logins = append(r.logins, &nodesLogin{start: at(1.9), end: at(2.6), err: errors.New("502")})
	rep = r.summarise(context.Background(), true)
	if rep.Kill.InFlight != 1 || rep.Kill.InFlightFailed != 1 || hasProblem(rep.Problems, "in flight") {
		t.Errorf("in flight %d, problems %q", rep.Kill.InFlight, rep.Problems)
	}
}

// TestDBNothingInFlight: a database run in which no login was in flight
// when the primary was killed fails saying so, as the other runs do.
func TestDBNothingInFlight(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	newRun := func() *dbRun {
		return &dbRun{nodesRun: &nodesRun{o: &resOptions{users: 1, before: 2 * time.Second}, start: at(0), end: at(8),
			logins: []*nodesLogin{{start: at(1), end: at(1.5), sub: "s"}, {start: at(3), end: at(3.5), sub: "s"}}},
			kill: at(2), headErr: errors.New("not read in this test")}
	}
	rep := newRun().summarise(context.Background(), true)
	if rep.Kill.InFlight != 0 || !hasProblem(rep.Problems, "no login was in flight at the kill") {
		t.Errorf("in flight %d, problems %q", rep.Kill.InFlight, rep.Problems)
	}
	r := newRun()
	r.logins = append(r.logins, &nodesLogin{start: at(1.9), end: at(2.6), sub: "s"})
	rep = r.summarise(context.Background(), true)
	if rep.Kill.InFlight != 1 || rep.Kill.InFlightFailed != 0 || hasProblem(rep.Problems, "in flight") {
		t.Errorf("in flight %d, problems %q", rep.Kill.InFlight, rep.Problems)
	}
}

// TestCheckLoad: a completed run whose kill came needs a login in
// flight at the kill and a completed login of the failover, and says
// which it lacked.
func TestCheckLoad(t *testing.T) {
	ok := killFigures{AtS: 8, InFlight: 3, Failover: "logins started while node b was gone", FailoverLogins: 40}
	noFlight, noFailover, neither := ok, ok, ok
	noFlight.InFlight = 0
	noFailover.FailoverLogins = 0
	neither.InFlight, neither.FailoverLogins = 0, 0
	for _, c := range []struct {
		name      string
		k         killFigures
		completed bool
		want      []string
	}{
		{"enough load", ok, true, nil},
		{"nothing in flight", noFlight, true, []string{"no login was in flight at the kill"}},
		{"no failover", noFailover, true, []string{"no completed logins started while node b was gone"}},
		{"neither", neither, true, []string{"no login was in flight", "no completed logins"}},
		{"not completed", neither, false, nil},
		{"no kill", noKill("SIGKILL node b"), true, nil},
	} {
		var got []string
		checkLoad(c.k, c.completed, func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) })
		if len(got) != len(c.want) {
			t.Errorf("%s: problems %q, want %d", c.name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: problem %q, want it to say %q", c.name, got[i], w)
			}
		}
	}
}

// hasProblem reports whether a problem says want.
func hasProblem(problems []string, want string) bool {
	return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) })
}

// TestResilienceVariantsDocumented: the Makefile's help for the
// resilience target names each variant's flag, and RESILIENCE.md gives
// each variant's command, both as go run and as make.
func TestResilienceVariantsDocumented(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var help []string
	for _, line := range strings.Split(string(mk), "\n") {
		if strings.HasPrefix(line, "## ") {
			help = append(help, line)
		} else if strings.HasPrefix(line, "resilience:") {
			break
		} else if !strings.HasPrefix(line, "RESILIENCE_FLAGS") {
			help = help[:0]
		}
	}
	doc, err := os.ReadFile("../../docs/RESILIENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	commands := strings.Split(strings.ReplaceAll(string(doc), "\\\n", " "), "\n")
	for _, flag := range []string{"--nodes", "--gently", "--kill-primary"} {
		if !strings.Contains(strings.Join(help, "\n"), flag) {
			t.Errorf("the Makefile's resilience help does not name %s", flag)
		}
		for _, prefix := range []string{"go run ./cmd/varde resilience", "make resilience RESILIENCE_FLAGS="} {
			if !slices.ContainsFunc(commands, func(l string) bool { return strings.Contains(l, prefix) && strings.Contains(l, flag) }) {
				t.Errorf("RESILIENCE.md gives no %q command with %s", prefix, flag)
			}
		}
	}
}

// TestParseLoadavg reads the 1-minute load average from /proc/loadavg's
// text and refuses what is not that.
func TestParseLoadavg(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.52 0.58 0.59 1/467 12345\n", 0.52, true},
		{"12.94 14.02 13.50 25/901 4242", 12.94, true},
		{"", 0, false},
		{"0.52", 0, false},
		{"busy 0.58 0.59 1/467 12345", 0, false},
		{"-1 0.58 0.59 1/467 12345", 0, false},
	} {
		got, ok := parseLoadavg(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseLoadavg(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestRunLoad: the run's share of the machine's CPU time is its own
// processes', the others' share the rest of the busy time; unknown
// figures are -1 and said so.
func TestRunLoad(t *testing.T) {
	s := loadSample{load1: 3, loadOK: true, ours: time.Second, busy: 10 * time.Second, total: 20 * time.Second, oursOK: true, cpuOK: true}
	e := loadSample{load1: 7.5, loadOK: true, ours: 5 * time.Second, busy: 22 * time.Second, total: 40 * time.Second, oursOK: true, cpuOK: true}
	l := s.to(e)
	if l != (runLoad{Load1Start: 3, Load1End: 7.5, OursBusy: 0.2, OtherBusy: 0.4}) {
		t.Errorf("load %+v", l)
	}
	if want := "1-min load average 3.00 at the start, 7.50 at the end; of the machine's CPU time, the run's processes used 20 %, other processes 40 %"; l.String() != want {
		t.Errorf("%q, want %q", l.String(), want)
	}
	if l := (loadSample{}).to(loadSample{}); l != (runLoad{-1, -1, -1, -1}) || l.String() != "1-min load average unknown; CPU shares unknown" {
		t.Errorf("unknown load %+v %q", l, l.String())
	}
	if _, err := os.Stat("/proc/loadavg"); err == nil {
		if l := sampleLoad(os.Getpid()).to(sampleLoad(os.Getpid())); l.Load1Start < 0 || l.Load1End < 0 {
			t.Errorf("no load average read on this machine: %+v", l)
		}
	}
}

// TestNeedsHighChecks: the needs-high client's checks find a login
// degraded before the kill, one at the wrong level or through the wrong
// eID, a failure, and a run without degraded logins, and count the rest.
func TestNeedsHighChecks(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	login := func(start, end float64, provider, acr string, degraded bool, sub string, retried ...string) *resLogin {
		return &resLogin{client: resNeedsHigh, person: "p", start: at(start), end: at(end), ok: true,
			provider: provider, acr: acr, degraded: degraded, sub: sub, retried: retried}
	}
	good := []*resLogin{
		login(1, 1.1, "bankid", "high", false, "s"),
		login(9.8, 11.7, "minid", "substantial", true, "s", "bankid: at the eID: dial: connect: connection refused"),
		login(12, 12.1, "minid", "substantial", true, "s"),
		login(33.5, 34.2, "bankid", "high", false, "s", "minid: back at Varde: restored"),
	}
	for _, tc := range []struct {
		name   string
		logins []*resLogin
		want   string // a problem that must be found; "" for none
		// miscount is how far the node's count of degraded logins is
		// off the logins'.
		miscount float64
	}{
		{"a run as it should be", good, "", 0},
		{"degraded before the kill", append(slices.Clone(good), login(2, 2.1, "minid", "substantial", true, "s")), "ended before the kill was degraded", 0},
		{"degraded without meeting BankID dead", append(slices.Clone(good), login(9.9, 10.5, "minid", "substantial", true, "s")), "without meeting BankID dead", 0},
		{"minid without the claim", append(slices.Clone(good), login(12, 12.1, "minid", "substantial", false, "s")), `through "minid" at "substantial", degraded false`, 0},
		{"the claim at high", append(slices.Clone(good), login(12, 12.1, "bankid", "high", true, "s")), `through "bankid" at "high", degraded true`, 0},
		{"a failure", append(slices.Clone(good), &resLogin{client: resNeedsHigh, person: "p", start: at(12), end: at(13), err: "token: 500"}), "a login failed: token: 500", 0},
		{"no degraded login", []*resLogin{good[0], good[3]}, "no login at substantial, degraded", 0},
		{"another sub", append(slices.Clone(good[:3]), login(33.5, 34.2, "bankid", "high", false, "other")), "nobody logged in both degraded and at high with one sub", 0},
		{"the node counted otherwise", good, "2 logins degraded, and the node's varde_logins_degraded_total says 3", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counted := tc.miscount
			for _, l := range tc.logins {
				if l.ok && l.degraded {
					counted++
				}
			}
			r := &resRun{marks: map[string]time.Time{"kill": at(10), "restart": at(33)}, degradedCounted: counted}
			h := r.newHighCheck()
			var problems []string
			problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
			for _, l := range tc.logins {
				h.add(l, problem)
			}
			h.check(problem)
			found := slices.ContainsFunc(problems, func(p string) bool { return tc.want != "" && strings.Contains(p, tc.want) })
			if (tc.want == "" && len(problems) > 0) || (tc.want != "" && !found) {
				t.Errorf("problems %q, want %q", problems, tc.want)
			}
		})
	}
	r := &resRun{marks: map[string]time.Time{"kill": at(10), "restart": at(33)}, degradedCounted: 2}
	h := r.newHighCheck()
	for _, l := range good {
		h.add(l, func(string, ...any) {})
	}
	h.check(func(string, ...any) {})
	want := needsHighFigures{BeforeHigh: 1, AfterHigh: 1, Degraded: 2, FirstDegradedS: 1.7, LastDegradedS: -21, SentBack: 1, BothSameSub: 1}
	if got := h.figures; got.BeforeHigh != want.BeforeHigh || got.AfterHigh != want.AfterHigh || got.Degraded != want.Degraded ||
		math.Abs(got.FirstDegradedS-want.FirstDegradedS) > 1e-9 || math.Abs(got.LastDegradedS-want.LastDegradedS) > 1e-9 ||
		got.SentBack != want.SentBack || got.BothSameSub != want.BothSameSub {
		t.Errorf("figures %+v, want %+v", got, want)
	}
}

// TestResilienceProbesOutlastSlowMinID checks the node's probing with
// the default flags against what a slow MinID costs a probe: three
// responses (discovery, keys, token endpoint), each delayed by
// --slow-delay. Such a probe must count as slow, so that MinID is
// degraded and still offered, and must end well within the probe
// timeout, so that a loaded machine does not make it a failure and
// MinID down while BankID is dead.
func TestResilienceProbesOutlastSlowMinID(t *testing.T) {
	o, err := parseResilienceFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := resHealthConfig(o)
	dur := func(key string) time.Duration {
		d, err := time.ParseDuration(h[key].(string))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return d
	}
	slowMinID := 3 * o.slowDelay
	interval, timeout, slow := dur("interval"), dur("probe_timeout"), dur("slow_probe")
	if slow >= slowMinID {
		t.Errorf("slow_probe %v: a probe of the slow MinID (%v) would not count as slow", slow, slowMinID)
	}
	if timeout < 2*slowMinID {
		t.Errorf("probe_timeout %v leaves too little margin over a probe of the slow MinID (%v) on a loaded machine", timeout, slowMinID)
	}
	if timeout > interval || slow >= timeout {
		t.Errorf("interval %v, probe_timeout %v, slow_probe %v: the node would refuse them", interval, timeout, slow)
	}
}

// TestKillFallsInsideALogin: the instant killWhenBusy gives for the kill
// lies inside a login of the either client, however short its logins and
// however slow the machine, so that a run never ends with no login in
// flight at the kill for want of timing.
func TestKillFallsInsideALogin(t *testing.T) {
	for range 20 {
		r := &resRun{}
		type span struct{ start, end time.Time }
		var (
			mu    sync.Mutex
			spans []span
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				// As login does: the start, under way, the end.
				s := time.Now()
				leave := r.inFlight()
				runtime.Gosched()
				leave()
				e := time.Now()
				mu.Lock()
				spans = append(spans, span{s, e})
				mu.Unlock()
				runtime.Gosched()
			}
		}()
		at := r.killWhenBusy(t.Context())
		close(stop)
		<-done
		inside := slices.ContainsFunc(spans, func(s span) bool { return s.start.Before(at) && s.end.After(at) })
		if !inside {
			t.Fatalf("the kill at %v falls inside none of %d logins", at, len(spans))
		}
	}
}
