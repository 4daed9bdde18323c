package providersim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

// Person is a synthetic person a sim can log in. Every sim built from
// the same list asserts the same identifier for the person, so logins
// through different sims resolve to one person at the broker.
type Person struct {
	// ID is the person's key at the sim (derived from the identifier, so
	// it is the same at every sim) and the value of the login form's
	// "person" field.
	ID         string
	GivenName  string
	FamilyName string
	BirthDate  string // YYYY-MM-DD
	// Identifier is a synthetic Norwegian birth number (no:fnr) or
	// D-number (no:dnr): the month has 80 added, so it is never a real
	// person's number.
	Identifier store.Identifier
}

// Name is the person's full name.
func (p Person) Name() string { return strings.TrimSpace(p.GivenName + " " + p.FamilyName) }

// DefaultSeed fixes the individual numbers of DefaultPersons. Change it
// and every sim's persons get new numbers.
const DefaultSeed = "varde providersim persons v1"

// seedPerson is one entry of the fixed list: who, born when, and which
// kind of number.
type seedPerson struct {
	given, family string
	born          time.Time
	kind          string
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// seedPersons is the fixed list behind DefaultPersons: residents with
// birth numbers of several ages, and two people with D-numbers (not
// resident), who log in at the same level as everyone else.
var seedPersons = []seedPerson{
	{"Kari", "Nordmann", day(1985, time.March, 14), identity.KindFnr},
	{"Ola", "Nordmann", day(1979, time.November, 2), identity.KindFnr},
	{"Ingrid", "Haugen", day(1952, time.June, 30), identity.KindFnr},
	{"Emil", "Johansen", day(2004, time.September, 17), identity.KindFnr},
	{"Amina", "Yusuf", day(1991, time.January, 25), identity.KindDnr},
	{"Lukas", "Becker", day(1988, time.December, 8), identity.KindDnr},
}

// NewPersons returns the fixed list of synthetic persons with individual
// numbers drawn from a ChaCha8 stream keyed by SHA-256(seed): the same
// seed gives the same numbers on every machine and in every process.
func NewPersons(seed string) ([]Person, error) {
	rnd := mrand.NewChaCha8(sha256.Sum256([]byte(seed)))
	out := make([]Person, 0, len(seedPersons))
	for _, s := range seedPersons {
		v, err := identity.SyntheticNO(rnd, s.kind, s.born)
		if err != nil {
			return nil, fmt.Errorf("person %s %s: %w", s.given, s.family, err)
		}
		scheme := identity.SchemeNOFnr
		if s.kind == identity.KindDnr {
			scheme = identity.SchemeNODnr
		}
		id := store.Identifier{Scheme: scheme, Value: v}
		out = append(out, Person{
			ID: personID(id), GivenName: s.given, FamilyName: s.family,
			BirthDate: s.born.Format(time.DateOnly), Identifier: id,
		})
	}
	return out, nil
}

// DefaultPersons is NewPersons(DefaultSeed).
func DefaultPersons() []Person {
	p, err := NewPersons(DefaultSeed)
	if err != nil {
		// The list and seed are fixed; a failure is a bug, caught by tests.
		panic(err)
	}
	return p
}

// personID keys a person at the sim by a hash of the identifier, so the
// store key carries no identifier.
func personID(id store.Identifier) string {
	sum := sha256.Sum256([]byte("providersim\x00" + id.Scheme + "\x00" + id.Value))
	return "sim-" + hex.EncodeToString(sum[:10])
}

// typedPerson is the person behind a synthetic number typed on the login
// page that is not in the list.
func typedPerson(n *identity.Number) Person {
	id := n.Identifier()
	return Person{ID: personID(id), GivenName: "Test", FamilyName: "Person", BirthDate: n.BirthDate.Format(time.DateOnly), Identifier: id}
}

// ensurePerson stores p unless a person with its identifier is stored
// already, and returns the stored person's ID.
func ensurePerson(ctx context.Context, st store.Persons, p Person, level string, now time.Time, rnd io.Reader) (string, error) {
	got, err := st.GetPersonByIdentifier(ctx, p.Identifier.Scheme, p.Identifier.Value)
	if err == nil {
		return got.ID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("look up person: %w", err)
	}
	sp := &store.Person{
		ID: p.ID, WebAuthnID: make([]byte, 32), GivenName: p.GivenName, FamilyName: p.FamilyName,
		BirthDate: p.BirthDate, Identifiers: []store.Identifier{p.Identifier},
		ProofingLevel: level, ProofingMethod: "simulated", Synthetic: true, CreatedAt: now,
	}
	if _, err := io.ReadFull(rnd, sp.WebAuthnID); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	err = st.CreatePerson(ctx, sp)
	if errors.Is(err, store.ErrConflict) {
		// Created by a concurrent login with the same number.
		got, gerr := st.GetPersonByIdentifier(ctx, p.Identifier.Scheme, p.Identifier.Value)
		if gerr != nil {
			return "", fmt.Errorf("create person: %w", err)
		}
		return got.ID, nil
	}
	if err != nil {
		return "", fmt.Errorf("create person: %w", err)
	}
	return sp.ID, nil
}
