package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

const personsUsage = `usage: varde persons <show|block|unblock> --config FILE [flags] IDENTIFIER
       varde persons <show|block|unblock> --config FILE [flags] --id ID
       varde persons recover --config FILE --checked TEXT [--by NAME] [--remove-passkeys] (IDENTIFIER | --id ID)
       varde persons add-number --config FILE --reason TEXT [--by NAME] [--merge] IDENTIFIER NEW
       varde persons remove-number --config FILE --reason TEXT [--by NAME] IDENTIFIER NUMBER
       varde persons export --config FILE --reason TEXT --out FILE [--by NAME] [--with-held-addresses] (IDENTIFIER | --id ID)

  show        look a person up by an identifier, or by their person ID
              (--id, as show and the audit log print it: finds a person
              retired by add-number --merge, who holds no number), and
              show their ways in: identifiers, passkeys, recovery codes
              left, the help desk code (recover) and whether it is still
              good, was used or expired (kept 30 days after it expires),
              live sessions, refresh tokens, and whether their Varde ID is
              blocked
  block       block the person's Varde ID at once (--reason, required): every
              way in refuses them, their sessions end (relying parties that
              got tokens in them are told), and their refresh and access
              tokens stop working; audited with the reason and --by
  unblock     lift the block (--reason, required), after the person has shown
              who they are again; audited. Sessions and tokens the block
              ended stay ended: the person logs in again. Block, unblock and
              export find the person by --id too, as show does
  recover     give a person who has lost every way in (their passkey, their
              recovery codes, and no eID to log in with) a one-time code to
              log in with, after checking who they are in person: --checked
              (required) says how, e.g. "passport at the counter". The code is
              printed once, for you to hand over on paper, and stored only as
              its hash; the person types it on the recovery page
              (ISSUER/passkey/recover), where a recovery code goes, within 24
              hours, once. It logs in at level low, as a recovery code does,
              and the person then adds a new passkey on their account page. A
              new code replaces the one before. The same write ends every
              session of theirs and revokes their grants, as block does: whoever
              holds the lost device is logged out; with --remove-passkeys it
              removes every passkey of theirs too, when each was on what they
              lost. Refused for a blocked person (unblock first, once they have
              shown who they are) and for one retired by add-number --merge.
              Audited as recovery_issued with --checked and --by, never the
              code; the person sees it among their activity
  add-number  give the person found by IDENTIFIER a new national number NEW
              (--reason, required), when theirs changed: a D-number followed
              by a birth number, a birth number replaced. The old number
              stays; logins through eIDs with either are the same person,
              with the same sub at every service. Check the change in the
              population register first: Varde does not, it takes the help
              desk's word. Audited with the reason and --by, no number.
              Refused while the person's Varde ID is blocked: unblock first.
              If NEW already belongs to another person at Varde (an eID login
              with it came first), it is refused; --merge then moves NEW to
              this person and retires the other one, only if that person
              holds nothing but NEW (no passkey, no recovery code, no other
              number) and is not blocked: their sessions end, their tokens
              stop working, and services stop seeing that person's sub
  remove-number
              take NUMBER, one of the numbers of the person found by
              IDENTIFIER (it may be NUMBER itself), off them (--reason,
              required): for a number that is not theirs, such as someone
              else's eID linked from their session on a shared phone. From
              then on a login through an eID with NUMBER does not find the
              person: it makes a person of its own. The person keeps their
              sub at every service. Varde does not record which number a
              login proved, so every session of the person ends (services
              that got tokens in them are told) and every grant is revoked:
              they log in again with what they still hold. A person's last
              number is never removed: block their Varde ID instead. A
              blocked person's number is removed too, and the block stays.
              Audited with the reason and --by, no number
  export      write everything Varde holds about the person, for their
              access request (GDPR Art. 15), as one JSON document, to the
              new file --out, which only its owner can read (an existing
              file is never overwritten); --out - writes to standard output,
              which must be asked for by name. It holds who they are and how
              they were proofed, their numbers IN FULL (it is for the person
              themself: give it to them only, by a channel you trust), the
              block and its reasons from the audit log, passkeys (name,
              created, last used, synced or not, authenticator model ID),
              recovery codes (left, used, when made), live sessions, each
              service's grants (scopes, since, last refreshed, until when,
              revoked) and every audit event about them, all read in one
              snapshot of the store: the person as they were at one
              instant, its "exported_at", while the nodes go on writing (a
              login during the export is in the next one). Never a token,
              code, hash, credential ID or public key. The address of an event
              older than audit.address_retention is left out, as if deleted:
              the store keeps it only under a hold (varde audit hold), which
              the person is not told of; --with-held-addresses puts it in,
              once the order allows. Its field "format" names
              the layout, varde-person-export/1. --reason is required; the
              export is audited with --by, no number, before it is written,
              and the person sees it among their activity. What it does not
              hold (what services and eIDs keep, the proxy's logs, backups):
              see the README

IDENTIFIER, NEW and NUMBER are the scheme and the number, as the configuration
spells schemes: no:fnr:01018012371, no:dnr:..., dk:cpr:..., se:pnr:...,
fi:hetu:..., passport:NOR:.... Spaces in the number are ignored; quote it
if it has any; check digits are checked. Numbers are shown masked (in
full only in an export); secrets never.
`

