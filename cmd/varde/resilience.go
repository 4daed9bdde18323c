package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
)

const resilienceUsage = `usage: varde resilience [flags]
       varde resilience --nodes --postgres DSN [flags]
       varde resilience --nodes --postgres DSN --kill-primary CMD [flags]

Starts a Varde node and two simulated national eIDs (Demo BankID, Demo
MinID) as separate processes on loopback, and has virtual people log in
continuously to two relying parties through them (OpenID Connect code flow
with PKCE, go-oidc verifying the ID token). Meanwhile it
  1. SIGKILLs Demo BankID (at the end of --before, once a login of the
     "either" client is under way, waiting at most 10s for one),
  2. then makes Demo MinID slow,
  3. then restarts Demo BankID on the same port with the same keys,
and prints the logins, success rate and latency of each phase, how long
Varde took to see BankID down and up again, and whether every person kept
one sub. It fails if a login that could have succeeded did not.

Relying parties: "either" accepts both eIDs; its people pick the first eID
the login page offers. "bankid-only" is registered for BankID alone
(providers: [bankid]): while BankID is down its people get Varde's plain
"cannot log in right now" page, wait on it and come back to the same login.
"needs-high" asks for level high (acr_values), which of the eIDs only
BankID reaches, and registered substantial as its degraded-mode level
(degraded_level):
while BankID is down its people log in through MinID at substantial, and
the ID token says "degraded": true; before and after, at high without it.

With --nodes a Varde node fails instead: two nodes (varde serve, each with
its own signing key) over the PostgreSQL database at DSN, behind a load
balancer in this process that is the issuer (round robin per request; a
node it cannot connect to is passed over; each node's /readyz asked every
--readyz-interval). Virtual people log in with passkeys, each
request through the balancer (PAR, authorize, WebAuthn assertion, token,
ID token verification). Meanwhile it
  1. SIGKILLs node b (with --gently: SIGTERM, as a rolling upgrade
     stops a node; it finishes the requests it holds, then exits),
  2. then restarts it with the same configuration and key,
and prints the logins, success rate and latency of each phase, how many
logins were in flight at the kill and how many of those failed, how long
the restarted node took to get requests again, and whether the audit
chain is unbroken. It fails if a login that started after node b was gone
failed. The database must be empty or one an earlier --nodes run used
(the nodes' subject salt is fixed, not secret, since the persons are
synthetic); its records stay.

With --kill-primary the database fails instead of node b: the same two
nodes and people, then CMD (run with sh -c) kills the database's
primary, and a replica is to take over behind the DSN (an HAProxy in
front of Patroni's members: scripts/ha-postgres.sh, whose kill-primary
is such a CMD). It prints the logins of each phase (before the kill, in
flight at it, during the switch, after it), how long the database, the
nodes' /readyz and the logins took to come back, whether the primary's
replica was synchronous, and whether the audit log still holds every
event it held just before the kill. It fails if a login failed before
the kill or after both nodes were ready again, or if events were lost.

Every kind of run ends with the same load: line (people, logins started,
completed and failed in each phase, the machine's load average and the
CPU shares of the run and of other processes) and kill: line (when the
fault came, how long until it was seen and mended, the logins in flight
at it and how many failed, the p99 of the logins that met the failover),
and fails if no login was in flight at the kill or none that met the
failover completed: then the load it needed was not there.

flags:
`

// resOptions are the resilience command's flags.
type resOptions struct {
	users, onlyUsers int
	// highUsers are the people at the needs-high client.
	highUsers       int
	before, killed  time.Duration
	slow, restarted time.Duration
	slowDelay       time.Duration
	think           time.Duration
	typing          time.Duration
	slowProbe       time.Duration
	probeInterval   time.Duration
	probeTimeout    time.Duration
	failuresToDown  int
	keep            bool
	logLevel        string
	jsonFile        string
	// nodes is the node failover run (--nodes), over the PostgreSQL
	// database at postgres, its balancer asking the nodes' /readyz
	// every readyzInterval.
	nodes          bool
	postgres       string
	readyzInterval time.Duration
	// killPrimary, with nodes, is the database failover run: the shell
	// command that kills the database's primary, run instead of killing
	// node b.
	killPrimary string
	gently      bool
	// childEnv is the whole environment of the child processes: none by
	// default, so no VARDE_* variable of the caller reaches them (tests
	// add to it).
	childEnv []string
	command  string
}

func parseResilienceFlags(args []string, stderr io.Writer) (*resOptions, error) {
	o := &resOptions{}
	fs := flag.NewFlagSet("resilience", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), resilienceUsage)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.users, "users", 8, `concurrent virtual people (at the "either" client)`)
	fs.IntVar(&o.onlyUsers, "bankid-only-users", 2, `concurrent virtual people at the "bankid-only" client`)
	fs.IntVar(&o.highUsers, "needs-high-users", 2, `concurrent virtual people at the "needs-high" client (level high, substantial when degraded)`)
	fs.DurationVar(&o.before, "before", 8*time.Second, "phase 1: both eIDs (with --nodes: both nodes) up")
	fs.DurationVar(&o.killed, "killed", 15*time.Second, "phase 2: after BankID (with --nodes: node b) is SIGKILLed")
	fs.DurationVar(&o.slow, "slow", 10*time.Second, "phase 3: BankID still dead, MinID slow")
	fs.DurationVar(&o.restarted, "restarted", 12*time.Second, "the last phase: after BankID is restarted, MinID still slow (with --nodes: after node b is restarted)")
	fs.DurationVar(&o.slowDelay, "slow-delay", 150*time.Millisecond, "MinID's delay per response in phases 3 and 4")
	fs.DurationVar(&o.think, "think", 100*time.Millisecond, "pause of each virtual person between logins, on average: from half to one and a half times, so that people do not keep in step")
	fs.DurationVar(&o.typing, "typing", 200*time.Millisecond, "pause of each person on the eID's login page before submitting it (not counted in latency)")
	fs.DurationVar(&o.slowProbe, "slow-probe", 250*time.Millisecond, "the node's health.slow_probe: a slower probe counts towards degraded")
	fs.DurationVar(&o.probeInterval, "probe-interval", time.Second, "the node's health.interval")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", time.Second, "the node's health.probe_timeout: at most --probe-interval and over --slow-probe; a probe of the slow MinID waits for three responses, so leave margin over three times --slow-delay")
	fs.IntVar(&o.failuresToDown, "failures-to-down", 3, "the node's health.failures_to_down and successes_to_up")
	fs.BoolVar(&o.nodes, "nodes", false, "kill and restart a Varde node of two, over PostgreSQL (--postgres), instead of an eID")
	fs.StringVar(&o.postgres, "postgres", "", "with --nodes: DSN of the PostgreSQL database the nodes share, empty or used by an earlier --nodes run (required)")
	fs.DurationVar(&o.readyzInterval, "readyz-interval", 250*time.Millisecond, "with --nodes: how often the load balancer asks each node's /readyz")
	fs.BoolVar(&o.gently, "gently", false, "with --nodes: stop node b with SIGTERM, as a rolling upgrade does (it finishes the requests it holds), instead of SIGKILL")
	fs.StringVar(&o.killPrimary, "kill-primary", "", "with --nodes: kill the database's primary with this shell command (sh -c) instead of node b, and measure the failover; --postgres must reach the primary whichever server it is (scripts/ha-postgres.sh)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, databases, logs)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the child processes")
	fs.StringVar(&o.jsonFile, "json", "", "also write the results as JSON to this file")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := checkResilienceMode(fs, o); err != nil {
		return nil, err
	}
	phases := o.before + o.killed
	if !o.nodes {
		phases += o.slow
	}
	if o.killPrimary == "" {
		phases += o.restarted
	}
	switch {
	case o.users < 1 || o.users > 256 || o.onlyUsers < 0 || o.onlyUsers > 256 || o.highUsers < 0 || o.highUsers > 256:
		return nil, errors.New("resilience: --users must be in [1, 256], --bankid-only-users and --needs-high-users in [0, 256]")
	case o.before <= 0 || o.killed <= 0 || o.slow <= 0 || o.restarted <= 0:
		return nil, errors.New("resilience: phase durations must be positive")
	case phases > 10*time.Minute:
		return nil, errors.New("resilience: the phases together must not exceed 10m")
	case o.slowDelay <= 0 || o.slowDelay > 5*time.Second:
		return nil, errors.New("resilience: --slow-delay must be in (0, 5s]")
	case o.think < 0 || o.typing < 0:
		return nil, errors.New("resilience: --think and --typing must not be negative")
	case o.slowProbe <= 0:
		return nil, errors.New("resilience: --slow-probe must be positive")
	case o.probeInterval < 50*time.Millisecond:
		return nil, errors.New("resilience: --probe-interval must be at least 50ms")
	case o.probeTimeout > o.probeInterval || o.probeTimeout <= o.slowProbe:
		return nil, fmt.Errorf("resilience: --probe-timeout must be over --slow-probe (%v) and at most --probe-interval (%v)", o.slowProbe, o.probeInterval)
	case o.failuresToDown < 1:
		return nil, errors.New("resilience: --failures-to-down must be at least 1")
	case o.readyzInterval < 50*time.Millisecond || o.readyzInterval > 10*time.Second:
		return nil, errors.New("resilience: --readyz-interval must be in [50ms, 10s]")
	}
	return o, nil
}

