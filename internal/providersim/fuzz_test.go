package providersim

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseFault: any mode and delay either parse into a valid fault or
// fail with ErrFault, never panic.
func FuzzParseFault(f *testing.F) {
	for _, s := range [][2]string{{"ok", ""}, {"slow", "3s"}, {"down", "1h"}, {"failing", "-1s"}, {"slow", "9223372036854775807ns"}, {"", "1e9"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, mode, delay string) {
		got, err := ParseFault(mode, delay)
		if err != nil {
			if !errors.Is(err, ErrFault) {
				t.Fatalf("error %v is not ErrFault", err)
			}
			return
		}
		if !validMode(got.Mode) || got.Delay < 0 || got.Delay > MaxDelay || (got.Mode != ModeSlow && got.Delay != 0) {
			t.Fatalf("ParseFault(%q, %q) = %+v", mode, delay, got)
		}
	})
}

// FuzzFaultJSON: the admin API's body either decodes into a valid fault
// that survives a round trip, or is refused.
func FuzzFaultJSON(f *testing.F) {
	for _, s := range []string{`{"mode":"down"}`, `{"mode":"slow","delay":"2s"}`, `{"mode":1}`, `null`, `{"mode":"slow","delay":"0"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got Fault
		if err := json.Unmarshal(body, &got); err != nil {
			return
		}
		if got == (Fault{}) {
			return // JSON null leaves the value alone
		}
		if !validMode(got.Mode) || got.Delay < 0 || got.Delay > MaxDelay {
			t.Fatalf("%s decoded to %+v", body, got)
		}
		out, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var again Fault
		if err := json.Unmarshal(out, &again); err != nil || again != got {
			t.Fatalf("round trip %s → %+v → %s → %+v, %v", body, got, out, again, err)
		}
	})
}
