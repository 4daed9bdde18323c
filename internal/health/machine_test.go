package health

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 29, 1, 59, 50, 0, time.UTC)

// stateLetter is how the table tests spell states: '?' unknown, 'u' up,
// 'd' degraded, 'D' down.
func stateLetter(s State) byte {
	return map[State]byte{Unknown: '?', Up: 'u', Degraded: 'd', Down: 'D'}[s]
}

// runProbes feeds m one probe per letter of in ('o' quick success, 's'
// slow success, 'f' failure), 5 s apart from at, and returns the state
// after each as letters, and the transitions.
func runProbes(m *machine, at time.Time, in string) (string, []Transition) {
	kinds := map[rune]probeKind{'o': probeOK, 's': probeSlow, 'f': probeFailed}
	var (
		out strings.Builder
		ts  []Transition
	)
	for i, r := range in {
		if t, ok := m.probe(at.Add(time.Duration(i)*5*time.Second), at.Add(time.Duration(i)*5*time.Second), kinds[r]); ok {
			ts = append(ts, t)
		}
		out.WriteByte(stateLetter(m.cur.state))
	}
	return out.String(), ts
}

func TestProbeRules(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		in   string
		want string
	}{
		{"quick successes are up", Config{}, "ooo", "uuu"},
		{"unknown until the first success", Config{}, "ffo", "??u"},
		{"unknown to down after N failures", Config{}, "fff", "??D"},
		{"N failures in a row are down", Config{}, "offf", "uuuD"},
		{"single blips do not degrade", Config{}, "ofooooofoooooof", "uuuuuuuuuuuuuuu"},
		{"flapping input degrades, no flap", Config{}, "ofofofofofofofofofof", "uuuuuddddddddddddddd"},
		// A failure every 4th probe keeps 2 or 3 of the last 10 failed: on
		// the edge of the degraded rule, held by the band below it.
		{"failures on the edge: no flap", Config{}, "oooofooofooofooofooofooofooof", "uuuuuuuuuuuuddddddddddddddddd"},
		{"two failures in a row, often: degraded, never down", Config{}, "offoffoffoffoff", "uuuuddddddddddd"},
		{"down holds while successes are not in a row", Config{}, "offfofofoffoof", "uuuDDDDDDDDDDD"},
		{"M successes leave down for degraded", Config{}, "offfooo", "uuuDDDd"},
		{"up once the failures left the window", Config{}, "offfooooooooo", "uuuDDDddddddu"},
		{"slow probes degrade", Config{}, "ssss", "uudd"},
		{"up again after quick probes", Config{}, "oosssoooooooooo", "uuuudddddddddu" + "u"},
		{"failure while degraded to down", Config{}, "ofofoffff", "uuuuuddDD"},
		{"one failure to down", Config{FailuresToDown: 1, SuccessesToRecover: 2, ProbeWindow: 4, DegradedProbes: 2, RecoveredProbes: -1}, "ofoo", "uDDd"},
		{"quick recovery with a short window", Config{FailuresToDown: 1, SuccessesToRecover: 1, ProbeWindow: 2, DegradedProbes: 2, RecoveredProbes: -1}, "ofoo", "uDdu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg.WithDefaults()
			got, _ := runProbes(newMachine(&cfg), t0, tt.in)
			if got != tt.want {
				t.Errorf("probes %s: states %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestProbeTransitions checks reasons and since times: a transition's
// Since is when its evidence began.
func TestProbeTransitions(t *testing.T) {
	cfg := DefaultConfig()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Second) }
	tests := []struct {
		name string
		in   string
		want []Transition
	}{
		{"outage and recovery", "offfooooooooo", []Transition{
			{From: Unknown, To: Up, Reason: ReasonProbesOK, At: at(0), Since: at(0)},
			{From: Up, To: Down, Reason: ReasonProbeFailures, At: at(3), Since: at(1)},
			{From: Down, To: Degraded, Reason: ReasonProbesOK, At: at(6), Since: at(4)},
			{From: Degraded, To: Up, Reason: ReasonProbesOK, At: at(12), Since: at(4)},
		}},
		{"partial failures", "oofoofoof", []Transition{
			{From: Unknown, To: Up, Reason: ReasonProbesOK, At: at(0), Since: at(0)},
			{From: Up, To: Degraded, Reason: ReasonPartialFailures, At: at(8), Since: at(2)},
		}},
		{"slow", "osssoooooooooo", []Transition{
			{From: Unknown, To: Up, Reason: ReasonProbesOK, At: at(0), Since: at(0)},
			{From: Up, To: Degraded, Reason: ReasonSlow, At: at(3), Since: at(1)},
			{From: Degraded, To: Up, Reason: ReasonProbesOK, At: at(12), Since: at(4)},
		}},
		{"down from the start", "ffff", []Transition{
			{From: Unknown, To: Down, Reason: ReasonProbeFailures, At: at(2), Since: at(0)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := runProbes(newMachine(&cfg), t0, tt.in)
			sameTransitions(t, got, tt.want)
		})
	}
}

func sameTransitions(t *testing.T, got, want []Transition) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("transitions:\n got %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("transition %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// loginStep is one step of a login table test: wait, then the logins
// (one per letter: 's' success, 'e' error)
// and probes (as in runProbes, 5 s apart), then the state.
type loginStep struct {
	wait   time.Duration
	logins string
	probes string
	want   State
}

// loginInputs are how the login table tests spell logins: an outcome
// ('s' success, 'e' error, 'x' an unknown
// outcome), or a refused account ('r' always the same one, 'R' another
// each time: n counts the logins fed so far).
var loginInputs = map[rune]func(m *machine, at time.Time, n int){
	's': func(m *machine, at time.Time, _ int) { m.observe(at, Success) },
	'e': func(m *machine, at time.Time, _ int) { m.observe(at, Error) },
	'x': func(m *machine, at time.Time, _ int) { m.observe(at, Outcome("bogus")) },
	'r': func(m *machine, at time.Time, _ int) { m.refuse(at, "one") },
	'R': func(m *machine, at time.Time, n int) { m.refuse(at, fmt.Sprint("account-", n)) },
}

func TestLoginRules(t *testing.T) {
	tests := []struct {
		name  string
		steps []loginStep
	}{
		{"too few logins are no evidence", []loginStep{{logins: "eeeeeeeee", want: Unknown}}},
		{"enough good logins are up", []loginStep{{logins: "ssssssssss", want: Up}}},
		{"unknown outcomes are ignored", []loginStep{{logins: "sssssxxxxxxxx", want: Unknown}}},
		{"error ratio degrades", []loginStep{{logins: "sssssssee", want: Unknown}, {logins: "e", want: Degraded}}},
		{"high error ratio is down", []loginStep{{logins: "sssseeeeee", want: Down}}},
		{"degraded holds until well below the ratio", []loginStep{
			{logins: "ssssssseee", want: Degraded},
			{logins: "sss", want: Degraded},                   // 3/13
			{logins: strings.Repeat("s", 17), want: Degraded}, // 3/30
			{logins: "s", want: Up},                           // 3/31
		}},
		{"down holds until below the degraded ratio", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{logins: "ssssssss", want: Down},            // 6/18
			{logins: "ssssss", want: Down},              // 6/24
			{logins: "s", want: Degraded},               // 6/25
			{logins: strings.Repeat("s", 36), want: Up}, // 6/61
		}},
		{"down lapses to degraded when its failures leave the window", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{wait: time.Minute, want: Down},
			{wait: 70 * time.Second, want: Degraded},
			{wait: 110 * time.Second, want: Degraded},
			{wait: 10 * time.Second, want: Unknown}, // a whole window without a failed login
		}},
		{"failed logins after the lapse are down again", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{wait: 130 * time.Second, want: Degraded},
			{logins: "eeeeeeeee", want: Degraded}, // too few to judge
			{logins: "e", want: Down},
		}},
		{"good logins after the lapse are up", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{wait: 130 * time.Second, want: Degraded},
			{logins: "ssssssssss", want: Up},
		}},
		{"a failed login holds the lapsed state degraded", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{wait: 130 * time.Second, logins: "e", want: Degraded},
			{wait: 110 * time.Second, want: Degraded},
			{wait: 20 * time.Second, logins: "s", want: Unknown},
		}},
		{"a wall clock set back keeps failed logins in the window", []loginStep{
			{logins: "sssseeeeee", want: Down},
			{wait: -time.Hour, want: Down},
			{wait: time.Minute, logins: "ss", want: Down},
		}},
		{"logins after a wall clock set back count with the earlier ones", []loginStep{
			{logins: "sssssss", want: Unknown},
			{wait: -time.Hour, logins: "eee", want: Degraded},
		}},
		{"the window slides", []loginStep{
			{logins: "eeeeee", want: Unknown},
			{wait: 90 * time.Second, logins: "ssss", want: Down},
			{wait: 40 * time.Second, logins: "ssssss", want: Up}, // the errors left the window
		}},
		{"logins are worse than probes", []loginStep{
			{probes: "ooo", want: Up},
			{logins: "sssseeeeee", want: Down},
		}},
		{"probes are worse than logins", []loginStep{
			{logins: "ssssssssss", probes: "offf", want: Down},
		}},
		{"probes show through when login evidence expires", []loginStep{
			{probes: "oo", logins: "sssseeeeee", want: Down},
			{wait: 3 * time.Minute, want: Degraded},
			{wait: 2 * time.Minute, want: Up},
		}},
		{"one account refused again and again counts once", []loginStep{
			{probes: "ooo", logins: "sssssssss", want: Up},
			{logins: strings.Repeat("r", 50), want: Up}, // 1/10
			{logins: "ssssssssss" + strings.Repeat("r", 50), want: Up},
		}},
		{"many accounts refused are down", []loginStep{
			{probes: "ooo", logins: "ssssRRRRRR", want: Down},
		}},
		{"many accounts refused degrade", []loginStep{
			{logins: "sssssssRRR", want: Degraded},
		}},
		{"a refused account counts again once its refusal left the window", []loginStep{
			{logins: "r", want: Unknown},
			{wait: 130 * time.Second, logins: "sssssssss", want: Unknown},
			{logins: "r", want: Up}, // 1/10
		}},
		{"a refused account counts once among errors", []loginStep{
			{logins: "ssssss" + "eee" + strings.Repeat("r", 20), want: Degraded}, // 4/10, not 23/29
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			m := newMachine(&cfg)
			at, fed := t0, 0
			for i, st := range tt.steps {
				at = at.Add(st.wait)
				m.refresh(at)
				for _, r := range st.logins {
					fed++
					loginInputs[r](m, at, fed)
				}
				runProbes(m, at, st.probes)
				if m.cur.state != st.want {
					t.Fatalf("after step %d: %s, want %s", i, m.cur.state, st.want)
				}
			}
		})
	}
}