func resilience(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseResilienceFlags(args, stderr)
	if err != nil {
		return err
	}
	o.command = strings.TrimSpace("varde resilience " + strings.Join(args, " "))
	if o.nodes {
		// The DSN may hold a password; the report names the database.
		o.command = strings.ReplaceAll(o.command, o.postgres, "DSN")
		if o.killPrimary != "" {
			_, err = runDBFailover(ctx, o, stdout, stderr)
			return err
		}
		_, err = runNodeFailover(ctx, o, stdout, stderr)
		return err
	}
	_, err = runResilience(ctx, o, stdout, stderr)
	return err
}

// The flags that belong to one run only: the eIDs' and the nodes'.
var (
	eidOnlyFlags   = []string{"bankid-only-users", "needs-high-users", "slow", "slow-delay", "typing", "slow-probe", "probe-interval", "probe-timeout", "failures-to-down"}
	nodesOnlyFlags = []string{"postgres", "readyz-interval", "kill-primary", "gently"}
)

// checkResilienceMode refuses a flag given for the other run than the
// one --nodes chooses, --nodes without --postgres, an empty
// --kill-primary, and --restarted with it (nothing is restarted).
func checkResilienceMode(fs *flag.FlagSet, o *resOptions) error {
	other, mode := nodesOnlyFlags, "without --nodes"
	if o.nodes {
		other, mode = eidOnlyFlags, "with --nodes"
	}
	var wrong []string
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if slices.Contains(other, f.Name) {
			wrong = append(wrong, "--"+f.Name)
		}
	})
	switch {
	case len(wrong) > 0:
		return usageErrorf("resilience: %s not %s", strings.Join(wrong, ", "), mode)
	case o.nodes && o.postgres == "":
		return usageErrorf("resilience: --nodes needs --postgres DSN, a PostgreSQL database for the nodes")
	case set["kill-primary"] && strings.TrimSpace(o.killPrimary) == "":
		return usageErrorf("resilience: --kill-primary needs a command")
	case set["kill-primary"] && o.gently:
		return usageErrorf("resilience: --gently not with --kill-primary: no node is stopped")
	case set["kill-primary"] && set["restarted"]:
		return usageErrorf("resilience: --restarted not with --kill-primary: nothing is restarted, the database fails over")
	}
	return nil
}

// The relying parties of the run.
const (
	resEither    = "either"
	resOnlyBank  = "bankid-only"
	resNeedsHigh = "needs-high"
	resCallback  = "https://rp.example/cb"
	resHTTPLimit = 10 * time.Second
)

// Phase names, in order.
var resPhaseNames = []string{"before", "bankid killed", "minid slow", "bankid restarted"}

// resReport is what a run measured; --json writes it.
type resReport struct {
	Command string       `json:"command"`
	Machine benchMachine `json:"machine"`
	Config  struct {
		ProbeInterval  string `json:"probe_interval"`
		ProbeTimeout   string `json:"probe_timeout"`
		FailuresToDown int    `json:"failures_to_down"`
		SlowDelay      string `json:"slow_delay"`
		Users          int    `json:"users"`
		OnlyUsers      int    `json:"bankid_only_users"`
		HighUsers      int    `json:"needs_high_users"`
	} `json:"config"`
	Phases []resPhase `json:"phases"`
	// Seconds from the SIGKILL until Varde's login page showed BankID as
	// unavailable, and until /metrics said down; from the restart until
	// the page offered BankID again, and until /metrics said up. -1 if
	// it never happened.
	DetectPageS   float64 `json:"detect_page_s"`
	DetectMetricS float64 `json:"detect_metric_s"`
	RecoverPageS  float64 `json:"recover_page_s"`
	RecoverUpS    float64 `json:"recover_up_s"`
	// Load is the load the run offered and how busy the machine was;
	// Kill the fault and what came of it: the load: and kill: lines.
	Load loadFigures `json:"load"`
	Kill killFigures `json:"kill"`
	// MinIDStates are the states /metrics gave Demo MinID while it was slow.
	MinIDStates []string `json:"minid_states_while_slow"`
	// InFlightAtKill: logins of the either client running at the kill
	// instant; FinishedInFlight of them completed, RecoveredInFlight of
	// those through another eID after one failed. The rest needed no
	// retry: they had left BankID before it died, or were at MinID.
	InFlightAtKill    int `json:"in_flight_at_kill"`
	FinishedInFlight  int `json:"finished_in_flight"`
	RecoveredInFlight int `json:"recovered_in_flight"`
	// OnlyWaited: bankid-only logins that met BankID unavailable, waited
	// and then finished on the same authorization request.
	OnlyWaited   int     `json:"bankid_only_waited_and_finished"`
	OnlyWaitMaxS float64 `json:"bankid_only_longest_wait_s"`
	// NeedsHigh: the needs-high client's logins, at high or degraded.
	NeedsHigh needsHighFigures `json:"needs_high"`
	// RetryReasons counts why an eID failed a person who then finished
	// through another one (the mid-flow retry), by reason.
	RetryReasons map[string]int `json:"retry_reasons,omitempty"`
	// Failover latency: the either client's logins that finished through
	// another eID after one failed, without the person's pauses.
	FailoverLogins int      `json:"failover_logins"`
	FailoverP50MS  float64  `json:"failover_p50_ms"`
	FailoverP99MS  float64  `json:"failover_p99_ms"`
	FailoverMaxMS  float64  `json:"failover_max_ms"`
	SubsStable     bool     `json:"subs_stable"`
	Failures       []string `json:"failures,omitempty"`
	Problems       []string `json:"problems,omitempty"`
	Logins         int      `json:"logins"`
}

