package assurance

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Level
		ok   bool
	}{
		{"low", Low, true},
		{"substantial", Substantial, true},
		{ACRHigh, High, true},
		{"http://eidas.europa.eu/LoA/HIGH", None, false},
		{"Level4", None, false},
		{"", None, false},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("Parse(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestSatisfies(t *testing.T) {
	tests := []struct {
		achieved  Level
		requested []string
		want      bool
	}{
		{Low, nil, true},
		{None, nil, false},
		{High, []string{ACRSubstantial}, true},
		{Substantial, []string{ACRHigh}, false},
		{Substantial, []string{ACRHigh, ACRSubstantial}, true}, // the lowest requested is needed
		{High, []string{"urn:unknown"}, false},                 // only unknown values: never met
		{Low, []string{"urn:unknown", "low"}, true},
		// Level is an int: a value above High is no level, not a higher one.
		{Level(4), nil, false},
		{Level(4), []string{ACRHigh}, false},
		{Level(-1), []string{ACRLow}, false},
	}
	for _, tt := range tests {
		if got := Satisfies(tt.achieved, tt.requested); got != tt.want {
			t.Errorf("Satisfies(%v, %v) = %v", tt.achieved, tt.requested, got)
		}
	}
}

func TestFromEvidence(t *testing.T) {
	passkey := func(uv, be bool) Authenticator {
		return Authenticator{Kind: KindPasskey, UserVerified: uv, BackupEligible: be}
	}
	tests := []struct {
		name     string
		proofing Level
		a        Authenticator
		want     Level
	}{
		{"device-bound passkey, proofed high", High, passkey(true, false), High},
		{"synced passkey", High, passkey(true, true), Substantial},
		{"no user verification", High, passkey(false, false), Low},
		{"proofing caps the level", Substantial, passkey(true, false), Substantial},
		{"recovery code", High, Authenticator{Kind: KindRecoveryCode}, Low},
		{"help desk code, after an in-person check", High, Authenticator{Kind: KindDeskCode}, Low},
		{"upstream asserts substantial", High, Authenticator{Kind: KindUpstream, Asserted: Substantial}, Substantial},
		{"upstream cannot exceed proofing", Low, Authenticator{Kind: KindUpstream, Asserted: High}, Low},
		{"unknown authenticator", High, Authenticator{Kind: "sms"}, None},
		{"upstream asserts beyond high", High, Authenticator{Kind: KindUpstream, Asserted: Level(5)}, None},
		{"proofing and upstream beyond high", Level(5), Authenticator{Kind: KindUpstream, Asserted: Level(5)}, None},
		{"proofing beyond high", Level(5), passkey(true, false), None},
		{"proofing below none", Level(-1), passkey(true, false), None},
	}
	for _, tt := range tests {
		if got := FromEvidence(tt.proofing, tt.a); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAMR(t *testing.T) {
	tests := []struct {
		a    Authenticator
		want []string
	}{
		{Authenticator{Kind: KindPasskey, UserVerified: true}, []string{"hwk", "user", "mfa"}},
		{Authenticator{Kind: KindPasskey, UserVerified: true, BackupEligible: true}, []string{"swk", "user", "mfa"}},
		{Authenticator{Kind: KindPasskey}, []string{"hwk"}},
		{Authenticator{Kind: KindRecoveryCode}, []string{"otp"}},
		{Authenticator{Kind: KindDeskCode}, []string{"otp"}},
	}
	for _, tt := range tests {
		if got := AMR(tt.a); !slices.Equal(got, tt.want) {
			t.Errorf("AMR(%+v) = %v, want %v", tt.a, got, tt.want)
		}
	}
}

func TestLevelStrings(t *testing.T) {
	if High.String() != "high" || High.ACR() != ACRHigh || Level(9).ACR() != "" {
		t.Error("level strings")
	}
	if !slices.Equal(Names(Substantial), []string{"low", "substantial"}) {
		t.Errorf("Names = %v", Names(Substantial))
	}
}
