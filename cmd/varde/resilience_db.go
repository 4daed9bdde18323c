package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// The database failover run's phases, in the order of the report. A
// login counts in the phase it started in, except those in flight at
// the kill.
const (
	dbBefore   = "primary up"
	dbInFlight = "in flight at the kill"
	dbSwitch   = "switching"
	dbAfter    = "after the switch"
)

// dbProbeEvery is how often the run asks the database and each node's
// /readyz, and dbMetricsEvery each node's /metrics.
const (
	dbProbeEvery   = 50 * time.Millisecond
	dbMetricsEvery = 200 * time.Millisecond
)

// dbReport is what a database failover run measured; --json writes it.
type dbReport struct {
	Command  string       `json:"command"`
	Machine  benchMachine `json:"machine"`
	Database string       `json:"database"`
	Config   struct {
		Users       int    `json:"users"`
		Think       string `json:"think"`
		KillPrimary string `json:"kill_primary"`
	} `json:"config"`
	// Replication is what the primary said of its replicas before the
	// kill; Synchronous whether a commit waited for one.
	Replication string       `json:"replication"`
	Synchronous bool         `json:"synchronous"`
	Phases      []nodesPhase `json:"phases"`
	// KillOutput is what the kill command printed; KillS when the kill
	// command started, in seconds from the start of the logins: --before
	// and then HeadReadS, the time reading the audit log's head took.
	// -1 if it never ran.
	KillOutput string  `json:"kill_output"`
	KillS      float64 `json:"kill_at_s"`
	HeadReadS  float64 `json:"audit_head_read_s"`
	// Seconds from the kill (the command started) until: the database
	// answered as a primary again through the DSN; a login that started
	// after the kill completed; each node's /readyz answered 200 again,
	// and its store component was up again; the later of the nodes'
	// /readyz (the end of the switch). -1 if it never happened.
	ServerBefore string     `json:"server_before"`
	ServerAfter  string     `json:"server_after"`
	DBDownS      float64    `json:"db_unreachable_s"`
	DBUpS        float64    `json:"db_primary_again_s"`
	FirstLoginS  float64    `json:"first_login_completed_s"`
	Nodes        []dbNodeUp `json:"nodes"`
	SwitchS      float64    `json:"switch_s"`
	// The audit log: its head read just before the kill, and the whole
	// chain checked after the run.
	AuditBefore string `json:"audit_before_kill"`
	Audit       string `json:"audit"`
	AuditOK     bool   `json:"audit_kept"`
	SubsStable  bool   `json:"subs_stable"`
	// Failures lists the failed logins.
	Failures []string `json:"failures,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Logins   int      `json:"logins"`
	// Load is the load the run offered and how busy the machine was;
	// Kill the fault and what came of it: the load: and kill: lines.
	Load loadFigures `json:"load"`
	Kill killFigures `json:"kill"`
}

// dbNodeUp is how one node saw the switch, in seconds from the kill: its
// /readyz first not 200 and 200 again, its store component first not up
// and up again. -1 if it never happened.
type dbNodeUp struct {
	Node        string  `json:"node"`
	ReadyzDownS float64 `json:"readyz_down_s"`
	ReadyzUpS   float64 `json:"readyz_up_s"`
	StoreDownS  float64 `json:"store_down_s"`
	StoreUpS    float64 `json:"store_up_s"`
	StoreStates string  `json:"store_states"`
}

// probeResult is one answer of a probe the run repeats.
type probeResult struct {
	at time.Time
	ok bool
	// what it said: a server's address, a component's state.
	what string
}

// outage finds, in results (in the order they were taken), the first
// failed probe taken at or after from, and the first good one after it;
// zero times if there is none.
func outage(results []probeResult, from time.Time) (down, up time.Time) {
	for _, p := range results {
		switch {
		case p.at.Before(from):
		case down.IsZero() && !p.ok:
			down = p.at
		case !down.IsZero() && p.ok:
			return down, p.at
		}
	}
	return down, time.Time{}
}

// since is t's seconds after from, or -1 if t is zero.
func since(t, from time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return t.Sub(from).Seconds()
}

// dbRun is one database failover run: the node run's cluster and people,
// the kill and what the probes saw.
type dbRun struct {
	*nodesRun
	kill       time.Time
	killOutput string
	killErr    error
	// head is the audit log's head read just before the kill;
	// headTook how long reading it took, which puts the kill that much
	// after --before.
	head     audit.Head
	headErr  error
	headTook time.Duration

	pmu     sync.Mutex
	db      []probeResult
	readyz  [2][]probeResult
	storeOf [2][]probeResult
}

func runDBFailover(ctx context.Context, o *resOptions, stdout, stderr io.Writer) (*dbReport, error) {
	nr, stop, err := startNodesRun(ctx, o, stdout, stderr)
	if err != nil {
		return nil, err
	}
	defer stop()
	r := &dbRun{nodesRun: nr}
	repl, synchronous, err := replication(ctx, o.postgres)
	if err != nil {
		return nil, fmt.Errorf("ask the primary of its replicas: %w", err)
	}
	fmt.Fprintf(stdout, "replication: %s\n\n", repl)
	completed := r.drive(ctx, stdout)
	r.c.stop() // before the audit log is read, so that it is complete
	rep := r.summarise(ctx, completed)
	rep.Replication, rep.Synchronous = repl, synchronous
	r.report(rep, stdout)
	if err := finishRun(rep, rep.Problems, o.jsonFile, r.children(), stderr); err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}

// replication asks the server at dsn (the primary) which replicas stream
// from it and whether a commit waits for one.
func replication(ctx context.Context, dsn string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(ctx)
	var names, commit, server string
	var replicas []string
	err = conn.QueryRow(ctx, "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit'), host(inet_server_addr()) || ':' || inet_server_port()").Scan(&names, &commit, &server)
	if err != nil {
		return "", false, err
	}
	rows, err := conn.Query(ctx, "SELECT application_name || ' ' || state || ', ' || sync_state FROM pg_stat_replication ORDER BY 1")
	if err != nil {
		return "", false, err
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", false, err
		}
		replicas = append(replicas, s)
	}
	if err := rows.Err(); err != nil {
		return "", false, err
	}
	if len(replicas) == 0 {
		replicas = []string{"none"}
	}
	synced := names != "" && commit != "off" && commit != "local" && slices.ContainsFunc(replicas, func(s string) bool {
		return strings.HasSuffix(s, ", sync") || strings.HasSuffix(s, ", quorum")
	})
	mode := "asynchronous: a commit does not wait for a replica, so committed data may be lost at a failover"
	if synced {
		mode = "synchronous: a commit waits for a replica to have it"
	}
	return fmt.Sprintf("primary %s; replicas: %s; synchronous_standby_names %q, synchronous_commit %s (%s)",
		server, strings.Join(replicas, "; "), names, commit, mode), synced, nil
}

// drive runs the phases: the people log in, the kill command runs, and
// the probes watch the database and the nodes throughout.
func (r *dbRun) drive(ctx context.Context, stdout io.Writer) bool {
	o := r.o
	stop := make(chan struct{}) // no new logins after this
	probes := make(chan struct{})
	var wg, pw sync.WaitGroup
	load0 := r.sampleLoad()
	r.start = time.Now()
	r.watch(ctx, probes, &pw)
	for i := range r.persons {
		wg.Go(func() { r.person(ctx, i, stop) })
	}
	say, wait := runClock(ctx, stdout, r.start)
	ok := wait(o.before)
	if ok {
		headAt := time.Now()
		r.head, r.headErr = auditHead(ctx, o.postgres)
		r.kill = time.Now()
		r.headTook = r.kill.Sub(headAt)
		say("kill the database's primary (the audit log's head read in %.2fs): %s", r.headTook.Seconds(), o.killPrimary)
		r.killOutput, r.killErr = runKill(ctx, o.killPrimary)
		say("%s", oneLine(r.killOutput))
		ok = r.killErr == nil && wait(o.killed-time.Since(r.kill))
	}
	r.end = time.Now()
	close(stop)
	say("end; waiting for logins in flight")
	wg.Wait()
	r.machine = load0.to(r.sampleLoad())
	close(probes)
	pw.Wait()
	fmt.Fprintln(stdout)
	return ok
}

// runKill runs the kill command with sh, for at most 30 s.
func runKill(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", command).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("kill command: %w", err)
	}
	return strings.TrimSpace(string(out)), err
}

// auditHead verifies the audit log at dsn and returns its head.
func auditHead(ctx context.Context, dsn string) (audit.Head, error) {
	db, err := sqlstore.OpenExistingPostgres(ctx, dsn)
	if err != nil {
		return audit.Head{}, err
	}
	defer db.Close()
	return (&audit.Log{Store: db}).VerifyHead(ctx)
}

// watch starts the probes, until done: the database through the DSN, a
// new connection each time, asked which server answers and whether it
// is a primary; each node's /readyz; each node's store component in
// /metrics.
func (r *dbRun) watch(ctx context.Context, done <-chan struct{}, wg *sync.WaitGroup) {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	every := func(d time.Duration, probe func() probeResult, into *[]probeResult) {
		wg.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				p := probe()
				r.pmu.Lock()
				*into = append(*into, p)
				r.pmu.Unlock()
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		})
	}
	every(dbProbeEvery, func() probeResult { return probeDB(ctx, r.o.postgres) }, &r.db)
	for i, n := range r.c.nodes {
		every(dbProbeEvery, func() probeResult {
			p := probeResult{at: time.Now()}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
			if res, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				p.ok, p.what = res.StatusCode == http.StatusOK, res.Status
			}
			return p
		}, &r.readyz[i])
		every(dbMetricsEvery, func() probeResult {
			p := probeResult{at: time.Now()}
			states, err := fetchStates(ctx, hc, n.url)
			if err == nil {
				p.ok, p.what = states["store"] == "up", states["store"]
			}
			return p
		}, &r.storeOf[i])
	}
}

// probeDB connects to dsn and asks which server answers and whether it
// is a primary.
func probeDB(ctx context.Context, dsn string) probeResult {
	p := probeResult{at: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return p
	}
	defer conn.Close(ctx)
	var recovery bool
	if err := conn.QueryRow(ctx, "SELECT host(inet_server_addr()) || ':' || inet_server_port(), pg_is_in_recovery()").Scan(&p.what, &recovery); err != nil {
		return p
	}
	p.ok = !recovery
	return p
}

// phaseOf is the row of the report a login counts in; recovered is the
// end of the switch (zero if it never ended).
func (r *dbRun) phaseOf(l *nodesLogin, recovered time.Time) string {
	switch {
	case r.kill.IsZero() || l.end.Before(r.kill):
		return dbBefore
	case l.start.Before(r.kill):
		return dbInFlight
	case recovered.IsZero() || l.start.Before(recovered):
		return dbSwitch
	}
	return dbAfter
}

// summarise computes the report and checks the assertions.
func (r *dbRun) summarise(ctx context.Context, completed bool) *dbReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pmu.Lock()
	defer r.pmu.Unlock()
	o := r.o
	rep := &dbReport{Command: o.command, Machine: machine(), Database: sqlstore.DescribeDSN("postgres", o.postgres),
		Logins: len(r.logins), SubsStable: true, KillOutput: r.killOutput,
		DBDownS: -1, DBUpS: -1, FirstLoginS: -1, SwitchS: -1, KillS: -1, HeadReadS: r.headTook.Seconds()}
	if !r.kill.IsZero() {
		rep.KillS = r.kill.Sub(r.start).Seconds()
	}
	rep.Config.Users, rep.Config.Think, rep.Config.KillPrimary = o.users, o.think.String(), o.killPrimary
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if !completed {
		problem("the run did not complete its phases")
	}
	if r.killErr != nil {
		problem("%v: %s", r.killErr, oneLine(r.killOutput))
	}

	// The switch: from the kill until both nodes' /readyz answered 200
	// again after failing.
	var recovered time.Time
	if !r.kill.IsZero() {
		down, up := outage(r.db, r.kill)
		rep.DBDownS, rep.DBUpS = since(down, r.kill), since(up, r.kill)
		rep.ServerBefore, rep.ServerAfter = lastBefore(r.db, r.kill), firstOKAfter(r.db, up)
		recovered = r.kill
		for i, n := range []string{"a", "b"} {
			rdown, rup := outage(r.readyz[i], r.kill)
			sdown, sup := outage(r.storeOf[i], r.kill)
			rep.Nodes = append(rep.Nodes, dbNodeUp{Node: n,
				ReadyzDownS: since(rdown, r.kill), ReadyzUpS: since(rup, r.kill),
				StoreDownS: since(sdown, r.kill), StoreUpS: since(sup, r.kill), StoreStates: statesAfter(r.storeOf[i], r.kill)})
			switch {
			case rdown.IsZero():
				// It never noticed: nothing to wait for.
			case rup.IsZero():
				problem("node %s's /readyz did not answer 200 again after the kill", n)
				recovered = time.Time{}
			case !recovered.IsZero() && rup.After(recovered):
				recovered = rup
			}
		}
		rep.SwitchS = since(recovered, r.kill)
		if up.IsZero() {
			problem("the database did not answer as a primary again through the DSN")
		}
	}

	t := tallyLogins(r.logins, r.start, func(l *nodesLogin) string { return r.phaseOf(l, recovered) }, func(name string, l *nodesLogin) {
		switch name {
		case dbBefore:
			problem("a login failed before the kill: %v", l.err)
		case dbAfter:
			problem("a login that started %.2fs after the kill, once both nodes were ready again, failed: %v", l.start.Sub(r.kill).Seconds(), l.err)
		}
	})
	rep.Failures, rep.SubsStable = t.failures, t.subsStable(problem)
	var first time.Time // the first login that started after the kill to complete
	for _, l := range r.logins {
		if l.err == nil && !r.kill.IsZero() && !l.start.Before(r.kill) && (first.IsZero() || l.end.Before(first)) {
			first = l.end
		}
	}
	rep.FirstLoginS = since(first, r.kill)
	seconds := map[string]time.Duration{}
	if !r.kill.IsZero() {
		seconds[dbBefore] = r.kill.Sub(r.start)
		if !recovered.IsZero() {
			seconds[dbSwitch], seconds[dbAfter] = recovered.Sub(r.kill), r.end.Sub(recovered)
		}
	}
	rep.Phases = t.rows([]string{dbBefore, dbInFlight, dbSwitch, dbAfter}, seconds,
		func(name string) bool { return name == dbBefore || name == dbAfter }, completed, problem)
	rep.Load = newLoadFigures(o.users, o.think, nodesPhaseLogins(rep.Phases), r.machine)
	rep.Load.OthersInclude = nodesOthers
	rep.Kill = r.killFigures(rep, t)
	checkLoad(rep.Kill, completed, problem)
	rep.AuditBefore, rep.Audit, rep.AuditOK = r.checkAudit(ctx)
	if !rep.AuditOK {
		problem("audit log: %s", rep.Audit)
	}
	return rep
}

// killFigures is the kill: line's figures: the kill, the first node to
// find the store gone (its /readyz no longer 200), the end of the
// switch, and the logins of the switch.
func (r *dbRun) killFigures(rep *dbReport, t *loginTally) killFigures {
	k := noKill("the database's primary killed")
	k.AtS = rep.KillS
	if k.AtS >= 0 {
		k.Note = fmt.Sprintf("--before %v, then %.2fs reading the audit log's head", r.o.before, rep.HeadReadS)
	}
	k.DetectedBy = "neither node's /readyz failed"
	for _, n := range rep.Nodes {
		if n.ReadyzDownS >= 0 && (k.DetectS < 0 || n.ReadyzDownS < k.DetectS) {
			k.DetectS, k.DetectedBy = n.ReadyzDownS, "node "+n.Node+"'s /readyz not 200"
		}
	}
	k.RecoverS, k.RecoveredBy = rep.SwitchS, "both nodes' /readyz 200 again"
	if ph := t.phases[dbInFlight]; ph != nil {
		k.InFlight, k.InFlightFailed = ph.Logins, ph.Failed
	}
	k.Failover = "logins started during the switch"
	if ph := t.phases[dbSwitch]; ph != nil {
		k.FailoverLogins, k.FailoverP99MS = ph.OK, ph.P99MS
	}
	return k
}

// checkAudit compares the audit log after the run with its head before
// the kill: the chain must verify, hold at least as many events, and
// still hold the event the head was, so every event committed before
// the kill.
func (r *dbRun) checkAudit(ctx context.Context) (before, after string, ok bool) {
	if r.kill.IsZero() {
		return "", "no kill", false
	}
	if r.headErr != nil {
		return r.headErr.Error(), "the head before the kill could not be read", false
	}
	before = fmt.Sprintf("%d events, head seq %d", r.head.Events, r.head.Seq)
	db, err := sqlstore.OpenExistingPostgres(ctx, r.o.postgres)
	if err != nil {
		return before, err.Error(), false
	}
	defer db.Close()
	if err := db.CheckIntegrity(ctx); err != nil {
		return before, err.Error(), false
	}
	l := &audit.Log{Store: db}
	h, err := l.VerifyHead(ctx)
	if err != nil {
		return before, err.Error(), false
	}
	after = fmt.Sprintf("%d events, an unbroken hash chain from seq 1 to %d; the append-only triggers in place", h.Events, h.Seq)
	if h.Events < r.head.Events {
		return before, after + fmt.Sprintf("; FEWER than the %d before the kill: committed events lost", r.head.Events), false
	}
	if r.head.Seq > 0 {
		if err := l.CheckAnchor(ctx, r.head.AnchorString()); err != nil {
			return before, after + "; " + err.Error(), false
		}
		after += fmt.Sprintf("; event %d, the head before the kill, unchanged", r.head.Seq)
	}
	return before, after, true
}

// lastBefore is what the last good probe before t said.
func lastBefore(results []probeResult, t time.Time) string {
	what := ""
	for _, p := range results {
		if p.at.Before(t) && p.ok {
			what = p.what
		}
	}
	return what
}

// firstOKAfter is what the first good probe at or after t said.
func firstOKAfter(results []probeResult, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	for _, p := range results {
		if p.ok && !p.at.Before(t) {
			return p.what
		}
	}
	return ""
}

// statesAfter is the states the probes saw from t on, each change once:
// "up, down, up".
func statesAfter(results []probeResult, t time.Time) string {
	var states []string
	for _, p := range results {
		what := p.what
		if what == "" {
			what = "no answer"
		}
		if !p.at.Before(t) && (len(states) == 0 || states[len(states)-1] != what) {
			states = append(states, what)
		}
	}
	return strings.Join(states, ", ")
}

// report prints the report.
func (r *dbRun) report(rep *dbReport, w io.Writer) {
	printPhaseRows(w, rep.Phases)
	fmt.Fprintf(w, `
database:   %s before the kill; unreachable or not a primary %s after it, a primary again (%s) after %s
first login: a login that started after the kill completed %s after it
switch:     both nodes' /readyz 200 again %s after the kill
`, rep.ServerBefore, secsOrNever(rep.DBDownS), rep.ServerAfter, secsOrNever(rep.DBUpS), secsOrNever(rep.FirstLoginS), secsOrNever(rep.SwitchS))
	for _, n := range rep.Nodes {
		store := fmt.Sprintf("%s throughout", n.StoreStates)
		if n.StoreDownS >= 0 {
			store = fmt.Sprintf("not up after %s, up again after %s (%s)", secsOrNever(n.StoreDownS), secsOrNever(n.StoreUpS), n.StoreStates)
		}
		fmt.Fprintf(w, "node %s:     /readyz not 200 after %s, 200 again after %s; its store component in /metrics %s\n",
			n.Node, secsOrNever(n.ReadyzDownS), secsOrNever(n.ReadyzUpS), store)
	}
	subs := "every person kept one sub"
	if !rep.SubsStable {
		subs = "CHANGED"
	}
	fmt.Fprintf(w, "audit log:  before the kill %s; after the run %s\nsubs:       %s\n", rep.AuditBefore, rep.Audit, subs)
	printLoadKill(w, rep.Load, rep.Kill)
	printList(w, "failed logins", rep.Failures)
	printVerdict(w, rep.Problems)
}