// resPhase is one client's logins that started in one phase.
type resPhase struct {
	Phase     string  `json:"phase"`
	Client    string  `json:"client"`
	Logins    int     `json:"logins"`
	OK        int     `json:"ok"`
	Failed    int     `json:"failed"`
	Unfinish  int     `json:"unfinished"`
	Success   float64 `json:"success_rate"`
	ViaBankID int     `json:"via_bankid"`
	ViaMinID  int     `json:"via_minid"`
	Retried   int     `json:"retried"`
	// Degraded: logins whose ID token said "degraded": true.
	Degraded int `json:"degraded"`
	latency
}

// latency is the spread of some logins' durations, in milliseconds.
type latency struct {
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// latencyOf sorts d and returns its p50, p99 and max; zero if empty.
func latencyOf(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	slices.Sort(d)
	return latency{ms(pct(d, 0.50)), ms(pct(d, 0.99)), ms(d[len(d)-1])}
}

// resLogin is one login as the relying party and the person saw it.
type resLogin struct {
	client     string
	person     string
	start, end time.Time
	provider   string
	sub        string
	// acr is the level the ID token names (low, substantial, high), and
	// degraded its "degraded" claim.
	acr      string
	degraded bool
	ok       bool
	// unfinished: a bankid-only person still waiting for BankID when the
	// run ended.
	unfinished bool
	err        string
	// retried lists the eIDs that failed before the one that worked.
	retried        []string
	sawUnavailable bool
	waited         time.Duration
	// paused is the person's time on the eID's page (--typing), left out
	// of the latency, like waited.
	paused time.Duration
}

// resChild is a child process of the run.
type resChild struct {
	name    string
	cmd     *exec.Cmd
	log     string
	exited  chan struct{}
	exitErr error
}

func (c *resChild) start(exe string, env []string, args ...string) error {
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	c.cmd = exec.Command(exe, args...)
	c.cmd.Env = append([]string{}, env...) // not nil, which would mean "inherit"
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	dieWithParent(c.cmd)
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.exited = make(chan struct{})
	go func() { c.exitErr = c.cmd.Wait(); close(c.exited) }()
	return nil
}

// readyWithin is how long waitFor waits for a child to be ready.
const readyWithin = 30 * time.Second

// waitFor asks ready every interval until it reports true, and fails
// if the child exits first, with the end of its log, if ctx ends, or
// if readyWithin passes, saying the child was not what (such as
// "ready").
func (c *resChild) waitFor(ctx context.Context, interval time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(readyWithin)
	for {
		if ready() {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited before it was ready (%v): %s", c.name, c.exitErr, tail(c.log, 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not %s after %v: %s", c.name, what, readyWithin, tail(c.log, 10))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *resChild) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// stop ends the process gently (SIGTERM), then with SIGKILL after 10 s.
func (c *resChild) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	if err := interrupt(c.cmd.Process); err != nil {
		_ = c.cmd.Process.Kill()
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.kill()
	}
}

// resSim is a simulated eID run as `varde provider-sim`.
type resSim struct {
	resChild
	id, display, level string
	dir, readyFile     string
	ready              providersim.Ready
}

// launch starts the sim on addr and waits for its ready file.
func (s *resSim) launch(ctx context.Context, exe string, o *resOptions, addr, jwksFile, issuer string) error {
	_ = os.Remove(s.readyFile) // a killed sim leaves its ready file behind
	err := s.start(exe, o.childEnv, "provider-sim", "--name", s.display, "--id", s.id, "--level", s.level,
		"--addr", addr, "--admin-addr", "localhost:0", "--data", s.dir,
		"--client-id", "varde", "--client-jwks-file", jwksFile,
		"--redirect-uri", issuer+oidcup.CallbackPath(s.id),
		"--ready-file", s.readyFile, "--log-level", o.logLevel)
	if err != nil {
		return err
	}
	return s.waitFor(ctx, 20*time.Millisecond, "ready", func() bool {
		r, err := providersim.ReadReadyFile(s.readyFile)
		if err != nil || r.Issuer == "" {
			return false
		}
		s.ready = r
		return true
	})
}

// resRun is one run: the processes, the relying parties and what was seen.
type resRun struct {
	o      *resOptions
	dir    string
	exe    string
	issuer string
	node   *resChild
	bank   *resSim
	min    *resSim
	tr     *http.Transport
	rps    map[string]*resRP

	mu     sync.Mutex
	logins []*resLogin
	// marks are the instants of the run, by name: start, kill, slow,
	// restart, end, and what the watcher saw.
	marks     map[string]time.Time
	minStates map[string]bool
	// flight counts the either client's logins under way, each from
	// after its start is taken until before its end is, under flightMu,
	// so that a kill marked while it is above zero falls inside one of
	// them (killWhenBusy).
	flightMu sync.Mutex
	flight   int
	// degradedCounted is the node's varde_logins_degraded_total at the
	// end, -1 if it could not be read.
	degradedCounted float64
}

func (r *resRun) mark(name string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.marks[name]; !ok {
		r.marks[name] = t
	}
}

func (r *resRun) at(name string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.marks[name]
	return t, ok
}

// resRP is a relying party at the node: go-oidc and x/oauth2.
type resRP struct {
	id string
	// acr is the acr_values it sends, if any.
	acr      string
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func runResilience(ctx context.Context, o *resOptions, stdout, stderr io.Writer) (*resReport, error) {
	dir, err := os.MkdirTemp("", "varde-resilience-")
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	r := &resRun{o: o, dir: dir, exe: exe, marks: map[string]time.Time{}, minStates: map[string]bool{}, rps: map[string]*resRP{}}
	r.tr = &http.Transport{
		DialContext:         loopbackDialer(),
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}
	defer func() {
		if r.node != nil {
			r.node.stop()
		}
		for _, s := range []*resSim{r.bank, r.min} {
			if s != nil {
				s.stop()
			}
		}
		r.tr.CloseIdleConnections()
		if o.keep {
			fmt.Fprintf(stderr, "kept %s (varde.yaml, node.log, sim-*/)\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	rep := r.drive(ctx, stdout)
	r.report(rep, stdout)
	if err := finishRun(rep, rep.Problems, o.jsonFile, []*resChild{r.node, &r.bank.resChild, &r.min.resChild}, stderr); err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}

// finishRun writes a run's report as JSON to jsonFile, if given, and,
// if the run found problems, shows the end of the children's logs and
// returns the problems as an error.
func finishRun(rep any, problems []string, jsonFile string, children []*resChild, stderr io.Writer) error {
	if jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if len(problems) == 0 {
		return nil
	}
	for _, c := range children {
		if t := tail(c.log, 15); t != "" {
			fmt.Fprintf(stderr, "%s log (%s):\n%s\n", c.name, c.log, t)
		}
	}
	ps := problems
	if len(ps) > 5 {
		ps = append(ps[:5:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return fmt.Errorf("resilience: %s", strings.Join(ps, "; "))
}

// loopbackDialer dials "localhost" as 127.0.0.1, where the children listen.
func loopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// setup starts the two sims and the node, and registers the relying parties.
func (r *resRun) setup(ctx context.Context) error {
	o := r.o
	port, err := freePort()
	if err != nil {
		return err
	}
	r.issuer = fmt.Sprintf("http://localhost:%d", port)
	// Varde's key as a private_key_jwt client of the sims.
	keyFile := filepath.Join(r.dir, "upstream-client-key.pem")
	clientKey, err := loadOrCreateSigner(keyFile)
	if err != nil {
		return err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{clientKey.PublicJWK()}})
	if err != nil {
		return err
	}
	jwksFile := filepath.Join(r.dir, "upstream-client-jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		return err
	}
	newSim := func(id, display, level string) *resSim {
		return &resSim{resChild: resChild{name: display, log: filepath.Join(r.dir, id+".log")},
			id: id, display: display, level: level,
			dir: filepath.Join(r.dir, "sim-"+id), readyFile: filepath.Join(r.dir, id+".ready.json")}
	}
	r.bank = newSim("bankid", "Demo BankID", "high")
	r.min = newSim("minid", "Demo MinID", "substantial")
	r.node = &resChild{name: "varde node", log: filepath.Join(r.dir, "node.log")}
	for _, s := range []*resSim{r.bank, r.min} {
		if err := s.launch(ctx, r.exe, o, "localhost:0", jwksFile, r.issuer); err != nil {
			return err
		}
	}

	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	saltFile := filepath.Join(r.dir, "subject-salt")
	if err := os.WriteFile(saltFile, salt, 0o600); err != nil {
		return err
	}
	nodeKeyFile := filepath.Join(r.dir, "signing-key.pem")
	if _, err := loadOrCreateSigner(nodeKeyFile); err != nil {
		return err
	}
	acrs := map[string]string{assurance.ACRLow: "low", assurance.ACRSubstantial: "substantial", assurance.ACRHigh: "high"}
	var ups []any
	for _, s := range []*resSim{r.bank, r.min} {
		ups = append(ups, map[string]any{
			"id": s.id, "name": map[string]string{"en": s.display, "nb": s.display}, "issuer": s.ready.Issuer,
			"client_id": "varde", "auth_method": "private_key_jwt", "client_key_file": keyFile,
			"prompt_login": true, "max_level": s.level, "acr_map": acrs,
			"identifier_claim": "national_id", "identifier_schemes": []string{"no:fnr", "no:dnr"},
		})
	}
	secrets := map[string]string{}
	var clients []any
	for _, id := range []string{resEither, resOnlyBank, resNeedsHigh} {
		secret := rand.Text() + rand.Text()
		secrets[id] = secret
		f := filepath.Join(r.dir, id+".secret")
		if err := os.WriteFile(f, []byte(secret), 0o600); err != nil {
			return err
		}
		client := map[string]any{
			"id": id, "name": "Resilience RP (" + id + ")", "auth_method": "client_secret_basic", "secret_file": f,
			"redirect_uris": []string{resCallback}, "sector_id": id + ".rp.example", "claims": []string{"national_id"},
		}
		if id == resOnlyBank {
			// A client registered for BankID alone: while BankID is down
			// its people get the plain "cannot log in right now" page.
			client["providers"] = []string{"bankid"}
		}
		if id == resNeedsHigh {
			// It asks for high, which of the eIDs only BankID reaches:
			// while BankID is down, substantial (MinID) is let through,
			// marked degraded, beside the passkey, which only people
			// with a passkey can use (ADR 63).
			client["degraded_level"] = "substantial"
		}
		clients = append(clients, client)
	}
	cfg := map[string]any{
		"version":   1,
		"issuer":    r.issuer,
		"listen":    fmt.Sprintf("127.0.0.1:%d", port),
		"node":      "resilience",
		"store":     map[string]any{"driver": "sqlite", "dsn": filepath.Join(r.dir, "varde.db")},
		"keys":      map[string]any{"signing_key_file": nodeKeyFile, "subject_salt_file": saltFile},
		"log":       map[string]any{"level": o.logLevel, "format": "text"},
		"health":    resHealthConfig(o),
		"clients":   clients,
		"upstreams": ups,
	}
	raw, err := json.MarshalIndent(cfg, "", "  ") // JSON is YAML
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(r.dir, "varde.yaml")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		return err
	}
	if err := r.node.start(r.exe, o.childEnv, "serve", "--config", cfgFile); err != nil {
		return err
	}
	hc := &http.Client{Transport: r.tr, Timeout: resHTTPLimit}
	if err := r.waitNode(ctx, hc); err != nil {
		return err
	}
	pctx := gooidc.ClientContext(ctx, hc)
	p, err := gooidc.NewProvider(pctx, r.issuer)
	if err != nil {
		return fmt.Errorf("relying party discovery: %w", err)
	}
	for id, secret := range secrets {
		r.rps[id] = &resRP{id: id, acr: map[string]string{resNeedsHigh: assurance.ACRHigh}[id],
			conf:     &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: resCallback, Scopes: []string{"openid"}},
			verifier: p.Verifier(&gooidc.Config{ClientID: id}),
		}
	}
	return nil
}

// waitNode waits until the node is ready and has seen both sims up.
func (r *resRun) waitNode(ctx context.Context, hc *http.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s, err := fetchStates(ctx, hc, r.issuer); err == nil && s["bankid"] == "up" && s["minid"] == "up" {
			return nil
		}
		select {
		case <-r.node.exited:
			return fmt.Errorf("node exited before it was ready (%v): %s", r.node.exitErr, tail(r.node.log, 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node not ready with both eIDs up after 30s: %s", tail(r.node.log, 10))
		}
	}
}

// fetchStates reads each component's state from the node's /metrics
// (varde_component_state{component,state} is 1 for the current state).
func fetchStates(ctx context.Context, hc *http.Client, issuer string) (map[string]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/metrics", nil)
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", res.Status)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := stateMetric.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out, sc.Err()
}

var stateMetric = regexp.MustCompile(`^varde_component_state\{component="([^"]+)",state="([^"]+)"\} 1$`)

// The login page: an offered provider is a link, an unavailable one a
// span (web/templates/login.html).
var (
	offeredRe     = regexp.MustCompile(`<a class="button" id="provider-([a-z0-9-]+)" href=`)
	unavailableRe = regexp.MustCompile(`<span class="unavailable" id="provider-([a-z0-9-]+)"`)
)

func choices(page string) (offered, unavailable []string) {
	for _, m := range offeredRe.FindAllStringSubmatch(page, -1) {
		offered = append(offered, m[1])
	}
	for _, m := range unavailableRe.FindAllStringSubmatch(page, -1) {
		unavailable = append(unavailable, m[1])
	}
	return offered, unavailable
}

// resHealthConfig is the node's health section.
func resHealthConfig(o *resOptions) map[string]any {
	return map[string]any{
		"interval": o.probeInterval.String(), "probe_timeout": o.probeTimeout.String(), "slow_probe": o.slowProbe.String(),
		"failures_to_down": o.failuresToDown, "successes_to_up": o.failuresToDown,
	}
}

// drive runs the phases with the virtual people and the watcher.
func (r *resRun) drive(ctx context.Context, stdout io.Writer) *resReport {
	o := r.o
	m := machine()
	fmt.Fprintf(stdout, "machine: %d CPUs (%s), GOMAXPROCS %d, %s, %s\n", m.CPUs, m.CPUModel, m.GOMAXPROCS, m.Go, m.OS)
	fmt.Fprintf(stdout, "node:    %s (process %d); Demo BankID %s (process %d); Demo MinID %s (process %d)\n",
		r.issuer, r.node.cmd.Process.Pid, r.bank.ready.Issuer, r.bank.cmd.Process.Pid, r.min.ready.Issuer, r.min.cmd.Process.Pid)
	fmt.Fprintf(stdout, "health:  probe every %v (timeout %v, slow over %v), down after %d failures, up after %d successes\n",
		o.probeInterval, o.probeTimeout, o.slowProbe, o.failuresToDown, o.failuresToDown)
	fmt.Fprintf(stdout, "people:  %d at the either client, %d at the bankid-only client, %d at the needs-high client; %v on the eID's page, %v between logins on average (%v to %v)\n\n",
		o.users, o.onlyUsers, o.highUsers, o.typing, o.think, o.think/2, o.think*3/2)

	load0 := sampleLoad(r.node.cmd.Process.Pid, r.bank.cmd.Process.Pid, r.min.cmd.Process.Pid)
	stopNew := make(chan struct{}) // no new logins after this
	var wg sync.WaitGroup
	persons := providersim.DefaultPersons()
	start := time.Now()
	r.mark("start", start)
	for i := range o.users + o.onlyUsers + o.highUsers {
		client := resEither
		switch {
		case i >= o.users+o.onlyUsers:
			client = resNeedsHigh
		case i >= o.users:
			client = resOnlyBank
		}
		p := persons[i%len(persons)]
		wg.Go(func() { r.person(ctx, client, p.Identifier.Value, stopNew) })
	}
	watchDone := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Go(func() { r.watch(ctx, watchDone) })

	step := func(d time.Duration, what string, f func() error) bool {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return false
		}
		fmt.Fprintf(stdout, "%6.1fs  %s\n", time.Since(start).Seconds(), what)
		if err := f(); err != nil {
			fmt.Fprintf(stdout, "        %v\n", err)
			r.mark("error", time.Now())
			return false
		}
		return true
	}
	ok := step(o.before, "SIGKILL Demo BankID (process "+fmt.Sprint(r.bank.cmd.Process.Pid)+")", func() error {
		r.mark("kill", r.killWhenBusy(ctx))
		r.bank.kill()
		return nil
	}) && step(o.killed, "Demo MinID slow ("+o.slowDelay.String()+" per response)", func() error {
		r.mark("slow", time.Now())
		c := &providersim.AdminClient{URL: r.min.ready.AdminURL, Token: r.min.ready.AdminToken}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := c.SetFault(sctx, providersim.Fault{Mode: providersim.ModeSlow, Delay: o.slowDelay})
		return err
	}) && step(o.slow, "restart Demo BankID on "+r.bank.ready.Addr, func() error {
		r.mark("restart", time.Now())
		return r.bank.launch(ctx, r.exe, o, r.bank.ready.Addr, filepath.Join(r.dir, "upstream-client-jwks.json"), r.issuer)
	})
	if ok {
		select {
		case <-time.After(o.restarted):
		case <-ctx.Done():
		}
	}
	end := time.Now()
	r.mark("end", end)
	close(stopNew)
	fmt.Fprintf(stdout, "%6.1fs  end; waiting for logins in flight\n\n", end.Sub(start).Seconds())
	wg.Wait()
	close(watchDone)
	watchWG.Wait()
	r.degradedCounted = r.countDegraded(ctx)
	rep := r.summarise(ok)
	rep.Load.runLoad = load0.to(sampleLoad(r.node.cmd.Process.Pid, r.bank.cmd.Process.Pid, r.min.cmd.Process.Pid))
	return rep
}

// runLoad is how busy the machine was during a run: its 1-minute load
// average at the start and the end (/proc/loadavg), and the shares of
// all its CPUs' time that the run's own processes (this one and its
// children) and all other processes used (/proc/stat). -1 where
// unknown, as on systems other than Linux.
type runLoad struct {
	Load1Start float64 `json:"load1_start"`
	Load1End   float64 `json:"load1_end"`
	OursBusy   float64 `json:"ours_busy"`
	OtherBusy  float64 `json:"other_busy"`
}

// loadSample is the machine's load and CPU time, and the run's own, at
// one moment.
type loadSample struct {
	load1         float64
	loadOK        bool
	ours          time.Duration
	busy, total   time.Duration
	oursOK, cpuOK bool
}

// sampleLoad samples the machine's load and CPU time, and the run's own:
// this process's, its exited children's, and that of the live children
// pids.
func sampleLoad(pids ...int) loadSample {
	var s loadSample
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.load1, s.loadOK = parseLoadavg(string(b))
	}
	self, ok1 := selfCPU()
	children, ok2 := childrenCPU()
	s.ours, s.oursOK = self+children, ok1 && ok2
	for _, pid := range pids {
		c, ok := processCPU(pid)
		s.ours += c
		s.oursOK = s.oursOK && ok
	}
	s.busy, s.total, s.cpuOK = machineCPU()
	return s
}

// to is the load from s to e.
func (s loadSample) to(e loadSample) runLoad {
	l := runLoad{Load1Start: -1, Load1End: -1, OursBusy: -1, OtherBusy: -1}
	if s.loadOK && e.loadOK {
		l.Load1Start, l.Load1End = s.load1, e.load1
	}
	total := e.total - s.total
	if s.cpuOK && e.cpuOK && s.oursOK && e.oursOK && total > 0 {
		ours := e.ours - s.ours
		l.OursBusy = min(1, ours.Seconds()/total.Seconds())
		l.OtherBusy = max(0, (e.busy-s.busy-ours).Seconds()/total.Seconds())
	}
	return l
}

// parseLoadavg is the 1-minute load average in the text of /proc/loadavg
// ("0.52 0.58 0.59 1/467 12345", proc(5)).
func parseLoadavg(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// String says the load in the report's words.
func (l runLoad) String() string { return l.describe("") }

// describe says the load in the report's words, naming what the other
// processes include, if others says.
func (l runLoad) describe(others string) string {
	s := "1-min load average unknown"
	if l.Load1Start >= 0 {
		s = fmt.Sprintf("1-min load average %.2f at the start, %.2f at the end", l.Load1Start, l.Load1End)
	}
	if l.OursBusy < 0 {
		return s + "; CPU shares unknown"
	}
	if others != "" {
		others = " (" + others + ")"
	}
	return s + fmt.Sprintf("; of the machine's CPU time, the run's processes used %.0f %%, other processes%s %.0f %%", 100*l.OursBusy, others, 100*l.OtherBusy)
}

// watch polls the account login page and /metrics, as an operator and a
// person would see them, and marks when BankID is seen down and back.
func (r *resRun) watch(ctx context.Context, done <-chan struct{}) {
	hc := &http.Client{Transport: r.tr, Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		kill, killed := r.at("kill")
		if !killed {
			continue
		}
		restart, restarted := r.at("restart")
		slow, slowed := r.at("slow")
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.issuer+"/login", nil); err == nil {
			now := time.Now()
			if res, err := hc.Do(req); err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				offered, unavailable := choices(string(b))
				if slices.Contains(unavailable, "bankid") && now.After(kill) {
					r.mark("page-down", now)
				}
				if restarted && slices.Contains(offered, "bankid") && now.After(restart) {
					r.mark("page-up", now)
				}
			}
		}
		now := time.Now()
		states, err := fetchStates(ctx, hc, r.issuer)
		if err != nil {
			continue
		}
		if states["bankid"] == "down" {
			r.mark("metric-down", now)
		}
		if restarted && states["bankid"] == "up" && now.After(restart) {
			r.mark("metric-up", now)
		}
		if slowed && now.After(slow) {
			r.mu.Lock()
			r.minStates[states["minid"]] = true
			r.mu.Unlock()
		}
	}
}

// killWhenBusy returns the instant of the kill: one at which a login of
// the either client is under way, or the instant 10 s have passed:
// people who pause alike, or a machine slow enough that they spend the
// moment of the kill between logins, would otherwise leave the kill with
// no login in flight to recover, and the run with nothing to show about
// it. The instant is taken under flightMu, so the login counted began
// before it and ends after it, however slow the machine.
func (r *resRun) killWhenBusy(ctx context.Context) time.Time {
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.flightMu.Lock()
		if r.flight > 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			at := time.Now()
			r.flightMu.Unlock()
			return at
		}
		r.flightMu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// inFlight counts a login of the either client as under way until the
// function it returns is called.
func (r *resRun) inFlight() func() {
	r.flightMu.Lock()
	r.flight++
	r.flightMu.Unlock()
	return func() {
		r.flightMu.Lock()
		r.flight--
		r.flightMu.Unlock()
	}
}

// person is one virtual person at one client: log in, pause, repeat,
// until stop.
func (r *resRun) person(ctx context.Context, client, number string, stop <-chan struct{}) {
	jar, _ := cookiejar.New(nil)
	b := &resBrowser{r: r, hc: &http.Client{Transport: r.tr, Jar: jar, Timeout: resHTTPLimit,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != "localhost" || len(via) > 20 {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
	again(ctx, stop, func() time.Duration { return spread(r.o.think) }, func() {
		l := b.login(ctx, r.rps[client], number, stop)
		r.mu.Lock()
		r.logins = append(r.logins, l)
		r.mu.Unlock()
	})
}

// spread draws a person's pause between logins: think on average, from
// half to one and a half times it. People who all pause alike keep in
// step, all in a login or all pausing at any one moment, the kill's
// included, so that whether any login is in flight at the kill would be
// chance.
func spread(think time.Duration) time.Duration {
	if think <= 0 {
		return 0
	}
	return think/2 + mrand.N(think)
}

// again calls f, pauses for think(), and calls it again, until stop
// is closed or ctx ends.
func again(ctx context.Context, stop <-chan struct{}, think func() time.Duration, f func()) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		f()
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(think()):
		}
	}
}

// resBrowser is a person's browser: it follows redirects within
// localhost (Varde and the sims) and stops at the relying party.
type resBrowser struct {
	r  *resRun
	hc *http.Client
}

func (b *resBrowser) get(ctx context.Context, u string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	res, err := b.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, string(body), err
}

// login runs one login. A person at the either client picks the first
// eID the page offers; when it fails they are back at Varde's page (or
// press back) and pick the next. A person at the bankid-only client picks
// BankID only; while the page shows it unavailable they wait and look
// again, on the same request, until it is back or the run ends.
func (b *resBrowser) login(ctx context.Context, rp *resRP, number string, stop <-chan struct{}) *resLogin {
	l := &resLogin{client: rp.id, person: number, start: time.Now()}
	defer func() { l.end = time.Now() }()
	if rp.id == resEither {
		// Deferred after the end's: the login stops counting as under
		// way before its end is taken.
		defer b.r.inFlight()()
	}
	fail := func(format string, args ...any) *resLogin {
		l.err = fmt.Sprintf(format, args...)
		return l
	}
	// The run's context ends the run; a login in flight is not cut short.
	lctx := context.WithoutCancel(ctx)
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce), oauth2.SetAuthURLParam("prompt", "login")}
	if rp.acr != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", rp.acr))
	}
	res, page, err := b.get(lctx, rp.conf.AuthCodeURL(state, opts...))
	if err != nil {
		return fail("authorize: %v", err)
	}
	if res.Request.URL.Path != "/login" {
		return fail("authorize ended at %s (%d)", res.Request.URL.Path, res.StatusCode)
	}
	reqID := res.Request.URL.Query().Get("req")
	loginURL := b.r.issuer + "/login?" + url.Values{"req": {reqID}}.Encode()
	tried := map[string]bool{}
	var waitStart time.Time
	for {
		offered, unavailable := choices(page)
		pick := ""
		for _, id := range offered {
			if id == "passkey" || tried[id] || (rp.id == resOnlyBank && id != "bankid") {
				continue
			}
			pick = id
			break
		}
		if pick == "" && rp.id != resEither {
			// BankID is not offered (or just failed): wait on the page,
			// as a person told it is unavailable would, and look again.
			// At the needs-high client the page offers MinID instead
			// once it shows BankID down.
			if slices.Contains(unavailable, "bankid") {
				l.sawUnavailable = true
			}
			if waitStart.IsZero() {
				waitStart = time.Now()
			}
			select {
			case <-stop:
				l.unfinished = true
				l.waited = time.Since(waitStart)
				return fail("still waiting for BankID when the run ended")
			case <-time.After(200 * time.Millisecond):
			}
			clear(tried)
			if _, page, err = b.get(lctx, loginURL); err != nil {
				return fail("login page: %v", err)
			}
			continue
		}
		if pick == "" {
			return fail("no eID left to try (offered %v, unavailable %v, failed %v)", offered, unavailable, l.retried)
		}
		if !waitStart.IsZero() {
			// Up to now: waiting for BankID to be offered again.
			l.waited = time.Since(waitStart)
		}
		ok, next, why := b.viaSim(lctx, l, reqID, pick, number)
		if ok != nil {
			return b.finish(lctx, l, rp, ok, state, nonce, verifier)
		}
		tried[pick] = true
		if len(l.retried) < 8 {
			l.retried = append(l.retried, pick+": "+why)
		}
		if next != "" {
			page = next
			continue
		}
		// The browser shows an error (connection refused): the person goes
		// back to Varde's page, which the relying party's request still holds.
		if _, page, err = b.get(lctx, loginURL); err != nil {
			return fail("back to the login page: %v", err)
		}
	}
}