// maxOperatorLen bounds --by: a name or a user name, not a note.
const maxOperatorLen = 64

// personsCmd runs persons's commands, reading the time from now.
func personsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs, path, err := adminFlags("persons", personsUsage, args, stderr)
	if err != nil {
		return err
	}
	var reason, by, personID, out string
	var merge, withHeld, removePasskeys bool
	positional := []string{"IDENTIFIER"}
	switch args[0] {
	case "show", "block", "unblock", "export", "recover":
		fs.StringVar(&personID, "id", "", "the person's `ID`, as show and the audit log print it, instead of IDENTIFIER")
		positional = []string{"[IDENTIFIER]"}
	case "add-number":
		positional = append(positional, "NEW")
	case "remove-number":
		positional = append(positional, "NUMBER")
	default:
		return unknownSubcommand("persons", personsUsage, args[0], stderr, "show", "block", "unblock", "recover", "add-number", "remove-number", "export")
	}
	// The note every change takes for the audit log: why, or for a help
	// desk code, what was checked of who the person is.
	noteFlag := "--reason"
	switch args[0] {
	case "show":
	case "recover":
		noteFlag = "--checked"
		fs.StringVar(&reason, "checked", "", fmt.Sprintf("what you checked of who the person is, in person, for the audit log, "+
			"at most %d characters (e.g. %q) (required)", store.MaxBlockReasonLen, "passport at the counter"))
		fs.BoolVar(&removePasskeys, "remove-passkeys", false, "also remove every passkey of theirs, when each was on what they lost")
	default:
		example := "phone stolen, called the help desk"
		if args[0] == "export" {
			example = "access request by letter, identity checked at the counter"
		}
		fs.StringVar(&reason, "reason", "", fmt.Sprintf("why, for the audit log, in plain words, at most %d characters "+
			"(e.g. %q) (required)", store.MaxBlockReasonLen, example))
	}
	if args[0] != "show" {
		fs.StringVar(&by, "by", "", "who does it, for the audit log (default: the user running this command)")
	}
	if args[0] == "export" {
		fs.StringVar(&out, "out", "", "the new `FILE` to write the export to, readable by its owner only; - for standard output (required)")
		fs.BoolVar(&withHeld, "with-held-addresses", false, "also give the addresses older than audit.address_retention that a hold keeps "+
			"(varde audit hold), once the order allows the person to know")
	}
	if args[0] == "add-number" {
		fs.BoolVar(&merge, "merge", false, "if NEW belongs to another person holding nothing else, move it and retire that person")
	}
	if err := parseFlags(fs, args[1:], positional...); err != nil {
		return err
	}
	if len(positional) == 1 {
		switch {
		case personID != "" && fs.NArg() > 0:
			return usageErrorf("%s: give the person's IDENTIFIER or --id, not both", fs.Name())
		case personID == "" && fs.NArg() == 0:
			return usageErrorf("%s: missing IDENTIFIER (or --id ID)", fs.Name())
		}
	}
	// The export holds the person's numbers in full: it goes to a
	// terminal, or anywhere but a file, only when asked for by name.
	if args[0] == "export" && out == "" {
		return usageErrorf("%s: --out FILE is required (--out - writes to standard output): the export holds the person's numbers in full", fs.Name())
	}
	var id store.Identifier
	if personID == "" {
		if id, err = parseIdentifierArg(fs.Arg(0)); err != nil {
			return err
		}
	}
	// NEW or NUMBER, the number added or removed.
	var number store.Identifier
	if len(positional) == 2 {
		if number, err = parseIdentifierArg(fs.Arg(1)); err != nil {
			return err
		}
		if args[0] == "add-number" && number.Scheme == id.Scheme && number.Value == id.Value {
			return usageErrorf("the new number is the number the person is found by: nothing to add")
		}
	}
	if args[0] != "show" {
		if reason, err = plainNote(noteFlag, reason, store.MaxBlockReasonLen); err != nil {
			return err
		}
		if by == "" {
			by = osUser()
		}
		if by, err = plainNote("--by", by, maxOperatorLen); err != nil {
			return err
		}
	}
	cfg, st, err := openNodeStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	// Sessions unused for the idle timeout have ended, as the nodes
	// count them.
	st.SetSessionIdleTimeout(cfg.Session.IdleTimeout)
	p, err := lookUpPerson(ctx, st, personID, id)
	if err != nil {
		return err
	}
	switch args[0] {
	case "block":
		return blockPerson(ctx, st, p, reason, by, now(), stdout)
	case "unblock":
		return unblockPerson(ctx, st, p, reason, by, now(), stdout)
	case "recover":
		return recoverPerson(ctx, st, cfg.Issuer, p, deskIssue{checked: reason, by: by, removePasskeys: removePasskeys}, now(), stdout)
	case "add-number":
		return addNumber(ctx, st, p, number, merge, reason, by, now(), stdout)
	case "remove-number":
		return removeNumber(ctx, st, p, number, reason, by, now(), stdout)
	case "export":
		// The subs services get come from the nodes' salt: one that is
		// not theirs would give the person wrong ones.
		salt, err := app.StoreSubjectSalt(ctx, cfg, st)
		if err != nil {
			return fmt.Errorf("the subject salt, for the sub each service gets: %w; nothing exported", err)
		}
		// Addresses past their retention are there only under a hold,
		// which the export does not give away unless asked (ADR 45).
		addrsKept := cfg.Audit.AddressRetention
		if withHeld {
			addrsKept = 0
		}
		return exportPerson(ctx, st, cfg.Issuer, salt, addrsKept, p, out, reason, by, now, stdout, stderr)
	}
	return showPerson(ctx, st, p, now(), stdout)
}

