package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

// TestPersonsRemoveNumber: the help desk takes off a person a number
// linked to them (someone else's eID, linked from the person's session
// on a shared phone): the number no longer finds them, their other
// number still does, every session of theirs ends and every grant is
// revoked (the store cannot tell which number a login proved, and the
// output says so), and the change is audited with the scheme, the
// reason and who did it, never the number.
func TestPersonsRemoveNumber(t *testing.T) {
	cfg, st := personStore(t)
	ctx := context.Background()
	out, err := runCmd(t, "persons", "remove-number", "--config", cfg, "--reason", "linked from her phone by her flatmate", "--by", "Ola",
		"no:fnr:"+personFnr, "no:dnr:"+personDnr)
	if err != nil {
		t.Fatalf("persons remove-number: %v\n%s", err, out)
	}
	for _, want := range []string{
		"removed the no:dnr number 410180••••• from person p-kari",
		"Ended 1 sessions and revoked 1 grants",
		"which number a login proved",
		"no longer finds this person",
		"same sub",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("persons remove-number does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, personDnr) || strings.Contains(out, personFnr) {
		t.Errorf("persons remove-number prints a number in full:\n%s", out)
	}
	// This store, like a running node's, drops what it keeps of the
	// person within a second of another process's write.
	waitFor(t, "the D-number to find nobody", 3*time.Second, func() bool {
		_, err := st.GetPersonByIdentifier(ctx, "no:dnr", personDnr)
		return err != nil
	})
	if got := holder(t, st, personFnr); got != "p-kari" {
		t.Errorf("the birth number is held by %s, want p-kari", got)
	}
	waitFor(t, "the person's session to end", 3*time.Second, func() bool {
		_, err := st.GetSession(ctx, "s-kari", time.Now())
		return err != nil
	})
	if g, err := st.GetGrant(ctx, "g-kari"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("the person's grant: %+v, %v; want it revoked", g, err)
	}
	if p, err := st.GetPerson(ctx, "p-kari"); err != nil || p.Blocked() || len(p.Identifiers) != 1 {
		t.Errorf("the person after the removal: %+v, %v", p, err)
	}
	events, err := st.ListPersonAudit(ctx, "p-kari", 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("audit events %v, %v; want one", events, err)
	}
	e := events[0]
	if e.Type != "identifier_removed" || e.Details["scheme"] != "no:dnr" || e.Details["by"] != "Ola" ||
		e.Details["reason"] != "linked from her phone by her flatmate" || e.Details["sessions"] != "1" || e.Details["grants"] != "1" {
		t.Errorf("audit event %+v", e)
	}
	if raw, _ := json.Marshal(e); strings.Contains(string(raw), personDnr) || strings.Contains(string(raw), personFnr) {
		t.Errorf("the event holds a national number: %s", raw)
	}

	// What is left is the person's last number.
	out, err = runCmd(t, "persons", "remove-number", "--config", cfg, "--reason", "again", "no:fnr:"+personFnr, "no:fnr:"+personFnr)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "last number") ||
		!strings.Contains(err.Error(), "varde persons block") || strings.Contains(err.Error(), personFnr) {
		t.Errorf("removing the last number: exit status %d, %v\n%s", code, err, out)
	}
	if events, _ := st.ListPersonAudit(ctx, "p-kari", 10); len(events) != 1 {
		t.Errorf("audit events after the refusal: %v", events)
	}
}

// TestPersonsRemoveNumberRefused: a number the person does not hold,
// one nobody holds or another person holds, is refused plainly, exit
// status 1, and nothing is written; so is a command called wrongly,
// exit status 2.
func TestPersonsRemoveNumberRefused(t *testing.T) {
	cfg, st := personStore(t)
	other := syntheticFnr(t, 1)
	eidPerson(t, st, "p-eid", other)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a number held by nobody", []string{"--reason", "linked", "no:fnr:" + personFnr, "no:fnr:15076500565"}, 1,
			"person p-kari does not hold that no:fnr number 150765•••••"},
		{"a number held by another", []string{"--reason", "linked", "no:fnr:" + personFnr, "no:fnr:" + other}, 1,
			"person p-kari does not hold that no:fnr number"},
		{"without a reason", []string{"no:fnr:" + personFnr, "no:dnr:" + personDnr}, 2, "--reason is required"},
		{"without NUMBER", []string{"--reason", "linked", "no:fnr:" + personFnr}, 2, "missing NUMBER"},
		{"a wrong check digit", []string{"--reason", "linked", "no:fnr:" + personFnr, "no:dnr:41018012366"}, 2, "not a valid number"},
		{"to nobody", []string{"--reason", "linked", "no:fnr:15076500565", "no:dnr:" + personDnr}, 1, "no person found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCmd(t, append([]string{"persons", "remove-number", "--config", cfg}, tt.args...)...)
			if code := exitStatus(err, &bytes.Buffer{}); code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit status %d, %v; want %d and %q\n%s", code, err, tt.code, tt.want, out)
			}
			if err != nil && (strings.Contains(err.Error(), other) || strings.Contains(err.Error(), personDnr)) {
				t.Errorf("the error repeats a number: %v", err)
			}
		})
	}
	if p, err := st.GetPerson(context.Background(), "p-kari"); err != nil || len(p.Identifiers) != 2 {
		t.Errorf("after the refused commands: %+v, %v", p, err)
	}
	if got := holder(t, st, other); got != "p-eid" {
		t.Errorf("the other person's number is held by %s", got)
	}
	if _, err := st.GetSession(context.Background(), "s-kari", time.Now()); err != nil {
		t.Errorf("the person's session after the refused commands: %v", err)
	}
	if events, err := st.ListPersonAudit(context.Background(), "p-kari", 10); err != nil || len(events) != 0 {
		t.Errorf("audit events after the refused commands: %v, %v", events, err)
	}
}