func TestLoginTransitions(t *testing.T) {
	cfg := DefaultConfig()
	m := newMachine(&cfg)
	var got []Transition
	note := func(t Transition, ok bool) {
		if ok {
			got = append(got, t)
		}
	}
	note(m.probe(t0, t0, probeOK))
	// The failures start in the slot of t0+10s (slots are 10 s wide).
	at := t0.Add(10 * time.Second)
	for range 4 {
		note(m.observe(at, Success))
	}
	later := at.Add(25 * time.Second)
	for range 6 {
		note(m.observe(later, Error))
	}
	expired := later.Add(3 * time.Minute)
	note(m.refresh(expired))
	quiet := expired.Add(2 * time.Minute)
	note(m.refresh(quiet))
	sameTransitions(t, got, []Transition{
		{From: Unknown, To: Up, Reason: ReasonProbesOK, At: t0, Since: t0},
		{From: Up, To: Down, Reason: ReasonLoginFailures, At: later, Since: time.Date(2026, 3, 29, 2, 0, 20, 0, time.UTC)},
		{From: Down, To: Degraded, Reason: ReasonLoginRetry, At: expired, Since: expired},
		{From: Degraded, To: Up, Reason: ReasonLoginsOK, At: quiet, Since: quiet},
	})
}

// TestRefusalReason: a component made unhealthy mostly by refused
// accounts says so, since the cure is in its configuration, not at its
// servers; when errors weigh as much, it is failing logins.
func TestRefusalReason(t *testing.T) {
	for _, tc := range []struct {
		name, logins, want string
	}{
		{"refusals", "ssssRRRRRR", ReasonLoginRefusals},
		{"mostly refusals", "sssseRRRRR", ReasonLoginRefusals},
		{"as many errors", "sssseeeRRR", ReasonLoginFailures},
		{"errors", "sssseeeeee", ReasonLoginFailures},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			m := newMachine(&cfg)
			for i, r := range tc.logins {
				loginInputs[r](m, t0, i)
			}
			if m.cur.state != Down || m.cur.reason != tc.want {
				t.Errorf("%s, %s; want down, %s", m.cur.state, m.cur.reason, tc.want)
			}
		})
	}
}

