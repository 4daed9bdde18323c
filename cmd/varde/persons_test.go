package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

const (
	personFnr = "01018012371"
	personDnr = "41018012365"
)

// personStore writes a node configuration whose store holds one person
// with a birth number, a linked D-number, two passkeys, recovery codes,
// a live session and an offline refresh token, and returns the
// configuration file and the store (open until the test ends).
func personStore(t *testing.T) (string, store.Store) {
	t.Helper()
	return personStoreIn(t, adminConfig(t))
}

// personStoreIn is personStore on the store that the configuration at
// cfgPath names.
func personStoreIn(t *testing.T, cfgPath string) (string, store.Store) {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	p := &store.Person{ID: "p-kari", WebAuthnID: bytes.Repeat([]byte{7}, 32), GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1980-01-01",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: personFnr}, {Scheme: "no:dnr", Value: personDnr, MaxLevel: "substantial",
			LinkedThrough: "bankid", LinkedAt: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), LastUsedAt: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}},
		ProofingLevel: "high", ProofingMethod: "bankid", CreatedAt: now.Add(-24 * time.Hour)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreatePerson(ctx, p))
	must(st.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte("cred-phone"), PersonID: p.ID, PublicKey: []byte("secret-public-key"),
		Name: "Phone", BackupEligible: true, CreatedAt: now.Add(-time.Hour), LastUsedAt: now.Add(-time.Minute)}, 0, ""))
	must(st.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte("cred-key"), PersonID: p.ID, Name: "Security key", CreatedAt: now.Add(-time.Hour)}, 0, ""))
	must(st.ReplaceRecoveryCodes(ctx, p.ID, [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}, now))
	must(st.CreateSession(ctx, &store.Session{ID: "s-kari", PersonID: p.ID, Provider: "passkey", Level: "high", Clients: []string{"bank"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(st.CreateGrantTokens(ctx, &store.Grant{ID: "g-kari", ClientID: "bank", PersonID: p.ID, SessionID: "s-kari",
		Scope: []string{"openid", "offline_access"}, Level: "high", CreatedAt: now}, nil,
		&store.Token{Hash: bytes.Repeat([]byte{3}, 32), Kind: store.TokenRefresh, GrantID: "g-kari", ClientID: "bank",
			Scope: []string{"openid", "offline_access"}, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}))
	return cfgPath, st
}

// TestPersonsShow: the help desk sees who the person is and every way
// in they hold, with their numbers masked and no secret.
func TestPersonsShow(t *testing.T) {
	cfg, _ := personStore(t)
	// Spaces in the number, as people read it out, are ignored.
	out, err := runCmd(t, "persons", "show", "--config", cfg, "no:fnr:010180 12371")
	if err != nil {
		t.Fatalf("persons show: %v\n%s", err, out)
	}
	for _, want := range []string{
		"p-kari", "Kari Nordmann", "proofed high (bankid)", "not blocked", "1 live", "1 (1 offline", "2 left",
		"no:fnr", "010180•••••", "no cap: a login with it reaches the level it proves", "no:dnr", "410180•••••",
		"at most substantial: linked from a substantial login", "by the person, through bankid, 2026-11-20T09:30:00Z; last used 2026-11-21T08:00:00Z",
		"Phone", "synced", "Security key", "device-bound", "never", "help desk code  none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("persons show does not say %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{personFnr, personDnr, "secret-public-key", "cred-phone"} {
		if strings.Contains(out, secret) {
			t.Errorf("persons show prints %q:\n%s", secret, out)
		}
	}
}

// TestPersonsShowByID: a person retired by add-number --merge holds no
// number any more, and is found by the person ID that show and the
// audit log print (--id); so is anyone else. The numbers of the person
// the help desk added are not said to be proofed: only what a login
// with them reaches, which is all the store records.
func TestPersonsShowByID(t *testing.T) {
	cfg, _, taken := mergedStore(t)

	out, err := runCmd(t, "persons", "show", "--config", cfg, "--id", "p-eid")
	if err != nil {
		t.Fatalf("persons show --id: %v\n%s", err, out)
	}
	for _, want := range []string{"p-eid", "Kari Nordmann", "BLOCKED since", "retired: their number was moved to person p-kari", "no numbers", "0 live", "no passkeys"} {
		if !strings.Contains(out, want) {
			t.Errorf("persons show --id of the retired person does not say %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, "persons", "show", "--config", cfg, "--id", "p-kari")
	if err != nil {
		t.Fatalf("persons show --id: %v\n%s", err, out)
	}
	// The number moved to them is theirs at the level it had; what a
	// login with it reaches is said, nothing about how they got it.
	for _, want := range []string{"p-kari", taken[:6] + "•••••", "no cap: a login with it reaches the level it proves"} {
		if !strings.Contains(out, want) {
			t.Errorf("persons show --id p-kari does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "proofed with it") || strings.Contains(out, taken) {
		t.Errorf("persons show --id p-kari:\n%s", out)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nobody", []string{"--id", "nobody"}, 1, "no person with ID nobody"},
		{"both", []string{"--id", "p-kari", "no:fnr:" + personFnr}, 2, "IDENTIFIER or --id, not both"},
		{"neither", nil, 2, "missing IDENTIFIER"},
	} {
		out, err := runCmd(t, append([]string{"persons", "show", "--config", cfg}, tt.args...)...)
		if code := exitStatus(err, &bytes.Buffer{}); code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: exit status %d, %v; want %d and %q\n%s", tt.name, code, err, tt.code, tt.want, out)
		}
	}
}

// TestPersonsBlockAndUnblock: a block ends the person's sessions and
// revokes their tokens in one write, is shown, is audited with the
// reason and who did it (and no number), and is lifted by unblock; a
// second block or unblock changes nothing and says so.
func TestPersonsBlockAndUnblock(t *testing.T) {
	cfg, st := personStore(t)
	ctx := context.Background()
	id := "no:fnr:" + personFnr
	out, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "phone stolen, called the help desk", "--by", "Ola at the help desk", id)
	if err != nil {
		t.Fatalf("persons block: %v\n%s", err, out)
	}
	if !strings.Contains(out, "blocked person p-kari") || !strings.Contains(out, "Ended 1 sessions and revoked 1 grants") {
		t.Errorf("persons block says:\n%s", out)
	}
	// This store, like a running node's, drops what it keeps of the
	// session within a second of another process's write.
	waitFor(t, "the person's session to end", 3*time.Second, func() bool {
		_, err := st.GetSession(ctx, "s-kari", time.Now())
		return err != nil
	})
	if g, err := st.GetGrant(ctx, "g-kari"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("the person's grant: %+v, %v; want it revoked", g, err)
	}
	if out, _ := runCmd(t, "persons", "show", "--config", cfg, id); !strings.Contains(out, "BLOCKED since") ||
		!strings.Contains(out, "phone stolen, called the help desk") || !strings.Contains(out, "0 live") {
		t.Errorf("persons show after the block:\n%s", out)
	}
	out, err = runCmd(t, "persons", "block", "--config", cfg, "--reason", "again", id)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "blocked already") {
		t.Errorf("a second block: exit status %d, %v\n%s", code, err, out)
	}

	out, err = runCmd(t, "persons", "unblock", "--config", cfg, "--reason", "identity checked at the counter", "no:dnr:"+personDnr)
	if err != nil || !strings.Contains(out, "lifted the block on person p-kari") {
		t.Fatalf("persons unblock: %v\n%s", err, out)
	}
	if p, err := st.GetPerson(ctx, "p-kari"); err != nil || p.Blocked() {
		t.Errorf("after the unblock: %+v, %v", p, err)
	}
	out, err = runCmd(t, "persons", "unblock", "--config", cfg, "--reason", "again", id)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "not blocked") {
		t.Errorf("a second unblock: exit status %d, %v\n%s", code, err, out)
	}

	// By the person's ID, as for a person retired by add-number
	// --merge, who holds no number.
	if out, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "by ID", "--id", "p-kari"); err != nil ||
		!strings.Contains(out, "blocked person p-kari") {
		t.Fatalf("persons block --id: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "persons", "unblock", "--config", cfg, "--reason", "by ID", "--id", "p-kari"); err != nil ||
		!strings.Contains(out, "lifted the block on person p-kari") {
		t.Fatalf("persons unblock --id: %v\n%s", err, out)
	}

	events, err := st.ListPersonAudit(ctx, "p-kari", 10)
	if err != nil {
		t.Fatal(err)
	}
	events = events[2:] // the two by ID, newest first
	me := "unknown"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Type+" by "+e.Details["by"]+": "+e.Details["reason"])
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), personFnr) || strings.Contains(string(raw), personDnr) {
			t.Errorf("event %s holds a national number: %s", e.Type, raw)
		}
	}
	want := []string{"person_unblocked by " + me + ": identity checked at the counter", "person_blocked by Ola at the help desk: phone stolen, called the help desk"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPersonsErrors: an identifier that is no valid number says why,
// one nobody holds says so, and a block without a short plain reason is
// a command called wrongly; nothing is changed by any of them.
func TestPersonsErrors(t *testing.T) {
	cfg, st := personStore(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a wrong check digit", []string{"show", "no:fnr:01018012372"}, 2, "not a valid number: no:fnr: check digit"},
		{"a D-number as a birth number", []string{"show", "no:fnr:" + personDnr}, 2, "another kind"},
		{"an unknown scheme", []string{"show", "xx:yy:123"}, 2, "unknown identifier scheme"},
		{"no scheme", []string{"show", personFnr}, 2, "the scheme and the number"},
		{"no identifier", []string{"show"}, 2, "missing IDENTIFIER"},
		{"nobody holds it", []string{"show", "no:fnr:15076500565"}, 1, "no person found"},
		{"block without a reason", []string{"block", "no:fnr:" + personFnr}, 2, "--reason is required"},
		{"block with a blank reason", []string{"block", "--reason", "  ", "no:fnr:" + personFnr}, 2, "--reason is required"},
		{"block with a long reason", []string{"block", "--reason", strings.Repeat("a", store.MaxBlockReasonLen+1), "no:fnr:" + personFnr}, 2, "longer than 200"},
		{"block with two lines", []string{"block", "--reason", "stolen\nphone", "no:fnr:" + personFnr}, 2, "one line of plain text"},
		{"unblock without a reason", []string{"unblock", "no:fnr:" + personFnr}, 2, "--reason is required"},
		{"block without IDENTIFIER or --id", []string{"block", "--reason", "stolen"}, 2, "missing IDENTIFIER (or --id ID)"},
		{"block with IDENTIFIER and --id", []string{"block", "--reason", "stolen", "--id", "p-kari", "no:fnr:" + personFnr}, 2, "not both"},
		{"unblock with IDENTIFIER and --id", []string{"unblock", "--reason", "checked", "--id", "p-kari", "no:fnr:" + personFnr}, 2, "not both"},
		{"block of no such ID", []string{"block", "--reason", "stolen", "--id", "p-nobody"}, 1, "no person found"},
		{"an unknown command", []string{"delete", "no:fnr:" + personFnr}, 2, `unknown persons command "delete"`},
		{"add-number without a new number", []string{"add-number", "--reason", "new number", "no:fnr:" + personFnr}, 2, "missing NEW"},
		{"add-number without a reason", []string{"add-number", "no:dnr:" + personDnr, "no:fnr:15076500565"}, 2, "--reason is required"},
		{"add-number with a wrong check digit", []string{"add-number", "--reason", "new number", "no:dnr:" + personDnr, "no:fnr:15076500566"}, 2, "not a valid number: no:fnr: check digit"},
		{"add-number of a D-number as a birth number", []string{"add-number", "--reason", "new number", "no:fnr:" + personFnr, "no:fnr:" + personDnr}, 2, "another kind"},
		{"add-number of the same number", []string{"add-number", "--reason", "new number", "no:fnr:" + personFnr, "no:fnr:010180 12371"}, 2, "nothing to add"},
		{"add-number of a number held already", []string{"add-number", "--reason", "new number", "no:fnr:" + personFnr, "no:dnr:" + personDnr}, 1, "holds that no:dnr number 410180••••• already"},
		{"add-number to nobody", []string{"add-number", "--reason", "new number", "no:fnr:15076500565", "no:fnr:" + personFnr}, 1, "no person found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"persons", tt.args[0], "--config", cfg}, tt.args[1:]...)
			if tt.args[0] == "delete" {
				args = []string{"persons", "delete"}
			}
			out, err := runCmd(t, args...)
			if code := exitStatus(err, &bytes.Buffer{}); code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit status %d, %v; want %d and %q\n%s", code, err, tt.code, tt.want, out)
			}
			if err != nil && strings.Contains(err.Error(), personFnr) {
				t.Errorf("the error repeats the number: %v", err)
			}
		})
	}
	if p, err := st.GetPerson(context.Background(), "p-kari"); err != nil || p.Blocked() || len(p.Identifiers) != 2 {
		t.Errorf("after the refused commands: %+v, %v", p, err)
	}
}

// mergedStore is personStore's store after add-number --merge moved a
// new birth number, which it returns, from p-eid, a person an eID login
// with it made, to p-kari, retiring p-eid.
func mergedStore(t *testing.T) (cfg string, st store.Store, taken string) {
	t.Helper()
	cfg, st = personStore(t)
	taken = syntheticFnr(t, 1)
	eidPerson(t, st, "p-eid", taken)
	if out, err := runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number given", "--merge",
		"no:fnr:"+personFnr, "no:fnr:"+taken); err != nil {
		t.Fatalf("persons add-number --merge: %v\n%s", err, out)
	}
	waitFor(t, "the number to move", 3*time.Second, func() bool { return holder(t, st, taken) == "p-kari" })
	return cfg, st, taken
}

// syntheticFnr is a valid birth number of nobody (month + 80), drawn at
// random for someone born on the nth (1 to 28) of June 1990: a test
// that gives each number it needs its own nth gets numbers that differ
// in their birth date, where draws for one date would collide now and
// then (about 330 valid numbers to a date).
func syntheticFnr(t *testing.T, nth int) string {
	t.Helper()
	return syntheticFnrFrom(t, rand.Reader, nth)
}

// syntheticFnrFrom is syntheticFnr's number drawn from r.
func syntheticFnrFrom(t *testing.T, r io.Reader, nth int) string {
	t.Helper()
	n, err := identity.SyntheticNO(r, identity.KindFnr, time.Date(1990, time.June, nth, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSyntheticFnrsDiffer: the numbers a test draws are distinct
// whatever the draws, even the same individual number each time.
func TestSyntheticFnrsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for nth := 1; nth <= 3; nth++ {
		n := syntheticFnrFrom(t, bytes.NewReader(bytes.Repeat([]byte{0, 7}, 1000)), nth)
		if _, err := identity.Parse(identity.SchemeNOFnr, n); err != nil || seen[n] {
			t.Errorf("draw %d: %s (%v), drawn before: %v", nth, n, err, seen[n])
		}
		seen[n] = true
	}
}

// eidPerson stores a person as a login through an eID with number makes
// one: that number and nothing else, with a live session in which the
// bank got tokens.
func eidPerson(t *testing.T, st store.Store, id, number string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := st.CreatePerson(ctx, &store.Person{ID: id, GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1980-01-01",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: number}}, ProofingLevel: "high", ProofingMethod: "bankid", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, &store.Session{ID: "s-" + id, PersonID: id, Provider: "bankid", Level: "high", Clients: []string{"bank"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// holder names the person who holds the birth number, as the store
// finds them.
func holder(t *testing.T, st store.Store, number string) string {
	t.Helper()
	p, err := st.GetPersonByIdentifier(context.Background(), "no:fnr", number)
	if err != nil {
		return err.Error()
	}
	return p.ID
}

// TestPersonsAddNumber: the help desk gives a person the birth number
// that replaced their D-number; both numbers find the same person, show
// lists both, and the change is audited with the reason, who did it and
// the scheme, never the number. A second birth number (one replaced) is
// added the same way.
func TestPersonsAddNumber(t *testing.T) {
	cfg, st := personStore(t)
	newFnr := syntheticFnr(t, 1)
	out, err := runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number given, register checked", "--by", "Ola",
		"no:dnr:"+personDnr, "no:fnr:"+newFnr)
	if err != nil {
		t.Fatalf("persons add-number: %v\n%s", err, out)
	}
	if !strings.Contains(out, "added the no:fnr number "+newFnr[:6]+"••••• to person p-kari") || strings.Contains(out, newFnr) {
		t.Errorf("persons add-number says:\n%s", out)
	}
	waitFor(t, "the person to be read again", 3*time.Second, func() bool { return holder(t, st, newFnr) == "p-kari" })
	for _, n := range []string{personFnr, newFnr} {
		if got := holder(t, st, n); got != "p-kari" {
			t.Errorf("a birth number is held by %s, want p-kari", got)
		}
	}
	if out, _ := runCmd(t, "persons", "show", "--config", cfg, "no:fnr:"+newFnr); !strings.Contains(out, "p-kari") ||
		!strings.Contains(out, newFnr[:6]+"•••••") || !strings.Contains(out, "410180•••••") {
		t.Errorf("persons show by the new number:\n%s", out)
	}
	events, err := st.ListPersonAudit(context.Background(), "p-kari", 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("audit events %v, %v; want one", events, err)
	}
	e := events[0]
	if e.Type != "identifier_added" || e.Details["scheme"] != "no:fnr" || e.Details["by"] != "Ola" ||
		e.Details["reason"] != "birth number given, register checked" || e.Details["retired"] != "" {
		t.Errorf("audit event %+v", e)
	}
	if raw, _ := json.Marshal(e); strings.Contains(string(raw), newFnr) || strings.Contains(string(raw), personDnr) {
		t.Errorf("the event holds a national number: %s", raw)
	}
	// The person's sessions go on: nothing about them changed.
	if _, err := st.GetSession(context.Background(), "s-kari", time.Now()); err != nil {
		t.Errorf("the person's session after a number was added: %v", err)
	}

	// A birth number replaced later: a second one is added too.
	third := syntheticFnr(t, 2)
	if out, err := runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number replaced", "no:fnr:"+newFnr, "no:fnr:"+third); err != nil {
		t.Fatalf("a second birth number: %v\n%s", err, out)
	}
	waitFor(t, "the second birth number to be the person's", 3*time.Second, func() bool { return holder(t, st, third) == "p-kari" })
}

// TestPersonsAddNumberToBlocked: a number is not added to a person
// whose Varde ID is blocked; the help desk is told to unblock it first,
// and nothing changes.
func TestPersonsAddNumberToBlocked(t *testing.T) {
	cfg, st := personStore(t)
	if _, err := st.BlockPerson(context.Background(), "p-kari", "phone stolen", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	newFnr := syntheticFnr(t, 1)
	out, err := runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number given", "no:dnr:"+personDnr, "no:fnr:"+newFnr)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "Varde ID is blocked; unblock it first (varde persons unblock") ||
		strings.Contains(err.Error(), newFnr) {
		t.Errorf("a number added to a blocked person: exit status %d, %v\n%s", code, err, out)
	}
	if got := holder(t, st, newFnr); got == "p-kari" {
		t.Errorf("the blocked person was given the number")
	}
	if events, err := st.ListPersonAudit(context.Background(), "p-kari", 10); err != nil || len(events) != 0 {
		t.Errorf("audit events after the refusal: %v, %v", events, err)
	}
}

// TestPersonsAddNumberHeldByAnother: a new number with which an eID login
// came first, and made a person, is refused, saying so; with --merge it
// moves and that person is retired: blocked, their session ended, both
// audited. A person with a passkey of their own is never merged.
func TestPersonsAddNumberHeldByAnother(t *testing.T) {
	cfg, st := personStore(t)
	ctx := context.Background()
	taken := syntheticFnr(t, 1)
	eidPerson(t, st, "p-eid", taken)
	args := []string{"persons", "add-number", "--config", cfg, "--reason", "birth number given", "no:fnr:" + personFnr, "no:fnr:" + taken}

	out, err := runCmd(t, args...)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "belongs to another person at Varde, p-eid") ||
		!strings.Contains(err.Error(), "--merge") || strings.Contains(err.Error(), taken) {
		t.Errorf("a number held by another: exit status %d, %v\n%s", code, err, out)
	}
	if got := holder(t, st, taken); got != "p-eid" {
		t.Errorf("after the refusal the number is held by %s", got)
	}

	out, err = runCmd(t, append(args[:len(args)-2:len(args)-2], "--merge", "no:fnr:"+personFnr, "no:fnr:"+taken)...)
	if err != nil {
		t.Fatalf("persons add-number --merge: %v\n%s", err, out)
	}
	for _, want := range []string{"from person p-eid to person p-kari, and retired person p-eid", "Ended 1 sessions and revoked 0 grants of person p-eid",
		"not issued any more", "person p-kari's sub"} {
		if !strings.Contains(out, want) {
			t.Errorf("persons add-number --merge does not say %q:\n%s", want, out)
		}
	}
	// This store, like a running node's, drops what it keeps of the
	// persons within a second of another process's write.
	waitFor(t, "the number to move", 3*time.Second, func() bool { return holder(t, st, taken) == "p-kari" })
	retired, err := st.GetPerson(ctx, "p-eid")
	if err != nil || !retired.Blocked() || len(retired.Identifiers) != 0 {
		t.Errorf("the retired person: %+v, %v", retired, err)
	}
	// The retired person is found by --id, but their block is no block
	// the help desk lifts.
	out, err = runCmd(t, "persons", "unblock", "--config", cfg, "--reason", "checked", "--id", "p-eid")
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "retired") {
		t.Errorf("unblocking the retired person: exit status %d, %v\n%s", code, err, out)
	}
	if p, err := st.GetPerson(ctx, "p-eid"); err != nil || !p.Blocked() {
		t.Errorf("the retired person after a refused unblock: %+v, %v", p, err)
	}
	waitFor(t, "the retired person's session to end", 3*time.Second, func() bool {
		_, err := st.GetSession(ctx, "s-p-eid", time.Now())
		return err != nil
	})
	for person, want := range map[string]string{"p-kari": "identifier_added p-eid", "p-eid": "person_retired p-kari"} {
		events, err := st.ListPersonAudit(ctx, person, 10)
		if err != nil || len(events) != 1 || events[0].Type+" "+events[0].Details["retired"]+events[0].Details["into"] != want {
			t.Errorf("events of %s: %v, %v; want %s", person, events, err, want)
		}
	}

	// Someone with a passkey is a person of their own.
	other := syntheticFnr(t, 2)
	eidPerson(t, st, "p-own", other)
	if err := st.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte("cred-own"), PersonID: "p-own", Name: "Phone", CreatedAt: time.Now()}, 0, ""); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "persons", "add-number", "--config", cfg, "--reason", "birth number given", "--merge", "no:fnr:"+personFnr, "no:fnr:"+other)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "person p-own holds 1 passkeys") {
		t.Errorf("merging a person with a passkey: exit status %d, %v\n%s", code, err, out)
	}
	if got := holder(t, st, other); got != "p-own" {
		t.Errorf("after the refused merge the number is held by %s", got)
	}
	if p, err := st.GetPerson(ctx, "p-own"); err != nil || p.Blocked() {
		t.Errorf("the person refused a merge: %+v, %v", p, err)
	}
}
