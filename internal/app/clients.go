package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// RemoveClient removes relying party id and revokes its grants, so its
// refresh and access tokens stop working (store.Clients.DeleteClient),
// audited in the same write as client_removed with its sector and via
// saying how:
// store.ClientSourceCLI (varde clients remove) or ClientSourceConfig (no
// longer in the configuration file). It returns how many grants it
// revoked.
func RemoveClient(ctx context.Context, st store.Clients, id, via string, now time.Time) (int, error) {
	details := map[string]string{"via": via}
	// The sector it had is recorded, so that the ID added again with
	// another is known to give its people new subject identifiers
	// (SectorChanges).
	c, err := st.GetClient(ctx, id)
	if err != nil {
		return 0, err
	}
	details["sector"] = c.Sector()
	ev := &store.AuditEvent{Type: clientRemoved, ClientID: id, Result: store.ResultSuccess, Details: details}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	return st.DeleteClient(ctx, id, now, ev)
}

// ClientAdded is the audit event of c's addition, via
// store.ClientSourceCLI (varde clients add) or ClientSourceConfig (a
// node storing a client of its configuration file for the first
// time): who gets which subject identifiers (its sector) and which
// claims, as a removal records its sector.
func ClientAdded(ctx context.Context, c *store.Client, via string, now time.Time) *store.AuditEvent {
	ev := &store.AuditEvent{Type: clientAdded, ClientID: c.ID, Result: store.ResultSuccess, Details: clientDetails(c, via)}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	return ev
}

// clientDetails are the details every event of a client's addition or
// change holds.
func clientDetails(c *store.Client, via string) map[string]string {
	return map[string]string{"via": via, "sector": c.Sector(), "claims": strings.Join(c.Claims, ",")}
}

// declaredEvent is the audit event, for store.Clients.DeclareClient,
// of the configuration file's client c stored by a node at start over
// old: its addition (ClientAdded) if there was none, else
// client_changed naming the settings that changed (Client.Changes). A
// change of sector is audited on its own (changeSector), before.
func declaredEvent(ctx context.Context, c *store.Client, now time.Time) func(old *store.Client) *store.AuditEvent {
	return func(old *store.Client) *store.AuditEvent {
		if old == nil {
			return ClientAdded(ctx, c, store.ClientSourceConfig, now)
		}
		details := clientDetails(c, store.ClientSourceConfig)
		details["changed"] = strings.Join(old.Changes(c), ",")
		ev := &store.AuditEvent{Type: clientChanged, ClientID: c.ID, Result: store.ResultSuccess, Details: details}
		(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
		return ev
	}
}

// Audit event types of clients, besides clientRemoved and
// clientSectorChanged.
const (
	clientAdded   = "client_added"
	clientChanged = "client_changed"
)

// undeclared reports whether c came from the configuration file and
// is not among the IDs it declares now (keep).
func undeclared(c *store.Client, keep map[string]bool) bool {
	return c.Source == store.ClientSourceConfig && !keep[c.ID]
}

// ErrClientsClash means a node would refuse to start because the
// clients its configuration declares clash with those its store holds,
// or a client the store holds needs a key the node lacks.
var ErrClientsClash = errors.New("the configuration's clients clash with the store's")

// CheckStoreClients checks the clients cfg declares against those its
// store holds, as New does at start (checkSectors), but reading the
// store only; the stored clients a start would remove
// (removeUndeclared) are left out. An error wrapping ErrClientsClash
// means a node would refuse to start; any other error means the store
// was not checked. warnings are those a start logs (SectorChanges): a
// declared client whose sector before cannot be told.
func CheckStoreClients(ctx context.Context, cfg *config.Config) (warnings []string, err error) {
	st, err := OpenExistingStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stored, err := st.ListClients(ctx)
	if err != nil {
		return nil, err // the store's error says what it was reading; the caller, what for
	}
	keep := make(map[string]bool, len(cfg.Clients))
	for _, c := range cfg.Clients {
		keep[c.ID] = true
	}
	if !cfg.Store.Shared() {
		stored = slices.DeleteFunc(stored, func(c *store.Client) bool { return undeclared(c, keep) })
	}
	if err := sectorClashes(stored, cfg.Clients); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientsClash, err)
	}
	_, warnings, err = SectorChanges(ctx, st, cfg.Clients, store.ClientSourceConfig)
	if errors.Is(err, ErrSectorChanged) {
		return warnings, fmt.Errorf("%w: %w", ErrClientsClash, err)
	} else if err != nil {
		return nil, err
	}
	if !cfg.Keys.SignsRS256() {
		// The file's own clients were checked with the file, and
		// replace the stored ones of their IDs.
		added := slices.DeleteFunc(slices.Clone(stored), func(c *store.Client) bool { return keep[c.ID] })
		if err := needRSA(added); err != nil {
			return warnings, fmt.Errorf("%w: %w", ErrClientsClash, err)
		}
	}
	return warnings, nil
}

// removeUndeclared removes, as RemoveClient does, every stored client
// that came from the configuration file and is no longer declared in it:
// a client taken out of the file must stop working, not linger in the
// store. Each is logged at warn level. Clients added otherwise (varde
// clients add, the demo) are left alone.
//
// Where nodes share the store (shared), each has a file of its own, and
// one that starts with an older or newer file than the others would
// remove their clients and revoke every grant of them. There such
// clients are kept and logged; varde clients remove takes one out once
// every node's file leaves it out.
func removeUndeclared(ctx context.Context, st store.Clients, declared []config.Client, shared bool, now time.Time, log *slog.Logger) error {
	stored, err := st.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("remove the clients taken out of the configuration: %w", err)
	}
	keep := make(map[string]bool, len(declared))
	for _, c := range declared {
		keep[c.ID] = true
	}
	for _, c := range stored {
		if !undeclared(c, keep) {
			continue
		}
		if shared {
			log.Warn("client kept though this node's configuration file does not declare it: another node's may; "+
				"once no node's file declares it, remove it with varde clients remove", "client", c.ID)
			continue
		}
		n, err := RemoveClient(ctx, st, c.ID, store.ClientSourceConfig, now)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("remove client %s, no longer in the configuration: %w", c.ID, err)
		}
		log.Warn("client removed: no longer in the configuration file; its grants are revoked",
			"client", c.ID, "grants_revoked", n)
	}
	return nil
}
