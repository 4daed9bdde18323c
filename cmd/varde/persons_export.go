package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

// exportFormat names the layout of the document varde persons export
// writes, in its field "format". A reader may rely on every field it
// names; a field is added under the same name, and anything renamed,
// removed or given another meaning gets a new one.
const exportFormat = "varde-person-export/1"

// eventPersonExported is the audit event of an export.
const eventPersonExported = "person_exported"

// auditPage is how many of the person's events an export reads at once.
const auditPage = 500

// personExport is the document: everything Varde holds about one person,
// as the person may see it. Field names are the document's, documented
// in varde help persons; times are RFC 3339 in UTC, and a time that did
// not happen is left out.
type personExport struct {
	Format        string            `json:"format"`
	Issuer        string            `json:"issuer"`
	ExportedAt    string            `json:"exported_at"`
	Person        exportedPerson    `json:"person"`
	Identifiers   []exportedNumber  `json:"identifiers"`
	Block         exportedBlock     `json:"block"`
	Passkeys      []exportedPasskey `json:"passkeys"`
	RecoveryCodes exportedCodes     `json:"recovery_codes"`
	Sessions      []exportedSession `json:"sessions"`
	Grants        []exportedGrant   `json:"grants"`
	Services      []exportedService `json:"services"`
	Events        []exportedEvent   `json:"events"`
}

type exportedPerson struct {
	ID             string `json:"id"`
	GivenName      string `json:"given_name"`
	FamilyName     string `json:"family_name"`
	BirthDate      string `json:"birth_date"`
	CreatedAt      string `json:"created_at,omitempty"`
	ProofingLevel  string `json:"proofing_level"`
	ProofingMethod string `json:"proofing_method"`
	Synthetic      bool   `json:"synthetic"`
}

