package assurance

import (
	"fmt"
	"slices"
)

// Level is an eIDAS level of assurance. The zero value is no level.
type Level int

// Levels in increasing order.
const (
	None Level = iota
	Low
	Substantial
	High
)

// acr URIs for the levels: the eIDAS SAML level-of-assurance URIs, which
// national OpenID Connect deployments also use as acr values.
const (
	ACRLow         = "http://eidas.europa.eu/LoA/low"
	ACRSubstantial = "http://eidas.europa.eu/LoA/substantial"
	ACRHigh        = "http://eidas.europa.eu/LoA/high"
)

var names = [...]string{None: "", Low: "low", Substantial: "substantial", High: "high"}
var acrs = [...]string{None: "", Low: ACRLow, Substantial: ACRSubstantial, High: ACRHigh}

// String returns "low", "substantial" or "high" ("" for None).
func (l Level) String() string {
	if l < None || l > High {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return names[l]
}

// ACR returns the level's acr URI ("" for None).
func (l Level) ACR() string {
	if l < None || l > High {
		return ""
	}
	return acrs[l]
}

// Parse accepts a level name ("substantial") or its acr URI.
func Parse(s string) (Level, error) {
	for l := Low; l <= High; l++ {
		if s == names[l] || s == acrs[l] {
			return l, nil
		}
	}
	return None, fmt.Errorf("unknown assurance level %q", s)
}

// known reports whether l is one of Low, Substantial and High. A Level is
// an int, so any other value can be made; it is no level, never one
// above High.
func (l Level) known() bool { return l >= Low && l <= High }

// Satisfies reports whether a login at level achieved meets a request
// for acr values requested. A level meets any request at or below it
// (Regulation (EU) 910/2014 Art. 6(1): a means at an equal or higher
// level satisfies a lower requirement). An
// empty request is met by any level; unknown acr values in the request
// are ignored, and a request of only unknown values is met by no level.
// A Level that is none of the three meets nothing.
func Satisfies(achieved Level, requested []string) bool {
	if !achieved.known() {
		return false
	}
	if len(requested) == 0 {
		return true
	}
	min, ok := Minimum(requested)
	return ok && achieved >= min
}

// Minimum returns the lowest known level among acr values, which is what
// the request needs to be met.
func Minimum(requested []string) (Level, bool) {
	min, found := High, false
	for _, v := range requested {
		l, err := Parse(v)
		if err != nil {
			continue
		}
		found = true
		if l < min {
			min = l
		}
	}
	return min, found
}

// Authenticator describes what the person used to authenticate.
type Authenticator struct {
	// Kind is "passkey", "recovery-code", "desk-code" or "upstream".
	Kind string
	// UserVerified: the authenticator verified the user (PIN, biometric).
	UserVerified bool
	// BackupEligible: the passkey can be synced to other devices, so the
	// key is not bound to one piece of hardware.
	BackupEligible bool
	// Asserted is the level an upstream provider asserted (Kind "upstream").
	Asserted Level
}

// Authenticator kinds.
const (
	KindPasskey      = "passkey"
	KindRecoveryCode = "recovery-code"
	KindUpstream     = "upstream"
	// KindDeskCode is a code the help desk hands a person on paper
	// after checking who they are in person (ADR 62).
	KindDeskCode = "desk-code"
)

// authenticatorLevel is what the authenticator alone can support:
//   - a device-bound passkey with user verification: two factors, the key
//     cannot leave the hardware: high;
//   - a synced passkey with user verification: two factors, but the key
//     lives in a cloud keychain: substantial;
//   - a passkey without user verification: one factor: low;
//   - a recovery code: a single-use secret, one factor: low;
//   - a help desk code: a single-use secret too, one factor, whatever
//     the check of the person before it was handed over: low. The check
//     (Annex 2.1.2) makes it theirs; it does not make it a second
//     factor (Annex 2.2.1 asks two for substantial);
//   - an upstream provider: what it asserted.
func authenticatorLevel(a Authenticator) Level {
	switch a.Kind {
	case KindPasskey:
		switch {
		case !a.UserVerified:
			return Low
		case a.BackupEligible:
			return Substantial
		default:
			return High
		}
	case KindRecoveryCode, KindDeskCode:
		return Low
	case KindUpstream:
		return a.Asserted
	}
	return None
}

// FromEvidence returns a login's level: the lower of how the person was
// proofed and what the authenticator supports. The identifier scheme
// (birth number, D-number, passport) plays no part. Evidence at a Level
// that is none of the three gives None: an upstream's assertion above
// High is no assertion, and with a proofing level above High too it
// cannot come out as a level above High.
func FromEvidence(proofing Level, a Authenticator) Level {
	auth := authenticatorLevel(a)
	if !proofing.known() || !auth.known() {
		return None
	}
	return min(proofing, auth)
}

// AMR returns the RFC 8176 authentication method references for a.
func AMR(a Authenticator) []string {
	switch a.Kind {
	case KindPasskey:
		amr := []string{"hwk"}
		if a.BackupEligible {
			amr = []string{"swk"}
		}
		if a.UserVerified {
			amr = append(amr, "user", "mfa")
		}
		return amr
	case KindRecoveryCode, KindDeskCode:
		return []string{"otp"}
	}
	return nil
}

// Names returns the level names from low up to and including max.
func Names(max Level) []string {
	var out []string
	for l := Low; l <= max && l <= High; l++ {
		out = append(out, names[l])
	}
	return out
}

// ACRsSupported lists every acr value, for the discovery document.
func ACRsSupported() []string { return slices.Clone(acrs[Low:]) }
