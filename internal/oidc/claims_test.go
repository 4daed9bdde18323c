package oidc

import (
	"encoding/json"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// The pairwise subject must never change for a person and sector: these
// vectors were computed independently (Python hmac) and pin the formula
// base64url(HMAC-SHA256(salt, sector || 0x00 || person)).
func TestPairwiseSubjectVectors(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct{ sector, person, want string }{
		{"bank.example", "p-1", "9Lv3KXPGy9h03xyeGdwu2j-XX4whYb7FiX3Rli_7c0I"},
		{"tax", "p-1", "SEqKp5yzdqV98lGzZxvH6LUG38YNngCKh_WJRJKG1Sg"},
		{"bank.example", "p-2", "9g5iQeOg2qyf_buc9sQ7Vf6ztqUqQFJd84vn3_M6Plw"},
	}
	for _, tt := range tests {
		if got := PairwiseSubject(salt, tt.sector, tt.person); got != tt.want {
			t.Errorf("PairwiseSubject(%s, %s) = %s, want %s", tt.sector, tt.person, got, tt.want)
		}
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if PairwiseSubject(salt, "ab", "c") == PairwiseSubject(salt, "a", "bc") {
		t.Error("sector and person run together")
	}
}

// The sid differs per sector, as the sub does, and is pinned by vectors
// computed independently (Python hmac):
// base64url(HMAC-SHA256(HMAC-SHA256(salt, "varde sid key v1"),
// sector || 0x00 || session)[:16]).
func TestSessionRefVectors(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct{ sector, session, want string }{
		{"bank.example", "s-1", "FONQ56M_OAtnm3n2DnOoew"},
		{"tax", "s-1", "ThzhV4-Knc-eJt9YBCy4CA"},
		{"bank.example", "s-2", "3Kvaptsyt7Ft4W-89Jx7Ow"},
	}
	for _, tt := range tests {
		if got := SessionRef(salt, tt.sector, tt.session); got != tt.want {
			t.Errorf("SessionRef(%s, %s) = %s, want %s", tt.sector, tt.session, got, tt.want)
		}
	}
	if SessionRef(salt, "ab", "c") == SessionRef(salt, "a", "bc") {
		t.Error("sector and session run together")
	}
	// Never the pairwise subject of a person with the session's ID.
	if SessionRef(salt, "tax", "s-1") == PairwiseSubject(salt, "tax", "s-1")[:22] {
		t.Error("sid and sub share a key")
	}
}

// TestNationalIDIsTheNewestNumber: a person whose birth number was
// replaced holds both (the old one still finds them, ADR 30); services
// are given the newer one, a birth number before a D-number.
func TestNationalIDIsTheNewestNumber(t *testing.T) {
	tests := []struct {
		name string
		ids  []store.Identifier
		want string
	}{
		{"a replaced birth number", []store.Identifier{{Scheme: "no:fnr", Value: "01017012345"}, {Scheme: "no:fnr", Value: "15076500565"}},
			`{"scheme":"no:fnr","value":"15076500565"}`},
		{"a birth number after a D-number", []store.Identifier{{Scheme: "no:dnr", Value: "41017012345"}, {Scheme: "no:fnr", Value: "01017012345"},
			{Scheme: "no:dnr", Value: "41017012346"}}, `{"scheme":"no:fnr","value":"01017012345"}`},
		{"a second D-number", []store.Identifier{{Scheme: "no:dnr", Value: "41017012345"}, {Scheme: "no:dnr", Value: "41017012346"}},
			`{"scheme":"no:dnr","value":"41017012346"}`},
		{"another scheme", []store.Identifier{{Scheme: "passport:NOR", Value: "P1"}, {Scheme: "passport:SWE", Value: "P2"}},
			`{"scheme":"passport:NOR","value":"P1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := nationalID(&store.Person{Identifiers: tt.ids})
			raw, _ := json.Marshal(id)
			if !ok || string(raw) != tt.want {
				t.Errorf("national_id = %s (%v), want %s", raw, ok, tt.want)
			}
		})
	}
}

func TestPersonClaimsMinimal(t *testing.T) {
	p := &store.Person{GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1970-01-01",
		Identifiers: []store.Identifier{{Scheme: "no:dnr", Value: "41017012345"}, {Scheme: "no:fnr", Value: "01017012345"}}}
	tests := []struct {
		name   string
		claims []string
		want   string
	}{
		{"nothing registered", nil, `{}`},
		{"name only", []string{"name"}, `{"name":"Kari Nordmann"}`},
		{"fnr preferred", []string{"national_id"}, `{"national_id":{"scheme":"no:fnr","value":"01017012345"}}`},
		{"unknown claim ignored", []string{"email", "birthdate"}, `{"birthdate":"1970-01-01"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]any{}
			personClaims(got, &store.Client{Claims: tt.claims}, p)
			raw, _ := json.Marshal(got)
			if string(raw) != tt.want {
				t.Fatalf("claims = %s, want %s", raw, tt.want)
			}
		})
	}
}
