package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// ErrSectorChanged means a client's sector would change, giving every
// person who has logged in to it a new subject identifier there, and
// the change is not accepted (config.Client.SectorIDChangeAccepted).
var ErrSectorChanged = errors.New("a client's sector would change")

// ClientHistory is what SectorChanges reads of a store: the clients it
// holds and, in the audit log, the removals of clients and the persons'
// consents (OIDC Core §8: a relying party keys its users by sub).
type ClientHistory interface {
	ListClients(ctx context.Context) ([]*store.Client, error)
	ListAuditRange(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error)
}

// SectorChange is a client whose sector differs from the one its
// people know it by.
type SectorChange struct {
	Client config.Client
	// From is the sector the client had, To the one it gets.
	From, To string
	// Stored is true if the store holds the client; false if it was
	// removed and is declared, or added, again.
	Stored bool
	// Served is true if a person has logged in to the client.
	Served bool
}

// SectorChanges compares the sector of each of clients with the one its
// ID had: the stored client's or, for an ID not in the store, the one
// recorded when it was last removed (RemoveClient). A change for a
// client nobody has logged in to is returned, to be made; so is one
// that the client's SectorIDChangeAccepted accepts by naming the old
// sector. Any other change is refused in an error wrapping
// ErrSectorChanged that names every such client, the two sectors, what
// would happen to its users and how to make the change on purpose, in
// the words of via (store.ClientSourceConfig: the configuration file's
// settings; ClientSourceCLI: the flags of varde clients add). An
// ID removed before removals recorded the sector, with people who
// logged in to it, is told in warnings: its old sector is not known.
func SectorChanges(ctx context.Context, st ClientHistory, clients []config.Client, via string) (changes []SectorChange, warnings []string, err error) {
	stored, err := st.ListClients(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("compare the clients' sectors with those they were stored with: %w", err)
	}
	byID := make(map[string]*store.Client, len(stored))
	for _, c := range stored {
		byID[c.ID] = c
	}
	var refused []error
	for _, c := range clients {
		ch := SectorChange{Client: c, To: store.SectorOf(c.ID, c.SectorID)}
		removed, known, err := sectorBefore(ctx, st, byID[c.ID], &ch)
		if err != nil {
			return nil, nil, err
		}
		if !known || ch.From == ch.To {
			continue
		}
		if ch.Served, err = served(ctx, st, c.ID); err != nil {
			return nil, nil, err
		}
		switch {
		case !ch.Stored && !ch.Served:
			continue // removed before anyone logged in: a new client
		case ch.From == "":
			warnings = append(warnings, fmt.Sprintf("client %q was removed on %s, and people had logged in to it, under a sector "+
				"not recorded then: unless it was %q, each of them gets a new subject identifier (sub) there, and the service sees them as new people",
				c.ID, removed.Time.UTC().Format(time.DateOnly), ch.To))
		case ch.Served && c.SectorIDChangeAccepted != ch.From:
			refused = append(refused, sectorRefusal(ch, removed, via))
		default:
			made, err := madeBefore(ctx, st, ch)
			if err != nil {
				return nil, nil, err
			}
			if made != nil {
				refused = append(refused, replayRefusal(ch, made))
				continue
			}
			changes = append(changes, ch)
		}
	}
	if len(refused) > 0 {
		return nil, warnings, fmt.Errorf("%w: %w", ErrSectorChanged, errors.Join(refused...))
	}
	return changes, warnings, nil
}

// sectorBefore sets ch.From to the sector ch's client ID had: that of
// stored, the client the store holds under it (nil if none), or else
// the one recorded at its last removal, which it returns ("" if none
// was recorded). known is false for an ID the store never held.
func sectorBefore(ctx context.Context, st ClientHistory, stored *store.Client, ch *SectorChange) (removed *store.AuditEvent, known bool, err error) {
	if stored != nil {
		ch.From, ch.Stored = stored.Sector(), true
		return nil, true, nil
	}
	removed, err = lastRemoval(ctx, st, ch.Client.ID)
	if err != nil || removed == nil {
		return nil, false, err
	}
	ch.From = removed.Details["sector"]
	return removed, true, nil
}

