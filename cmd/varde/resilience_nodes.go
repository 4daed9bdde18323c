package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// nodesSalt is the subject salt of the node run's nodes: the same at
// every run, so that a database an earlier run used serves again, and
// not a secret, since the persons are synthetic. A database first used
// with another salt (a real deployment's) makes the nodes refuse to
// start (ADR 13).
var nodesSalt = sha256.Sum256([]byte("varde resilience --nodes: the subject salt of synthetic persons, not a secret"))

// The node run's phases, in the order of the report. A login counts in
// the phase it started in, except that those in flight at the kill have
// a row of their own.
const (
	nodesBefore   = "both up"
	nodesInFlight = "in flight at the kill"
	nodesDead     = "b dead"
	nodesBack     = "b restarted"
)

// nodesReport is what a node run measured; --json writes it.
type nodesReport struct {
	Command  string       `json:"command"`
	Machine  benchMachine `json:"machine"`
	Database string       `json:"database"`
	Config   struct {
		Users          int    `json:"users"`
		Think          string `json:"think"`
		ReadyzInterval string `json:"readyz_interval"`
	} `json:"config"`
	Phases []nodesPhase `json:"phases"`
	// Windows are the requests the balancer passed on, by when.
	Windows []nodesWindow `json:"requests"`
	// Signal is how node b was ended: SIGKILL, or SIGTERM (--gently),
	// after which it finishes the requests it holds and exits.
	Signal string `json:"signal"`
	// The kill: from the signal until node b's process was reaped (its
	// sockets closed), and until the balancer marked it down, and why.
	ReapedMS float64 `json:"sigkill_to_reaped_ms"`
	DownMS   float64 `json:"sigkill_to_marked_down_ms"`
	DownBy   string  `json:"marked_down_by"`
	// InFlight are the logins that started before node b was gone and
	// had not finished at the SIGKILL; InFlightFailed of them failed.
	InFlight       int `json:"in_flight_at_kill"`
	InFlightFailed int `json:"in_flight_failed"`
	// The restart: until the balancer marked node b up (its /readyz
	// answered 200), and until it sent node b a login's request that
	// node b answered. -1 if it never happened.
	UpS      float64 `json:"restart_to_marked_up_s"`
	TrafficS float64 `json:"restart_to_first_request_s"`
	// Audit is what the check of the audit log found after the run.
	Audit      string   `json:"audit"`
	AuditOK    bool     `json:"audit_chain_unbroken"`
	SubsStable bool     `json:"subs_stable"`
	Failures   []string `json:"failures,omitempty"`
	// BadGateway lists the requests a node failed (the client got 502).
	BadGateway []string `json:"bad_gateway,omitempty"`
	Problems   []string `json:"problems,omitempty"`
	Logins     int      `json:"logins"`
	// Load is the load the run offered and how busy the machine was;
	// Kill the fault and what came of it: the load: and kill: lines.
	Load loadFigures `json:"load"`
	Kill killFigures `json:"kill"`
}

// nodesPhase is the logins that started in one phase.
type nodesPhase struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds,omitempty"`
	Logins  int     `json:"logins"`
	OK      int     `json:"ok"`
	Failed  int     `json:"failed"`
	Success float64 `json:"success_rate"`
	// PerSec is completed logins per second of the phase.
	PerSec float64 `json:"ok_per_s,omitempty"`
	latency
}

// nodesWindow is the requests the balancer sent in a window of time:
// answered by each node, sent to another node than the one whose
// turn it was (that one down, or not to be connected to), failed by a
// node (502).
type nodesWindow struct {
	Window     string `json:"window"`
	A          int    `json:"node_a"`
	B          int    `json:"node_b"`
	PassedOver int    `json:"passed_over"`
	BadGateway int    `json:"bad_gateway"`
}

// nodesLogin is one login as the relying party saw it.
type nodesLogin struct {
	person     int
	start, end time.Time
	sub        string
	err        error
}

