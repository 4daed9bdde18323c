package oidcup

import (
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
)

// FuzzCallbackOwnBrowser sends a fuzzed authorization response to an
// upstream's callback from the browser a login started in, with a
// login pending there: code, state and iss each the upstream's real one
// (a bit of keep set) or the fuzzed one (none if empty), and the fuzzed
// error and error_description if not empty. The upstream says it sends
// iss (RFC 9207). The callback never answers
// 500; it finishes the login only with the upstream's real answer, and
// then with the person the upstream named; it refuses an iss that is
// not the upstream's as a mix-up (RFC 9207); and the fuzzed
// error_description is never on the page unescaped, nor in a log line
// unquoted.
func FuzzCallbackOwnBrowser(f *testing.F) {
	v := newVarde(f)
	up := newFakeUpstream(f, v.clock)
	// It says it sends iss, so a response without one is a mix-up too.
	up.with(func(u *fakeUpstream) {
		u.meta = map[string]any{"authorization_response_iss_parameter_supported": true}
	})
	v.add(up.config(v, "fake"))
	const all = 1 | 2 | 4
	f.Add(uint8(all), "", "", "", "", "")
	f.Add(uint8(all), "", "", "", "access_denied", "the person <b>cancelled</b>")
	f.Add(uint8(2|4), "forged", "", "", "", "")
	f.Add(uint8(1|2), "", "", "https://evil.example", "", "")
	f.Add(uint8(1|4), "", "again", "", "", "")
	f.Add(uint8(1|2), "", "", "", "", "")
	f.Add(uint8(all), "", "", "", "server_error", "a\nlevel=ERROR msg=\"forged\" <script>")
	f.Add(uint8(2|4), "\x00", "", "", "", "\"")
	n := 0
	f.Fuzz(func(t *testing.T, keep uint8, code, state, iss, errCode, errDesc string) {
		n++
		b := v.newBrowser()
		b.t = t
		cb, err := url.Parse(b.callbackURL(v.startURL("fake", "own-"+strconv.Itoa(n), assurance.Substantial, "", "")))
		if err != nil {
			t.Fatal(err)
		}
		real := cb.Query()
		q := url.Values{}
		pick := func(k string, bit uint8, fuzzed string) {
			switch {
			case keep&bit != 0 && real.Has(k):
				q.Set(k, real.Get(k))
			case keep&bit == 0 && fuzzed != "":
				q.Set(k, fuzzed)
			}
		}
		pick("code", 1, code)
		pick("state", 2, state)
		pick("iss", 4, iss)
		if errCode != "" {
			q.Set("error", errCode)
		}
		// A marker after the fuzzed description, on a line of its own,
		// shows whether any of it reached the page or a log line as it
		// was sent.
		marker := "<x-varde-" + strconv.Itoa(n) + ">"
		if errDesc != "" {
			q.Set("error_description", errDesc+"\n"+marker)
		}
		cb.RawQuery = q.Encode()

		finishes, fails := v.fin.counts()
		logsBefore := len(v.logs.String())
		b.stop = func(*url.URL) bool { return true }
		resp, err := b.c.Get(cb.String())
		b.stop = nil
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		logs := v.logs.String()[logsBefore:]

		if resp.StatusCode >= 500 {
			t.Fatalf("%s: status %d %.300s", cb.RawQuery, resp.StatusCode, body)
		}
		f2, fl2 := v.fin.counts()
		genuine := q.Get("code") == real.Get("code") && q.Get("state") == real.Get("state") &&
			q.Get("iss") == real.Get("iss") && !q.Has("error")
		switch {
		case f2 == finishes+1 && genuine:
			if ids := v.fin.lastFinish(t).res.Identifiers; len(ids) != 1 || ids[0].Value != up.fnr {
				t.Fatalf("%s: finished with %d identifiers, not the upstream's person", cb.RawQuery, len(ids))
			}
		case f2 != finishes:
			t.Fatalf("%s: finishes %d → %d", cb.RawQuery, finishes, f2)
		case genuine:
			t.Fatalf("%s: the upstream's real answer did not finish the login", cb.RawQuery)
		}
		if q.Get("state") == real.Get("state") && q.Get("iss") != real.Get("iss") {
			// The broker is told only that the response is not verified;
			// the log and audit event say why.
			if fl2 != fails+1 || !strings.Contains(logs, "reason="+ReasonMixUp) {
				t.Fatalf("%s: a missing or wrong iss is not refused as %s (fails %d → %d):\n%s",
					cb.RawQuery, ReasonMixUp, fails, fl2, logs)
			}
		}
		if strings.Contains(string(body), marker) {
			t.Fatalf("%s: error_description on the page unescaped", cb.RawQuery)
		}
		if strings.Contains(logs, "\n"+marker) {
			t.Fatalf("%s: error_description in the log unquoted", cb.RawQuery)
		}
		for _, line := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
			if line != "" && !strings.HasPrefix(line, "time=") {
				t.Fatalf("%s: a log line not of the log's own: %q", cb.RawQuery, line)
			}
		}
	})
}

// lastFail is the last failure the finisher recorded.
func (f *finisher) lastFail() failed {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fails) == 0 {
		return failed{}
	}
	return f.fails[len(f.fails)-1]
}
