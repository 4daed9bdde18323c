package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// deskCodeIn finds the help desk code persons recover printed in out.
func deskCodeIn(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("persons recover printed no code:\n%s", out)
	}
	return m[1]
}

// TestPersonsRecover: the help desk, having checked a person in person,
// gives them a code to log in with once within a day, printed once and
// stored only as its hash; the same write ends the person's sessions,
// revokes their grants and, with --remove-passkeys, removes their
// passkeys; it is audited with what was checked and who gave it, and no
// code or number. A second code replaces the first. What was checked is
// required, and a blocked or retired person gets no code.
func TestPersonsRecover(t *testing.T) {
	cfg, st := personStore(t)
	ctx := context.Background()
	id := "no:fnr:" + personFnr

	out, err := runCmd(t, "persons", "recover", "--config", cfg, "--checked", "passport at the counter", "--by", "Ola at the help desk", id)
	if err != nil {
		t.Fatalf("persons recover: %v\n%s", err, out)
	}
	first := deskCodeIn(t, out)
	for _, want := range []string{"person p-kari", "/passkey/recover", "24 hours", "Ended 1 sessions and revoked 1 grants",
		"Kept 2 passkeys", "--remove-passkeys"} {
		if !strings.Contains(out, want) {
			t.Errorf("persons recover does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, personFnr) {
		t.Errorf("persons recover prints the number:\n%s", out)
	}
	hash := func(code string) []byte {
		h := sha256.Sum256([]byte(strings.ReplaceAll(code, "-", "")))
		return h[:]
	}
	if out, _ := runCmd(t, "persons", "show", "--config", cfg, id); !strings.Contains(out, "help desk code  good until") ||
		!strings.Contains(out, "not used yet") || strings.Contains(out, first) {
		t.Errorf("persons show after a code:\n%s", out)
	}
	waitFor(t, "the person's session to end", 3*time.Second, func() bool {
		_, err := st.GetSession(ctx, "s-kari", time.Now())
		return err != nil
	})
	if g, err := st.GetGrant(ctx, "g-kari"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("the person's grant: %+v, %v; want it revoked", g, err)
	}

	out, err = runCmd(t, "persons", "recover", "--config", cfg, "--checked", "ID card at the counter", "--remove-passkeys", "--id", "p-kari")
	if err != nil {
		t.Fatalf("persons recover --remove-passkeys: %v\n%s", err, out)
	}
	second := deskCodeIn(t, out)
	if second == first || !strings.Contains(out, "Removed 2 passkeys") {
		t.Errorf("persons recover --remove-passkeys says:\n%s", out)
	}
	if keys, err := st.ListPasskeys(ctx, "p-kari"); err != nil || len(keys) != 0 {
		t.Errorf("passkeys after --remove-passkeys: %d, %v", len(keys), err)
	}
	// The first code was replaced; the second logs in once.
	if _, err := st.UseDeskCode(ctx, hash(first), time.Now()); err == nil {
		t.Error("the replaced code still works")
	}
	if who, err := st.UseDeskCode(ctx, hash(second), time.Now()); err != nil || who != "p-kari" {
		t.Errorf("the new code: %q, %v", who, err)
	}
	if out, _ := runCmd(t, "persons", "show", "--config", cfg, id); !strings.Contains(out, "help desk code  used ") {
		t.Errorf("persons show after the code was used:\n%s", out)
	}

	events, err := st.ListPersonAudit(ctx, "p-kari", 10)
	if err != nil {
		t.Fatal(err)
	}
	var issued []*store.AuditEvent
	for _, e := range events {
		if e.Type == "recovery_issued" {
			issued = append(issued, e)
		}
	}
	if len(issued) != 2 || issued[1].Details["checked"] != "passport at the counter" || issued[1].Details["by"] != "Ola at the help desk" ||
		issued[0].Details["passkeys"] != "2" || issued[1].Details["sessions"] != "1" || issued[1].Details["grants"] != "1" {
		t.Errorf("recovery_issued events: %+v", issued)
	}
	for _, e := range issued {
		for k, v := range e.Details {
			if strings.Contains(v, first) || strings.Contains(v, second) || strings.Contains(v, personFnr) {
				t.Errorf("the event's %s holds a code or the number: %q", k, v)
			}
		}
	}

	// The person's export holds what was checked and done, and no code;
	// a help desk code is none of their recovery codes.
	var stdout, stderr bytes.Buffer
	if err := run([]string{"persons", "export", "--config", cfg, "--reason", "access request", "--out", "-", id}, &stdout, &stderr); err != nil {
		t.Fatalf("persons export: %v\n%s", err, stderr.String())
	}
	out = stdout.String()
	var doc personExport
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var exported []map[string]string
	for _, e := range doc.Events {
		if e.Event == "recovery_issued" {
			exported = append(exported, e.Details)
		}
	}
	if len(exported) != 2 || exported[0]["checked"] != "passport at the counter" || exported[1]["passkeys"] != "2" || exported[1]["expires"] == "" {
		t.Errorf("recovery_issued in the export: %v", exported)
	}
	if doc.RecoveryCodes.Left != 2 || strings.Contains(out, first) || strings.Contains(out, second) {
		t.Errorf("the export's recovery codes %+v, or a help desk code in it:\n%s", doc.RecoveryCodes, out)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing checked", []string{id}, 2, "--checked is required"},
		{"nobody", []string{"--checked", "passport", "--id", "nobody"}, 1, "no person with ID nobody"},
	} {
		out, err := runCmd(t, append([]string{"persons", "recover", "--config", cfg}, tt.args...)...)
		if code := exitStatus(err, &bytes.Buffer{}); code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: exit status %d, %v; want %d and %q\n%s", tt.name, code, err, tt.code, tt.want, out)
		}
	}

	if _, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "stolen phone", id); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "persons", "recover", "--config", cfg, "--checked", "passport", id)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "blocked") || !strings.Contains(err.Error(), "unblock") {
		t.Errorf("a code for a blocked person: exit status %d, %v\n%s", code, err, out)
	}
}

// TestPersonsRecoverRetired: a person retired by add-number --merge gets
// no code: their number went to another person, who is the one to log
// in; the message says which.
func TestPersonsRecoverRetired(t *testing.T) {
	cfg, _, _ := mergedStore(t)
	out, err := runCmd(t, "persons", "recover", "--config", cfg, "--checked", "passport at the counter", "--id", "p-eid")
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "retired") || !strings.Contains(err.Error(), "p-kari") {
		t.Errorf("a code for a retired person: exit status %d, %v\n%s", code, err, out)
	}
}