// nodesRun is one node run: the cluster, the relying party, the people
// and what was seen.
type nodesRun struct {
	o       *resOptions
	c       *nodeCluster
	rp      *loadgen.RP
	persons []*loadgen.Person
	// The instants of the run: logins start; SIGKILL sent, node b
	// reaped; node b started again; no more logins start.
	start, sigkill, dead, restart, end time.Time
	// bExited is true if node b exited after its restart, before the end.
	bExited bool
	// machine is how busy the machine was from the first login to the
	// last.
	machine runLoad

	mu     sync.Mutex
	logins []*nodesLogin
	hops   []lbHop
}

func runNodeFailover(ctx context.Context, o *resOptions, stdout, stderr io.Writer) (*nodesReport, error) {
	r, stop, err := startNodesRun(ctx, o, stdout, stderr)
	if err != nil {
		return nil, err
	}
	defer stop()
	completed := r.drive(ctx, stdout)
	r.c.stop() // before the audit log is read, so that it is complete
	rep := r.summarise(ctx, completed)
	r.report(rep, stdout)
	if err := finishRun(rep, rep.Problems, o.jsonFile, r.children(), stderr); err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}

// startNodesRun starts the node run's cluster, behind the balancer, and
// enrols its people; stop ends the cluster and removes its directory
// (unless --keep).
func startNodesRun(ctx context.Context, o *resOptions, stdout, stderr io.Writer) (r *nodesRun, stop func(), err error) {
	dir, err := os.MkdirTemp("", "varde-nodes-")
	if err != nil {
		return nil, nil, err
	}
	c, err := listenCluster(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	r = &nodesRun{o: o, c: c}
	end := func() {
		c.stop()
		if o.keep {
			fmt.Fprintf(stderr, "kept %s (a.yaml, b.yaml, a.log, b.log, the nodes' keys)\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			end()
		}
	}()
	m := machine()
	fmt.Fprintf(stdout, "machine:  %d CPUs (%s), GOMAXPROCS %d, %s, %s\n", m.CPUs, m.CPUModel, m.GOMAXPROCS, m.Go, m.OS)
	fmt.Fprintf(stdout, "database: PostgreSQL, %s\n", sqlstore.DescribeDSN("postgres", o.postgres))
	began := time.Now()
	// A node stopped gently stays up, unready, until the balancer (two
	// failed /readyz in a row) has surely passed it over.
	drain := 4 * o.readyzInterval
	err = c.start(ctx, clusterSpec{dsn: o.postgres, names: []string{"a", "b"}, salt: nodesSalt[:], env: o.childEnv,
		logLevel: o.logLevel, drain: drain})
	if err != nil {
		if strings.Contains(err.Error(), "subject salt differs") {
			err = fmt.Errorf("%w\n(the database was used with another subject salt: give an empty one, or one an earlier --nodes run used)", err)
		}
		return nil, nil, err
	}
	c.bal.observe = r.observe
	c.serve(o.readyzInterval)
	a, b := c.nodes[0], c.nodes[1]
	fmt.Fprintf(stdout, "nodes:    a %s (process %d), b %s (process %d), ready %.1fs after start (a signing key new to the database waits 5s at /readyz)\n",
		a.url, a.cmd.Process.Pid, b.url, b.cmd.Process.Pid, time.Since(began).Seconds())
	fmt.Fprintf(stdout, "balancer: %s, the issuer: round robin per request, a node it cannot connect to passed over, /readyz every %v\n", c.issuer, o.readyzInterval)

	hc := benchHTTPClient(o.users)
	r.rp = &loadgen.RP{Issuer: c.issuer, ClientID: clusterClient, RedirectURI: clusterCallback, Key: c.rpKey, KeyID: clusterKID, HTTP: hc}
	if err = r.rp.Setup(ctx); err != nil {
		return nil, nil, fmt.Errorf("relying party setup: %w", err)
	}
	if r.persons, err = enrolPersons(ctx, &benchTarget{issuer: c.issuer, http: hc}, o.users); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stdout, "people:   %d, each with a passkey, logging in again and again, %v between logins on average (%v to %v)\n\n",
		o.users, o.think, o.think/2, o.think*3/2)
	return r, func() { hc.CloseIdleConnections(); end() }, nil
}

// children are the nodes, whose logs a failed run shows.
func (r *nodesRun) children() []*resChild {
	return []*resChild{&r.c.nodes[0].resChild, &r.c.nodes[1].resChild}
}

func (r *nodesRun) observe(h lbHop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hops = append(r.hops, h)
}

// signal names how node b is ended.
func (r *nodesRun) signal() string {
	if r.o.gently {
		return "SIGTERM"
	}
	return "SIGKILL"
}

// drive runs the phases with the virtual people, and reports whether
// they all ran.
func (r *nodesRun) drive(ctx context.Context, stdout io.Writer) bool {
	o, b := r.o, r.c.nodes[1]
	stop := make(chan struct{}) // no new logins after this
	var wg sync.WaitGroup
	load0 := r.sampleLoad()
	r.start = time.Now()
	for i := range r.persons {
		wg.Go(func() { r.person(ctx, i, stop) })
	}
	say, wait := runClock(ctx, stdout, r.start)
	ok := wait(o.before)
	if ok {
		say("%s node b (process %d)", r.signal(), b.cmd.Process.Pid)
		r.sigkill = time.Now()
		if o.gently {
			b.stop()
		} else {
			b.kill()
		}
		r.dead = time.Now()
		ok = wait(o.killed)
	}
	if ok {
		say("restart node b on %s, with its configuration and key", b.url)
		r.restart = time.Now()
		if err := r.c.restart(1); err != nil {
			say("%v", err)
			ok = false
		} else {
			ok = wait(o.restarted)
			select {
			case <-b.exited:
				r.bExited = true
			default:
			}
		}
	}
	r.end = time.Now()
	close(stop)
	say("end; waiting for logins in flight")
	wg.Wait()
	r.machine = load0.to(r.sampleLoad())
	fmt.Fprintln(stdout)
	return ok
}

// nodesOthers is what of the node and database runs counts among the
// other processes of the load: line: the database, which they do not
// start.
const nodesOthers = "the database's servers among them"

// sampleLoad samples the machine's load and CPU time, and the run's own
// (this process, the balancer in it, and the nodes, those that ended
// included). The database server is not the run's own.
func (r *nodesRun) sampleLoad() loadSample {
	var pids []int
	for _, n := range r.c.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			pids = append(pids, n.cmd.Process.Pid)
		}
	}
	return sampleLoad(pids...)
}

