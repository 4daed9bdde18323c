package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// needsHighFigures are the needs-high client's logins: it asks for level
// high, which only Demo BankID reaches, and registered substantial as its
// degraded-mode level, so while BankID is down its people log in through
// Demo MinID at substantial with the "degraded" claim.
type needsHighFigures struct {
	// BeforeHigh and AfterHigh: logins started before the kill, and
	// after the restart, that ended at high without the claim.
	BeforeHigh int `json:"before_high"`
	AfterHigh  int `json:"after_high"`
	// Degraded: logins that ended at substantial with the claim.
	Degraded int `json:"degraded"`
	// FirstDegradedS: seconds from the kill until the first of them
	// completed; LastDegradedS: from the restart until the last of them
	// started (negative: before the restart). -1 and 0 if none.
	FirstDegradedS float64 `json:"first_degraded_s"`
	LastDegradedS  float64 `json:"last_degraded_start_s"`
	// SentBack: logins at MinID that ended as BankID came back, refused
	// at substantial, and finished through BankID on the same request.
	SentBack int `json:"sent_back"`
	// BothSameSub: people with logins both degraded and at high, each
	// with one sub for all of them.
	BothSameSub int `json:"people_degraded_and_high_one_sub"`
	// NodeCounted: the node's varde_logins_degraded_total at the end
	// (-1 if it could not be read); the run's only client with a
	// degraded-mode policy is this one, so it must equal Degraded.
	NodeCounted float64 `json:"node_counted"`
}

func (f needsHighFigures) String() string {
	when := "none"
	if f.FirstDegradedS >= 0 {
		last := fmt.Sprintf("%.2fs after", f.LastDegradedS)
		if f.LastDegradedS < 0 {
			last = fmt.Sprintf("%.2fs before", -f.LastDegradedS)
		}
		when = fmt.Sprintf("the first completed %.2fs after the kill, the last started %s the restart", f.FirstDegradedS, last)
	}
	return fmt.Sprintf("needs-high: %d logins before the kill at high, not degraded; %d at substantial with \"degraded\": true (%s; the node counted %.0f in varde_logins_degraded_total); %d after the restart at high, not degraded; %d sent back to the choice as BankID came back; %d people logged in both ways, each with one sub",
		f.BeforeHigh, f.Degraded, when, f.NodeCounted, f.AfterHigh, f.SentBack, f.BothSameSub)
}

// highCheck sums up and checks the needs-high client's logins, in the
// order they started.
type highCheck struct {
	figures needsHighFigures
	kill    time.Time
	killed  bool
	restart time.Time
	// restarted: BankID was restarted.
	restarted bool
	// subs and ways: by person, the subs and the kinds of login seen.
	subs map[string]map[string]bool
	ways map[string]map[bool]bool
}

// newHighCheck starts the check; r.mu is held.
func (r *resRun) newHighCheck() *highCheck {
	h := &highCheck{subs: map[string]map[string]bool{}, ways: map[string]map[bool]bool{}}
	h.figures.FirstDegradedS = -1
	h.figures.NodeCounted = r.degradedCounted
	h.kill, h.killed = r.marks["kill"]
	h.restart, h.restarted = r.marks["restart"]
	return h
}

// add takes one login of the needs-high client. A login that ended is
// degraded exactly when it went through MinID at substantial, and high
// through BankID otherwise; none that ended before the kill is
// degraded, nor any that started before it and did not meet BankID
// dead; none fails.
func (h *highCheck) add(l *resLogin, problem func(string, ...any)) {
	if !l.ok {
		if !l.unfinished {
			problem("needs-high client: a login failed: %s", l.err)
		}
		return
	}
	switch {
	case l.degraded && (l.provider != "minid" || l.acr != "substantial"),
		!l.degraded && (l.provider != "bankid" || l.acr != "high"):
		problem("needs-high client: a login through %q at %q, degraded %v", l.provider, l.acr, l.degraded)
		return
	case l.degraded && (!h.killed || l.end.Before(h.kill)):
		problem("needs-high client: a login that ended before the kill was degraded")
	case l.degraded && l.start.Before(h.kill) && len(l.retried) == 0:
		problem("needs-high client: a login started %.2fs before the kill was degraded without meeting BankID dead", h.kill.Sub(l.start).Seconds())
	}
	if h.subs[l.person] == nil {
		h.subs[l.person], h.ways[l.person] = map[string]bool{}, map[bool]bool{}
	}
	h.subs[l.person][l.sub], h.ways[l.person][l.degraded] = true, true
	f := &h.figures
	if slices.ContainsFunc(l.retried, func(why string) bool { return strings.HasSuffix(why, ": restored") }) {
		f.SentBack++
	}
	switch {
	case l.degraded:
		if d := l.end.Sub(h.kill).Seconds(); h.killed && (f.Degraded == 0 || d < f.FirstDegradedS) {
			f.FirstDegradedS = d
		}
		f.Degraded++
		if h.restarted {
			f.LastDegradedS = l.start.Sub(h.restart).Seconds()
		}
	case h.killed && l.start.Before(h.kill):
		f.BeforeHigh++
	case h.restarted && !l.start.Before(h.restart):
		f.AfterHigh++
	}
}

// check asks, once a run completed its phases, for logins at high
// before the kill and after the restart, degraded ones between, and one
// sub per person through both.
func (h *highCheck) check(problem func(string, ...any)) {
	f := &h.figures
	for person, ways := range h.ways {
		if ways[true] && ways[false] && len(h.subs[person]) == 1 {
			f.BothSameSub++
		}
	}
	switch {
	case f.BeforeHigh == 0:
		problem("needs-high client: no login at high before the kill")
	case f.Degraded == 0:
		problem("needs-high client: no login at substantial, degraded, while BankID was down")
	case f.AfterHigh == 0:
		problem("needs-high client: no login at high after BankID's restart")
	case f.BothSameSub == 0:
		problem("needs-high client: nobody logged in both degraded and at high with one sub")
	case f.NodeCounted != float64(f.Degraded):
		problem("needs-high client: %d logins degraded, and the node's varde_logins_degraded_total says %.0f", f.Degraded, f.NodeCounted)
	}
}

// countDegraded reads the node's varde_logins_degraded_total, summed
// over its series; -1 if it cannot.
func (r *resRun) countDegraded(ctx context.Context) float64 {
	hc := &http.Client{Transport: r.tr, Timeout: resHTTPLimit}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.issuer+"/metrics", nil)
	if err != nil {
		return -1
	}
	res, err := hc.Do(req)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return -1
	}
	sum := 0.0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "varde_logins_degraded_total{") {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return -1
		}
		sum += n
	}
	if sc.Err() != nil {
		return -1
	}
	return sum
}