// exportedNumber is an identifier in full: the export is for the
// person themself.
type exportedNumber struct {
	Scheme string `json:"scheme"`
	Number string `json:"number"`
	// MaxLevel is the most a login with it reaches, for a number linked
	// from a session (store.Identifier.MaxLevel).
	MaxLevel string `json:"max_level,omitempty"`
	// LinkedThrough and LinkedAt are the eID whose login linked it and
	// when (store.Identifier.LinkedThrough), for a number the person
	// linked since they were recorded.
	LinkedThrough string     `json:"linked_through,omitempty"`
	LinkedAt      *time.Time `json:"linked_at,omitempty"`
	// LastUsedAt is when a login last found the person by it, as
	// recorded to within an hour (store.Identifier.LastUsedAt).
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

type exportedBlock struct {
	Blocked bool   `json:"blocked"`
	Since   string `json:"since,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// History are the blocks, unblocks and retirement from the audit
	// log, oldest first, with the help desk's reasons.
	History []exportedBlockChange `json:"history"`
}

type exportedBlockChange struct {
	Time   string `json:"time"`
	Event  string `json:"event"`
	Reason string `json:"reason,omitempty"`
}

// exportedPasskey leaves out the credential ID and public key: they
// identify the authenticator to anyone who reads them, and say nothing
// to the person.
type exportedPasskey struct {
	Name       string   `json:"name"`
	CreatedAt  string   `json:"created_at,omitempty"`
	LastUsedAt string   `json:"last_used_at,omitempty"`
	Synced     bool     `json:"synced"`
	BackedUp   bool     `json:"backed_up"`
	AAGUID     string   `json:"aaguid,omitempty"`
	Transports []string `json:"transports,omitempty"`
	MaxLevel   string   `json:"max_level,omitempty"`
}

type exportedCodes struct {
	Left       int    `json:"left"`
	Used       int    `json:"used"`
	MadeAt     string `json:"made_at,omitempty"`
	LastUsedAt string `json:"last_used_at,omitempty"`
}

type exportedSession struct {
	StartedAt       string   `json:"started_at"`
	AuthenticatedAt string   `json:"authenticated_at,omitempty"`
	LastUsedAt      string   `json:"last_used_at,omitempty"`
	ExpiresAt       string   `json:"expires_at"`
	Provider        string   `json:"provider"`
	Level           string   `json:"level"`
	AMR             []string `json:"amr,omitempty"`
	Degraded        bool     `json:"degraded"`
	Services        []string `json:"services"`
}

type exportedGrant struct {
	Service           string   `json:"service,omitempty"`
	ClientID          string   `json:"client_id"`
	Scopes            []string `json:"scopes"`
	OfflineAccess     bool     `json:"offline_access"`
	GrantedAt         string   `json:"granted_at"`
	Provider          string   `json:"provider,omitempty"`
	Level             string   `json:"level,omitempty"`
	LastRefreshedAt   string   `json:"last_refreshed_at,omitempty"`
	RefreshTokenUntil string   `json:"refresh_token_until,omitempty"`
	RevokedAt         string   `json:"revoked_at,omitempty"`
}

// exportedService is a service that the person's grants, sessions or
// events name, with the subject identifier (sub) it gets for them.
type exportedService struct {
	Service  string `json:"service,omitempty"`
	ClientID string `json:"client_id"`
	// Sub is the pairwise subject identifier the service gets for the
	// person now (ADR 4), or, for a service no longer registered, got
	// under the sector its removal recorded (ADR 35); left out for one
	// removed before removals recorded it.
	Sub string `json:"sub,omitempty"`
	// EarlierSubs are the subs the service got for the person under the
	// other sectors it had before a change of its sector (ADR 35): it
	// may know them by those too.
	EarlierSubs []string `json:"earlier_subs,omitempty"`
}

type exportedEvent struct {
	Time     string            `json:"time"`
	Event    string            `json:"event"`
	Service  string            `json:"service,omitempty"`
	ClientID string            `json:"client_id,omitempty"`
	Provider string            `json:"provider,omitempty"`
	Level    string            `json:"level,omitempty"`
	Result   string            `json:"result"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// exportedDetails are the details of an audit event that describe the
// person's own doings and data, and go in the export. The others name
// records (a session, a grant, a credential, a key), the operator who
// acted, or the node, and are left out: a detail added later stays out
// until it is added here. The address a request came from
// (store.DetailAddr) is in: it is personal data, which the person's
// account activity shows them too (ADR 33).
var exportedDetails = map[string]bool{
	store.DetailAddr: true, "claims": true, "method": true, "amr": true, "scheme": true, "grant_type": true, "degraded": true,
	"session_level": true, "proved_level": true, "max_level": true, "raised_from": true, "proofing": true,
	"sessions": true, "grants": true, "sessions_ended": true, "count": true, "n": true, "revoked": true,
	"reason": true, "blocked_at": true, "retired": true, "into": true,
	// The eID a link or an unlink (link_removed, ADR 57) was of.
	"provider": true,
	// What the help desk checked of who the person is before giving
	// them a code, until when it was good, and the passkeys it removed
	// (recovery_issued, ADR 62).
	"checked": true, "expires": true, "passkeys": true,
}

// blockEvents are the events that change a person's block.
var blockEvents = map[string]bool{eventPersonBlocked: true, eventPersonUnblocked: true, eventPersonRetired: true}

// instant is t in UTC for a field the document leaves out when t is
// the zero time.
func instant(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// stamp is t for the document: RFC 3339 in UTC, "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// exportTarget is where an export goes: a new file only the operator
// can read, or standard output, asked for by name (--out -).
type exportTarget struct {
	path string
	file *os.File
	w    io.Writer
}

// openExportTarget opens out before anything is read or audited, so a
// file that exists already or cannot be made stops the export first. An
// existing file is never overwritten: it may be another person's export.
func openExportTarget(out string, stdout io.Writer) (*exportTarget, error) {
	if out == "-" {
		return &exportTarget{path: "standard output", w: stdout}, nil
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("--out: %s exists already: nothing exported; give a new file", out)
	}
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	return &exportTarget{path: out, file: f, w: f}, nil
}

// abandon removes a file the export made and did not finish.
func (t *exportTarget) abandon() {
	if t.file != nil {
		t.file.Close()
		os.Remove(t.path)
	}
}

// finish writes doc and, for a file, makes it durable.
func (t *exportTarget) finish(doc []byte) error {
	if _, err := t.w.Write(doc); err != nil {
		return err
	}
	if t.file == nil {
		return nil
	}
	if err := t.file.Sync(); err != nil {
		return err
	}
	return t.file.Close()
}

// exportPerson writes everything the store holds about p to out, after
// recording the export in the audit log: no copy leaves unaudited.
func exportPerson(ctx context.Context, st store.Store, issuer string, salt []byte, addrsKept time.Duration, p *store.Person, out, reason, by string, clock func() time.Time, stdout, stderr io.Writer) error {
	target, err := openExportTarget(out, stdout)
	if err != nil {
		return err
	}
	doc, raw, now, err := snapshotExport(ctx, st, issuer, salt, addrsKept, p.ID, clock)
	if err == nil {
		ev := &store.AuditEvent{Type: eventPersonExported, PersonID: p.ID, Result: store.ResultSuccess,
			Details: map[string]string{"reason": reason, "by": by, "via": "cli", "events": fmt.Sprint(len(doc.Events))}}
		(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
		err = st.AppendAudit(ctx, ev)
	}
	if err != nil {
		target.abandon()
		return fmt.Errorf("export person %s: %w (nothing exported)", p.ID, err)
	}
	if err := target.finish(raw); err != nil {
		target.abandon()
		return fmt.Errorf("export person %s: the audit log records the export, but writing %s failed: %w", p.ID, target.path, err)
	}
	msg := fmt.Sprintf("wrote what Varde holds about person %s to %s: %d identifiers, %d passkeys, %d sessions, %d grants, %d events.\n"+
		"It holds their numbers in full: give it to the person only, by a channel your procedure trusts.\n",
		p.ID, target.path, len(doc.Identifiers), len(doc.Passkeys), len(doc.Sessions), len(doc.Grants), len(doc.Events))
	if target.file == nil {
		// Standard output carries the document alone.
		_, err = io.WriteString(stderr, msg)
		return err
	}
	_, err = io.WriteString(stdout, msg)
	return err
}

// snapshotExport is encodeExport of the person with ID personID, read in
// one snapshot of st (store.Snapshots): a true picture of one instant,
// which the document gives as its exported_at (clock's time once the
// snapshot is taken), though other nodes go on writing meanwhile.
// Separate reads could give a document no instant ever had, such as a
// passkey's removal without the passkey, or a session without its
// login.
func snapshotExport(ctx context.Context, st store.Snapshots, issuer string, salt []byte, addrsKept time.Duration, personID string, clock func() time.Time) (doc *personExport, raw []byte, at time.Time, err error) {
	err = st.ReadSnapshot(ctx, func(ctx context.Context, snap store.Snapshot) error {
		at = clock()
		var err error
		doc, raw, err = encodeExport(ctx, snap, issuer, salt, addrsKept, personID, at)
		return err
	})
	return doc, raw, at, err
}

// encodeExport is collectExport's document and its JSON, indented for a
// person to read.
func encodeExport(ctx context.Context, st store.Snapshot, issuer string, salt []byte, addrsKept time.Duration, personID string, now time.Time) (*personExport, []byte, error) {
	doc, err := collectExport(ctx, st, issuer, salt, addrsKept, personID, now)
	if err != nil {
		return nil, nil, err
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	return doc, append(raw, '\n'), nil
}

// collectExport reads what the store holds about the person with ID
// personID at now; salt is the nodes' subject salt, which gives the sub
// each service gets. An event's address goes in only if the event is
// younger than addrsKept (0: any age): see exportEvents.
func collectExport(ctx context.Context, st store.Snapshot, issuer string, salt []byte, addrsKept time.Duration, personID string, now time.Time) (*personExport, error) {
	p, err := st.GetPerson(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("read person: %w", err)
	}
	names := serviceNames{st: st, clients: map[string]*store.Client{}}
	doc := &personExport{
		Format: exportFormat, Issuer: issuer, ExportedAt: stamp(now),
		Person: exportedPerson{ID: p.ID, GivenName: p.GivenName, FamilyName: p.FamilyName, BirthDate: p.BirthDate,
			CreatedAt: stamp(p.CreatedAt), ProofingLevel: p.ProofingLevel, ProofingMethod: p.ProofingMethod, Synthetic: p.Synthetic},
		Identifiers: []exportedNumber{},
		Block:       exportedBlock{Blocked: p.Blocked(), Since: stamp(p.BlockedAt), Reason: p.BlockedReason, History: []exportedBlockChange{}},
	}
	for _, id := range p.Identifiers {
		n := exportedNumber{Scheme: id.Scheme, Number: id.Value, MaxLevel: id.MaxLevel, LinkedThrough: id.LinkedThrough}
		n.LinkedAt, n.LastUsedAt = instant(id.LinkedAt), instant(id.LastUsedAt)
		doc.Identifiers = append(doc.Identifiers, n)
	}
	if doc.Passkeys, err = exportPasskeys(ctx, st, p.ID); err != nil {
		return nil, err
	}
	codes, err := st.DescribeRecoveryCodes(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	doc.RecoveryCodes = exportedCodes{Left: codes.Left, Used: codes.Used, MadeAt: stamp(codes.MadeAt), LastUsedAt: stamp(codes.LastUsedAt)}
	if doc.Sessions, err = exportSessions(ctx, st, &names, p.ID, now); err != nil {
		return nil, err
	}
	if doc.Grants, err = exportGrants(ctx, st, &names, p.ID, now); err != nil {
		return nil, err
	}
	if doc.Events, err = exportEvents(ctx, st, &names, p.ID, store.AddrCut(now, addrsKept)); err != nil {
		return nil, err
	}
	if names.err != nil {
		return nil, names.err
	}
	if doc.Services, err = names.services(ctx, st, salt, p.ID); err != nil {
		return nil, err
	}
	for _, e := range doc.Events {
		if blockEvents[e.Event] {
			doc.Block.History = append(doc.Block.History, exportedBlockChange{Time: e.Time, Event: e.Event, Reason: e.Details["reason"]})
		}
	}
	return doc, nil
}

func exportPasskeys(ctx context.Context, st store.Snapshot, personID string) ([]exportedPasskey, error) {
	keys, err := st.ListPasskeys(ctx, personID)
	if err != nil {
		return nil, err
	}
	out := []exportedPasskey{}
	for _, k := range keys {
		out = append(out, exportedPasskey{Name: k.Name, CreatedAt: stamp(k.CreatedAt), LastUsedAt: stamp(k.LastUsedAt),
			Synced: k.BackupEligible, BackedUp: k.BackupState, AAGUID: aaguid(k.AAGUID), Transports: k.Transports, MaxLevel: k.MaxLevel})
	}
	return out, nil
}

// aaguid writes an authenticator's model ID as a UUID, "" when the
// authenticator gave none (all zeros, as most passkeys do without
// attestation).
func aaguid(b []byte) string {
	if len(b) != 16 || strings.Trim(string(b), "\x00") == "" {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func exportSessions(ctx context.Context, st store.Snapshot, names *serviceNames, personID string, now time.Time) ([]exportedSession, error) {
	sessions, err := st.ListPersonSessions(ctx, personID, now)
	if err != nil {
		return nil, err
	}
	out := []exportedSession{}
	for _, s := range sessions {
		services := []string{}
		for _, c := range s.Clients {
			services = append(services, names.nameOrID(ctx, c))
		}
		out = append(out, exportedSession{StartedAt: stamp(s.CreatedAt), AuthenticatedAt: stamp(s.AuthTime), LastUsedAt: stamp(s.LastUsed),
			ExpiresAt: stamp(s.ExpiresAt), Provider: s.Provider, Level: s.Level, AMR: s.AMR, Degraded: s.Degraded, Services: services})
	}
	return out, nil
}

func exportGrants(ctx context.Context, st store.Snapshot, names *serviceNames, personID string, now time.Time) ([]exportedGrant, error) {
	grants, err := st.ListPersonGrants(ctx, personID, now)
	if err != nil {
		return nil, err
	}
	out := []exportedGrant{}
	for _, g := range grants {
		scopes := g.Scope
		if scopes == nil {
			scopes = []string{}
		}
		offline := false
		for _, s := range scopes {
			offline = offline || s == store.ScopeOfflineAccess
		}
		// A revoked grant's tokens work no more, whenever they expire.
		until := g.RefreshUntil
		if !g.RevokedAt.IsZero() {
			until = time.Time{}
		}
		out = append(out, exportedGrant{Service: names.name(ctx, g.ClientID), ClientID: g.ClientID, Scopes: scopes, OfflineAccess: offline,
			GrantedAt: stamp(g.CreatedAt), Provider: g.Provider, Level: g.Level, LastRefreshedAt: stamp(g.RefreshedAt),
			RefreshTokenUntil: stamp(until), RevokedAt: stamp(g.RevokedAt)})
	}
	return out, nil
}

// exportEvents reads every event about the person, oldest first, page
// by page, with their addresses by the rule the person's activity
// follows too (store.AuditEvent.AddrPastRetention, ADR 54): the address
// an event older than addrsFrom keeps apart (AddrDigest), past
// audit.address_retention, is in the store only because an operator's
// hold covers it, for a preservation order, which is often
// confidential: left out, it reads as deleted, as the person's account
// page shows it (ADR 45), unless the help desk asks for it
// (--with-held-addresses, a zero addrsFrom). An address sealed in its
// event's hashed body, as every event's was before schema 0031, is
// kept for as long as the log is (ADR 38), held or not, and goes in.
func exportEvents(ctx context.Context, st store.Snapshot, names *serviceNames, personID string, addrsFrom time.Time) ([]exportedEvent, error) {
	out := []exportedEvent{}
	var after int64
	for {
		page, err := st.ListPersonAuditAfter(ctx, personID, after, auditPage)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			out = append(out, exportedEvent{Time: stamp(e.Time), Event: e.Type, Service: names.name(ctx, e.ClientID), ClientID: e.ClientID,
				Provider: e.Provider, Level: e.Level, Result: e.Result, Reason: e.Reason, Details: personalDetails(e.Details, e.AddrPastRetention(addrsFrom))})
		}
		if len(page) < auditPage {
			return out, nil
		}
		after = page[len(page)-1].Seq
	}
}

// personalDetails are the details of an event that go in the export
// (exportedDetails), but for its address if noAddr; nil if none.
func personalDetails(d map[string]string, noAddr bool) map[string]string {
	var out map[string]string
	for k, v := range d {
		if !exportedDetails[k] || v == "" || noAddr && k == store.DetailAddr {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// serviceNames names relying parties by their registration, reading
// each once, and remembers every one named.
type serviceNames struct {
	st interface {
		GetClient(ctx context.Context, id string) (*store.Client, error)
	}
	// clients are those named so far, nil for one no longer registered.
	clients map[string]*store.Client
	// err is the first failure to read a client other than its absence:
	// an export with a name missing for it is not written.
	err error
}

// services are the clients named so far, by ID, with the sub each gets
// for the person with ID personID: for a client no longer registered,
// the one it got under the sector its removal recorded in log; and the
// subs under the sectors each had before (clientSectors).
func (n *serviceNames) services(ctx context.Context, log store.Snapshot, salt []byte, personID string) ([]exportedService, error) {
	history, err := clientSectors(ctx, log)
	if err != nil {
		return nil, err
	}
	out := []exportedService{}
	for _, id := range slices.Sorted(maps.Keys(n.clients)) {
		s := exportedService{ClientID: id}
		h := history[id]
		if h == nil {
			h = &sectorHistory{}
		}
		sector := h.removedAs
		if c := n.clients[id]; c != nil {
			s.Service, sector = c.Name, c.Sector()
		}
		if sector != "" {
			s.Sub = oidc.PairwiseSubject(salt, sector, personID)
		}
		for _, earlier := range h.sectors {
			if earlier != sector {
				s.EarlierSubs = append(s.EarlierSubs, oidc.PairwiseSubject(salt, earlier, personID))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// sectorHistory is what the audit log says of a client ID's sectors.
type sectorHistory struct {
	// removedAs is the sector its last removal recorded, "" if none.
	removedAs string
	// sectors are the sectors it had, in the order first seen.
	sectors []string
}

// clientSectors reads, in one pass over log, the sectors of each client
// ID its removals and changes of sector record (ADR 35).
func clientSectors(ctx context.Context, log store.Snapshot) (map[string]*sectorHistory, error) {
	events, err := log.ListAuditRange(ctx, store.AuditQuery{Types: []string{"client_removed", "client_sector_changed"}})
	if err != nil {
		return nil, fmt.Errorf("sectors of services: %w", err)
	}
	out := map[string]*sectorHistory{}
	for _, e := range events {
		h := out[e.ClientID]
		if h == nil {
			h = &sectorHistory{}
			out[e.ClientID] = h
		}
		if e.Type == "client_removed" {
			h.removedAs = e.Details["sector"]
		}
		for _, sec := range []string{e.Details["sector"], e.Details["from"], e.Details["to"]} {
			if sec != "" && !slices.Contains(h.sectors, sec) {
				h.sectors = append(h.sectors, sec)
			}
		}
	}
	return out, nil
}

// name is the client's registered name, "" for none or a client no
// longer registered (its ID stays beside it in the document).
func (n *serviceNames) name(ctx context.Context, clientID string) string {
	if clientID == "" {
		return ""
	}
	c, ok := n.clients[clientID]
	if !ok {
		var err error
		c, err = n.st.GetClient(ctx, clientID)
		if err != nil && !errors.Is(err, store.ErrNotFound) && n.err == nil {
			n.err = fmt.Errorf("name of service %s: %w", clientID, err)
		}
		n.clients[clientID] = c
	}
	if c == nil {
		return ""
	}
	return c.Name
}

// nameOrID is the client's name, or its ID when it has none.
func (n *serviceNames) nameOrID(ctx context.Context, clientID string) string {
	if name := n.name(ctx, clientID); name != "" {
		return name
	}
	return clientID
}