// person is one virtual person: log in, pause (spread), repeat, until
// stop.
func (r *nodesRun) person(ctx context.Context, i int, stop <-chan struct{}) {
	again(ctx, stop, func() time.Duration { return spread(r.o.think) }, func() {
		l := &nodesLogin{person: i, start: time.Now()}
		res, err := r.rp.Login(ctx, r.persons[i], loadgen.LoginOptions{})
		l.end, l.err = time.Now(), err
		if err == nil {
			l.sub = res.IDToken.Subject
		}
		r.mu.Lock()
		r.logins = append(r.logins, l)
		r.mu.Unlock()
	})
}

// phaseOf is the row of the report a login counts in.
func (r *nodesRun) phaseOf(l *nodesLogin) string {
	killed, restarted := !r.sigkill.IsZero(), !r.restart.IsZero()
	switch {
	case killed && l.start.Before(r.dead) && l.end.After(r.sigkill):
		return nodesInFlight
	case !killed || l.start.Before(r.sigkill):
		return nodesBefore
	case !restarted || l.start.Before(r.restart):
		return nodesDead
	}
	return nodesBack
}

// summarise computes the report and checks the assertions.
func (r *nodesRun) summarise(ctx context.Context, completed bool) *nodesReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.o
	rep := &nodesReport{Command: o.command, Machine: machine(), Database: sqlstore.DescribeDSN("postgres", o.postgres),
		Logins: len(r.logins), SubsStable: true, DownMS: -1, UpS: -1, TrafficS: -1}
	rep.Config.Users, rep.Config.Think, rep.Config.ReadyzInterval = o.users, o.think.String(), o.readyzInterval.String()
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if !completed {
		problem("the run did not complete its phases")
	}

	t := tallyLogins(r.logins, r.start, r.phaseOf, func(name string, l *nodesLogin) {
		switch name {
		case nodesInFlight:
			// Expected: a request of it may have been at node b.
		case nodesBefore:
			problem("a login failed with both nodes up: %v", l.err)
		default:
			problem("a login that started %.2fs after node b was gone failed: %v", l.start.Sub(r.dead).Seconds(), l.err)
		}
	})
	rep.Failures, rep.SubsStable = t.failures, t.subsStable(problem)
	if ph := t.phases[nodesInFlight]; ph != nil {
		rep.InFlight, rep.InFlightFailed = ph.Logins, ph.Failed
	}
	seconds := map[string]time.Duration{}
	if !r.sigkill.IsZero() {
		seconds[nodesBefore] = r.sigkill.Sub(r.start)
		if !r.restart.IsZero() {
			seconds[nodesDead] = r.restart.Sub(r.dead)
			seconds[nodesBack] = r.end.Sub(r.restart)
		}
	}
	rep.Phases = t.rows([]string{nodesBefore, nodesInFlight, nodesDead, nodesBack}, seconds,
		func(name string) bool { return name != nodesInFlight }, completed, problem)

	r.windows(rep, problem)
	if !r.sigkill.IsZero() {
		rep.ReapedMS = ms(r.dead.Sub(r.sigkill))
		rep.Signal = r.signal()
		for _, ch := range r.c.bal.history() {
			if ch.node == 1 && !ch.up && !ch.at.Before(r.sigkill) {
				rep.DownMS, rep.DownBy = ms(ch.at.Sub(r.sigkill)), ch.why
				break
			}
		}
		if rep.DownMS < 0 {
			problem("the balancer never marked node b down after the kill")
		}
	}
	if !r.restart.IsZero() {
		for _, ch := range r.c.bal.history() {
			if ch.node == 1 && ch.up && ch.at.After(r.restart) {
				rep.UpS = ch.at.Sub(r.restart).Seconds()
				break
			}
		}
		if i := slices.IndexFunc(r.hops, func(h lbHop) bool { return h.node == 1 && h.err == nil && h.at.After(r.restart) }); i >= 0 {
			rep.TrafficS = r.hops[i].at.Sub(r.restart).Seconds()
		}
		if rep.TrafficS < 0 && completed {
			problem("the restarted node b answered no request")
		}
		if r.bExited {
			problem("node b exited after its restart, before the end of the run: %v", r.c.nodes[1].exitErr)
		}
	}
	rep.Load = newLoadFigures(o.users, o.think, nodesPhaseLogins(rep.Phases), r.machine)
	rep.Load.OthersInclude = nodesOthers
	rep.Kill = noKill(r.signal() + " node b")
	if !r.sigkill.IsZero() {
		rep.Kill.AtS = r.sigkill.Sub(r.start).Seconds()
	}
	rep.Kill.DetectS, rep.Kill.DetectedBy = rep.DownMS/1000, "the balancer marked node b down: "+rep.DownBy
	if rep.DownMS < 0 {
		rep.Kill.DetectS, rep.Kill.DetectedBy = -1, "the balancer never marked node b down"
	}
	rep.Kill.RecoverS, rep.Kill.RecoverFrom, rep.Kill.RecoveredBy = rep.UpS, "restart", "the balancer marked node b up, /readyz 200"
	rep.Kill.InFlight, rep.Kill.InFlightFailed = rep.InFlight, rep.InFlightFailed
	rep.Kill.Failover = "logins started while node b was gone"
	if ph := t.phases[nodesDead]; ph != nil {
		rep.Kill.FailoverLogins, rep.Kill.FailoverP99MS = ph.OK, ph.P99MS
	}
	checkLoad(rep.Kill, completed, problem)
	rep.Audit, rep.AuditOK = nodesAudit(ctx, o.postgres)
	if !rep.AuditOK {
		problem("audit log: %s", rep.Audit)
	}
	return rep
}

