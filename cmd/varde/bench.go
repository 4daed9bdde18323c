package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const benchUsage = `usage: varde bench [flags]

Runs complete passkey logins (PAR with private_key_jwt, authorize, WebAuthn
assertion, code, token with PKCE, ID token verification) with N concurrent
virtual users and prints flows/s and latency percentiles per concurrency.

With --flow brokered the logins go through an upstream eID instead: a
simulated BankID (varde provider-sim, level high) in a second child
process, which Varde brokers; and the same relying party library logs in
at the simulated BankID directly too, so the report can say what the
broker adds to a login (brokered − direct). --flow both runs all three.

By default it builds a throwaway node in a temporary directory (SQLite,
synthetic enrolment on, a private_key_jwt client with PAR required), starts
it as a separate process and stops it afterwards. With --target it drives a
node that is already running instead (synthetic enrolment must be on there).

flags:
`

// benchOptions are the bench command's flags.
type benchOptions struct {
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	maxFlows    int
	persons     int
	jsonFile    string
	profileDir  string
	profileTime time.Duration
	keep        bool
	logLevel    string
	loadgenGOGC int
	nodeGOGC    string
	// postgres, if set, is the DSN of a PostgreSQL database the
	// throwaway node uses instead of SQLite.
	postgres string
	// nodeEnv is the throwaway node's whole environment, besides GOGC
	// from --node-gogc: none by default, so that no VARDE_* variable of
	// the caller can point it at a real database or key (tests add to it).
	nodeEnv []string
	command string
	// flows are the kinds of login each concurrency runs, in order
	// (flowPasskey, flowBrokered, flowDirect).
	flows []string
	// choice is how a brokered login reaches the eID (choiceHint,
	// choicePage).
	choice string
	// dpop has the relying party bind its tokens with DPoP (RFC 9449),
	// its client registered with dpop_bound_access_tokens.
	dpop bool

	// Remote mode.
	target      string
	clientID    string
	clientKey   string
	keyID       string
	redirectURI string
	pprofURL    string
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchOptions, error) {
	o := &benchOptions{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	flow := fs.String("flow", flowPasskey, "passkey (Varde's passkey login), brokered (through a simulated upstream eID, compared with logins straight at it) or both")
	conc := fs.String("concurrency", "1,16,64", "comma-separated numbers of concurrent virtual users, one measured phase each")
	fs.StringVar(&o.choice, "brokered-choice", choiceHint, "how a brokered login reaches the eID: hint (the relying party names it in provider_hint, and Varde's authorization endpoint goes straight there) or page (the person opens Varde's login page and picks it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "length of the unmeasured warm-up before each phase")
	fs.IntVar(&o.maxFlows, "max-flows", 200000, "stop a measured phase after this many logins even if --duration has not passed")
	fs.IntVar(&o.persons, "persons", 256, "synthetic persons to enrol (raised to the highest concurrency if lower)")
	fs.BoolVar(&o.dpop, "dpop", false, "the relying party binds its tokens to a key with DPoP (RFC 9449): a proof with its pushed and token requests, its client registered with dpop_bound_access_tokens")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.profileDir, "cpuprofile", "", "directory for CPU and allocation profiles of the node and of the load generator, taken during the highest-concurrency phase")
	fs.DurationVar(&o.profileTime, "profile-time", 10*time.Second, "length of the profiles (at most the phase's --duration)")
	fs.BoolVar(&o.keep, "keep", false, "keep the throwaway node's directory (config, database, log, the client's key as client-key.pem)")
	fs.StringVar(&o.logLevel, "node-log-level", "warn", "the throwaway node's log level")
	fs.IntVar(&o.loadgenGOGC, "loadgen-gogc", 400, "garbage collector target percentage of the load generator (this process; 0 leaves it as GOGC set it), so it takes less of the CPU the node needs; for the node see --node-gogc")
	fs.StringVar(&o.nodeGOGC, "node-gogc", "", "GOGC for the throwaway node, which otherwise runs with varde's default for serving commands (400)")
	fs.StringVar(&o.postgres, "postgres", "", "DSN of a PostgreSQL database for the throwaway node's store instead of SQLite (its schema is created there; its records stay)")
	fs.StringVar(&o.target, "target", "", "issuer URL of a running node to drive instead of a throwaway one")
	fs.StringVar(&o.clientID, "client-id", "", "with --target: a private_key_jwt client with --redirect-uri registered")
	fs.StringVar(&o.clientKey, "client-key", "", "with --target: PEM file with the client's ECDSA P-256 private key")
	fs.StringVar(&o.keyID, "key-id", "", "with --target: the kid of the client's key")
	fs.StringVar(&o.redirectURI, "redirect-uri", "https://bench.example/callback", "with --target: the client's redirect URI")
	fs.StringVar(&o.pprofURL, "pprof-url", "", "with --target and --cpuprofile: the node's pprof base URL, e.g. http://127.0.0.1:6060")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("bench: --concurrency %q: want positive integers up to 4096", *conc)
		}
		o.concurrency = append(o.concurrency, n)
	}
	switch *flow {
	case flowPasskey:
		o.flows = []string{flowPasskey}
	case flowBrokered:
		o.flows = []string{flowBrokered, flowDirect}
	case "both":
		o.flows = []string{flowPasskey, flowBrokered, flowDirect}
	default:
		return nil, fmt.Errorf("bench: --flow %q: want passkey, brokered or both", *flow)
	}
	if o.choice != choiceHint && o.choice != choicePage {
		return nil, fmt.Errorf("bench: --brokered-choice %q: want hint or page", o.choice)
	}
	switch {
	case o.target != "" && *flow != flowPasskey:
		return nil, errors.New("bench: --flow brokered needs the throwaway deployment, not --target")
	case o.duration <= 0:
		return nil, errors.New("bench: --duration must be positive")
	case o.warmup < 0:
		return nil, errors.New("bench: --warmup must not be negative")
	case o.maxFlows < 1:
		return nil, errors.New("bench: --max-flows must be positive")
	case o.target != "" && (o.clientID == "" || o.clientKey == ""):
		return nil, errors.New("bench: --target needs --client-id and --client-key")
	case o.target != "" && o.profileDir != "" && o.pprofURL == "":
		return nil, errors.New("bench: --cpuprofile with --target needs --pprof-url")
	}
	o.persons = max(o.persons, slices.Max(o.concurrency))
	o.profileTime = min(o.profileTime, o.duration)
	return o, nil
}

