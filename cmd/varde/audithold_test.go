package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestAuditHold: an operator holds one person's client addresses past
// their retention for a preservation order; the sweep every node runs
// keeps them and deletes everyone else's; the hold is listed, extended
// and released, and the next sweep deletes what it kept. Each step is
// an audit event naming the hold and the person's Varde ID, never their
// number, and none shows among the person's own events (ADR 45). On
// PostgreSQL too, which many nodes sweep.
func TestAuditHold(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { testAuditHold(t, driver) })
	}
}

func testAuditHold(t *testing.T, driver string) {
	cfgPath := adminConfig(t)
	if driver == "postgres" {
		cfgPath = postgresAdminConfig(t)
	}
	cfg, st := personStoreIn(t, cfgPath)
	ctx := context.Background()
	now := time.Now().UTC()
	day := 24 * time.Hour
	appendLogins(t, st, login{now.Add(-200 * day), "p-kari", "192.0.2.1"}, login{now.Add(-200 * day), "p-ola", "192.0.2.2"})
	until := now.Add(90 * day).Format(time.DateOnly)
	out, err := runCmd(t, "audit", "hold", "add", "--config", cfg, "--reason", "sikringspålegg 26-4711, Oslo politidistrikt", "--by", "Ola",
		"--until", until, "no:fnr:"+personFnr)
	if err != nil {
		t.Fatalf("audit hold add: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`added hold (hold-[a-z0-9]+) at `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("audit hold add does not name the hold:\n%s", out)
	}
	id := m[1]
	for _, want := range []string{"the events of person p-kari from the start of the log up to", "(180 days)", "The person is not told",
		"It covers 1 client address kept now."} {
		if !strings.Contains(out, want) {
			t.Errorf("audit hold add does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, personFnr) {
		t.Errorf("audit hold add prints the number:\n%s", out)
	}

	// A node's housekeeping round.
	sweep, err := st.DeleteAuditAddresses(ctx, now.Add(-180*day), time.Now())
	if err != nil || sweep != (store.AddrSweep{Deleted: 1, Held: 1}) {
		t.Fatalf("the sweep under the hold: %+v, %v; want Kari's address held, Ola's deleted", sweep, err)
	}

	// The chain verifies with the held address and the deleted one.
	out, err = runCmd(t, "store", "verify", "--config", cfg)
	if err != nil || !strings.Contains(out, "addresses: deleted from the events up to ") || strings.Contains(out, "WARNING") {
		t.Errorf("store verify under the hold: %v\n%s", err, out)
	}

	out, err = runCmd(t, "audit", "hold", "list", "--config", cfg)
	if err != nil || !regexp.MustCompile(id+` +live +the events of person p-kari .* Ola at .* sikringspålegg 26-4711`).MatchString(out) {
		t.Errorf("audit hold list: %v\n%s", err, out)
	}
	later := now.Add(180 * day)
	out, err = runCmd(t, "audit", "hold", "extend", "--config", cfg, "--reason", "renewed, 26-4711", "--by", "Ola",
		"--until", later.Format(time.DateOnly), id)
	// A date is the whole day: the hold runs to its end.
	end := later.Truncate(day).Add(day).Format(time.RFC3339)
	if err != nil || !strings.Contains(out, "extended hold "+id) || !strings.Contains(out, "until "+end) {
		t.Errorf("audit hold extend: %v\n%s", err, out)
	}
	out, err = runCmd(t, "audit", "hold", "release", "--config", cfg, "--reason", "order lifted", "--by", "Kari", id)
	if err != nil || !strings.Contains(out, "released hold "+id) {
		t.Errorf("audit hold release: %v\n%s", err, out)
	}
	out, err = runCmd(t, "audit", "hold", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "released ") || !strings.Contains(out, "by Kari (order lifted)") {
		t.Errorf("audit hold list after the release: %v\n%s", err, out)
	}
	sweep, err = st.DeleteAuditAddresses(ctx, now.Add(-180*day), time.Now())
	if err != nil || sweep != (store.AddrSweep{Deleted: 1}) {
		t.Errorf("the sweep after the release: %+v, %v; want Kari's address deleted", sweep, err)
	}

	events, err := st.ListAuditRange(ctx, store.AuditQuery{Types: []string{eventHoldAdded, eventHoldExtended, eventHoldReleased}})
	if err != nil || len(events) != 3 {
		t.Fatalf("hold events: %d, %v; want 3", len(events), err)
	}
	for i, e := range events {
		if e.Details["hold"] != id || e.Details["by"] == "" || e.Details["reason"] == "" || e.PersonID != "" {
			t.Errorf("event %d: %+v", i, e)
		}
		if raw, _ := json.Marshal(e); strings.Contains(string(raw), personFnr) {
			t.Errorf("event %d holds the national number: %s", i, raw)
		}
	}
	if events[0].Details["person"] != "p-kari" || events[1].Details["was_until"] == "" {
		t.Errorf("the events name the person %q and the end extended %q", events[0].Details["person"], events[1].Details["was_until"])
	}
	mine, err := st.ListPersonAudit(ctx, "p-kari", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range mine {
		if strings.HasPrefix(e.Type, "audit_hold") {
			t.Errorf("the person's own events show the hold: %+v", e)
		}
	}
}

// TestAuditHoldRefused: what a hold cannot be is refused with what to
// do instead, before anything is stored.
func TestAuditHoldRefused(t *testing.T) {
	cfg, st := personStore(t)
	now := time.Now().UTC()
	soon := now.Add(90 * 24 * time.Hour).Format(time.DateOnly)
	add := []string{"audit", "hold", "add", "--config", cfg, "--by", "Ola"}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no until", append(add, "--reason", "26-1", "no:fnr:"+personFnr), true, "--until is required"},
		{"until too far", append(add, "--reason", "26-1", "--until", now.Add(400*24*time.Hour).Format(time.DateOnly), "no:fnr:"+personFnr), true,
			"more than 366 days away"},
		{"until past", append(add, "--reason", "26-1", "--until", "2020-01-01", "no:fnr:"+personFnr), true, "is not in the future"},
		{"until not a time", append(add, "--reason", "26-1", "--until", "90d", "no:fnr:"+personFnr), true, "want a date (2026-11-22)"},
		{"no reason", append(add, "--until", soon, "no:fnr:"+personFnr), true, "--reason is required"},
		{"a number in the reason", append(add, "--reason", "order about "+personFnr, "--until", soon, "no:fnr:"+personFnr), true,
			"--reason looks as if it holds a national identity number"},
		{"to in the future", append(add, "--reason", "26-1", "--until", soon, "--to", soon, "no:fnr:"+personFnr), true, "is in the future"},
		{"from after to", append(add, "--reason", "26-1", "--until", soon, "--from", "2026-01-02", "--to", "2026-01-01T00:00:00Z"), true,
			"is not before --to"},
		{"everyone since the start", append(add, "--reason", "26-1", "--until", soon), true, "would keep everyone's addresses"},
		{"both person and ID", append(add, "--reason", "26-1", "--until", soon, "--id", "p-kari", "no:fnr:"+personFnr), true, "not both"},
		{"nobody", append(add, "--reason", "26-1", "--until", soon, "--id", "p-none"), false, "no person with ID p-none"},
		// Kari has no event, so no address, and 2020's are long gone: a
		// hold of either would keep nothing, ever.
		{"nothing of a person", append(add, "--reason", "26-1", "--until", soon, "no:fnr:"+personFnr), false,
			"no client address is kept now of the events of person p-kari from the start of the log up to "},
		{"nothing in a window", append(add, "--reason", "26-1", "--until", soon, "--from", "2020-01-01", "--to", "2020-02-01"), false,
			"no client address is kept now of every event from 2020-01-01T00:00:00Z up to 2020-02-02T00:00:00Z"},
		{"no such hold", []string{"audit", "hold", "release", "--config", cfg, "--reason", "lifted", "hold-none"}, false, "no hold hold-none"},
		{"no hold named", []string{"audit", "hold", "release", "--config", cfg, "--reason", "lifted"}, true, "missing HOLD"},
		{"unknown command", []string{"audit", "hold", "drop", "--config", cfg}, true, `unknown audit hold command "drop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, tc.args...)
			_, usage := errors.AsType[*usageError](err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || usage != tc.usage {
				t.Errorf("%v (a usage error: %v)\n%s; want %q, a usage error: %v", err, usage, out, tc.want, tc.usage)
			}
		})
	}
	holds, err := st.ListAuditHolds(context.Background(), now, time.Time{})
	if err != nil || len(holds) != 0 {
		t.Errorf("holds stored: %v, %v; want none", holds, err)
	}

	// A window up to today takes in today so far.
	appendLogins(t, st, login{now.Add(-time.Hour), "p-kari", "192.0.2.1"})
	out, err := runCmd(t, append(add, "--reason", "26-2", "--until", soon, "--from", "2026-01-01", "--to", now.Format(time.DateOnly))...)
	if err != nil {
		t.Fatalf("a window's hold: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`hold-[a-z0-9]+`).FindString(out)
	if !strings.Contains(out, "every event from 2026-01-01T00:00:00Z up to") {
		t.Errorf("a window's hold:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extend", "--reason", "26-2", "--until", now.Add(24 * time.Hour).Format(time.DateOnly), id}, "--until must be later"},
		{[]string{"release", "--reason", "lifted", id}, ""},
		{[]string{"release", "--reason", "lifted", id}, "was released at"},
		{[]string{"extend", "--reason", "26-2", "--until", soon, id}, "was released at"},
	} {
		out, err := runCmd(t, append([]string{"audit", "hold", tc.args[0], "--config", cfg}, tc.args[1:]...)...)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("audit hold %v: %v\n%s; want %q", tc.args, err, out, tc.want)
		}
	}
}

// TestPersonsExportLeavesOutHeldAddresses: a person's export gives the
// addresses of their events within audit.address_retention, and leaves
// out, as if deleted, those older that a hold keeps, unless the help
// desk asks for them with --with-held-addresses; the hold's own events
// are not in it (ADR 45).
func TestPersonsExportLeavesOutHeldAddresses(t *testing.T) {
	cfg, st := personStore(t)
	now := time.Now().UTC()
	day := 24 * time.Hour
	appendLogins(t, st, login{now.Add(-200 * day), "p-kari", "192.0.2.1"}, login{now.Add(-10 * day), "p-kari", "192.0.2.2"})
	if out, err := runCmd(t, "audit", "hold", "add", "--config", cfg, "--reason", "26-4711", "--until", now.Add(90*day).Format(time.DateOnly),
		"--id", "p-kari"); err != nil {
		t.Fatalf("audit hold add: %v\n%s", err, out)
	}
	dir := t.TempDir()
	addrs := func(flags ...string) []string {
		t.Helper()
		file := filepath.Join(dir, fmt.Sprintf("export-%d.json", len(flags)))
		args := append([]string{"persons", "export", "--config", cfg, "--reason", "access request", "--out", file}, flags...)
		if out, err := runCmd(t, append(args, "--id", "p-kari")...); err != nil {
			t.Fatalf("persons export: %v\n%s", err, out)
		}
		doc, raw := readExport(t, file)
		if strings.Contains(raw, "audit_hold") || strings.Contains(raw, "26-4711") {
			t.Errorf("the export shows the hold:\n%s", raw)
		}
		var got []string
		for _, e := range doc.Events {
			if d, ok := e["details"].(map[string]any); ok && d["addr"] != nil {
				got = append(got, d["addr"].(string))
			}
		}
		return got
	}
	if got := addrs(); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Errorf("addresses in the export: %q, want only the one within the retention", got)
	}
	if got := addrs("--with-held-addresses"); !slices.Equal(got, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("addresses in the export --with-held-addresses: %q, want both", got)
	}
}

// login is a person's login at a time from an address.
type login struct {
	at           time.Time
	person, addr string
}

// appendLogins appends an authentication event for each login.
func appendLogins(t *testing.T, st store.AuditLog, logins ...login) {
	t.Helper()
	for _, l := range logins {
		e := &store.AuditEvent{Time: l.at, Type: "authentication", PersonID: l.person, Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: l.addr}}
		if err := st.AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}
