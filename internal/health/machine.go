package health

import "time"

// probeKind is how one probe went.
type probeKind uint8

const (
	probeOK probeKind = iota
	probeSlow
	probeFailed
)

// mark is one probe in the probe window.
type mark struct {
	kind probeKind
	at   time.Time
}

// Outcome indexes in a login slot.
const (
	nSuccess = iota
	nError
	// nRefused counts the accounts refused (machine.refuse), each once.
	nRefused
	nOutcomes
)

func outcomeIndex(o Outcome) int {
	switch o {
	case Success:
		return nSuccess
	case Error:
		return nError
	}
	return -1
}

// slot counts the logins of one slice of the login window.
type slot struct {
	// idx is the slice's number: its start in unix nanoseconds divided
	// by the slot width.
	idx int64
	n   [nOutcomes]int
}

// verdict is what one kind of evidence says about a component.
type verdict struct {
	state  State
	reason string
	// since is when the evidence began.
	since time.Time
	// line is where since falls on the login window's time line (see
	// loginNano), for the login verdict: how long it has held is
	// measured there, not by the wall clock, which may be set back or
	// forward meanwhile.
	line int64
}

// side names the evidence a verdict came from.
type side uint8

const (
	fromProbes side = iota
	fromLogins
)

// machine is one component's state with hysteresis. Probes and logins
// each give a verdict; the component's state is the worse of the two,
// where a verdict of Unknown (no evidence) defers to the other. It does
// no I/O and reads no clock: every input carries its time.
type machine struct {
	cfg *Config
	// cur is the combined state; cur.since is when it was entered.
	cur verdict

	probes verdict
	// Probe streaks: failed, successful (slow or not) and quick
	// successful probes in a row, and when each run started.
	fails, succ, fast               int
	failStart, succStart, fastStart time.Time
	// window holds the last ProbeWindow probes, a ring from wpos.
	window []mark
	wpos   int

	logins verdict
	slots  [loginSlots]slot
	width  int64 // slot width in nanoseconds
	// base is the time of the first login input, and elapsed the
	// furthest any input has been from it (see loginNano).
	base    time.Time
	elapsed time.Duration
	// apart measures how long after from to is: to.Sub(from), by the
	// monotonic clock when both are time.Now's readings. Tests set a
	// clock whose wall reading they can step.
	apart func(from, to time.Time) time.Duration
	// refused holds, for each account refused in the login window, the
	// number of the slot its refusal was counted in (see refuse).
	refused map[string]int64
}

// maxRefusedAccounts bounds the accounts a machine remembers: beyond it,
// refusals count without being remembered. So many accounts refused in
// one window is evidence on its own, and only an upstream's own signed
// word names an account, so the bound is not reached by one person.
const maxRefusedAccounts = 10000

func newMachine(cfg *Config) *machine {
	return &machine{
		cfg:     cfg,
		cur:     verdict{state: Unknown},
		probes:  verdict{state: Unknown},
		logins:  verdict{state: Unknown},
		window:  make([]mark, 0, cfg.ProbeWindow),
		width:   int64(cfg.LoginWindow / loginSlots),
		refused: map[string]int64{},
		apart:   func(from, to time.Time) time.Duration { return to.Sub(from) },
	}
}

// probe takes one probe result that started at at and was taken at
// end: a change it makes happens at end, so changes stay in the order
// they were made even when a login changed the state while the probe
// ran.
func (m *machine) probe(at, end time.Time, k probeKind) (Transition, bool) {
	switch k {
	case probeFailed:
		if m.fails == 0 {
			m.failStart = at
		}
		m.fails++
		m.succ, m.fast = 0, 0
	case probeSlow:
		if m.succ == 0 {
			m.succStart = at
		}
		m.succ++
		m.fails, m.fast = 0, 0
	case probeOK:
		if m.succ == 0 {
			m.succStart = at
		}
		if m.fast == 0 {
			m.fastStart = at
		}
		m.succ++
		m.fast++
		m.fails = 0
	}
	if len(m.window) < cap(m.window) {
		m.window = append(m.window, mark{k, at})
	} else {
		m.window[m.wpos] = mark{k, at}
		m.wpos = (m.wpos + 1) % len(m.window)
	}
	m.probes = m.judgeProbes()
	return m.combine(end, fromProbes)
}