// lookUpPerson finds the person with ID personID, or if that is "",
// the person who holds id, saying which was not found.
func lookUpPerson(ctx context.Context, st store.Persons, personID string, id store.Identifier) (*store.Person, error) {
	if personID != "" {
		p, err := st.GetPerson(ctx, personID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("no person with ID %s at Varde: no person found", personID)
		}
		return p, err
	}
	p, err := st.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("nobody at Varde holds that %s number: no person found", id.Scheme)
	}
	return p, err
}

// parseIdentifierArg reads "scheme:value" (the scheme itself holds a
// colon: no:fnr, passport:NOR) into the identifier's canonical form, as
// logins store it. A number that is not valid for its scheme is
// refused with package identity's reason, which never repeats the
// number.
func parseIdentifierArg(arg string) (store.Identifier, error) {
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 || i == len(arg)-1 {
		return store.Identifier{}, usageErrorf("the identifier must be the scheme and the number: no:fnr:NUMBER, passport:NOR:NUMBER and so on")
	}
	n, err := identity.Parse(arg[:i], arg[i+1:])
	if errors.Is(err, identity.ErrUnknownScheme) {
		return store.Identifier{}, usageErrorf("unknown identifier scheme %q; the schemes are no:fnr, no:dnr, dk:cpr, se:pnr, fi:hetu and passport:<ISO 3166-1 alpha-3>", arg[:i])
	}
	if err != nil {
		return store.Identifier{}, &usageError{fmt.Errorf("not a valid number: %w", err)}
	}
	return n.Identifier(), nil
}