// sectorRefusal says why ch is refused and how to make it on purpose,
// in the words of via: the configuration file's settings
// (store.ClientSourceConfig) or the flags of varde clients add.
func sectorRefusal(ch SectorChange, removed *store.AuditEvent, via string) error {
	was := "has the sector"
	if removed != nil {
		was = fmt.Sprintf("was removed on %s, with the sector", removed.Time.UTC().Format(time.DateOnly))
	}
	to := strconv.Quote(ch.To)
	if ch.To == ch.Client.ID {
		to += " (its ID: it has no sector_id)"
	}
	accepted := ""
	if a := ch.Client.SectorIDChangeAccepted; a != "" {
		accepted = fmt.Sprintf(" The change accepted names %q, which is not the sector it had.", a)
	}
	keep := fmt.Sprintf("give it sector_id: %s again", strconv.Quote(ch.From))
	purpose := fmt.Sprintf("add sector_id_change_accepted: %s to the client in the configuration file", strconv.Quote(ch.From))
	if ch.From == ch.Client.ID {
		keep = "take its sector_id out again"
	}
	if via == store.ClientSourceCLI {
		keep = "add it with --sector " + ch.From
		purpose = "add --sector-change-accepted " + ch.From
		if ch.From == ch.Client.ID {
			keep = "add it without --sector"
		}
	}
	return fmt.Errorf("client %q %s %q, and would now get the sector %s.%s People have logged in to it, and it knows each of them "+
		"by a subject identifier (sub) derived from its sector: with another sector, every one of them gets a new sub there, and the "+
		"service sees them all as new people. To keep its users, %s. To change it on purpose, once the service is ready to "+
		"carry its users over, %s: the refresh and access tokens issued to it are then revoked, so its users log in again, "+
		"and the change is recorded in the audit log",
		ch.Client.ID, was, ch.From, to, accepted, keep, purpose)
}

// madeBefore returns the newest event of a change of the stored
// client's sector from ch.From to ch.To, the change ch accepts, since
// the client was last removed, or nil if there is none. An acceptance
// is used once: the client's sector is ch.From again because that
// change was undone since, and a node whose file is older than the undo
// would make it again at every start, every person getting a new sub
// back and forth (ADR 37). A client removed and declared again starts
// afresh.
func madeBefore(ctx context.Context, st ClientHistory, ch SectorChange) (*store.AuditEvent, error) {
	if !ch.Stored || !ch.Served {
		return nil, nil
	}
	events, err := st.ListAuditRange(ctx, store.AuditQuery{ClientID: ch.Client.ID, Types: []string{clientSectorChanged, clientRemoved}})
	if err != nil {
		return nil, fmt.Errorf("look up sector changes of client %s: %w", ch.Client.ID, err)
	}
	for _, e := range slices.Backward(events) {
		if e.Type == clientRemoved {
			return nil, nil
		}
		if e.Details["from"] == ch.From && e.Details["to"] == ch.To {
			return e, nil
		}
	}
	return nil, nil
}

// replayRefusal says why ch, a change made before (made) and undone
// since, is refused, and how to make it again on purpose.
func replayRefusal(ch SectorChange, made *store.AuditEvent) error {
	return fmt.Errorf("client %q was changed from the sector %q to %q on %s, and changed back since: its "+
		"sector_id_change_accepted: %q accepted that change, and would make it again, giving every person who has logged in "+
		"to it a new subject identifier (sub) there once more. This configuration is older than the change back: give the "+
		"client the sector %q, as the node that changed it back has. To change it to %q again on purpose, remove the client "+
		"(take it out of every node's configuration file, or varde clients remove) and declare it again with "+
		"sector_id_change_accepted: %q",
		ch.Client.ID, ch.From, ch.To, made.Time.UTC().Format(time.DateOnly), ch.From, ch.From, ch.To, ch.From)
}

// lastRemoval returns the newest client_removed event of client id, or
// nil if it was never removed.
func lastRemoval(ctx context.Context, st ClientHistory, id string) (*store.AuditEvent, error) {
	events, err := st.ListAuditRange(ctx, store.AuditQuery{ClientID: id, Types: []string{clientRemoved}})
	if err != nil {
		return nil, fmt.Errorf("look up removals of client %s: %w", id, err)
	}
	if len(events) == 0 {
		return nil, nil
	}
	return events[len(events)-1], nil
}