// seed takes, at at, the state s other nodes' probes found the
// component in, as the probe verdict, before this machine has any
// probe of its own, with as many failed probes (at since, when the
// evidence was seen) in the window as the least that puts a component
// in s: the probe rules then lead it out of s as they lead the other
// nodes (Down until SuccessesToRecover probes succeed in a row, then
// Degraded while those failures are in the window, and so on).
func (m *machine) seed(at, since time.Time, s State) (Transition, bool) {
	n := 0
	switch s {
	case Down:
		n = m.cfg.FailuresToDown
	case Degraded:
		n = m.cfg.DegradedProbes
	}
	for range min(n, cap(m.window)) {
		m.window = append(m.window, mark{probeFailed, since})
	}
	m.probes = verdict{state: s, reason: ReasonSeeded, since: since}
	return m.combine(at, fromProbes)
}

// seedLogins takes, at at, the state s other nodes' logins (not their
// probes) put the component in, last seen at since, as the login
// verdict, with one failed login at since: it holds as the login rules
// hold it on those nodes while that failure is in the login window
// (Down, then Degraded with reason login_retry for a window more), and
// then lapses; this machine's own logins and probes weigh as usual. A
// machine whose own logins already give a verdict keeps it.
func (m *machine) seedLogins(at, since time.Time, s State) (Transition, bool) {
	if m.logins.state != Unknown {
		return Transition{}, false // this machine's own logins already judge it
	}
	m.count(m.loginNano(since)/m.width, nError)
	m.logins = verdict{s, ReasonSeeded, since, m.loginNano(since)}
	return m.combine(at, fromLogins)
}

// judgeProbes applies the probe rules to the streaks and the window.
func (m *machine) judgeProbes() verdict {
	c, p := m.cfg, m.probes
	switch {
	case m.fails >= c.FailuresToDown:
		if p.state == Down {
			return p
		}
		return verdict{state: Down, reason: ReasonProbeFailures, since: m.failStart}
	case p.state == Down && m.succ < c.SuccessesToRecover:
		return p // hysteresis: down until enough successes in a row
	case p.state == Unknown && m.succ == 0:
		return p // only a few failures: no verdict yet
	}

	var bad, failed int
	var oldestBad time.Time
	for i := range m.window {
		mk := m.window[(m.wpos+i)%len(m.window)] // oldest first
		if mk.kind == probeOK {
			continue
		}
		if bad == 0 {
			oldestBad = mk.at
		}
		bad++
		if mk.kind == probeFailed {
			failed++
		}
	}
	degraded := bad >= c.DegradedProbes
	if p.state == Degraded || p.state == Down {
		// Hysteresis: back to Up only well inside the good band.
		degraded = degraded || bad > c.RecoveredProbes || m.fast < c.SuccessesToRecover
	}
	switch {
	case degraded && p.state == Degraded:
		return p
	case degraded && p.state == Down:
		return verdict{state: Degraded, reason: ReasonProbesOK, since: m.succStart}
	case degraded && failed > 0:
		return verdict{state: Degraded, reason: ReasonPartialFailures, since: oldestBad}
	case degraded:
		return verdict{state: Degraded, reason: ReasonSlow, since: oldestBad}
	case p.state == Up:
		return p
	case p.state == Degraded:
		return verdict{state: Up, reason: ReasonProbesOK, since: m.fastStart}
	}
	return verdict{state: Up, reason: ReasonProbesOK, since: m.succStart}
}

// observe takes one real login's outcome at at.
func (m *machine) observe(at time.Time, o Outcome) (Transition, bool) {
	i := outcomeIndex(o)
	if i < 0 {
		return Transition{}, false
	}
	m.count(m.loginNano(at)/m.width, i)
	return m.refresh(at)
}

// loginNano is where at falls on the login window's time line, in unix
// nanoseconds: base's, plus how far at is from base by the monotonic
// clock (time.Now's readings carry it), never less than an earlier
// input's. So a step of the wall clock (NTP setting it back or forward)
// neither drops failed logins from the window early nor keeps them
// longer, and a clock without monotonic readings that goes back holds
// the window still until it catches up.
func (m *machine) loginNano(at time.Time) int64 {
	if m.base.IsZero() {
		m.base = at
	}
	m.elapsed = max(m.elapsed, m.apart(m.base, at))
	return m.base.UnixNano() + int64(m.elapsed)
}

// count adds one outcome of index i to slot idx.
func (m *machine) count(idx int64, i int) {
	s := &m.slots[mod(idx, loginSlots)]
	if s.idx != idx {
		*s = slot{idx: idx}
	}
	s.n[i]++
}