// benchTarget is the node under test and the relying party driving it.
type benchTarget struct {
	issuer   string
	rp       *loadgen.RP
	http     *http.Client
	pprofURL string
	node     *benchNode // nil in remote mode
	// direct is a relying party at the simulated upstream eID itself
	// (nil unless a brokered flow runs).
	direct *loadgen.RP
}

// benchReport is what `varde bench` measured; --json writes it.
type benchReport struct {
	Machine  benchMachine  `json:"machine"`
	Command  string        `json:"command"`
	Issuer   string        `json:"issuer"`
	Persons  int           `json:"persons"`
	Duration string        `json:"duration"`
	Flows    []string      `json:"flows"`
	Phases   []*benchPhase `json:"phases"`
	// BrokerAdded compares brokered and direct logins per concurrency.
	BrokerAdded []brokerAdded `json:"broker_added,omitempty"`
	// Warmups are the unmeasured warm-up phases; their failures count too.
	Warmups  []*benchPhase `json:"warmups,omitempty"`
	Profiles []*profileSum `json:"profiles,omitempty"`
}

type benchMachine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
}

// benchPhase is one measured phase at one concurrency.
type benchPhase struct {
	// Flow is the kind of login: passkey, brokered or direct.
	Flow        string         `json:"flow"`
	Concurrency int            `json:"concurrency"`
	Flows       int            `json:"flows"`
	Errors      int            `json:"errors"`
	Seconds     float64        `json:"seconds"`
	FlowsPerSec float64        `json:"flows_per_sec"`
	P50MS       float64        `json:"p50_ms"`
	P95MS       float64        `json:"p95_ms"`
	P99MS       float64        `json:"p99_ms"`
	MaxMS       float64        `json:"max_ms"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	// CPU time per completed login, in milliseconds, of the node process
	// and of this process (the load generator); 0 when unknown.
	NodeCPUMS    float64 `json:"node_cpu_ms_per_flow"`
	LoadgenCPUMS float64 `json:"loadgen_cpu_ms_per_flow"`
	// SimCPUMS is the simulated upstream eID's CPU time per login, when
	// it runs (brokered flows).
	SimCPUMS float64 `json:"sim_cpu_ms_per_flow,omitempty"`
	// CPUBusy is (node + sim + load generator CPU time) / (wall time × CPUs).
	CPUBusy float64 `json:"cpu_busy"`
	// NodeMaxRSSMB is the node's peak resident memory so far (VmHWM).
	NodeMaxRSSMB float64 `json:"node_max_rss_mb,omitempty"`
	// OtherBusy is the share of the machine's CPU time that other
	// processes used during the phase: noise from a shared machine.
	OtherBusy float64 `json:"other_busy"`
	// Routes is the node's own view (its latency histogram on /metrics):
	// mean time inside the handler per route.
	Routes []routeStat `json:"routes,omitempty"`
}

// routeStat is one route's requests during a phase, as the node saw them.
type routeStat struct {
	Route   string  `json:"route"`
	PerFlow float64 `json:"requests_per_flow"`
	MeanMS  float64 `json:"mean_ms"`
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	o.command = "varde bench " + strings.Join(args, " ")
	return runBench(ctx, o, stdout, stderr)
}

func runBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	var err error
	if o.loadgenGOGC > 0 {
		debug.SetGCPercent(o.loadgenGOGC)
	}
	rep := &benchReport{
		Machine:  machine(),
		Command:  o.command,
		Persons:  o.persons,
		Duration: o.duration.String(),
		Flows:    o.flows,
	}
	maxConc := slices.Max(o.concurrency)
	var t *benchTarget
	if o.target == "" {
		t, err = startBenchNode(ctx, o, maxConc, stderr)
	} else {
		t, err = remoteTarget(ctx, o, maxConc)
	}
	if err != nil {
		return err
	}
	if t.node != nil {
		defer t.node.stop(stderr)
	}
	rep.Issuer = t.issuer
	m := rep.Machine
	fmt.Fprintf(stdout, "machine: %d CPUs (%s), GOMAXPROCS %d, %s, %s\n", m.CPUs, m.CPUModel, m.GOMAXPROCS, m.Go, m.OS)
	if t.node != nil {
		fmt.Fprintf(stdout, "node:    %s, child process %d, %s\n", t.issuer, t.node.pid(), t.node.storeName(o))
		if s := t.node.sim; s != nil {
			fmt.Fprintf(stdout, "eID:     %s (%s, level %s), child process %d, Varde's upstream %q\n", s.ready.Issuer, s.ready.Name, s.ready.Level, s.pid(), benchUpstreamID)
		}
	} else {
		fmt.Fprintf(stdout, "node:    %s (running already)\n", t.issuer)
	}

	var flows []*benchFlow
	if slices.Contains(o.flows, flowPasskey) {
		persons, err := enrolPersons(ctx, t, o.persons)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "persons: %d enrolled, each with a device-bound passkey\n", len(persons))
		flows = append(flows, passkeyFlow(t, persons))
	}
	if slices.Contains(o.flows, flowBrokered) {
		bf, err := brokeredFlows(ctx, t, o.persons, o.choice)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "persons: %d synthetic numbers at the eID, each logged in once through Varde\n", o.persons)
		flows = append(flows, bf...)
	}
	fmt.Fprintf(stdout, "phases:  warm-up %v, then at most %v or %d logins per concurrency\n\n", o.warmup, o.duration, o.maxFlows)

	profConc := -1
	if o.profileDir != "" {
		profConc = maxConc
	}
	// Each concurrency runs every flow in turn, so that flows compared
	// with each other ran close in time on the shared machine.
phases:
	for _, c := range o.concurrency {
		for _, f := range flows {
			if o.warmup > 0 {
				w := runPhase(ctx, t, f, c, o.warmup, o.maxFlows, nil)
				rep.Warmups = append(rep.Warmups, w)
			}
			var prof *profiler
			if c == profConc {
				prof = &profiler{dir: o.profileDir, pprofURL: t.pprofURL, seconds: o.profileTime}
				profConc = -1 // once: the first flow's
			}
			p := runPhase(ctx, t, f, c, o.duration, o.maxFlows, prof)
			rep.Phases = append(rep.Phases, p)
			if prof != nil {
				sums, err := prof.finish(stdout)
				if err != nil {
					fmt.Fprintf(stderr, "varde bench: profiles: %v\n", err)
				}
				rep.Profiles = sums
			}
			if ctx.Err() != nil {
				break phases
			}
		}
	}
	rep.BrokerAdded = compareBrokered(rep.Phases)
	for _, f := range flows {
		var ps []*benchPhase
		for _, p := range rep.Phases {
			if p.Flow == f.name {
				ps = append(ps, p)
			}
		}
		if len(flows) > 1 {
			fmt.Fprintf(stdout, "%s\n", flowTitle(f.name))
		}
		printPhases(stdout, ps)
		if len(flows) > 1 {
			fmt.Fprintln(stdout)
		}
	}
	printBrokerAdded(stdout, rep.BrokerAdded)
	for _, w := range rep.Warmups {
		for k, n := range w.ErrorKinds {
			fmt.Fprintf(stdout, "  errors in the %s warm-up at concurrency %d: %d × %s\n", w.Flow, w.Concurrency, n, k)
		}
	}
	for _, s := range rep.Profiles {
		s.print(stdout)
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := verdict(slices.Concat(rep.Warmups, rep.Phases)); err != nil {
		return err
	}
	return ctx.Err()
}

// verdict fails the run if any login failed.
func verdict(phases []*benchPhase) error {
	failed := 0
	for _, p := range phases {
		failed += p.Errors
	}
	if failed > 0 {
		return fmt.Errorf("bench: %d logins failed", failed)
	}
	return nil
}

// machine describes where the bench ran.
func machine() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUModel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// enrolPersons enrols n synthetic persons, a few at a time.
func enrolPersons(ctx context.Context, t *benchTarget, n int) ([]*loadgen.Person, error) {
	persons := make([]*loadgen.Person, n)
	var next atomic.Int64
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				p := loadgen.NewDevice(t.issuer, false)
				if err := loadgen.Enrol(ctx, t.http, t.issuer, p, "Kari", "Nordmann"); err != nil {
					errs[w] = fmt.Errorf("enrol person %d: %w", i, err)
					return
				}
				persons[i] = p
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return persons, ctx.Err()
}

// passkeyFlow logs persons in with their passkeys at Varde.
func passkeyFlow(t *benchTarget, persons []*loadgen.Person) *benchFlow {
	return &benchFlow{name: flowPasskey, n: len(persons), login: func(ctx context.Context, i int) error {
		_, err := t.rp.Login(ctx, persons[i], loadgen.LoginOptions{})
		return err
	}}
}

func flowTitle(name string) string {
	switch name {
	case flowPasskey:
		return "passkey logins at Varde:"
	case flowBrokered:
		return "brokered logins: the relying party at Varde, Varde at the simulated BankID:"
	case flowDirect:
		return "direct logins: the same relying party library straight at the simulated BankID:"
	}
	return name + ":"
}

// runPhase runs c virtual users of flow f for d or until maxFlows logins
// have started, each user logging in its own identities in turn (an
// identity is never used by two users at once: a passkey's sign counter
// moves with every login). It always ends: no login starts after d, and
// a hard deadline cancels logins still running 30 s later (counted as
// errors).
func runPhase(ctx context.Context, t *benchTarget, f *benchFlow, c int, d time.Duration, maxFlows int, prof *profiler) *benchPhase {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	lat := make([][]time.Duration, c)
	errKinds := make([]map[string]int, c)
	var started atomic.Int64
	routes0 := scrapeRoutes(ctx, t)
	cpu0 := t.cpu()
	if prof != nil {
		prof.start(ctx)
	}
	begin := time.Now()
	deadline := begin.Add(d)
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			mine := make([]int, 0, f.n/c+1)
			for i := w; i < f.n; i += c {
				mine = append(mine, i)
			}
			errKinds[w] = map[string]int{}
			for i := 0; ; i++ {
				if time.Now().After(deadline) || ctx.Err() != nil || started.Add(1) > int64(maxFlows) {
					return
				}
				t0 := time.Now()
				if err := f.login(ctx, mine[i%len(mine)]); err != nil {
					errKinds[w][errorKind(err)]++
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	cpu1 := t.cpu()
	routes1 := scrapeRoutes(ctx, t)
	if prof != nil {
		prof.wait()
	}
	p := &benchPhase{Flow: f.name, Concurrency: c, Seconds: elapsed.Seconds(), ErrorKinds: map[string]int{}}
	all := slices.Concat(lat...)
	slices.Sort(all)
	for _, m := range errKinds {
		for k, n := range m {
			p.ErrorKinds[k] += n
			p.Errors += n
		}
	}
	p.Flows = len(all)
	if p.Flows > 0 {
		p.FlowsPerSec = float64(p.Flows) / elapsed.Seconds()
		p.P50MS, p.P95MS, p.P99MS = ms(pct(all, 0.50)), ms(pct(all, 0.95)), ms(pct(all, 0.99))
		p.MaxMS = ms(all[len(all)-1])
		p.Routes = routeDelta(routes0, routes1, p.Flows)
		if t.node != nil {
			p.NodeMaxRSSMB = processMaxRSSMB(t.node.pid())
		}
		if cpu0.ok && cpu1.ok {
			p.NodeCPUMS = ms(cpu1.node-cpu0.node) / float64(p.Flows)
			p.LoadgenCPUMS = ms(cpu1.self-cpu0.self) / float64(p.Flows)
			p.SimCPUMS = ms(cpu1.sim-cpu0.sim) / float64(p.Flows)
			ours := cpu1.node - cpu0.node + cpu1.self - cpu0.self + cpu1.sim - cpu0.sim
			p.CPUBusy = ours.Seconds() / (elapsed.Seconds() * float64(runtime.NumCPU()))
			if total := cpu1.machineTotal - cpu0.machineTotal; cpu0.machineOK && cpu1.machineOK && total > 0 {
				p.OtherBusy = max(0, (cpu1.machineBusy-cpu0.machineBusy-ours).Seconds()/total.Seconds())
			}
		}
	}
	return p
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// errorKind groups errors for the report: the server's error code when
// there is one, else the message without per-request detail.
func errorKind(err error) string {
	var se *loadgen.StepError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: %d %s", se.Step, se.Status, se.Code)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// histogram is a route's latency sum (seconds) and count.
type histogram struct{ sum, count float64 }

// scrapeRoutes reads the node's per-route latency histogram sums and
// counts from /metrics; nil if it cannot.
func scrapeRoutes(ctx context.Context, t *benchTarget) map[string]histogram {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.issuer+"/metrics", nil)
	if err != nil {
		return nil
	}
	res, err := t.http.Do(req)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil
	}
	const name = "varde_http_request_duration_seconds_"
	out := map[string]histogram{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		kind, rest, ok := strings.Cut(rest, "{")
		if !ok || (kind != "sum" && kind != "count") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		var method, route string
		for _, l := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(l, "=")
			val = strings.Trim(val, `"`)
			switch k {
			case "method":
				method = val
			case "route":
				route = val
			}
		}
		key := method + " " + route
		h := out[key]
		if kind == "sum" {
			h.sum = v
		} else {
			h.count = v
		}
		out[key] = h
	}
	return out
}