// TestRefusedAccountsBounded: the accounts remembered are bounded; past
// the bound, refusals still count.
func TestRefusedAccountsBounded(t *testing.T) {
	cfg := DefaultConfig()
	m := newMachine(&cfg)
	for i := range maxRefusedAccounts + 50 {
		m.refuse(t0, fmt.Sprint("account-", i))
	}
	if n := len(m.refused); n > maxRefusedAccounts {
		t.Errorf("%d accounts remembered, bound %d", n, maxRefusedAccounts)
	}
	if n := m.slots[mod(t0.UnixNano()/m.width, loginSlots)].n[nRefused]; n != maxRefusedAccounts+50 {
		t.Errorf("%d refusals counted, want %d", n, maxRefusedAccounts+50)
	}
	// Once the window has passed, the old accounts make room.
	later := t0.Add(cfg.LoginWindow + time.Second)
	m.refuse(later, "new")
	if _, ok := m.refused["new"]; !ok || len(m.refused) != 1 {
		t.Errorf("after the window: %d accounts remembered, new one among them: %v", len(m.refused), ok)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if got := (Config{}).WithDefaults(); got != DefaultConfig() {
		t.Errorf("zero config with defaults = %+v, want %+v", got, DefaultConfig())
	}
	short := Config{Interval: time.Second}.WithDefaults()
	if short.ProbeTimeout != time.Second {
		t.Errorf("probe timeout with a 1s interval = %v, want 1s", short.ProbeTimeout)
	}
	if short.SlowProbe != 500*time.Millisecond {
		t.Errorf("slow probe with a 1s probe timeout = %v, want 500ms", short.SlowProbe)
	}
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"timeout over interval", Config{Interval: time.Second, ProbeTimeout: 2 * time.Second}, "probe timeout"},
		{"window below degraded", Config{ProbeWindow: 2}, "degraded probes"},
		{"recovered not below degraded", Config{DegradedProbes: 2, RecoveredProbes: 2}, "recovered probes"},
		{"ratios out of order", Config{LoginDegradedRatio: 0.7}, "login ratios"},
		{"slow probe not under timeout", Config{ProbeTimeout: time.Second, SlowProbe: time.Second}, "slow probe threshold"},
		{"tiny interval", Config{Interval: time.Millisecond, ProbeTimeout: time.Millisecond}, "interval"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %s", err, tt.want)
			}
		})
	}
	// Every problem at once.
	err := Config{Concurrency: -1, MinLogins: -1, MaxPending: -1}.WithDefaults().Validate()
	for _, want := range []string{"concurrency", "min logins", "max pending"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
}

