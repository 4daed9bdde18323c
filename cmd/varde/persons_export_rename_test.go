package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestPersonsExportShowsARenamedPasskey: a passkey the person renamed
// is in their export by its new name, as the account page shows it,
// and the rename's event is there without either name: it names the
// passkey by its reference only.
func TestPersonsExportShowsARenamedPasskey(t *testing.T) {
	cfg, st := exportStore(t, "sqlite")
	ctx := context.Background()
	keys, err := st.ListPasskeys(ctx, "p-kari")
	if err != nil || len(keys) == 0 {
		t.Fatalf("Kari's passkeys: %v %v", keys, err)
	}
	old := keys[0].Name
	if err := st.RenamePasskey(ctx, "p-kari", keys[0].CredentialID, "Kari's work laptop", "", &store.AuditEvent{Time: time.Now(),
		Type: "passkey_renamed", PersonID: "p-kari", Provider: "passkey", Result: store.ResultSuccess,
		Details: map[string]string{"credential": "cred-ref", "method": "passkey"}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kari.json")
	if out, err := runCmd(t, "persons", "export", "--config", cfg, "--reason", "access request", "--out", file, "--id", "p-kari"); err != nil {
		t.Fatalf("persons export: %v\n%s", err, out)
	}
	doc, raw := readExport(t, file)
	var names []string
	for _, k := range doc.Passkeys {
		names = append(names, k["name"].(string))
	}
	if !strings.Contains(strings.Join(names, "\n"), "Kari's work laptop") || (old != "" && strings.Contains(raw, old)) {
		t.Errorf("exported passkey names %q, want the new name and not %q", names, old)
	}
	renamed := false
	for _, e := range doc.Events {
		renamed = renamed || e["event"] == "passkey_renamed"
	}
	if !renamed || strings.Count(raw, "Kari's work laptop") != 1 {
		t.Errorf("the export holds the rename's event %v, and the new name %d times, want once:\n%s", renamed, strings.Count(raw, "Kari's work laptop"), raw)
	}
}
