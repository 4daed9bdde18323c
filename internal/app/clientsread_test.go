package app_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/pgtest"
)

// TestNodeThatCannotReadClientsSaysWhatItWasDoing: a node whose role may
// read every table of its PostgreSQL store but the clients refuses to
// start, and its error says once that it was listing them, and what it
// was listing them for.
func TestNodeThatCannotReadClientsSaysWhatItWasDoing(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	st, err := app.OpenStore(ctx, config.Store{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	role := pgtest.NewRole(t, dsn)
	for _, stmt := range []string{"GRANT CREATE ON SCHEMA public", "GRANT ALL ON ALL TABLES IN SCHEMA public",
		"GRANT ALL ON ALL SEQUENCES IN SCHEMA public"} {
		if _, err := role.Admin.Exec(ctx, stmt+" TO "+role.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := role.Admin.Exec(ctx, "REVOKE SELECT ON clients FROM "+role.Name); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
		config.EnvStoreDriver: "postgres", config.EnvStoreDSN: role.DSN}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t)})
	if err == nil {
		a.Close()
		t.Fatal("the node started without reading its clients")
	}
	if msg := err.Error(); strings.Count(msg, "list clients") != 1 || !strings.Contains(msg, "42501") ||
		!strings.Contains(msg, "remove the clients taken out of the configuration: list clients: ") {
		t.Errorf("New: %v; want what it was doing, then list clients once, then the server's refusal (42501)", err)
	}
}