// plainNote checks a note for the audit log given with flag: required,
// one line of printable text, at most max characters; it is returned
// trimmed.
func plainNote(flag, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", usageErrorf("%s is required", flag)
	case !utf8.ValidString(s):
		return "", usageErrorf("%s is not UTF-8 text", flag)
	case utf8.RuneCountInString(s) > max:
		return "", usageErrorf("%s is longer than %d characters: keep it short, the audit log is no case file", flag, max)
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return "", usageErrorf("%s must be one line of plain text, without control characters", flag)
	}
	return s, nil
}

// osUser names the user running the command, for the audit log.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// utc formats t for the operator, "never" for the zero time.
func utc(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func showPerson(ctx context.Context, st store.Store, p *store.Person, now time.Time, w io.Writer) error {
	passkeys, err := st.ListPasskeys(ctx, p.ID)
	if err != nil {
		return err
	}
	codes, err := st.CountRecoveryCodes(ctx, p.ID)
	if err != nil {
		return err
	}
	access, err := st.PersonAccess(ctx, p.ID, now)
	if err != nil {
		return err
	}
	desk, err := deskCodeState(ctx, st, p.ID, now)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(p.GivenName + " " + p.FamilyName)
	if p.Synthetic {
		name += " (synthetic test person)"
	}
	state := "not blocked"
	if p.Blocked() {
		state = "BLOCKED since " + utc(p.BlockedAt) + ": " + p.BlockedReason
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"person", p.ID},
		{"name", name},
		{"born", p.BirthDate},
		{"created", utc(p.CreatedAt) + ", proofed " + p.ProofingLevel + " (" + p.ProofingMethod + ")"},
		{"Varde ID", state},
		{"sessions", strconv.Itoa(access.Sessions) + " live"},
		{"refresh tokens", fmt.Sprintf("%d (%d offline, outliving the session)", access.RefreshTokens, access.Offline)},
		{"recovery codes", strconv.Itoa(codes) + " left"},
		{"help desk code", desk},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := showIdentifiers(w, p.Identifiers); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(passkeys) == 0 {
		fmt.Fprintln(w, "no passkeys")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PASSKEY\tCREATED\tLAST USED\tKIND")
	for _, k := range passkeys {
		kind := "device-bound"
		if k.BackupEligible {
			kind = "synced"
		}
		name := k.Name
		if name == "" {
			name = "(no name)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, utc(k.CreatedAt), utc(k.LastUsedAt), kind)
	}
	return tw.Flush()
}

// showIdentifiers lists ids, masked, with what a login through each
// reaches. The store records a level only for a number linked from a
// session (store.Identifier.MaxLevel); one the person was proofed with
// and one the help desk added (add-number) look the same, so neither is
// said.
func showIdentifiers(w io.Writer, ids []store.Identifier) error {
	if len(ids) == 0 {
		fmt.Fprintln(w, "no numbers (retired by add-number --merge, or never given one)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEME\tNUMBER\tA LOGIN WITH IT REACHES\tLINKED")
	for _, id := range ids {
		reaches := "no cap: a login with it reaches the level it proves"
		if id.MaxLevel != "" {
			reaches = "at most " + id.MaxLevel + ": linked from a " + id.MaxLevel + " login"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id.Scheme, identity.Mask(id), reaches, linkedThrough(id))
	}
	return tw.Flush()
}

// linkedThrough says which eID linked id to the person, and when: the
// person's account page lists it under that eID's name, and they may
// unlink it there (ADR 57). "-" for a number they were proofed with or
// the help desk added, which they cannot.
func linkedThrough(id store.Identifier) string {
	switch {
	case !id.Linked():
		return "-"
	case id.LinkedThrough == "":
		return "by the person, through an eID not recorded (linked before that was kept)"
	}
	used := ""
	if !id.LastUsedAt.IsZero() {
		used = "; last used " + utc(id.LastUsedAt)
	}
	return "by the person, through " + id.LinkedThrough + ", " + utc(id.LinkedAt) + used
}

// Types of the audit events of varde persons.
const (
	eventPersonBlocked   = "person_blocked"
	eventPersonUnblocked = "person_unblocked"
	eventIdentifierAdded = "identifier_added"
	eventIdentifierGone  = "identifier_removed"
	eventPersonRetired   = "person_retired"
)

func blockPerson(ctx context.Context, st store.Store, p *store.Person, reason, by string, now time.Time, w io.Writer) error {
	if p.Blocked() {
		return fmt.Errorf("person %s is blocked already, since %s (%s): nothing changed", p.ID, utc(p.BlockedAt), p.BlockedReason)
	}
	log := &audit.Log{Now: func() time.Time { return now }}
	var sessions, grants int
	_, err := st.BlockPerson(ctx, p.ID, reason, now, func(s, g int) []*store.AuditEvent {
		sessions, grants = s, g
		ev := &store.AuditEvent{Type: eventPersonBlocked, PersonID: p.ID, Result: store.ResultSuccess, Details: map[string]string{
			"reason": reason, "by": by, "via": "cli", "sessions": strconv.Itoa(s), "grants": strconv.Itoa(g)}}
		log.Prepare(ctx, ev)
		return []*store.AuditEvent{ev}
	})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("person %s was blocked meanwhile by someone else: nothing changed (varde persons show says since when)", p.ID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "blocked person %s at %s.\n", p.ID, utc(now))
	fmt.Fprintf(w, "Ended %d sessions and revoked %d grants, with their refresh and access tokens.\n", sessions, grants)
	fmt.Fprintln(w, "Every login as this person is refused from now on, on every node; the running nodes tell the")
	fmt.Fprintln(w, "services that got tokens in the ended sessions (back-channel logout).")
	fmt.Fprintln(w, "Lift it with varde persons unblock once the person has shown who they are again.")
	return nil
}

// retiredPrefix begins the block reason of a person retired by
// add-number --merge.
const retiredPrefix = "retired: "

func unblockPerson(ctx context.Context, st store.Store, p *store.Person, reason, by string, now time.Time, w io.Writer) error {
	if !p.Blocked() {
		return fmt.Errorf("person %s is not blocked: nothing changed", p.ID)
	}
	// Retiring is a block nobody lifts (ADR 30): the person's number
	// went to another person, who is the one to log in.
	if len(p.Identifiers) == 0 && strings.HasPrefix(p.BlockedReason, retiredPrefix) {
		return fmt.Errorf("person %s was retired by add-number --merge (%s): that block is not lifted. Nothing changed", p.ID, p.BlockedReason)
	}
	ev := &store.AuditEvent{Type: eventPersonUnblocked, PersonID: p.ID, Result: store.ResultSuccess, Details: map[string]string{
		"reason": reason, "by": by, "via": "cli", "blocked_at": utc(p.BlockedAt)}}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	err := st.UnblockPerson(ctx, p.ID, ev)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("person %s was unblocked meanwhile by someone else: nothing changed", p.ID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lifted the block on person %s at %s (blocked since %s).\n", p.ID, utc(now), utc(p.BlockedAt))
	fmt.Fprintln(w, "They can log in again. Sessions and tokens the block ended stay ended.")
	return nil
}

// addNumber gives p the new number added, after the help desk has
// checked the change in the population register; with merge, a person
// who holds nothing but that number is retired and the number moved
// (ADR 30).
func addNumber(ctx context.Context, st store.Store, p *store.Person, added store.Identifier, merge bool, reason, by string, now time.Time, w io.Writer) error {
	masked := added.Scheme + " number " + identity.Mask(added)
	if p.Blocked() {
		return addToBlocked(p)
	}
	var retire *store.Person
	switch q, err := st.GetPersonByIdentifier(ctx, added.Scheme, added.Value); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case q.ID == p.ID:
		return fmt.Errorf("person %s holds that %s already: nothing changed", p.ID, masked)
	case !merge:
		return fmt.Errorf("that %s belongs to another person at Varde, %s, created %s: most likely an eID login with the new "+
			"number came first and made them. Nothing changed. See them with varde persons show; if that person holds "+
			"nothing but this number, --merge moves it to person %s and retires them", masked, q.ID, utc(q.CreatedAt), p.ID)
	default:
		if err := retirable(ctx, st, q); err != nil {
			return err
		}
		retire = q
	}
	log := &audit.Log{Now: func() time.Time { return now }}
	details := func(sessions, grants int) map[string]string {
		return map[string]string{"scheme": added.Scheme, "reason": reason, "by": by, "via": "cli",
			"sessions": strconv.Itoa(sessions), "grants": strconv.Itoa(grants)}
	}
	var retireID, retiredReason string
	if retire != nil {
		retireID, retiredReason = retire.ID, retiredPrefix+"their number was moved to person "+p.ID
	}
	var sessions, grants int
	_, err := st.AddIdentifier(ctx, p.ID, store.Identifier{Scheme: added.Scheme, Value: added.Value}, retireID, retiredReason, now,
		func(s, g int) []*store.AuditEvent {
			sessions, grants = s, g
			ev := &store.AuditEvent{Type: eventIdentifierAdded, PersonID: p.ID, Result: store.ResultSuccess, Details: details(0, 0)}
			evs := []*store.AuditEvent{ev}
			if retire != nil {
				ev.Details["retired"] = retire.ID
				gone := &store.AuditEvent{Type: eventPersonRetired, PersonID: retire.ID, Result: store.ResultSuccess, Details: details(s, g)}
				gone.Details["into"] = p.ID
				evs = append(evs, gone)
			}
			for _, e := range evs {
				log.Prepare(ctx, e)
			}
			return evs
		})
	if errors.Is(err, store.ErrBlocked) {
		return addToBlocked(p)
	}
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("the %s or a person it concerns changed meanwhile: nothing changed (%w); look again with varde persons show", masked, err)
	}
	if err != nil {
		return err
	}
	if retire == nil {
		fmt.Fprintf(w, "added the %s to person %s at %s.\n", masked, p.ID, utc(now))
		fmt.Fprintln(w, "Their other numbers stay: a login through an eID with any of them is this person, and every")
		fmt.Fprintln(w, "service gets the same sub as before. Varde did not check the population register: you did.")
		return nil
	}
	fmt.Fprintf(w, "moved the %s from person %s to person %s, and retired person %s, at %s.\n", masked, retire.ID, p.ID, retire.ID, utc(now))
	fmt.Fprintf(w, "Ended %d sessions and revoked %d grants of person %s, with their refresh and access tokens.\n", sessions, grants, retire.ID)
	fmt.Fprintln(w, "What services see: the subs they got for the retired person are not issued any more; a login with")
	fmt.Fprintf(w, "this number gets person %s's sub at each service again from now on. A service that opened an\n", p.ID)
	fmt.Fprintln(w, "account under the retired person's sub is not told: the person may need to ask it to join the two.")
	return nil
}

// removeNumber takes the number gone off p, for a number that is not
// theirs, ending every session of theirs and revoking their grants in
// the same write (ADR 44).
func removeNumber(ctx context.Context, st store.Store, p *store.Person, gone store.Identifier, reason, by string, now time.Time, w io.Writer) error {
	masked := gone.Scheme + " number " + identity.Mask(gone)
	if !slices.ContainsFunc(p.Identifiers, func(id store.Identifier) bool { return id.Scheme == gone.Scheme && id.Value == gone.Value }) {
		return fmt.Errorf("person %s does not hold that %s: nothing changed (varde persons show lists the numbers they hold)", p.ID, masked)
	}
	if len(p.Identifiers) == 1 {
		return fmt.Errorf("that %s is person %s's last number, and a person is never left without one. "+
			"To stop every way in, block their Varde ID instead: varde persons block --id %s. Nothing changed", masked, p.ID, p.ID)
	}
	log := &audit.Log{Now: func() time.Time { return now }}
	var sessions, grants int
	_, err := st.RemoveIdentifier(ctx, p.ID, gone, now, func(s, g int) []*store.AuditEvent {
		sessions, grants = s, g
		ev := &store.AuditEvent{Type: eventIdentifierGone, PersonID: p.ID, Result: store.ResultSuccess, Details: map[string]string{
			"scheme": gone.Scheme, "reason": reason, "by": by, "via": "cli", "sessions": strconv.Itoa(s), "grants": strconv.Itoa(g)}}
		log.Prepare(ctx, ev)
		return []*store.AuditEvent{ev}
	})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("person %s's numbers changed meanwhile: nothing changed (%w); look again with varde persons show", p.ID, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "removed the %s from person %s at %s.\n", masked, p.ID, utc(now))
	fmt.Fprintf(w, "Ended %d sessions and revoked %d grants, with their refresh and access tokens: Varde does not record\n", sessions, grants)
	fmt.Fprintln(w, "which number a login proved, so all of them. The person logs in again with what they still hold; the")
	fmt.Fprintln(w, "running nodes tell the services that got tokens in the ended sessions (back-channel logout).")
	fmt.Fprintln(w, "A login through an eID with that number no longer finds this person: it makes a person of its own.")
	fmt.Fprintln(w, "Every service keeps the same sub for this person; a service that gets the national number gets")
	fmt.Fprintln(w, "one of the numbers the person still holds from their next login.")
	if p.Blocked() {
		fmt.Fprintln(w, "Their Varde ID is still blocked: lift it with varde persons unblock once they have shown who they are.")
	}
	return nil
}

// addToBlocked refuses a new number to p, whose Varde ID is blocked: a
// help desk that has seen the person at the counter lifts the block
// first, deliberately, then adds the number.
func addToBlocked(p *store.Person) error {
	return fmt.Errorf("person %s's Varde ID is blocked; unblock it first (varde persons unblock --id %s), "+
		"once they have shown who they are. Nothing changed", p.ID, p.ID)
}

// retirable refuses to retire q unless q holds nothing but the one
// number, as an eID login makes a person: merging two identities that
// each have their own ways in is not for a command to do.
func retirable(ctx context.Context, st store.Store, q *store.Person) error {
	passkeys, err := st.ListPasskeys(ctx, q.ID)
	if err != nil {
		return err
	}
	codes, err := st.CountRecoveryCodes(ctx, q.ID)
	if err != nil {
		return err
	}
	var holds []string
	if len(passkeys) > 0 {
		holds = append(holds, strconv.Itoa(len(passkeys))+" passkeys")
	}
	if codes > 0 {
		holds = append(holds, strconv.Itoa(codes)+" recovery codes")
	}
	if len(q.Identifiers) > 1 {
		holds = append(holds, strconv.Itoa(len(q.Identifiers)-1)+" other numbers")
	}
	if q.Blocked() {
		holds = append(holds, "a block on their Varde ID")
	}
	if len(holds) > 0 {
		return fmt.Errorf("person %s holds %s besides the number: they are someone with ways in of their own, "+
			"and merging two identities is not done by a command. Nothing changed", q.ID, strings.Join(holds, ", "))
	}
	return nil
}
