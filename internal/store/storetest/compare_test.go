package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func TestDiff(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 29, 1, 30, 0, 123456000, oslo)
	tests := []struct {
		name      string
		want, got any
		// mention is a field path the diff must name; "" means no diff.
		mention string
	}{
		{"same instant in UTC", &store.Grant{AuthTime: at}, &store.Grant{AuthTime: at.UTC()}, ""},
		{"same instant not in UTC", &store.Grant{AuthTime: at}, &store.Grant{AuthTime: at}, "AuthTime"},
		{"other instant", &store.Grant{AuthTime: at}, &store.Grant{AuthTime: at.Add(time.Microsecond).UTC()}, "AuthTime"},
		{"zero times", &store.Grant{}, &store.Grant{}, ""},
		{"zero and epoch", &store.Grant{}, &store.Grant{AuthTime: time.Unix(0, 0).UTC()}, "AuthTime"},
		{"nil and empty slice", &store.Grant{Scope: nil}, &store.Grant{Scope: []string{}}, "Scope"},
		{"empty and nil slice", &store.Grant{AMR: []string{}}, &store.Grant{}, "AMR"},
		{"slice element", &store.Grant{Scope: []string{"a", "b"}}, &store.Grant{Scope: []string{"a", "c"}}, "Scope[1]"},
		{"nil and empty bytes", &store.Token{Hash: nil}, &store.Token{Hash: []byte{}}, ""},
		{"bytes", &store.Token{Hash: []byte{1}}, &store.Token{Hash: []byte{2}}, "Hash"},
		{"JSON by meaning", &store.PublicKey{JWK: json.RawMessage(`{"a": 1, "b": [2]}`)},
			&store.PublicKey{JWK: json.RawMessage(`{"b":[2],"a":1}`)}, ""},
		{"JSON differs", &store.PublicKey{JWK: json.RawMessage(`{"a":1}`)},
			&store.PublicKey{JWK: json.RawMessage(`{"a":2}`)}, "JWK"},
		{"nil and empty map", &store.AuditEvent{Details: nil}, &store.AuditEvent{Details: map[string]string{}}, "Details"},
		{"map value", &store.AuditEvent{Details: map[string]string{"k": "v"}},
			&store.AuditEvent{Details: map[string]string{"k": "w"}}, "Details[k]"},
		{"nested struct", &store.Person{Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "1"}}},
			&store.Person{Identifiers: []store.Identifier{{Scheme: "no:dnr", Value: "1"}}}, "Identifiers[0].Scheme"},
		{"nil pointer", (*store.Grant)(nil), &store.Grant{}, "value"},
		{"list of records", []*store.Grant{{ID: "a"}}, []*store.Grant{{ID: "b"}}, "[0].ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diff(tt.want, tt.got)
			switch {
			case tt.mention == "" && d != "":
				t.Errorf("diff = %q, want none", d)
			case tt.mention != "" && !strings.Contains(d, tt.mention):
				t.Errorf("diff = %q, want it to name %s", d, tt.mention)
			}
		})
	}
}
