package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// exported is the part of varde persons export's document the tests
// read; the rest is checked as text.
type exported struct {
	Format      string `json:"format"`
	Issuer      string `json:"issuer"`
	Person      map[string]any
	Identifiers []map[string]any
	Block       struct {
		Blocked bool
		Since   string
		Reason  string
		History []map[string]any
	}
	Passkeys      []map[string]any
	RecoveryCodes map[string]any `json:"recovery_codes"`
	Sessions      []map[string]any
	Grants        []map[string]any
	Services      []map[string]any
	Events        []map[string]any
}

// exportStore is personStore's store with more in it, for an export:
// the bank registered as Demo Bank, the person's logins and what the
// bank received in the audit log, and a second person, with ways in,
// a grant and events of their own, none of which may reach the first
// person's export.
func exportStore(t *testing.T, driver string) (string, store.Store) {
	t.Helper()
	cfgPath := adminConfig(t)
	if driver == "postgres" {
		cfgPath = postgresAdminConfig(t)
	}
	cfg, st := personStoreIn(t, cfgPath)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutClient(ctx, &store.Client{ID: "bank", Name: "Demo Bank", RedirectURIs: []string{"https://bank.example/cb"}, CreatedAt: now}))
	for _, e := range []*store.AuditEvent{
		{Time: now.Add(-2 * time.Minute), Type: "authentication", PersonID: "p-kari", ClientID: "bank", Provider: "passkey", Level: "high",
			Result: store.ResultSuccess, Details: map[string]string{"method": "passkey", "credential": "cred-ref", "session": "s-kari"}},
		{Time: now.Add(-2 * time.Minute), Type: "consent", PersonID: "p-kari", ClientID: "bank", Result: store.ResultSuccess,
			Details: map[string]string{"claims": "name birthdate"}},
		{Time: now.Add(-time.Minute), Type: "authentication", PersonID: "p-kari", ClientID: "bank", Provider: "bankid",
			Result: store.ResultFailure, Reason: "insufficient_level"},
	} {
		must(st.AppendAudit(ctx, e))
	}

	other := &store.Person{ID: "p-ola", WebAuthnID: bytes.Repeat([]byte{9}, 32), GivenName: "Ola", FamilyName: "Hansen", BirthDate: "1975-05-05",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: syntheticFnr(t, 2)}}, ProofingLevel: "substantial", ProofingMethod: "minid", CreatedAt: now}
	must(st.CreatePerson(ctx, other))
	must(st.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte("cred-ola"), PersonID: other.ID, Name: "Ola's laptop", CreatedAt: now}, 0, ""))
	must(st.CreateGrantTokens(ctx, &store.Grant{ID: "g-ola", ClientID: "tax", PersonID: other.ID, Scope: []string{"openid", "tax_records"}, CreatedAt: now}, nil,
		&store.Token{Hash: bytes.Repeat([]byte{4}, 32), Kind: store.TokenRefresh, GrantID: "g-ola", ClientID: "tax", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(st.AppendAudit(ctx, &store.AuditEvent{Time: now, Type: "authentication", PersonID: other.ID, Provider: "minid", Level: "substantial",
		Result: store.ResultSuccess, Details: map[string]string{"method": "minid-only-ola"}}))
	return cfg, st
}

// postgresAdminConfig is adminConfig's configuration for a new
// PostgreSQL database, with its store made.
func postgresAdminConfig(t *testing.T) string {
	t.Helper()
	cfg := adminConfig(t)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.NewDatabase(t)
	body := regexp.MustCompile(`store:\n  dsn: [^\n]*\n`).ReplaceAllLiteralString(string(raw), fmt.Sprintf("store:\n  driver: postgres\n  dsn: %q\n", dsn))
	if !strings.Contains(body, "driver: postgres") {
		t.Fatalf("adminConfig's store is not where it was:\n%s", raw)
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), config.Store{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readExport reads and decodes the export at path.
func readExport(t *testing.T, path string) (exported, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc exported
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the export is no JSON document: %v\n%s", err, raw)
	}
	return doc, string(raw)
}

// secretForms are the ways a stored secret could be written out: as
// it is, and in hex and base64.
func secretForms(b []byte) []string {
	return []string{string(b), hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
}

// TestPersonsExport: the help desk exports everything Varde holds about
// a person, for their access request (GDPR Art. 15): who they are,
// their full numbers, the block and its reasons, passkeys, recovery
// codes, sessions, the services holding grants, and every event about
// them. No token, code hash, credential ID or public key appears, and
// nothing of another person. The export is audited, without a number,
// before it is written, to a file only the operator can read. SQLite
// and PostgreSQL.
func TestPersonsExport(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { testPersonsExport(t, driver) })
	}
}

func testPersonsExport(t *testing.T, driver string) {
	cfg, st := exportStore(t, driver)
	ctx := context.Background()
	id := "no:fnr:" + personFnr
	// A block and its lifting, whose reasons the export gives.
	for _, args := range [][]string{
		{"block", "--config", cfg, "--reason", "phone stolen", "--by", "Ola at the help desk", id},
		{"unblock", "--config", cfg, "--reason", "identity checked at the counter", id},
	} {
		if out, err := runCmd(t, append([]string{"persons"}, args...)...); err != nil {
			t.Fatalf("persons %s: %v\n%s", args[0], err, out)
		}
	}
	// The block ended the session and revoked the grant: give the
	// person a new session and grant, as a login after the unblock.
	now := time.Now()
	if err := st.CreateSession(ctx, &store.Session{ID: "s-kari-2", PersonID: "p-kari", Provider: "passkey", Level: "high", AMR: []string{"hwk"},
		Clients: []string{"bank"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrantTokens(ctx, &store.Grant{ID: "g-kari-2", ClientID: "bank", PersonID: "p-kari", SessionID: "s-kari-2",
		Scope: []string{"openid", "profile"}, Level: "high", CreatedAt: now}, nil,
		&store.Token{Hash: bytes.Repeat([]byte{5}, 32), Kind: store.TokenRefresh, GrantID: "g-kari-2", ClientID: "bank",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "kari.json")
	out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request by letter", "--by", "Ola at the help desk",
		"--out", file, "no:dnr:"+personDnr)
	if err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	if !strings.Contains(out, "wrote what Varde holds about person p-kari to "+file) || strings.Contains(out, personFnr) {
		t.Errorf("persons export says:\n%s", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the export file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	doc, raw := readExport(t, file)

	if doc.Format != "varde-person-export/1" || doc.Issuer != "http://localhost:8080" {
		t.Errorf("format %q, issuer %q", doc.Format, doc.Issuer)
	}
	if doc.Person["id"] != "p-kari" || doc.Person["given_name"] != "Kari" || doc.Person["family_name"] != "Nordmann" ||
		doc.Person["birth_date"] != "1980-01-01" || doc.Person["proofing_level"] != "high" || doc.Person["proofing_method"] != "bankid" {
		t.Errorf("person %v", doc.Person)
	}
	// The numbers in full: the export is for the person themself.
	if len(doc.Identifiers) != 2 || doc.Identifiers[0]["number"] != personFnr || doc.Identifiers[1]["number"] != personDnr ||
		doc.Identifiers[1]["scheme"] != "no:dnr" || doc.Identifiers[1]["max_level"] != "substantial" ||
		doc.Identifiers[1]["linked_through"] != "bankid" || doc.Identifiers[1]["linked_at"] != "2026-11-20T09:30:00Z" ||
		doc.Identifiers[1]["last_used_at"] != "2026-11-21T08:00:00Z" || doc.Identifiers[0]["last_used_at"] != nil ||
		doc.Identifiers[0]["linked_through"] != nil || doc.Identifiers[0]["linked_at"] != nil {
		t.Errorf("identifiers %v", doc.Identifiers)
	}
	if doc.Block.Blocked || doc.Block.Since != "" || len(doc.Block.History) != 2 ||
		doc.Block.History[0]["event"] != "person_blocked" || doc.Block.History[0]["reason"] != "phone stolen" ||
		doc.Block.History[1]["event"] != "person_unblocked" || doc.Block.History[1]["reason"] != "identity checked at the counter" {
		t.Errorf("block %+v", doc.Block)
	}
	// Oldest first, then by credential: both were made at once.
	if len(doc.Passkeys) != 2 || doc.Passkeys[1]["name"] != "Phone" || doc.Passkeys[1]["synced"] != true || doc.Passkeys[1]["last_used_at"] == nil ||
		doc.Passkeys[0]["name"] != "Security key" || doc.Passkeys[0]["synced"] != false || doc.Passkeys[0]["last_used_at"] != nil {
		t.Errorf("passkeys %v", doc.Passkeys)
	}
	if doc.RecoveryCodes["left"] != 2.0 || doc.RecoveryCodes["used"] != 0.0 || doc.RecoveryCodes["made_at"] == nil {
		t.Errorf("recovery codes %v", doc.RecoveryCodes)
	}
	if len(doc.Sessions) != 1 || doc.Sessions[0]["provider"] != "passkey" || doc.Sessions[0]["level"] != "high" ||
		!strings.Contains(jsonText(t, doc.Sessions[0]["services"]), "Demo Bank") {
		t.Errorf("sessions %v", doc.Sessions)
	}
	// The grant the block revoked, and the one since.
	// A revoked grant's refresh token works no more, and is not said to.
	if len(doc.Grants) != 2 || doc.Grants[0]["service"] != "Demo Bank" || doc.Grants[0]["revoked_at"] == nil || doc.Grants[0]["offline_access"] != true ||
		doc.Grants[0]["refresh_token_until"] != nil ||
		doc.Grants[1]["service"] != "Demo Bank" || doc.Grants[1]["client_id"] != "bank" || doc.Grants[1]["revoked_at"] != nil ||
		jsonText(t, doc.Grants[1]["scopes"]) != `["openid","profile"]` || doc.Grants[1]["refresh_token_until"] == nil {
		t.Errorf("grants %v", doc.Grants)
	}
	// The sub the bank gets for the person, from the node's salt
	// (adminConfig's).
	if want := oidc.PairwiseSubject(bytes.Repeat([]byte("s"), 32), "bank", "p-kari"); len(doc.Services) != 1 ||
		doc.Services[0]["service"] != "Demo Bank" || doc.Services[0]["client_id"] != "bank" || doc.Services[0]["sub"] != want {
		t.Errorf("services %v, want Demo Bank's sub %s", doc.Services, want)
	}
	var events []string
	for _, e := range doc.Events {
		events = append(events, jsonText(t, e["event"])+" "+jsonText(t, e["service"])+" "+jsonText(t, e["result"]))
	}
	want := []string{`"authentication" "Demo Bank" "success"`, `"consent" "Demo Bank" "success"`, `"authentication" "Demo Bank" "failure"`,
		`"person_blocked" null "success"`, `"person_unblocked" null "success"`}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	if len(doc.Events) == 5 && (doc.Events[1]["details"].(map[string]any)["claims"] != "name birthdate" || doc.Events[2]["reason"] != "insufficient_level") {
		t.Errorf("what the bank received, why a login was refused: %v", doc.Events[1:3])
	}

	// No secret, no reference to one, and nothing of the other person.
	var secrets []string
	for _, b := range [][]byte{
		bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), // recovery code hashes
		bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{5}, 32), // refresh token hashes
		[]byte("cred-phone"), []byte("cred-key"), []byte("secret-public-key"), bytes.Repeat([]byte{7}, 32),
	} {
		secrets = append(secrets, secretForms(b)...)
	}
	secrets = append(secrets, "cred-ref", "s-kari", "g-kari", "Ola at the help desk")
	for _, other := range []string{"p-ola", "Hansen", "Ola's laptop", "cred-ola", "g-ola", "tax", "minid"} {
		secrets = append(secrets, other)
	}
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("the export holds %q:\n%s", s, raw)
		}
	}

	// Audited with the reason and who, never a number.
	events2, err := st.ListPersonAudit(ctx, "p-kari", 1)
	if err != nil || len(events2) != 1 {
		t.Fatalf("audit: %v, %v", events2, err)
	}
	e := events2[0]
	if e.Type != "person_exported" || e.Details["reason"] != "access request by letter" || e.Details["by"] != "Ola at the help desk" {
		t.Errorf("audit event %+v", e)
	}
	if b, _ := json.Marshal(e); bytes.Contains(b, []byte(personFnr)) || bytes.Contains(b, []byte(personDnr)) {
		t.Errorf("the audit event holds a number: %s", b)
	}

	// An existing file is never overwritten, and nothing is audited.
	out, err = runCmd(t, "persons", "export", "--config", cfg, "--reason", "again", "--out", file, id)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("an export onto an existing file: exit status %d, %v\n%s", code, err, out)
	}
	if again, _ := readExport(t, file); again.Person["id"] != "p-kari" {
		t.Errorf("the existing file changed")
	}
	if evs, _ := st.ListPersonAudit(ctx, "p-kari", 1); len(evs) != 1 || evs[0].Seq != e.Seq {
		t.Errorf("a refused export was audited: %v", evs)
	}

	// --out - writes to standard output, when asked for by name.
	out, err = runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request, sent by post", "--out", "-", id)
	if err != nil || !strings.HasPrefix(out, "{") || !strings.Contains(out, `"number": "`+personFnr+`"`) {
		t.Errorf("persons export --out -: %v\n%s", err, out)
	}
}

// jsonText is v as JSON.
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPersonsExportBlockedAndRetired: a blocked person's export says
// since when and why; a person retired by add-number --merge, who holds
// no number, is exported by --id, with the retirement among their
// events.
func TestPersonsExportBlockedAndRetired(t *testing.T) {
	cfg, _, _ := mergedStore(t)
	if out, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "phone stolen", "--id", "p-kari"); err != nil {
		t.Fatalf("persons block: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		person, reason string
		identifiers    int
	}{
		{"p-kari", "phone stolen", 3},
		{"p-eid", "retired: their number was moved to person p-kari", 0},
	} {
		file := filepath.Join(dir, c.person+".json")
		if out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request", "--out", file, "--id", c.person); err != nil {
			t.Fatalf("persons export --id %s: %v\n%s", c.person, err, out)
		}
		doc, raw := readExport(t, file)
		if doc.Person["id"] != c.person || !doc.Block.Blocked || doc.Block.Since == "" || doc.Block.Reason != c.reason ||
			len(doc.Identifiers) != c.identifiers || doc.Identifiers == nil {
			t.Errorf("the export of %s: %s", c.person, raw)
		}
	}
	doc, _ := readExport(t, filepath.Join(dir, "p-eid.json"))
	if len(doc.Block.History) != 1 || doc.Block.History[0]["event"] != "person_retired" {
		t.Errorf("the retired person's block history: %v", doc.Block.History)
	}
	// The person merged into names the retired one, whose export the
	// help desk gives them too (docs/person-export.md).
	kari, raw := readExport(t, filepath.Join(dir, "p-kari.json"))
	named := false
	for _, e := range kari.Events {
		d, _ := e["details"].(map[string]any)
		named = named || e["event"] == "identifier_added" && d["retired"] == "p-eid"
	}
	if !named {
		t.Errorf("the export of the person merged into names no retired person p-eid: %s", raw)
	}
}

// TestPersonsExportRemovedService: a service the person logged in to,
// removed since, is in the export with the sub it got for them, from
// the sector its removal recorded (ADR 35): the person quotes it to the
// service, which keeps its own data about them.
func TestPersonsExportRemovedService(t *testing.T) {
	cfg, st := exportStore(t, "sqlite")
	ctx := context.Background()
	now := time.Now()
	if err := st.PutClient(ctx, &store.Client{ID: "tax", Name: "Tax Office", SectorID: "tax.example",
		RedirectURIs: []string{"https://tax.example/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendAudit(ctx, &store.AuditEvent{Time: now, Type: "consent", PersonID: "p-kari", ClientID: "tax",
		Result: store.ResultSuccess, Details: map[string]string{"claims": "name"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.RemoveClient(ctx, st, "tax", store.ClientSourceCLI, now); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kari.json")
	if out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request", "--out", file, "--id", "p-kari"); err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	doc, _ := readExport(t, file)
	want := oidc.PairwiseSubject(bytes.Repeat([]byte("s"), 32), "tax.example", "p-kari")
	var got map[string]any
	for _, s := range doc.Services {
		if s["client_id"] == "tax" {
			got = s
		}
	}
	if got == nil || got["sub"] != want || got["service"] != nil {
		t.Errorf("services %v, want the removed tax with sub %s and no name", doc.Services, want)
	}
}

// TestPersonsExportServiceOfAnotherSectorBefore: a service whose sector
// changed after the person logged in to it knows them by the sub of its
// sector before as well; the export gives both.
func TestPersonsExportServiceOfAnotherSectorBefore(t *testing.T) {
	cfg, st := exportStore(t, "sqlite")
	ctx := context.Background()
	now := time.Now()
	bank, err := st.GetClient(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	bank.SectorID = "bank.example"
	if _, err := st.ChangeClientSector(ctx, bank, "bank", now, &store.AuditEvent{Time: now, Type: "client_sector_changed", ClientID: "bank",
		Result: store.ResultSuccess, Details: map[string]string{"from": "bank", "to": "bank.example", "via": "config", "people": "true"}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kari.json")
	if out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request", "--out", file, "--id", "p-kari"); err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	doc, _ := readExport(t, file)
	salt := bytes.Repeat([]byte("s"), 32)
	now2, before := oidc.PairwiseSubject(salt, "bank.example", "p-kari"), oidc.PairwiseSubject(salt, "bank", "p-kari")
	if len(doc.Services) != 1 || doc.Services[0]["sub"] != now2 || jsonText(t, doc.Services[0]["earlier_subs"]) != `["`+before+`"]` {
		t.Errorf("services %v, want bank with sub %s and earlier_subs [%s]", doc.Services, now2, before)
	}
}

// TestPersonsExportErrors: the export is refused, with nothing written
// and nothing audited, without a reason, without --out (the numbers are
// in full: standard output only when asked for by name), and for a
// person nobody holds.
func TestPersonsExportErrors(t *testing.T) {
	cfg, st := personStore(t)
	id := "no:fnr:" + personFnr
	file := filepath.Join(t.TempDir(), "out.json")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no reason", []string{"--out", file, id}, 2, "--reason is required"},
		{"no --out", []string{"--reason", "access request", id}, 2, "--out FILE is required"},
		{"nobody holds it", []string{"--reason", "access request", "--out", file, "no:fnr:15076500565"}, 1, "no person found"},
		{"no such ID", []string{"--reason", "access request", "--out", file, "--id", "p-nobody"}, 1, "no person found"},
		{"IDENTIFIER and --id", []string{"--reason", "access request", "--out", file, "--id", "p-kari", id}, 2, "not both"},
		{"a directory that is not there", []string{"--reason", "access request", "--out", filepath.Join(file, "x.json"), id}, 1, "--out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCmd(t, append([]string{"persons", "export", "--config", cfg}, tt.args...)...)
			if code := exitStatus(err, &bytes.Buffer{}); code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit status %d, %v; want %d and %q\n%s", code, err, tt.code, tt.want, out)
			}
			if strings.Contains(out, personFnr) {
				t.Errorf("the refusal prints the number:\n%s", out)
			}
		})
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a refused export left %s: %v", file, err)
	}
	if evs, err := st.ListPersonAudit(context.Background(), "p-kari", 10); err != nil || len(evs) != 0 {
		t.Errorf("refused exports were audited: %v, %v", evs, err)
	}
}

// TestPersonsExportAfterLogins: a person enrols at a running node with a
// passkey, logs in at Demo Bank asking for offline access, and the bank
// refreshes its tokens; another person logs in too. The export of the
// first, made beside the running node, holds their passkey, codes,
// session, the bank's grant with its last refresh, and the events of
// those logins; none of the tokens, the code, the ID token or the
// credential the logins used, nor anything of the other person.
func TestPersonsExportAfterLogins(t *testing.T) {
	ctx := context.Background()
	bank := demoWithBank(t, "Demo Bank")
	d, issuer, cfg, dir := bank.d, bank.issuer, bank.cfg, bank.dir
	hc, rp, person := bankWithPerson(t, issuer, bank.key)
	login, err := rp.Login(ctx, person, loadgen.LoginOptions{Scope: store.ScopeOfflineAccess})
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := rp.Refresh(ctx, login.Token.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	other := loadgen.NewDevice(issuer, true)
	if err := loadgen.Enrol(ctx, hc, issuer, other, "Ola", "Hansen"); err != nil {
		t.Fatal(err)
	}
	otherLogin, err := rp.Login(ctx, other, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.app.Store.GetPersonByWebAuthnID(ctx, person.Auth.Options.UserHandle)
	if err != nil {
		t.Fatal(err)
	}
	q, err := d.app.Store.GetPersonByWebAuthnID(ctx, other.Auth.Options.UserHandle)
	if err != nil {
		t.Fatal(err)
	}
	codes := [][]byte{bytes.Repeat([]byte{0x51}, 32), bytes.Repeat([]byte{0x52}, 32)}
	if err := d.app.Store.ReplaceRecoveryCodes(ctx, p.ID, codes, time.Now()); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(dir, "export.json")
	number := p.Identifiers[0]
	if out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request", "--out", file,
		number.Scheme+":"+number.Value); err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	doc, raw := readExport(t, file)
	if doc.Person["id"] != p.ID || doc.Person["given_name"] != "Kari" || len(doc.Identifiers) != 1 || doc.Identifiers[0]["number"] != number.Value {
		t.Errorf("person %v, identifiers %v", doc.Person, doc.Identifiers)
	}
	if len(doc.Passkeys) != 1 || doc.Passkeys[0]["last_used_at"] == nil || doc.RecoveryCodes["left"] != 2.0 {
		t.Errorf("passkeys %v, recovery codes %v", doc.Passkeys, doc.RecoveryCodes)
	}
	if len(doc.Grants) != 1 || doc.Grants[0]["service"] != "Demo Bank" || doc.Grants[0]["offline_access"] != true ||
		doc.Grants[0]["last_refreshed_at"] == nil || doc.Grants[0]["refresh_token_until"] == nil || doc.Grants[0]["revoked_at"] != nil {
		t.Errorf("grants %v", doc.Grants)
	}
	if len(doc.Sessions) != 1 || jsonText(t, doc.Sessions[0]["services"]) != `["Demo Bank"]` {
		t.Errorf("sessions %v", doc.Sessions)
	}
	// The sub the bank got in the ID token.
	if len(doc.Services) != 1 || doc.Services[0]["service"] != "Demo Bank" || doc.Services[0]["sub"] != login.Claims["sub"] {
		t.Errorf("services %v, want Demo Bank with sub %v", doc.Services, login.Claims["sub"])
	}
	seen := map[string]bool{}
	for _, e := range doc.Events {
		seen[jsonText(t, e["event"])+" "+jsonText(t, e["service"])] = true
		// The address each request came from is the person's data, as
		// their account's activity shows it (ADR 33): the logins here
		// came over loopback.
		if e["event"] == "authentication" {
			if d, _ := e["details"].(map[string]any); d["addr"] != "127.0.0.1" {
				t.Errorf("authentication event %v: details.addr is not the address the login came from, 127.0.0.1", e)
			}
		}
	}
	for _, want := range []string{`"authentication" "Demo Bank"`, `"consent" "Demo Bank"`, `"token" "Demo Bank"`} {
		if !seen[want] {
			t.Errorf("no event %s in %v", want, seen)
		}
	}

	var secrets []string
	for _, s := range []string{login.AccessToken, login.Token.RefreshToken, login.RawIDToken, login.Code, login.CodeVerifier,
		refreshed.AccessToken, refreshed.RefreshToken} {
		if s == "" {
			t.Fatal("a login or refresh gave no token")
		}
		h := sha256.Sum256([]byte(s))
		secrets = append(secrets, s)
		secrets = append(secrets, secretForms(h[:])...)
	}
	for _, b := range append(codes, person.Cred.ID, p.WebAuthnID) {
		secrets = append(secrets, secretForms(b)...)
	}
	secrets = append(secrets, q.ID, "Hansen", q.Identifiers[0].Value, otherLogin.AccessToken, otherLogin.Claims["sub"].(string))
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("the export holds %q", s)
		}
	}

	// The node appends after the export's event, and the audit chain
	// holds.
	if _, err := rp.Login(ctx, person, loadgen.LoginOptions{}); err != nil {
		t.Fatalf("a login after the export: %v", err)
	}
	if out, err := runCmd(t, "store", "verify", "--config", cfg); err != nil {
		t.Fatalf("store verify after the export: %v\n%s", err, out)
	}

	// A configuration with another subject salt than the node's would
	// give wrong subs: refused, nothing written, nothing audited.
	salt := filepath.Join(dir, "other-salt")
	if err := os.WriteFile(salt, bytes.Repeat([]byte("x"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.yaml")
	if err := os.WriteFile(wrong, []byte("version: 1\nissuer: "+issuer+"\nstore:\n  dsn: "+filepath.Join(dir, "varde.db")+
		"\nkeys:\n  subject_salt_file: "+salt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := d.app.Store.LastAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "persons", "export", "--config", wrong, "--reason", "access request", "--out", filepath.Join(dir, "wrong.json"), "--id", p.ID)
	if code := exitStatus(err, &bytes.Buffer{}); code != 1 || !strings.Contains(err.Error(), "subject salt") {
		t.Errorf("an export with another salt: exit status %d, %v\n%s", code, err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "wrong.json")); !os.IsNotExist(err) {
		t.Errorf("a refused export left a file: %v", err)
	}
	if last, err := d.app.Store.LastAudit(ctx); err != nil || last.Seq != before.Seq {
		t.Errorf("a refused export was audited: %+v, %v", last, err)
	}
}

// writeAmidExport is a store over which another node commits, through
// write, once the export has read the person's passkeys and before it
// reads on: a passkey added and a login, each with its event.
type writeAmidExport struct {
	store.Store
	write func()
	once  sync.Once
}

func (w *writeAmidExport) ListPasskeys(ctx context.Context, personID string) ([]*store.Passkey, error) {
	ks, err := w.Store.ListPasskeys(ctx, personID)
	w.once.Do(w.write)
	return ks, err
}

func (w *writeAmidExport) ReadSnapshot(ctx context.Context, fn func(ctx context.Context, s store.Snapshot) error) error {
	return w.Store.ReadSnapshot(ctx, func(ctx context.Context, s store.Snapshot) error {
		return fn(ctx, &writeAmidSnapshot{Snapshot: s, w: w})
	})
}

type writeAmidSnapshot struct {
	store.Snapshot
	w *writeAmidExport
}

func (s *writeAmidSnapshot) ListPasskeys(ctx context.Context, personID string) ([]*store.Passkey, error) {
	ks, err := s.Snapshot.ListPasskeys(ctx, personID)
	s.w.once.Do(s.w.write)
	return ks, err
}

// TestPersonsExportIsOneSnapshot: another node adds a passkey and
// logs the person in while an export reads. The document shows the
// person at one instant, the export's exported_at: neither the passkey
// nor its event, neither the session nor its login, where separate
// reads would give the event of a passkey the document does not hold.
// An export made after shows both. SQLite and PostgreSQL.
func TestPersonsExportIsOneSnapshot(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { testPersonsExportIsOneSnapshot(t, driver) })
	}
}

func testPersonsExportIsOneSnapshot(t *testing.T, driver string) {
	cfgPath, other := exportStore(t, driver)
	ctx := context.Background()
	// The store as the command opens it.
	cfg, st, err := openNodeStore(ctx, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	salt, err := app.StoreSubjectSalt(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.GetPerson(ctx, "p-kari")
	if err != nil {
		t.Fatal(err)
	}
	wrote := false
	amid := &writeAmidExport{Store: st, write: func() {
		now := time.Now()
		if err := other.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte("cred-new"), PersonID: p.ID, Name: "New laptop", CreatedAt: now}, 0, "",
			&store.AuditEvent{Time: now, Type: "passkey_added", PersonID: p.ID, Result: store.ResultSuccess}); err != nil {
			t.Error(err)
		}
		if err := other.CreateSession(ctx, &store.Session{ID: "s-new", PersonID: p.ID, Provider: "passkey", Level: "high", AuthTime: now,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			&store.AuditEvent{Time: now, Type: "authentication", PersonID: p.ID, Provider: "passkey", Result: store.ResultSuccess,
				Details: map[string]string{"method": "new-laptop"}}); err != nil {
			t.Error(err)
		}
		wrote = true
	}}
	at := time.Date(2026, 11, 3, 9, 30, 0, 0, time.UTC)
	export := func(file string) (exported, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := exportPerson(ctx, amid, cfg.Issuer, salt, 0, p, file, "access request", "Ola", func() time.Time { return at }, &stdout, &stderr); err != nil {
			t.Fatalf("export: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		return readExport(t, file)
	}
	doc, raw := export(filepath.Join(t.TempDir(), "during.json"))
	if !wrote {
		t.Fatal("nothing was written during the export")
	}
	if !strings.Contains(raw, `"exported_at": "2026-11-03T09:30:00Z"`) {
		t.Errorf("exported_at is not the snapshot's time:\n%s", raw)
	}
	count := func(doc exported) (passkeys, passkeyEvents, sessions, logins int) {
		for _, k := range doc.Passkeys {
			if k["name"] == "New laptop" {
				passkeys++
			}
		}
		for _, e := range doc.Events {
			if e["event"] == "passkey_added" {
				passkeyEvents++
			}
			if d, _ := e["details"].(map[string]any); d["method"] == "new-laptop" {
				logins++
			}
		}
		return passkeys, passkeyEvents, len(doc.Sessions), logins
	}
	if k, ke, s, l := count(doc); k != 0 || ke != 0 || s != 1 || l != 0 {
		t.Errorf("the export made while another node wrote has %d new passkeys, %d passkey_added events, %d sessions, %d new logins; "+
			"want what was there when it began: 0, 0, 1, 0", k, ke, s, l)
	}
	doc, _ = export(filepath.Join(t.TempDir(), "after.json"))
	if k, ke, s, l := count(doc); k != 1 || ke != 1 || s != 2 || l != 1 {
		t.Errorf("the export made after has %d new passkeys, %d passkey_added events, %d sessions, %d new logins; want 1, 1, 2, 1", k, ke, s, l)
	}
}

// TestPersonsExportKeepsAddressesSealedInTheirEvents: an event recorded
// before schema 0031 holds its client address in its hashed body, kept
// for as long as the audit log is (ADR 38), held by no hold. The export
// answers the person's access request with everything held about them,
// so it gives that address whatever the event's age; only an address
// kept apart and past the retention, which the store holds only under a
// hold, is left out (ADR 45).
func TestPersonsExportKeepsAddressesSealedInTheirEvents(t *testing.T) {
	cfgPath, st := personStore(t)
	db := rawSQLite(t, cfgPath)
	var seq int64
	var prev []byte
	err := db.QueryRow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	// The insert of a version before 0031, which knows no addr_digest.
	sealed := &store.AuditEvent{Seq: seq + 1, Time: time.Now().Add(-400 * 24 * time.Hour).Truncate(time.Microsecond), Type: "authentication",
		PersonID: "p-kari", Result: store.ResultSuccess, Details: map[string]string{store.DetailAddr: "198.51.100.4"}}
	sealed.Seal(prev)
	details, err := json.Marshal(sealed.Details)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO audit_log (seq, time, type, person_id, client_id, provider, level, result, reason, details, prev_hash, hash) "+
		"VALUES (?, ?, ?, ?, '', '', '', ?, '', ?, ?, ?)",
		sealed.Seq, sealed.Time.UnixMicro(), sealed.Type, sealed.PersonID, sealed.Result, string(details), sealed.PrevHash, sealed.Hash); err != nil {
		t.Fatal(err)
	}
	appendLogins(t, st, login{time.Now().Add(-200 * 24 * time.Hour), "p-kari", "192.0.2.1"})
	file := filepath.Join(t.TempDir(), "export.json")
	if out, err := runCmd(t, "persons", "export", "--config", cfgPath, "--reason", "access request", "--out", file, "--id", "p-kari"); err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	_, raw := readExport(t, file)
	if !strings.Contains(raw, "198.51.100.4") {
		t.Errorf("the export leaves out the address sealed in an event before schema 0031:\n%s", raw)
	}
	if strings.Contains(raw, "192.0.2.1") {
		t.Errorf("the export gives an address kept apart past the retention:\n%s", raw)
	}
}