// windows counts the requests the balancer passed on after the logins
// began, by when they were sent: before node b was gone, while it was
// gone, after its restart.
func (r *nodesRun) windows(rep *nodesReport, problem func(string, ...any)) {
	ws := []nodesWindow{{Window: nodesBefore}, {Window: nodesDead}, {Window: nodesBack}}
	for _, h := range r.hops {
		if h.at.Before(r.start) {
			continue // the persons' enrolment
		}
		i := 0
		switch {
		case !r.restart.IsZero() && !h.at.Before(r.restart):
			i = 2
		case !r.dead.IsZero() && !h.at.Before(r.dead):
			i = 1
		}
		w := &ws[i]
		switch {
		case h.err != nil:
			w.BadGateway++
			rep.BadGateway = append(rep.BadGateway, fmt.Sprintf("+%.3fs node %s, %s: %s", h.at.Sub(r.start).Seconds(),
				[]string{"a", "b"}[h.node], h.route, oneLine(netFailure(h.err))))
		case h.node == 0:
			w.A++
		default:
			w.B++
		}
		if h.skipped {
			w.PassedOver++
		}
		if i == 1 && h.node == 1 && h.err == nil {
			problem("node b answered %s, sent after it was gone", h.route)
		}
	}
	if r.sigkill.IsZero() {
		ws = ws[:1]
	} else if r.restart.IsZero() {
		ws = ws[:2]
	}
	rep.Windows = ws
}

