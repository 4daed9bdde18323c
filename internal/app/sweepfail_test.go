package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHousekeepingCountsFailedSweeps: a table whose sweep fails is
// counted in varde_store_sweep_failures_total and logged by name, once
// a round.
func TestHousekeepingCountsFailedSweeps(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "varde.db")
	var logs bytes.Buffer
	a := clockedNodeAt(t, path, &now, slog.New(slog.NewTextHandler(&logs, nil)))
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, "DROP TABLE replay_cache"); err != nil {
		t.Fatal(err)
	}
	a.Housekeep(ctx)
	a.Housekeep(ctx)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), "\nvarde_store_sweep_failures_total 2\n") {
		t.Errorf("metrics do not count the two failed sweeps of replay_cache:\n%s", grepLines(string(body), "sweep"))
	}
	if n := strings.Count(logs.String(), "delete expired replay_cache"); n != 2 {
		t.Errorf("%d log lines name replay_cache, want one a round:\n%s", n, logs.String())
	}
}