// TestPersonsRemoveNumberFromBlocked: a blocked person's number is
// removed as anyone's (the help desk blocks first, then takes off the
// number, then lifts the block), and the block stays.
func TestPersonsRemoveNumberFromBlocked(t *testing.T) {
	cfg, st := personStore(t)
	if out, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "someone else's eID linked", "no:fnr:"+personFnr); err != nil {
		t.Fatalf("persons block: %v\n%s", err, out)
	}
	out, err := runCmd(t, "persons", "remove-number", "--config", cfg, "--reason", "someone else's eID linked", "no:fnr:"+personFnr, "no:dnr:"+personDnr)
	if err != nil || !strings.Contains(out, "still blocked") {
		t.Fatalf("persons remove-number of a blocked person: %v\n%s", err, out)
	}
	waitFor(t, "the D-number to find nobody", 3*time.Second, func() bool {
		_, err := st.GetPersonByIdentifier(context.Background(), "no:dnr", personDnr)
		return err != nil
	})
	if p, err := st.GetPerson(context.Background(), "p-kari"); err != nil || !p.Blocked() {
		t.Errorf("the person after the removal: %+v, %v", p, err)
	}
}

// TestRemovedNumberFindsNobody: someone holding a D-number person's
// session (a shared phone) links their own BankID, with a birth number,
// from the account page; from then on a BankID login with that number
// is the person, with their sub, and services that get the national
// number get the intruder's. The help desk takes the number off the
// person with varde persons remove-number against the running node's
// store: the person's session ends, a BankID login with the number
// makes a person of its own with a sub of its own, and the person's own
// login gets their sub and their D-number again.
func TestRemovedNumberFindsNobody(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, issuer := startDemoIn(t, dir, demoTuning{})
	cfg := demoAdminConfig(t, dir, issuer)
	rp := newFedRP(t, d, issuer)
	dnr := simDnrPerson(t).Identifier.Value
	intruder := syntheticFnr(t, 1)

	before := rp.login("minid", dnr)
	p, err := d.app.Store.GetPersonByIdentifier(ctx, identity.SchemeNODnr, dnr)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := rp.linkVia("bankid", intruder); res.Request.URL.Query().Get("done") != "linked" {
		t.Fatalf("the intruder's link ended at %s (%d)", res.Request.URL, res.StatusCode)
	}
	viaLinked := rp.login("bankid", intruder)
	if viaLinked["sub"] != before["sub"] || nationalID(viaLinked) != "no:fnr:"+intruder {
		t.Fatalf("a login with the linked number: sub %v, national_id %s; want the person's sub %v and the linked number",
			viaLinked["sub"], nationalID(viaLinked), before["sub"])
	}
	live, err := d.app.Store.PersonAccess(ctx, p.ID, time.Now())
	if err != nil || live.Sessions == 0 {
		t.Fatalf("the person's live sessions before the removal: %+v, %v", live, err)
	}

	out, err := runCmd(t, "persons", "remove-number", "--config", cfg, "--reason", "someone else's BankID linked on a shared phone",
		"--by", "help desk", "no:dnr:"+dnr, "no:fnr:"+intruder)
	if err != nil || !strings.Contains(out, "removed the no:fnr number") {
		t.Fatalf("persons remove-number: %v\n%s", err, out)
	}
	waitFor(t, "the node to find nobody by the removed number", 3*time.Second, func() bool {
		_, err := d.app.Store.GetPersonByIdentifier(ctx, identity.SchemeNOFnr, intruder)
		return errors.Is(err, store.ErrNotFound)
	})
	if live, err := d.app.Store.PersonAccess(ctx, p.ID, time.Now()); err != nil || live.Sessions != 0 || live.RefreshTokens != 0 {
		t.Errorf("the person's sessions and refresh tokens after the removal: %+v, %v; want none", live, err)
	}

	stray := rp.login("bankid", intruder)
	if stray["sub"] == before["sub"] {
		t.Error("a login with the removed number still gets the person's sub")
	}
	if q, err := d.app.Store.GetPersonByIdentifier(ctx, identity.SchemeNOFnr, intruder); err != nil || q.ID == p.ID {
		t.Errorf("the removed number after a login with it: %+v, %v; want a person of its own", q, err)
	}
	after := rp.login("minid", dnr)
	if after["sub"] != before["sub"] {
		t.Errorf("the person's sub after the removal %v, want %v", after["sub"], before["sub"])
	}
	if got := nationalID(after); got != "no:dnr:"+dnr {
		t.Errorf("national_id after the removal %q, want the person's D-number", got)
	}
}