// nodesAudit checks the audit log the nodes wrote: one chain, unbroken,
// and its append-only triggers in place (as `varde store verify` does).
func nodesAudit(ctx context.Context, dsn string) (string, bool) {
	db, err := sqlstore.OpenExistingPostgres(ctx, dsn)
	if err != nil {
		return err.Error(), false
	}
	defer db.Close()
	if err := db.CheckIntegrity(ctx); err != nil {
		return err.Error(), false
	}
	h, err := (&audit.Log{Store: db}).VerifyHead(ctx)
	if err != nil {
		return err.Error(), false
	}
	return fmt.Sprintf("%d events, an unbroken hash chain from seq 1 to %d; the append-only triggers in place", h.Events, h.Seq), true
}

// oneLine is s on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// report prints the report.
func (r *nodesRun) report(rep *nodesReport, w io.Writer) {
	printPhaseRows(w, rep.Phases)
	fmt.Fprintln(w, "\nrequests through the balancer:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sent while\tnode a\tnode b\tpassed over\t502\t")
	for _, x := range rep.Windows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", x.Window, x.A, x.B, x.PassedOver, x.BadGateway)
	}
	_ = tw.Flush()
	down := "never"
	if rep.DownMS >= 0 {
		down = fmt.Sprintf("%.1f ms (%s)", rep.DownMS, rep.DownBy)
	}
	subs := "every person kept one sub, whichever node signed"
	if !rep.SubsStable {
		subs = "CHANGED"
	}
	fmt.Fprintf(w, `
gone:       node b reaped %.1f ms after the %s; the balancer marked it down after %s
in flight:  %d logins had started before node b was gone and not finished at the %s; %d of them failed
restart:    the balancer marked node b up %s after its restart (/readyz 200), and sent it a login's request after %s
audit log:  %s
subs:       %s
`, rep.ReapedMS, rep.Signal, down, rep.InFlight, rep.Signal, rep.InFlightFailed, secsOrNever(rep.UpS), secsOrNever(rep.TrafficS), rep.Audit, subs)
	printLoadKill(w, rep.Load, rep.Kill)
	printList(w, "requests a node failed (the balancer answered 502)", rep.BadGateway)
	printList(w, "failed logins", rep.Failures)
	printVerdict(w, rep.Problems)
}