// served reports whether a person has logged in to client id: a
// consent event records each time a client receives a person's claims,
// sub among them, and the audit log keeps every event for good.
func served(ctx context.Context, st ClientHistory, id string) (bool, error) {
	events, err := st.ListAuditRange(ctx, store.AuditQuery{ClientID: id, Types: []string{"consent"}, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("look up logins to client %s: %w", id, err)
	}
	return len(events) > 0, nil
}

// clientRemoved is the type of the event RemoveClient records.
const clientRemoved = "client_removed"

// clientSectorChanged is the type of the event a change of a client's
// sector records.
const clientSectorChanged = "client_sector_changed"

// sectorChangeEvent records ch, made by via (store.ClientSourceConfig
// or ClientSourceCLI).
func sectorChangeEvent(ctx context.Context, ch SectorChange, via string, now time.Time) *store.AuditEvent {
	ev := &store.AuditEvent{Type: clientSectorChanged, ClientID: ch.Client.ID, Result: store.ResultSuccess,
		Details: map[string]string{"from": ch.From, "to": ch.To, "via": via, "people": strconv.FormatBool(ch.Served)}}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	return ev
}

// changeSector makes ch for the stored client c: the sector changes,
// every grant issued to the client is revoked, so that no refresh token
// issued under the old sector brings an ID token with another sub (OIDC
// Core §12.2), and the change is audited, in one write
// (store.Clients.ChangeClientSector). It returns how many grants it
// revoked.
func changeSector(ctx context.Context, st store.Clients, c *store.Client, ch SectorChange, via string, now time.Time) (int, error) {
	return st.ChangeClientSector(ctx, c, ch.From, now, sectorChangeEvent(ctx, ch, via, now))
}

// RecordSectorChange audits ch for a client not in the store, which is
// about to be added again: its grants were revoked when it was removed.
func RecordSectorChange(ctx context.Context, st store.AuditLog, ch SectorChange, via string, now time.Time) error {
	if err := st.AppendAudit(ctx, sectorChangeEvent(ctx, ch, via, now)); err != nil {
		return fmt.Errorf("record the sector change of client %s: %w", ch.Client.ID, err)
	}
	return nil
}

// applySectorChanges stores the configured clients at start: each
// accepted change of sector through changeSector or, for a client
// declared again after its removal, recorded before it is stored;
// every other client as it is declared, audited when that adds or
// changes it (declaredEvent). Each change of sector is logged at warn
// level.
func applySectorChanges(ctx context.Context, st store.Store, clients []config.Client, now time.Time, log *slog.Logger) error {
	changes, warnings, err := SectorChanges(ctx, st, clients, store.ClientSourceConfig)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	byID := make(map[string]SectorChange, len(changes))
	for _, ch := range changes {
		byID[ch.Client.ID] = ch
	}
	for _, c := range clients {
		sc, err := c.ToStore(now)
		if err != nil {
			return fmt.Errorf("client %s: %w", c.ID, err)
		}
		ch, changed := byID[c.ID]
		switch {
		case changed && ch.Stored:
			n, err := changeSector(ctx, st, sc, ch, store.ClientSourceConfig, now)
			if err != nil {
				return fmt.Errorf("client %s: %w", c.ID, err)
			}
			log.Warn("client's sector changed: people who log in to it get new subject identifiers there; its grants are revoked",
				"client", c.ID, "from", ch.From, "to", ch.To, "people", ch.Served, "grants_revoked", n)
			continue
		case changed:
			if err := RecordSectorChange(ctx, st, ch, store.ClientSourceConfig, now); err != nil {
				return err
			}
			log.Warn("client declared again with another sector: people who log in to it get new subject identifiers there",
				"client", c.ID, "from", ch.From, "to", ch.To)
		}
		if _, err := st.DeclareClient(ctx, sc, declaredEvent(ctx, sc, now)); errors.Is(err, store.ErrConflict) {
			// Another node changed it since SectorChanges read it.
			return fmt.Errorf("client %s: its sector changed in the store while this node started, "+
				"to another than this node's configuration file gives it: start again to see which (%w)", c.ID, err)
		} else if err != nil {
			return fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	return nil
}