// TestSeedLoginsDefersToOwnLogins: the other nodes' login Down is taken
// only while this machine's own logins give no verdict: logins of its
// own that succeeded are not overruled by theirs.
func TestSeedLoginsDefersToOwnLogins(t *testing.T) {
	cfg := DefaultConfig()
	m := newMachine(&cfg)
	for range cfg.MinLogins {
		m.observe(t0, Success)
	}
	if m.cur.state != Up {
		t.Fatalf("after %d good logins: %s, want up", cfg.MinLogins, m.cur.state)
	}
	if _, changed := m.seedLogins(t0.Add(time.Second), t0, Down); changed || m.cur.state != Up {
		t.Errorf("seeded with the fleet's login Down over logins of its own: %s (changed %v), want up", m.cur.state, changed)
	}
	fresh := newMachine(&cfg)
	if tr, changed := fresh.seedLogins(t0.Add(time.Second), t0, Down); !changed || fresh.cur.state != Down || tr.Reason != ReasonSeeded {
		t.Errorf("seeded with no evidence of its own: %s, %+v; want down, reason %s", fresh.cur.state, tr, ReasonSeeded)
	}
}

// steppedClock is a wall clock that can be set back or forward, with a
// monotonic clock beside it that only runs on, as time.Now's readings
// carry one.
type steppedClock struct {
	wall time.Time
	mono time.Duration
	// monoAt is the monotonic reading of each wall reading handed out.
	monoAt map[time.Time]time.Duration
}