// routeDelta turns two scrapes into per-flow request counts and mean
// handler times, busiest route first.
func routeDelta(before, after map[string]histogram, flows int) []routeStat {
	if before == nil || after == nil || flows == 0 {
		return nil
	}
	var out []routeStat
	for k, a := range after {
		b := before[k]
		n := a.count - b.count
		if n < float64(flows)/2 || strings.HasSuffix(k, " /metrics") {
			continue
		}
		out = append(out, routeStat{Route: k, PerFlow: n / float64(flows), MeanMS: 1000 * (a.sum - b.sum) / n})
	}
	slices.SortFunc(out, func(x, y routeStat) int { return strings.Compare(x.Route, y.Route) })
	return out
}

func printPhases(w io.Writer, phases []*benchPhase) {
	withSim := slices.ContainsFunc(phases, func(p *benchPhase) bool { return p.SimCPUMS > 0 })
	simHead, simCol := "", func(*benchPhase) string { return "" }
	if withSim {
		simHead = "sim CPU ms/flow\t"
		simCol = func(p *benchPhase) string { return fmt.Sprintf("%.2f\t", p.SimCPUMS) }
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tflows\terrors\tflows/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tnode CPU ms/flow\t"+simHead+"loadgen CPU ms/flow\tCPU ours\tCPU others\tnode max RSS MB\t")
	for _, p := range phases {
		cpu := "\t\t\t\t\t"
		if withSim {
			cpu += "\t"
		}
		if p.NodeCPUMS > 0 {
			cpu = fmt.Sprintf("%.2f\t%s%.2f\t%.0f%%\t%.0f%%\t%.0f\t", p.NodeCPUMS, simCol(p), p.LoadgenCPUMS, 100*p.CPUBusy, 100*p.OtherBusy, p.NodeMaxRSSMB)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\n", p.Concurrency, p.Flows, p.Errors, p.FlowsPerSec, p.P50MS, p.P95MS, p.P99MS, p.MaxMS, cpu)
	}
	_ = tw.Flush()
	if len(phases) > 0 && len(phases[0].Routes) > 0 {
		fmt.Fprintln(w, "\nmean time inside the node's handler per request, ms (node's /metrics):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "route\tper flow\t")
		for _, p := range phases {
			fmt.Fprintf(tw, "c=%d\t", p.Concurrency)
		}
		fmt.Fprintln(tw)
		for _, r := range phases[0].Routes {
			fmt.Fprintf(tw, "%s\t%.0f\t", r.Route, r.PerFlow)
			for _, p := range phases {
				i := slices.IndexFunc(p.Routes, func(x routeStat) bool { return x.Route == r.Route })
				if i < 0 {
					fmt.Fprint(tw, "-\t")
					continue
				}
				fmt.Fprintf(tw, "%.2f\t", p.Routes[i].MeanMS)
			}
			fmt.Fprintln(tw)
		}
		_ = tw.Flush()
	}
	for _, p := range phases {
		for k, n := range p.ErrorKinds {
			fmt.Fprintf(w, "  errors at concurrency %d: %d × %s\n", p.Concurrency, n, k)
		}
	}
}

// cpuSample is CPU time used so far by the node and by this process.
type cpuSample struct {
	node, self   time.Duration
	sim          time.Duration // 0 without a sim
	ok           bool
	machineBusy  time.Duration
	machineTotal time.Duration
	machineOK    bool
}

func (t *benchTarget) cpu() cpuSample {
	if t.node == nil {
		return cpuSample{}
	}
	node, ok1 := processCPU(t.node.pid())
	self, ok2 := selfCPU()
	busy, total, ok3 := machineCPU()
	var sim time.Duration
	ok4 := true
	if pid := t.node.sim.pid(); pid != 0 {
		sim, ok4 = processCPU(pid)
	}
	return cpuSample{node: node, self: self, sim: sim, ok: ok1 && ok2 && ok4, machineBusy: busy, machineTotal: total, machineOK: ok3}
}

// benchNode is a throwaway node running as a child process.
type benchNode struct {
	resChild
	dir, db string
	keep    bool
	// sim is the simulated upstream eID, when a brokered flow runs.
	sim *benchSim
}

func (n *benchNode) pid() int { return n.cmd.Process.Pid }

// storeConfig is the throwaway node's store section.
func (n *benchNode) storeConfig(o *benchOptions) map[string]any {
	if o.postgres != "" {
		return map[string]any{"driver": "postgres", "dsn": o.postgres}
	}
	return map[string]any{"driver": "sqlite", "dsn": n.db}
}

// storeName names the throwaway node's store for the report.
func (n *benchNode) storeName(o *benchOptions) string {
	if o.postgres != "" {
		return "PostgreSQL " + sqlstore.DescribeDSN("postgres", o.postgres)
	}
	return "SQLite " + n.db
}

// startBenchNode writes a throwaway deployment into a temporary
// directory and starts `varde serve` on it as a child process.
func startBenchNode(ctx context.Context, o *benchOptions, conc int, stderr io.Writer) (*benchTarget, error) {
	dir, err := os.MkdirTemp("", "varde-bench-")
	if err != nil {
		return nil, err
	}
	n := &benchNode{resChild: resChild{name: "node", log: filepath.Join(dir, "node.log")}, dir: dir, db: filepath.Join(dir, "varde.db"), keep: o.keep}
	t, err := n.start(ctx, o, conc)
	if err != nil {
		n.stop(stderr)
		return nil, err
	}
	return t, nil
}

func (n *benchNode) start(ctx context.Context, o *benchOptions, conc int) (*benchTarget, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	issuer := fmt.Sprintf("http://localhost:%d", port)
	pprofListen := ""
	if o.profileDir != "" {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofListen = fmt.Sprintf("127.0.0.1:%d", pp)
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	saltFile := filepath.Join(n.dir, "subject-salt")
	if err := os.WriteFile(saltFile, salt, 0o600); err != nil {
		return nil, err
	}
	nodeKeyFile := filepath.Join(n.dir, "signing-key.pem")
	if _, err := loadOrCreateSigner(nodeKeyFile); err != nil {
		return nil, err
	}
	// The relying party's key pair: the public half goes into the
	// node's configuration, the private half stays here.
	rpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	const kid, clientID, redirect = "bench-1", "bench", "https://bench.example/callback"
	// Saved for --keep: with it, `varde bench --target` can drive the
	// same node again after `varde serve --config DIR/varde.yaml`.
	der, err := x509.MarshalPKCS8PrivateKey(rpKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "client-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rpKey.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	env := slices.Clone(o.nodeEnv)
	if env == nil {
		env = []string{} // not nil, which would mean "inherit"
	}
	if o.nodeGOGC != "" {
		env = append(env, "GOGC="+o.nodeGOGC)
	}
	var upstreams []any
	if slices.Contains(o.flows, flowBrokered) {
		sim, up, err := startBenchSim(ctx, o, env, n.dir, issuer)
		n.sim = sim // stopped by stop, even if not ready
		if err != nil {
			return nil, err
		}
		upstreams = append(upstreams, up)
	}
	// The client is declared in the configuration, so the node validates
	// it and writes it to the store exactly as it does for an operator's
	// clients.
	cfg := map[string]any{
		"version": 1,
		"issuer":  issuer,
		"listen":  fmt.Sprintf("127.0.0.1:%d", port),
		"node":    "bench",
		"store":   n.storeConfig(o),
		"keys":    map[string]any{"signing_key_file": nodeKeyFile, "subject_salt_file": saltFile},
		"passkey": map[string]any{"synthetic_enrolment": true},
		"log":     map[string]any{"level": o.logLevel, "format": "text"},
		// No load balancer to move away: the bench stops the node at once.
		"shutdown": map[string]any{"drain": "0s"},
		"debug":    map[string]any{"pprof_listen": pprofListen},
		"clients": []any{map[string]any{
			"id": clientID, "name": "Bench RP", "auth_method": "private_key_jwt", "jwks": string(jwks),
			"redirect_uris": []string{redirect}, "require_par": true, "sector_id": "bench.example",
			"claims": []string{"name"}, "dpop_bound_access_tokens": o.dpop,
		}},
	}
	if len(upstreams) > 0 {
		cfg["upstreams"] = upstreams
	}
	// JSON is YAML.
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(n.dir, "varde.yaml")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	if err := n.resChild.start(exe, env, "serve", "--config", cfgFile); err != nil {
		return nil, err
	}

	hc := benchHTTPClient(conc)
	if err := n.waitReady(ctx, hc, issuer); err != nil {
		return nil, err
	}
	rp := &loadgen.RP{Issuer: issuer, ClientID: clientID, RedirectURI: redirect, Key: rpKey, KeyID: kid, HTTP: hc}
	if o.dpop {
		if rp.DPoPKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	if err := rp.Setup(ctx); err != nil {
		return nil, fmt.Errorf("relying party setup: %w", err)
	}
	t := &benchTarget{issuer: issuer, rp: rp, http: hc, node: n}
	if n.sim != nil {
		t.direct = &loadgen.RP{Issuer: n.sim.ready.Issuer, ClientID: "varde", RedirectURI: benchDirectRedirect,
			Key: n.sim.directKey, KeyID: benchDirectKeyID, HTTP: hc}
		if err := t.direct.Setup(ctx); err != nil {
			return nil, fmt.Errorf("direct relying party at the eID: %w", err)
		}
	}
	if pprofListen != "" {
		t.pprofURL = "http://" + pprofListen
	}
	return t, nil
}

// waitReady polls the node's /readyz at base for up to 30 s, failing
// early if the process exits.
func (c *resChild) waitReady(ctx context.Context, hc *http.Client, base string) error {
	return c.waitFor(ctx, 50*time.Millisecond, "ready", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		res, err := hc.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// stop ends the node (SIGTERM, then SIGKILL after 10 s), reports what it
// logged, and removes its directory unless --keep.
func (n *benchNode) stop(stderr io.Writer) {
	n.resChild.stop()
	if n.sim != nil && n.sim.cmd != nil {
		select {
		case <-n.sim.exited:
			// It ended before its time: say why.
			fmt.Fprintf(stderr, "the eID exited (%v); its log (%s):\n%s\n", n.sim.exitErr, n.sim.log, tail(n.sim.log, 20))
		default:
			n.sim.stop()
		}
	}
	if s := tail(n.log, 20); s != "" {
		fmt.Fprintf(stderr, "node log (%s):\n%s\n", n.log, s)
	}
	if n.keep {
		fmt.Fprintf(stderr, "kept the node's directory %s; to drive that node again:\n  varde serve --config %[1]s/varde.yaml &\n  varde bench --target ISSUER --client-id bench --key-id bench-1 --client-key %[1]s/client-key.pem\n", n.dir)
		return
	}
	_ = os.RemoveAll(n.dir)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// benchHTTPClient is loadgen's client for conc virtual users, dialling
// "localhost" as 127.0.0.1 directly (the throwaway node listens there,
// and the issuer must be a host name for WebAuthn).
func benchHTTPClient(conc int) *http.Client {
	c := loadgen.NewHTTPClient(conc)
	tr := c.Transport.(*http.Transport)
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return c
}

// remoteTarget drives a node that is already running.
func remoteTarget(ctx context.Context, o *benchOptions, conc int) (*benchTarget, error) {
	u, err := url.Parse(o.target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bench: --target %q is not a URL", o.target)
	}
	raw, err := os.ReadFile(o.clientKey)
	if err != nil {
		return nil, err
	}
	key, err := parseECKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.clientKey, err)
	}
	hc := loadgen.NewHTTPClient(conc)
	rp := &loadgen.RP{Issuer: o.target, ClientID: o.clientID, RedirectURI: o.redirectURI, Key: key, KeyID: o.keyID, HTTP: hc}
	if o.dpop {
		if rp.DPoPKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	if err := rp.Setup(ctx); err != nil {
		return nil, fmt.Errorf("relying party setup: %w", err)
	}
	return &benchTarget{issuer: o.target, rp: rp, http: hc, pprofURL: strings.TrimSuffix(o.pprofURL, "/")}, nil
}

func parseECKey(raw []byte) (*ecdsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return nil, errors.New("no EC private key PEM block")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, errors.New("not an ECDSA P-256 key")
		}
		return ek, nil
	}
}

// profiler takes CPU and allocation profiles of the node (over its pprof
// listener) and of this process during one phase.
type profiler struct {
	dir      string
	pprofURL string
	seconds  time.Duration
	wg       sync.WaitGroup
	errs     []error
	mu       sync.Mutex
	files    []string
}

func (p *profiler) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *profiler) saved(path string) {
	p.mu.Lock()
	p.files = append(p.files, path)
	p.mu.Unlock()
}

func (p *profiler) start(ctx context.Context) {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		p.fail(err)
		return
	}
	secs := max(1, int(p.seconds.Seconds()))
	if p.pprofURL != "" {
		for _, f := range []struct{ name, path string }{
			{"node-cpu.pprof", "/debug/pprof/profile"},
			{"node-allocs.pprof", "/debug/pprof/allocs"},
		} {
			p.wg.Go(func() {
				if err := fetch(ctx, fmt.Sprintf("%s%s?seconds=%d", p.pprofURL, f.path, secs), filepath.Join(p.dir, f.name)); err != nil {
					p.fail(fmt.Errorf("%s: %w", f.name, err))
					return
				}
				p.saved(filepath.Join(p.dir, f.name))
			})
		}
	}
	path := filepath.Join(p.dir, "loadgen-cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		p.fail(err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		p.fail(fmt.Errorf("load generator profile: %w", err))
		return
	}
	p.wg.Go(func() {
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-ctx.Done():
		}
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			p.fail(err)
			return
		}
		p.saved(path)
	})
}

func (p *profiler) wait() { p.wg.Wait() }

func fetch(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", u, res.StatusCode)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// profileSum is where one CPU profile's time went: flat time grouped by
// what the code does, and the top functions.
type profileSum struct {
	File       string             `json:"file"`
	Categories map[string]float64 `json:"categories_pct"`
	Top        []profileLine      `json:"top"`
}

type profileLine struct {
	Func    string  `json:"func"`
	FlatPct float64 `json:"flat_pct"`
	CumPct  float64 `json:"cum_pct"`
}

// finish waits for the profiles and summarises the CPU profiles with
// `go tool pprof -top`.
func (p *profiler) finish(stdout io.Writer) ([]*profileSum, error) {
	p.wait()
	slices.Sort(p.files)
	var sums []*profileSum
	for _, f := range p.files {
		if !strings.HasSuffix(f, "-cpu.pprof") {
			continue
		}
		s, err := summarise(f)
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		sums = append(sums, s)
	}
	if len(p.files) > 0 {
		fmt.Fprintf(stdout, "profiles saved in %s; e.g. go tool pprof -top %s\n", p.dir, p.files[0])
	}
	return sums, errors.Join(p.errs...)
}

func summarise(file string) (*profileSum, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=100000", "-nodefraction=0", file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof %s: %w", file, err)
	}
	return parseTop(file, out), nil
}

// parseTop reads `go tool pprof -top` output: after the header, lines of
// "flat flat% sum% cum cum% function".
func parseTop(file string, out []byte) *profileSum {
	s := &profileSum{File: file, Categories: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		fn := strings.Join(f[5:], " ")
		s.Categories[category(fn)] += flat
		if len(s.Top) < 15 {
			s.Top = append(s.Top, profileLine{Func: fn, FlatPct: flat, CumPct: cum})
		}
	}
	return s
}

// category groups a function by what the time in it was for.
func category(fn string) string {
	for _, c := range []struct{ prefix, name string }{
		{"crypto/", "crypto"},
		{"p256", "crypto"}, // assembly in crypto/internal/fips140/nistec
		{"sha256block", "crypto"},
		{"gcWriteBarrier", "gc+alloc"},
		{"vendor/golang.org/x/crypto", "crypto"},
		{"math/big", "crypto"},
		{"modernc.org/sqlite", "sqlite"},
		{"modernc.org/libc", "sqlite"},
		{"modernc.org/", "sqlite"},
		{"database/sql", "sqlite"},
		{"runtime.gc", "gc+alloc"},
		{"runtime.scanobject", "gc+alloc"},
		{"runtime.greyobject", "gc+alloc"},
		{"runtime.findObject", "gc+alloc"},
		{"runtime.markBits", "gc+alloc"},
		{"runtime.heapBits", "gc+alloc"},
		{"runtime.spanOf", "gc+alloc"},
		{"runtime.wbBuf", "gc+alloc"},
		{"runtime.bulkBarrier", "gc+alloc"},
		{"runtime.typePointers", "gc+alloc"},
		{"runtime.mallocgc", "gc+alloc"},
		{"runtime.newobject", "gc+alloc"},
		{"runtime.makeslice", "gc+alloc"},
		{"runtime.growslice", "gc+alloc"},
		{"runtime.scanObject", "gc+alloc"},
		{"runtime.tryDeferToSpanScan", "gc+alloc"},
		{"runtime.roundupsize", "gc+alloc"},
		{"runtime.getMCache", "gc+alloc"},
		{"runtime.(*spanSet)", "gc+alloc"},
		{"runtime.(*mspan)", "gc+alloc"},
		{"runtime.(*mheap)", "gc+alloc"},
		{"runtime.(*mcache)", "gc+alloc"},
		{"runtime.(*mcentral)", "gc+alloc"},
		{"runtime.(*gcWork)", "gc+alloc"},
		{"runtime.memclr", "gc+alloc"},
		{"runtime.nextFreeFast", "gc+alloc"},
		{"runtime.sweepone", "gc+alloc"},
		{"runtime.(*sweepLocked)", "gc+alloc"},
		{"syscall.", "syscalls (network, file)"},
		{"internal/runtime/syscall", "syscalls (network, file)"},
		{"runtime.futex", "scheduler"},
		{"runtime.epoll", "scheduler"},
		{"runtime.netpoll", "scheduler"},
		{"runtime.usleep", "scheduler"},
		{"runtime.schedule", "scheduler"},
		{"runtime.findRunnable", "scheduler"},
		{"runtime.runqgrab", "scheduler"},
		{"runtime.stealWork", "scheduler"},
		{"runtime.lock", "scheduler"},
		{"runtime.unlock", "scheduler"},
		{"runtime.procyield", "scheduler"},
		{"runtime.osyield", "scheduler"},
		{"runtime.nanotime", "scheduler"},
		{"runtime.", "runtime (other)"},
		{"internal/runtime", "runtime (other)"},
		{"net/http", "http"},
		{"net/textproto", "http"},
		{"net/url", "http"},
		{"mime", "http"},
		{"bufio", "http"},
		{"net.", "http"},
		{"internal/poll", "http"},
		{"encoding/json", "json"},
		{"github.com/go-json-experiment", "json"},
		{"encoding/base64", "encoding"},
		{"encoding/", "encoding"},
		{"github.com/fxamacker/cbor", "encoding"},
		{"html/template", "templates"},
		{"text/template", "templates"},
		{"log/slog", "logging"},
		{"github.com/prometheus", "metrics"},
		{"github.com/go-jose", "jose/webauthn libraries"},
		{"github.com/go-webauthn", "jose/webauthn libraries"},
		{"github.com/coreos", "jose/webauthn libraries"},
		{"github.com/descope", "jose/webauthn libraries"},
		{"golang.org/x/oauth2", "jose/webauthn libraries"},
		{"github.com/varde-eid", "varde"},
		{"strings.", "strings, maps, sort"},
		{"strconv.", "strings, maps, sort"},
		{"unicode", "strings, maps, sort"},
		{"sort.", "strings, maps, sort"},
		{"slices.", "strings, maps, sort"},
		{"internal/bytealg", "strings, maps, sort"},
		{"bytes.", "strings, maps, sort"},
		{"internal/runtime/maps", "strings, maps, sort"},
		{"reflect.", "reflection"},
		{"internal/abi", "reflection"},
		{"sync.", "sync"},
		{"internal/sync", "sync"},
		{"context.", "sync"},
		{"time.", "time"},
		{"fmt.", "fmt"},
	} {
		if strings.HasPrefix(fn, c.prefix) {
			return c.name
		}
	}
	return "other"
}

func (s *profileSum) print(w io.Writer) {
	fmt.Fprintf(w, "\n%s — flat CPU by kind of work:\n", filepath.Base(s.File))
	type kv struct {
		k string
		v float64
	}
	var cats []kv
	for k, v := range s.Categories {
		cats = append(cats, kv{k, v})
	}
	slices.SortFunc(cats, func(a, b kv) int {
		if a.v != b.v {
			if a.v > b.v {
				return -1
			}
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	for _, c := range cats {
		if c.v >= 0.5 {
			fmt.Fprintf(w, "  %5.1f%%  %s\n", c.v, c.k)
		}
	}
	fmt.Fprintf(w, "top functions (flat%%, cum%%):\n")
	for _, l := range s.Top {
		fmt.Fprintf(w, "  %5.1f%% %5.1f%%  %s\n", l.FlatPct, l.CumPct, l.Func)
	}
}
