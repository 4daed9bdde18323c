package providersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Mode is how the simulated provider behaves.
type Mode string

// Fault modes.
const (
	// ModeOK serves every request normally.
	ModeOK Mode = "ok"
	// ModeDown closes the issuer listener: connections are refused. The
	// admin listener stays up; switching back reopens the same port.
	ModeDown Mode = "down"
	// ModeSlow delays every response of the issuer listener by
	// Fault.Delay.
	ModeSlow Mode = "slow"
	// ModeFailing keeps discovery, the JWKS and the sim's own pages up,
	// but the authorization endpoint sends the browser straight back with
	// error=server_error and the PAR, token and userinfo endpoints answer
	// 500 server_error, so only real logins fail.
	ModeFailing Mode = "failing"
)

// Modes lists every mode, in the order the admin page shows them.
var modes = []Mode{ModeOK, ModeDown, ModeSlow, ModeFailing}

// Bounds on the slow mode's delay.
const (
	DefaultDelay = 3 * time.Second
	MaxDelay     = 60 * time.Second
)

// ErrFault means a fault description is not valid.
var ErrFault = errors.New("invalid fault")

// Fault is the sim's current behaviour. Delay is used by ModeSlow only.
type Fault struct {
	Mode  Mode
	Delay time.Duration
}

// String reads "slow (3s)", "down", ….
func (f Fault) String() string {
	if f.Mode == ModeSlow {
		return fmt.Sprintf("%s (%s)", f.Mode, f.Delay)
	}
	return string(f.Mode)
}

// ParseFault reads a mode and an optional delay ("3s", "2500ms") as
// given on the command line, in an admin form or in the admin API's
// JSON. A delay is kept only for ModeSlow; a slow fault without one gets
// its delay from the sim (Config.SlowDelay). A delay must be positive
// and at most MaxDelay.
func ParseFault(mode, delay string) (Fault, error) {
	f := Fault{Mode: Mode(mode)}
	if !validMode(f.Mode) {
		return Fault{}, fmt.Errorf("%w: mode must be ok, down, slow or failing", ErrFault)
	}
	if delay != "" {
		d, err := time.ParseDuration(delay)
		if err != nil {
			return Fault{}, fmt.Errorf("%w: delay is not a duration such as 3s", ErrFault)
		}
		if d <= 0 || d > MaxDelay {
			return Fault{}, fmt.Errorf("%w: delay must be above 0 and at most %s", ErrFault, MaxDelay)
		}
		f.Delay = d
	}
	if f.Mode != ModeSlow {
		f.Delay = 0
	}
	return f, nil
}

func validMode(m Mode) bool {
	for _, v := range modes {
		if m == v {
			return true
		}
	}
	return false
}

// faultJSON is the admin API's wire form: {"mode":"slow","delay":"3s"}.
type faultJSON struct {
	Mode  string `json:"mode"`
	Delay string `json:"delay,omitempty"`
}

// MarshalJSON writes {"mode":…,"delay":…}, the delay only when slow.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Mode: string(f.Mode)}
	if f.Mode == ModeSlow && f.Delay > 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads {"mode":…,"delay":…} through ParseFault.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrFault, err)
	}
	v, err := ParseFault(j.Mode, j.Delay)
	if err != nil {
		return err
	}
	*f = v
	return nil
}
