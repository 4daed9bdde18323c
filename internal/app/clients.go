package app

import (
	"context"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/store"
)

// RemoveClient removes relying party id and revokes its grants, so its
// refresh and access tokens stop working (store.Clients.DeleteClient),
// audited in the same write as client_removed with via saying how: "cli"
// (varde clients remove) or "config" (gone from the configuration file).
// It returns how many grants it revoked.
func RemoveClient(ctx context.Context, st store.Clients, id, via string, now time.Time) (int, error) {
	ev := &store.AuditEvent{Type: "client_removed", ClientID: id, Result: store.ResultSuccess, Details: map[string]string{"via": via}}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	return st.DeleteClient(ctx, id, now, ev)
}
