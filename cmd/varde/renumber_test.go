package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/providersim"
)

// TestNewNationalNumberKeepsTheSub: a person with a D-number logs in to
// a service through Demo BankID; they are given a birth number, and the
// help desk adds it with varde persons add-number against the running
// node's store; a login through BankID asserting the birth number is
// the same person, with the same sub at the service. Later the birth
// number is replaced, and the person logs in with the new one before
// the help desk hears of it, which makes a person of its own: the help
// desk's add-number is refused, --merge moves the number and retires
// that person, and the next login with the new number gets the
// person's sub again.
func TestNewNationalNumberKeepsTheSub(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, issuer := startDemoIn(t, dir, demoTuning{})
	cfg := demoAdminConfig(t, dir, issuer)
	rp := newFedRP(t, d, issuer)
	person := simDnrPerson(t)
	born, err := time.Parse(time.DateOnly, person.BirthDate)
	if err != nil {
		t.Fatal(err)
	}
	birthNumber := func() string {
		n, err := identity.SyntheticNO(rand.Reader, identity.KindFnr, born)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	dnr, fnr := person.Identifier.Value, birthNumber()
	holds := func(number, personID string) func() bool {
		return func() bool {
			p, err := d.app.Store.GetPersonByIdentifier(ctx, identity.SchemeNOFnr, number)
			return err == nil && p.ID == personID
		}
	}

	before := rp.login("bankid", dnr)
	p, err := d.app.Store.GetPersonByIdentifier(ctx, identity.SchemeNODnr, dnr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "given a birth number, register checked", "--by", "help desk",
		"no:dnr:"+dnr, "no:fnr:"+fnr)
	if err != nil {
		t.Fatalf("persons add-number: %v\n%s", err, out)
	}
	waitFor(t, "the node to find the person by the birth number", 3*time.Second, holds(fnr, p.ID))
	viaFnr := rp.login("bankid", fnr)
	if viaFnr["sub"] != before["sub"] {
		t.Errorf("sub with the birth number %v, with the D-number %v: want the same", viaFnr["sub"], before["sub"])
	}
	// The service that gets the national number gets the birth number.
	if got := nationalID(viaFnr); got != "no:fnr:"+fnr {
		t.Errorf("national_id after the change %q, want the birth number", got)
	}
	// The D-number still works: eIDs that still assert it log the
	// person in as before.
	if again := rp.login("bankid", dnr); again["sub"] != before["sub"] {
		t.Errorf("sub with the D-number after the change %v, want %v", again["sub"], before["sub"])
	}

	// The birth number is replaced, and an eID login with the new one
	// comes first: Varde makes a person of it, with a sub of its own.
	replaced := birthNumber()
	stray := rp.login("bankid", replaced)
	if stray["sub"] == before["sub"] {
		t.Fatal("a login with a number Varde did not know gave the person's sub")
	}
	out, err = runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number replaced", "no:fnr:"+fnr, "no:fnr:"+replaced)
	if err == nil || !strings.Contains(err.Error(), "belongs to another person") {
		t.Fatalf("add-number of a number another person holds: %v\n%s", err, out)
	}
	out, err = runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number replaced", "--merge", "no:fnr:"+fnr, "no:fnr:"+replaced)
	if err != nil || !strings.Contains(out, "retired person") {
		t.Fatalf("persons add-number --merge: %v\n%s", err, out)
	}
	waitFor(t, "the node to find the person by the replaced number", 3*time.Second, holds(replaced, p.ID))
	after := rp.login("bankid", replaced)
	if after["sub"] != before["sub"] {
		t.Errorf("sub with the replaced number after the merge %v, want %v (and never again %v)", after["sub"], before["sub"], stray["sub"])
	}
	if got := nationalID(after); got != "no:fnr:"+replaced {
		t.Errorf("national_id after the birth number was replaced %q, want the new one", got)
	}
}

// simDnrPerson is a person of the simulated eIDs with a D-number.
func simDnrPerson(t *testing.T) providersim.Person {
	t.Helper()
	for _, p := range providersim.DefaultPersons() {
		if p.Identifier.Scheme == identity.SchemeNODnr {
			return p
		}
	}
	t.Fatal("the sims have no person with a D-number")
	return providersim.Person{}
}

// nationalID is the national_id claim in claims as scheme:value.
func nationalID(claims map[string]any) string {
	id, _ := claims["national_id"].(map[string]any)
	return fmt.Sprint(id["scheme"], ":", id["value"])
}