func (c *steppedClock) now() time.Time {
	c.monoAt[c.wall] = c.mono
	return c.wall
}

// run lets d pass on both clocks.
func (c *steppedClock) run(d time.Duration) { c.wall, c.mono = c.wall.Add(d), c.mono+d }

// apart is machine.apart for readings of c: by its monotonic clock.
func (c *steppedClock) apart(from, to time.Time) time.Duration { return c.monoAt[to] - c.monoAt[from] }

// TestLoginVerdictLapsesDespiteWallClockStep: a Degraded verdict from
// logins lapses a login window after its failed logins left it, by the
// monotonic clock, however the wall clock is set meanwhile. Set back by
// an hour, it must not hold Degraded an hour more; set forward, not
// lapse early.
func TestLoginVerdictLapsesDespiteWallClockStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration
	}{
		{"set back an hour", -time.Hour},
		{"set forward an hour", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			m := newMachine(&cfg)
			c := &steppedClock{wall: t0, monoAt: map[time.Time]time.Duration{}}
			m.apart = c.apart
			for _, o := range []Outcome{Success, Success, Success, Success, Success, Success, Success, Error, Error, Error} {
				m.observe(c.now(), o)
			}
			if m.cur.state != Degraded {
				t.Fatalf("after 3 of 10 logins failed: %s", m.cur.state)
			}
			c.run(30 * time.Second)
			c.wall = c.wall.Add(tc.step)
			m.refresh(c.now())
			if m.cur.state != Degraded {
				t.Fatalf("30 s later, the wall clock stepped: %s, want degraded", m.cur.state)
			}
			// The failed logins are in the window for 2 min; once they
			// have left it, a whole window after they began, the
			// verdict lapses.
			c.run(80 * time.Second)
			m.refresh(c.now())
			if m.cur.state != Degraded {
				t.Fatalf("after 1m50s: %s, want degraded", m.cur.state)
			}
			c.run(20 * time.Second)
			m.refresh(c.now())
			if m.cur.state != Unknown {
				t.Fatalf("after 2m10s: %s, want unknown (the evidence expired)", m.cur.state)
			}
		})
	}
}
