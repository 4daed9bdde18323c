package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/health"
)

// TestHealthSection: the health section is read from the file, unset
// fields take package health's defaults, and the monitor gets the
// file's values with every other threshold at its default.
func TestHealthSection(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name string
		yaml string
		want Health
	}{
		{"absent", head, Health{Interval: 5 * time.Second, ProbeTimeout: 3 * time.Second, SlowProbe: time.Second, FailuresToDown: 3, SuccessesToUp: 3}},
		{"all set", head + "health:\n  interval: 500ms\n  probe_timeout: 400ms\n  slow_probe: 200ms\n  failures_to_down: 2\n  successes_to_up: 4\n",
			Health{Interval: 500 * time.Millisecond, ProbeTimeout: 400 * time.Millisecond, SlowProbe: 200 * time.Millisecond, FailuresToDown: 2, SuccessesToUp: 4}},
		{"short interval caps the default timeout and slow probe", head + "health:\n  interval: 1s\n",
			Health{Interval: time.Second, ProbeTimeout: time.Second, SlowProbe: 500 * time.Millisecond, FailuresToDown: 3, SuccessesToUp: 3}},
		{"short timeout halves the default slow probe", head + "health:\n  probe_timeout: 600ms\n",
			Health{Interval: 5 * time.Second, ProbeTimeout: 600 * time.Millisecond, SlowProbe: 300 * time.Millisecond, FailuresToDown: 3, SuccessesToUp: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Health != tc.want {
				t.Errorf("health = %+v, want %+v", c.Health, tc.want)
			}
			m := c.Health.Monitor()
			if err := m.Validate(); err != nil {
				t.Errorf("monitor config invalid: %v", err)
			}
			d := health.DefaultConfig()
			if m.Interval != tc.want.Interval || m.ProbeTimeout != tc.want.ProbeTimeout || m.SlowProbe != tc.want.SlowProbe ||
				m.FailuresToDown != tc.want.FailuresToDown || m.SuccessesToRecover != tc.want.SuccessesToUp ||
				m.ProbeWindow != d.ProbeWindow || m.LoginWindow != d.LoginWindow || m.MaxPending != d.MaxPending {
				t.Errorf("monitor config = %+v", m)
			}
		})
	}
}

func TestHealthValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *Health)
		field  string // "" means valid
		msg    string
	}{
		{"defaults", func(h *Health) {}, "", ""},
		{"fast probes", func(h *Health) {
			h.Interval, h.ProbeTimeout, h.SlowProbe = 500*time.Millisecond, 400*time.Millisecond, 200*time.Millisecond
		}, "", ""},
		{"slow probe as long as the timeout", func(h *Health) { h.SlowProbe = h.ProbeTimeout }, "health.slow_probe",
			"3s is not shorter than health.probe_timeout 3s"},
		{"slow probe longer than the timeout", func(h *Health) { h.ProbeTimeout, h.SlowProbe = 2*time.Second, 2500*time.Millisecond },
			"health.slow_probe", "none would ever count as slow"},
		{"interval too short", func(h *Health) {
			h.Interval, h.ProbeTimeout, h.SlowProbe = time.Millisecond, time.Millisecond, time.Millisecond/2
		}, "health.interval", "under 10ms"},
		{"timeout longer than interval", func(h *Health) { h.ProbeTimeout = 6 * time.Second }, "health.probe_timeout", "longer than health.interval"},
		{"timeout negative", func(h *Health) { h.ProbeTimeout = -time.Second }, "health.probe_timeout", "positive"},
		{"slow probe negative", func(h *Health) { h.SlowProbe = -time.Second }, "health.slow_probe", "positive"},
		{"failures negative", func(h *Health) { h.FailuresToDown = -1 }, "health.failures_to_down", "at least 1"},
		{"successes negative", func(h *Health) { h.SuccessesToUp = -2 }, "health.successes_to_up", "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			tc.change(&c.Health)
			err := c.Validate()
			var got []string
			if err != nil {
				got = fields(t, err)
			}
			wantN := 0
			if tc.field != "" {
				wantN = 1
			}
			if len(got) != wantN || (wantN == 1 && (got[0] != tc.field || !strings.Contains(err.Error(), tc.msg))) {
				t.Errorf("Validate() = %v\nwant field %q with %q", err, tc.field, tc.msg)
			}
		})
	}
}

// TestHealthFromFileIsValidatedWithEverythingElse: a bad health section
// is reported with its path, alongside other problems.
func TestHealthFromFileIsValidatedWithEverythingElse(t *testing.T) {
	_, err := Parse([]byte("version: 1\nissuer: https://id.example.no\nlisten: nowhere\nhealth:\n  interval: 1s\n  probe_timeout: 2s\n"), nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"listen:", "health.probe_timeout:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestHealthBadIntervalAlone: an interval that makes no sense is the one
// problem reported; the probe timeout and slow threshold the operator
// left unset are not blamed for the defaults taken from it.
func TestHealthBadIntervalAlone(t *testing.T) {
	for _, iv := range []string{"-5s", "-1ms"} {
		_, err := Parse([]byte("version: 1\nissuer: https://id.example.no\nhealth:\n  interval: "+iv+"\n"), nil)
		if err == nil {
			t.Fatalf("interval %s: no error", iv)
		}
		got := slices.DeleteFunc(fields(t, err), func(f string) bool { return !strings.HasPrefix(f, "health.") })
		if !slices.Equal(got, []string{"health.interval"}) {
			t.Errorf("interval %s: problems with %v, want health.interval alone: %v", iv, got, err)
		}
	}
}