// viaSim picks providerID and logs in at the sim. It returns the response
// that redirects to the relying party, or Varde's page the person is back
// on (or "" if the browser hit an error) and why.
func (b *resBrowser) viaSim(ctx context.Context, l *resLogin, reqID, providerID, number string) (done *http.Response, page, why string) {
	res, body, err := b.get(ctx, b.r.issuer+"/login/start?"+url.Values{"req": {reqID}, "provider": {providerID}}.Encode())
	if err != nil {
		return nil, "", "start: " + shortErr(err)
	}
	if res.Request.URL.Path == "/login" {
		return nil, body, "back at Varde: " + res.Request.URL.Query().Get("err")
	}
	if res.Request.URL.Path != "/sim/login" {
		return nil, "", fmt.Sprintf("start ended at %s (%d)", res.Request.URL.Path, res.StatusCode)
	}
	sim := res.Request.URL
	if d := b.r.o.typing; d > 0 {
		time.Sleep(d)
		l.paused += d
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sim.Scheme+"://"+sim.Host+"/sim/login",
		strings.NewReader(url.Values{"req": {sim.Query().Get("req")}, "number": {number}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = b.hc.Do(req)
	if err != nil {
		return nil, "", "at the eID: " + shortErr(err)
	}
	defer res.Body.Close()
	if loc, err := res.Location(); err == nil && strings.HasPrefix(loc.String(), resCallback) {
		return res, "", ""
	}
	raw, _ := io.ReadAll(res.Body)
	if res.Request.URL.Path == "/login" && res.Request.URL.Host == strings.TrimPrefix(b.r.issuer, "http://") {
		return nil, string(raw), "back at Varde: " + res.Request.URL.Query().Get("err")
	}
	return nil, "", fmt.Sprintf("ended at %s (%d)", res.Request.URL.Path, res.StatusCode)
}

// shortErr is an HTTP error without the URL, which differs every time.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// finish is the relying party's callback: exchange the code and verify
// the ID token.
func (b *resBrowser) finish(ctx context.Context, l *resLogin, rp *resRP, res *http.Response, state, nonce, verifier string) *resLogin {
	loc, _ := res.Location()
	q := loc.Query()
	if q.Get("state") != state || q.Get("iss") != b.r.issuer || q.Get("code") == "" {
		l.err = fmt.Sprintf("callback without the right state, iss or code: error=%s", q.Get("error"))
		return l
	}
	hc := &http.Client{Transport: b.r.tr, Timeout: resHTTPLimit}
	cctx := context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := rp.conf.Exchange(cctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		l.err = "token: " + shortErr(err)
		return l
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(gooidc.ClientContext(ctx, hc), raw)
	if err != nil {
		l.err = "id token: " + err.Error()
		return l
	}
	if idt.Nonce != nonce {
		l.err = "id token: wrong nonce"
		return l
	}
	var claims struct {
		Provider   string `json:"provider"`
		ACR        string `json:"acr"`
		Degraded   bool   `json:"degraded"`
		NationalID struct {
			Value string `json:"value"`
		} `json:"national_id"`
	}
	if err := idt.Claims(&claims); err != nil {
		l.err = "id token claims: " + err.Error()
		return l
	}
	if claims.NationalID.Value != l.person {
		l.err = fmt.Sprintf("id token names %q, not the person who logged in", claims.NationalID.Value)
		return l
	}
	l.ok, l.sub, l.provider, l.degraded = true, idt.Subject, claims.Provider, claims.Degraded
	if lv, err := assurance.Parse(claims.ACR); err == nil {
		l.acr = lv.String()
	} else {
		l.acr = claims.ACR
	}
	return l
}

// phaseOf is the phase a login started in.
func (r *resRun) phaseOf(t time.Time) int {
	p := 0
	for i, name := range []string{"kill", "slow", "restart"} {
		if m, ok := r.marks[name]; ok && !t.Before(m) {
			p = i + 1
		}
	}
	return p
}

// summarise computes the report and checks the assertions.
func (r *resRun) summarise(completed bool) *resReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.o
	rep := &resReport{Command: o.command, Machine: machine(), Logins: len(r.logins), SubsStable: true}
	rep.Config.ProbeInterval, rep.Config.FailuresToDown, rep.Config.SlowDelay = o.probeInterval.String(), o.failuresToDown, o.slowDelay.String()
	rep.Config.ProbeTimeout = o.probeTimeout.String()
	rep.Config.Users, rep.Config.OnlyUsers, rep.Config.HighUsers = o.users, o.onlyUsers, o.highUsers
	high := r.newHighCheck()
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if !completed {
		problem("the run did not complete its phases")
	}
	since := func(from, to string) float64 {
		a, ok1 := r.marks[from]
		b, ok2 := r.marks[to]
		if !ok1 || !ok2 {
			return -1
		}
		return b.Sub(a).Seconds()
	}
	rep.DetectPageS, rep.DetectMetricS = since("kill", "page-down"), since("kill", "metric-down")
	rep.RecoverPageS, rep.RecoverUpS = since("restart", "page-up"), since("restart", "metric-up")
	for s := range r.minStates {
		rep.MinIDStates = append(rep.MinIDStates, s)
	}
	sort.Strings(rep.MinIDStates)

	sort.Slice(r.logins, func(i, j int) bool { return r.logins[i].start.Before(r.logins[j].start) })
	kill, killed := r.marks["kill"]
	detected, isDetected := r.marks["page-down"]
	restart, restarted := r.marks["restart"]
	pageUp, isUp := r.marks["page-up"]
	subs := map[string]map[string]bool{} // client/person → subs
	type key struct {
		phase  int
		client string
	}
	durs := map[key][]time.Duration{}
	var failover []time.Duration
	phases := map[key]*resPhase{}
	for _, l := range r.logins {
		k := key{r.phaseOf(l.start), l.client}
		ph := phases[k]
		if ph == nil {
			ph = &resPhase{Phase: resPhaseNames[k.phase], Client: l.client}
			phases[k] = ph
		}
		ph.Logins++
		if len(l.retried) > 0 {
			ph.Retried++
			if l.ok && l.client == resEither {
				failover = append(failover, l.end.Sub(l.start)-l.paused)
				if rep.RetryReasons == nil {
					rep.RetryReasons = map[string]int{}
				}
				for _, why := range l.retried {
					rep.RetryReasons[why]++
				}
			}
		}
		switch {
		case l.ok:
			ph.OK++
			durs[k] = append(durs[k], l.end.Sub(l.start)-l.paused-l.waited)
			switch l.provider {
			case "bankid":
				ph.ViaBankID++
			case "minid":
				ph.ViaMinID++
			}
			if l.degraded {
				ph.Degraded++
			}
			sk := l.client + "/" + l.person
			if subs[sk] == nil {
				subs[sk] = map[string]bool{}
			}
			subs[sk][l.sub] = true
		case l.unfinished:
			ph.Unfinish++
		default:
			ph.Failed++
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s +%.2fs %s: %s (tried: %s)", l.client,
				l.start.Sub(r.marks["start"]).Seconds(), resPhaseNames[k.phase], l.err, strings.Join(l.retried, "; ")))
		}
		if l.client == resEither && killed && l.start.Before(kill) && l.end.After(kill) {
			rep.InFlightAtKill++
			if l.ok {
				rep.FinishedInFlight++
			}
			if l.ok && len(l.retried) > 0 {
				rep.RecoveredInFlight++
			}
		}
		// Assertions, by client.
		if l.client == resEither {
			switch {
			case l.ok:
			case killed && !l.start.Before(kill):
				problem("either client: a login started %.2fs after the kill failed: %s", l.start.Sub(kill).Seconds(), l.err)
			case killed && l.end.After(kill):
				problem("either client: a login in flight at the kill did not recover: %s", l.err)
			default:
				problem("either client: a login failed before the kill: %s", l.err)
			}
			if l.ok && isDetected && restarted && !l.start.Before(detected) && l.end.Before(restart) && l.provider != "minid" {
				problem("either client: a login during the outage went through %q", l.provider)
			}
			continue
		}
		if l.client == resNeedsHigh {
			high.add(l, problem)
			continue
		}
		if l.ok && l.provider != "bankid" {
			problem("bankid-only client: a login went through %q", l.provider)
		}
		if !l.ok && !l.unfinished {
			problem("bankid-only client: a login failed: %s", l.err)
		}
		if l.unfinished && isUp && l.end.Sub(pageUp) > 3*time.Second {
			problem("bankid-only client: a person still waited %.1fs after BankID was offered again", l.end.Sub(pageUp).Seconds())
		}
		if l.ok && l.sawUnavailable {
			rep.OnlyWaited++
			rep.OnlyWaitMaxS = max(rep.OnlyWaitMaxS, l.waited.Seconds())
		}
	}
	if len(failover) > 0 {
		l := latencyOf(failover)
		rep.FailoverLogins = len(failover)
		rep.FailoverP50MS, rep.FailoverP99MS, rep.FailoverMaxMS = l.P50MS, l.P99MS, l.MaxMS
	}
	for k, sset := range subs {
		if len(sset) != 1 {
			rep.SubsStable = false
			problem("%s got %d different subs", k, len(sset))
		}
	}
	for i := range resPhaseNames {
		for _, c := range []string{resEither, resOnlyBank, resNeedsHigh} {
			k := key{i, c}
			ph := phases[k]
			if ph == nil {
				continue
			}
			if n := ph.OK + ph.Failed; n > 0 {
				ph.Success = float64(ph.OK) / float64(n)
			}
			ph.latency = latencyOf(durs[k])
			rep.Phases = append(rep.Phases, *ph)
		}
	}
	if completed {
		if rep.DetectPageS < 0 {
			problem("the login page never showed Demo BankID unavailable after the kill")
		}
		if rep.RecoverPageS < 0 {
			problem("the login page did not offer Demo BankID again after the restart")
		}
		if o.onlyUsers > 0 && rep.OnlyWaited == 0 {
			problem("bankid-only client: no person met BankID unavailable and then finished the same login after the restart")
		}
		if !slices.ContainsFunc(r.logins, func(l *resLogin) bool {
			return l.client == resEither && l.ok && l.provider == "bankid" && restarted && l.start.After(restart)
		}) {
			problem("either client: no login went through Demo BankID after its restart")
		}
		if o.highUsers > 0 {
			high.check(problem)
		}
	}
	rep.NeedsHigh = high.figures
	r.loadKill(rep, completed, problem)
	return rep
}

// loadKill fills in the figures of the load: and kill: lines, and
// checks that the run had the load it needed.
func (r *resRun) loadKill(rep *resReport, completed bool, problem func(string, ...any)) {
	var phases []runPhaseLogins
	for _, name := range resPhaseNames {
		p := runPhaseLogins{Phase: name}
		for _, ph := range rep.Phases {
			if ph.Phase == name {
				p.Started, p.Completed, p.Failed = p.Started+ph.Logins, p.Completed+ph.OK, p.Failed+ph.Failed
			}
		}
		if p.Started > 0 {
			phases = append(phases, p)
		}
	}
	rep.Load = newLoadFigures(r.o.users+r.o.onlyUsers+r.o.highUsers, r.o.think, phases, runLoad{})
	k := noKill("SIGKILL Demo BankID")
	if kill, ok := r.marks["kill"]; ok {
		k.AtS = kill.Sub(r.marks["start"]).Seconds()
	}
	k.DetectS, k.DetectedBy = rep.DetectPageS, "the login page showed it unavailable"
	k.RecoverS, k.RecoverFrom, k.RecoveredBy = rep.RecoverPageS, "restart", "the login page offered it again"
	k.InFlight, k.InFlightFailed = rep.InFlightAtKill, rep.InFlightAtKill-rep.FinishedInFlight
	k.Failover, k.FailoverLogins, k.FailoverP99MS = "logins BankID failed that finished through MinID", rep.FailoverLogins, rep.FailoverP99MS
	rep.Kill = k
	checkLoad(k, completed, problem)
}

// report prints the report.
func (r *resRun) report(rep *resReport, w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tclient\tlogins\tok\tfailed\twaiting\tsuccess\tvia bankid\tvia minid\tdegraded\tretried\tp50 ms\tp99 ms\tmax ms\t")
	for _, p := range rep.Phases {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.2f%%\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", p.Phase, p.Client, p.Logins, p.OK, p.Failed,
			p.Unfinish, 100*p.Success, p.ViaBankID, p.ViaMinID, p.Degraded, p.Retried, p.P50MS, p.P99MS, p.MaxMS)
	}
	tw.Flush()
	fmt.Fprintf(w, `
detection:  Demo BankID shown unavailable on the login page %s after the SIGKILL; /metrics "down" after %s
recovery:   Demo BankID offered again %s after the restart; /metrics "up" after %s
MinID slow: its states on /metrics while slow: %s
in flight at the kill (either client): %d, of which %d finished, %d of them through the other eID after a failure%s
failover:   %d logins finished through MinID after BankID failed them: p50 %.0f ms, p99 %.0f ms, max %.0f ms (without the person's pauses)
bankid-only client: %d logins met BankID unavailable, waited on Varde's page and finished on the same request (longest wait %.1fs)
subs:       %s
`, secsOrNever(rep.DetectPageS), secsOrNever(rep.DetectMetricS), secsOrNever(rep.RecoverPageS), secsOrNever(rep.RecoverUpS),
		strings.Join(rep.MinIDStates, ", "), rep.InFlightAtKill, rep.FinishedInFlight, rep.RecoveredInFlight,
		map[bool]string{true: " (the others had left BankID already, or were at MinID)", false: ""}[rep.FinishedInFlight > rep.RecoveredInFlight],
		rep.FailoverLogins, rep.FailoverP50MS, rep.FailoverP99MS, rep.FailoverMaxMS, rep.OnlyWaited, rep.OnlyWaitMaxS,
		map[bool]string{true: "every person kept one sub per client before, during and after the faults", false: "CHANGED"}[rep.SubsStable])
	if len(rep.RetryReasons) > 0 {
		fmt.Fprintln(w, "mid-flow retries (either client), what the first eID did:")
		reasons := slices.Sorted(maps.Keys(rep.RetryReasons))
		for _, why := range reasons {
			fmt.Fprintf(w, "  %4d × %s\n", rep.RetryReasons[why], why)
		}
	}
	if r.o.highUsers > 0 {
		fmt.Fprintln(w, rep.NeedsHigh)
	}
	printLoadKill(w, rep.Load, rep.Kill)
	printList(w, "failed logins", rep.Failures)
	printVerdict(w, rep.Problems)
}

// secsOrNever is s seconds, or "never" if s is negative.
func secsOrNever(s float64) string {
	if s < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", s)
}

// printList prints lines, the first 20 of them, under a title.
func printList(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s (%d):\n", title, len(lines))
	for i, l := range lines {
		if i == 20 {
			fmt.Fprintf(w, "  … and %d more\n", len(lines)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// printVerdict prints pass, or FAIL and the problems.
func printVerdict(w io.Writer, problems []string) {
	if len(problems) == 0 {
		fmt.Fprintln(w, "verdict:    pass")
		return
	}
	fmt.Fprintln(w, "verdict:    FAIL")
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
