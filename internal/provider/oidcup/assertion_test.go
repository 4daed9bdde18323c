package oidcup

import (
	"testing"

	"github.com/varde-eid/varde/internal/store/flowmem"
)

// BenchmarkAssertion is the cost of one private_key_jwt client
// assertion (ES256), which an upstream login signs twice on the
// person's path: for the pushed request and for the token request.
func BenchmarkAssertion(b *testing.B) {
	p, err := New(validConfig(b), Deps{Challenges: flowmem.New(flowmem.Options{}), Finisher: &finisher{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.assertion(); err != nil {
			b.Fatal(err)
		}
	}
}
