package oauth2

import (
	"strings"
	"testing"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256ChallengeRFC7636Vector(t *testing.T) {
	if got := S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Fatalf("S256Challenge = %s, want %s", got, rfcChallenge)
	}
	if !ValidChallenge(rfcChallenge) {
		t.Fatal("RFC challenge judged invalid")
	}
}

func TestValidVerifier(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{rfcVerifier, true},
		{strings.Repeat("a", 43), true},
		{strings.Repeat("a", 42), false},
		{strings.Repeat("~._-", 32), true},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 42) + "+", false},
		{strings.Repeat("a", 42) + " ", false},
		{strings.Repeat("é", 43), false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidVerifier(tt.v); got != tt.want {
			t.Errorf("ValidVerifier(%q) = %v", tt.v, got)
		}
	}
}

func TestVerifyPKCE(t *testing.T) {
	tests := []struct {
		name, challenge, method, verifier string
		ok                                bool
	}{
		{"match", rfcChallenge, "S256", rfcVerifier, true},
		{"wrong verifier", rfcChallenge, "S256", strings.Repeat("a", 43), false},
		{"missing verifier", rfcChallenge, "S256", "", false},
		{"malformed verifier", rfcChallenge, "S256", "short", false},
		{"plain method", rfcVerifier, "plain", rfcVerifier, false},
		{"no method", rfcChallenge, "", rfcVerifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyPKCE(tt.challenge, tt.method, tt.verifier)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && AsError(err).Code != CodeInvalidGrant {
				t.Fatalf("code = %s", AsError(err).Code)
			}
		})
	}
}

func FuzzVerifyPKCE(f *testing.F) {
	f.Add(rfcChallenge, rfcVerifier)
	f.Add("", "")
	f.Add(rfcChallenge, strings.Repeat("~", 128))
	f.Fuzz(func(t *testing.T, challenge, verifier string) {
		err := VerifyPKCE(challenge, MethodS256, verifier)
		if err == nil && (!ValidVerifier(verifier) || S256Challenge(verifier) != challenge) {
			t.Fatalf("accepted %q for %q", verifier, challenge)
		}
		ValidChallenge(challenge)
	})
}