// loginTally is logins counted by the phase of the report they count in.
type loginTally struct {
	phases map[string]*nodesPhase
	durs   map[string][]time.Duration // the completed logins' durations
	// failures lists the failed logins, by when they started.
	failures []string
	subs     map[int]map[string]bool // each person's subs
}

// tallyLogins sorts logins by start and counts them into the phases
// phaseOf names; failed is told of each failed login.
func tallyLogins(logins []*nodesLogin, start time.Time, phaseOf func(*nodesLogin) string, failed func(phase string, l *nodesLogin)) *loginTally {
	slices.SortFunc(logins, func(x, y *nodesLogin) int { return x.start.Compare(y.start) })
	t := &loginTally{phases: map[string]*nodesPhase{}, durs: map[string][]time.Duration{}, subs: map[int]map[string]bool{}}
	for _, l := range logins {
		name := phaseOf(l)
		ph := t.phases[name]
		if ph == nil {
			ph = &nodesPhase{Phase: name}
			t.phases[name] = ph
		}
		ph.Logins++
		if l.err != nil {
			ph.Failed++
			t.failures = append(t.failures, fmt.Sprintf("+%.2fs %s: %s", l.start.Sub(start).Seconds(), name, oneLine(errorKind(l.err))))
			failed(name, l)
			continue
		}
		ph.OK++
		t.durs[name] = append(t.durs[name], l.end.Sub(l.start))
		if t.subs[l.person] == nil {
			t.subs[l.person] = map[string]bool{}
		}
		t.subs[l.person][l.sub] = true
	}
	return t
}

// subsStable reports whether every person got one sub, telling problem
// of each who did not.
func (t *loginTally) subsStable(problem func(string, ...any)) bool {
	stable := true
	for p, s := range t.subs {
		if len(s) != 1 {
			stable = false
			problem("person %d got %d different subs", p, len(s))
		}
	}
	return stable
}

// rows are the report's rows, in order: each phase's success rate,
// logins per second of its duration in seconds (if there), and latency.
// A phase that required says must have completed logins and has none is
// a problem (with no logins at all, only if the run completed).
func (t *loginTally) rows(order []string, seconds map[string]time.Duration, required func(string) bool, completed bool, problem func(string, ...any)) []nodesPhase {
	var rows []nodesPhase
	for _, name := range order {
		ph := t.phases[name]
		if ph == nil {
			if required(name) && completed {
				problem("no logins in phase %q", name)
			}
			continue
		}
		ph.Success = float64(ph.OK) / float64(ph.Logins)
		if d := seconds[name]; d > 0 {
			ph.Seconds = d.Seconds()
			ph.PerSec = float64(ph.OK) / d.Seconds()
		}
		ph.latency = latencyOf(t.durs[name])
		if ph.OK == 0 && required(name) {
			problem("no login completed in phase %q", name)
		}
		rows = append(rows, *ph)
	}
	return rows
}

// printPhaseRows prints the report's rows as a table.
func printPhaseRows(w io.Writer, rows []nodesPhase) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tseconds\tlogins\tok\tfailed\tsuccess\tok/s\tp50 ms\tp99 ms\tmax ms\t")
	for _, p := range rows {
		secs, rate, lat := "", "", "-\t-\t-"
		if p.Seconds > 0 {
			secs, rate = fmt.Sprintf("%.1f", p.Seconds), fmt.Sprintf("%.1f", p.PerSec)
		}
		if p.OK > 0 {
			lat = fmt.Sprintf("%.0f\t%.0f\t%.0f", p.P50MS, p.P99MS, p.MaxMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f%%\t%s\t%s\t\n", p.Phase, secs, p.Logins, p.OK, p.Failed, 100*p.Success, rate, lat)
	}
	_ = tw.Flush()
}

// runClock is a run's say, which prints a line timed from start, and
// wait, which waits d unless ctx ends first and reports whether it
// waited.
func runClock(ctx context.Context, stdout io.Writer, start time.Time) (say func(string, ...any), wait func(time.Duration) bool) {
	say = func(format string, args ...any) {
		fmt.Fprintf(stdout, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	wait = func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	return say, wait
}