// refuse takes one real login at at that the component answered for,
// naming the account, and that was refused on what it said about that
// account (Monitor.ObserveRefusal). It counts as a failed login the first
// time the account is refused in the login window and not again while
// that refusal is in it: one account may be refused on every try, and a
// person retrying, or anyone holding such an account, must not weigh
// more than one login. An account of "" cannot be told apart from any
// other, and counts every time.
func (m *machine) refuse(at time.Time, account string) (Transition, bool) {
	idx := m.loginNano(at) / m.width
	if last, ok := m.refused[account]; ok && idx-last < loginSlots {
		return m.refresh(at)
	}
	if account != "" {
		if len(m.refused) >= maxRefusedAccounts {
			for a, last := range m.refused {
				if idx-last >= loginSlots {
					delete(m.refused, a)
				}
			}
		}
		if len(m.refused) < maxRefusedAccounts {
			m.refused[account] = idx
		}
	}
	m.count(idx, nRefused)
	return m.refresh(at)
}

// refresh re-reads the login window at at, which may have slid past old
// logins since the last one.
func (m *machine) refresh(at time.Time) (Transition, bool) {
	m.logins = m.judgeLogins(at)
	return m.combine(at, fromLogins)
}

// judgeLogins applies the login rules to the window ending at at.
func (m *machine) judgeLogins(at time.Time) verdict {
	c, l := m.cfg, m.logins
	line := m.loginNano(at)
	now := line / m.width
	var (
		total, failed, refused float64
		oldest                 int64 = -1
	)
	for _, s := range m.slots {
		if s.idx <= now-loginSlots || s.idx > now {
			continue
		}
		n := s.n[nSuccess] + s.n[nError] + s.n[nRefused]
		f := float64(s.n[nError] + s.n[nRefused])
		total += float64(n)
		failed += f
		refused += float64(s.n[nRefused])
		if f > 0 && (oldest < 0 || s.idx < oldest) {
			oldest = s.idx
		}
	}
	if total < float64(c.MinLogins) {
		// Too few logins to judge. The broker sends none to a Down
		// component, so its window empties whatever the component does:
		// that is no evidence it works. Down holds while its failed
		// logins are in the window, then lapses to Degraded, where it is
		// offered again; Degraded lapses only after a whole window in
		// which no login failed, measured on the window's time line, so
		// a wall clock set back does not hold it longer.
		switch {
		case l.state == Down && failed > 0:
			return l
		case l.state == Down:
			return verdict{Degraded, ReasonLoginRetry, at, line}
		case l.state == Degraded && (failed > 0 || line-l.line < int64(c.LoginWindow)):
			return l
		case l.state == Unknown:
			return l
		}
		return verdict{Unknown, ReasonLoginsOK, at, line} // the evidence expired
	}
	var since time.Time
	sinceLine := line
	if oldest >= 0 {
		sinceLine = oldest * m.width
		since = time.Unix(0, sinceLine).In(at.Location())
	}
	// Mostly accounts refused: the upstream answers, and what it says
	// of many people is refused, which points at its configuration.
	why := ReasonLoginFailures
	if 2*refused > failed {
		why = ReasonLoginRefusals
	}
	r := failed / total
	switch {
	case r >= c.LoginDownRatio:
		if l.state == Down {
			return l
		}
		return verdict{Down, why, since, sinceLine}
	case l.state == Down && r >= c.LoginDegradedRatio:
		return l
	case r >= c.LoginDegradedRatio || (l.state.severity() >= Degraded.severity() && r >= c.LoginRecoveredRatio):
		if l.state == Degraded {
			return l
		}
		return verdict{Degraded, why, since, sinceLine}
	case l.state == Up:
		return l
	}
	return verdict{Up, ReasonLoginsOK, at, line}
}

// combine recomputes the component's state after the evidence of side
// changed, and reports the transition if the state changed.
func (m *machine) combine(at time.Time, changed side) (Transition, bool) {
	v, from := m.probes, fromProbes
	switch {
	case m.logins.state == Unknown:
	case m.probes.state == Unknown || m.logins.state.severity() > m.probes.state.severity():
		v, from = m.logins, fromLogins
	}
	if v.state == m.cur.state {
		return Transition{}, false
	}
	if from != changed {
		// The other evidence cleared and this side's verdict shows
		// through: the change is the clearing, now.
		cv := m.probes
		if changed == fromLogins {
			cv = m.logins
		}
		v.reason, v.since = cv.reason, at
	}
	if v.since.IsZero() || v.since.After(at) {
		v.since = at
	}
	t := Transition{From: m.cur.state, To: v.state, Reason: v.reason, At: at, Since: v.since}
	m.cur = verdict{state: v.state, reason: v.reason, since: at}
	return t, true
}

// mod is the non-negative remainder of a / n.
func mod(a int64, n int64) int64 {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}
