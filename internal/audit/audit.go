package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

// Redacted replaces values that must not enter the log.
const Redacted = "[redacted]"

// defaultPageSize is how many events Verify reads at a time.
const defaultPageSize = 500

// Log writes and verifies the audit log.
type Log struct {
	Store store.AuditLog
	// Log receives failures to record and redaction warnings; nil means
	// slog.Default().
	Log *slog.Logger
	// Now stamps events that have no time; nil means time.Now.
	Now func() time.Time

	pageSize int // for tests; 0 means defaultPageSize
}

// recordTimeout bounds how long Record waits for the store once the
// request that caused the event is gone.
const recordTimeout = 10 * time.Second

// Record appends e like Append, for callers that have already decided and
// must not fail because the log did: a failure is logged as an error, not
// returned. What was decided has usually happened already (a passkey
// removed, a login refused), so the event is written even when ctx ends,
// as it does when the person's browser goes away: within recordTimeout.
func (l *Log) Record(ctx context.Context, e *store.AuditEvent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := l.Append(ctx, e); err != nil {
		l.logger().ErrorContext(ctx, "audit event not recorded", "type", e.Type, "result", e.Result, "reason", e.Reason, "err", err)
	}
}

// Append sets e.Time if it is zero, redacts what must not be stored (see
// the package documentation), and appends e, which the store gives its
// Seq, PrevHash and Hash. Callers that must fail closed use Append and
// stop on its error.
func (l *Log) Append(ctx context.Context, e *store.AuditEvent) error {
	l.Prepare(ctx, e)
	if err := l.Store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Prepare does to e what Append does before appending it: it sets e.Time
// if it is zero, records the address of the client whose request ctx
// belongs to (httpx.ClientAddr) under Details[store.DetailAddr] unless
// e has one, and redacts what must not be stored. A caller that hands
// e to a store write that appends it (store.Grants.CreateGrantTokens)
// calls Prepare first.
func (l *Log) Prepare(ctx context.Context, e *store.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = l.now().UTC().Truncate(time.Microsecond)
	}
	if a, ok := httpx.ClientAddr(ctx); ok && e.Details[store.DetailAddr] == "" {
		// Copied: a map the caller shares is left alone, as Scrub does.
		e.Details = maps.Clone(e.Details)
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details[store.DetailAddr] = a.String()
	}
	if redacted := Scrub(e); len(redacted) > 0 {
		l.logger().WarnContext(ctx, "audit event values redacted", "type", e.Type, "fields", redacted)
	}
}

// ChainError says where the audit chain is broken. It matches
// store.ErrBrokenChain with errors.Is.
type ChainError struct {
	// Seq is the first sequence number at which the chain is wrong.
	Seq     int64
	Problem string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Problem)
}

// Unwrap returns store.ErrBrokenChain.
func (e *ChainError) Unwrap() error { return store.ErrBrokenChain }

// Verify walks the whole chain from seq 1 and reports how many events it
// checked. It returns a *ChainError for the first event that is missing,
// out of order, not linked to its predecessor's hash, whose hash does
// not match its contents, or whose address kept apart does not match its
// digest (store.AuditEvent.AddrIntact).
func (l *Log) Verify(ctx context.Context) (n int, err error) {
	h, err := l.VerifyHead(ctx)
	return h.Events, err
}

// Head is the last event of a verified chain: its sequence number, hash
// and time, and how many events the chain holds. Whoever keeps a Head
// (AnchorString) can later tell, with CheckAnchor, whether the events up
// to it are still the ones it covered: changing any of them changes
// every hash after it.
type Head struct {
	Events int
	Seq    int64
	Hash   []byte
	Time   time.Time
	// AddrsDeletedTo is the time of the newest event whose address,
	// kept apart from it (store.AuditEvent.AddrDigest), is deleted;
	// zero if none is. Deleting an address leaves the chain whole, so
	// the chain cannot show one deleted before its retention ran out;
	// this time, younger than the retention, does.
	AddrsDeletedTo time.Time
}

// AnchorString is h as "SEQ:HASH" (the hash in lowercase hex), the form
// CheckAnchor and `varde store verify --anchor` take.
func (h Head) AnchorString() string {
	return fmt.Sprintf("%d:%x", h.Seq, h.Hash)
}

// VerifyHead is Verify that also returns the chain's head (zero for an
// empty log); on a broken chain the head is the last event that checked.
func (l *Log) VerifyHead(ctx context.Context) (Head, error) {
	size := l.pageSize
	if size <= 0 {
		size = defaultPageSize
	}
	var h Head
	for {
		page, err := l.Store.ListAudit(ctx, h.Seq, size)
		if err != nil {
			return h, fmt.Errorf("audit verify after seq %d: %w", h.Seq, err)
		}
		for _, e := range page {
			switch {
			case e.Seq > h.Seq+1:
				return h, &ChainError{Seq: h.Seq + 1, Problem: fmt.Sprintf("missing; the next event is seq %d", e.Seq)}
			case e.Seq != h.Seq+1:
				return h, &ChainError{Seq: e.Seq, Problem: fmt.Sprintf("out of order after seq %d", h.Seq)}
			case !bytes.Equal(e.PrevHash, h.Hash):
				return h, &ChainError{Seq: e.Seq, Problem: "prev_hash is not the hash of the event before"}
			case !bytes.Equal(e.ComputeHash(), e.Hash):
				return h, &ChainError{Seq: e.Seq, Problem: "hash does not match the event's contents"}
			case !e.AddrIntact():
				return h, &ChainError{Seq: e.Seq, Problem: "the address kept does not match its digest"}
			}
			h = Head{Events: h.Events + 1, Seq: e.Seq, Hash: e.Hash, Time: e.Time, AddrsDeletedTo: addrsDeletedTo(h.AddrsDeletedTo, e)}
		}
		if len(page) < size {
			return h, nil
		}
	}
}

// addrsDeletedTo is to, or e's time if e's address kept apart is
// deleted and e is newer.
func addrsDeletedTo(to time.Time, e *store.AuditEvent) time.Time {
	if _, kept := e.Details[store.DetailAddr]; len(e.AddrDigest) == 0 || kept || !e.Time.After(to) {
		return to
	}
	return e.Time
}

// ErrAnchor means the audit log no longer holds, at an anchor's sequence
// number, the event the anchor was taken of.
var ErrAnchor = errors.New("audit log does not match the anchor")

// ParseAnchor reads an anchor, "SEQ:HASH" as Head.AnchorString writes
// it. An anchor that is not one (a hash cut short in copying, say) is
// an error that says so, never taken for a log that was rewritten.
func ParseAnchor(anchor string) (seq int64, hash []byte, err error) {
	seqText, hashText, ok := strings.Cut(anchor, ":")
	seq, err = strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 1 {
		return 0, nil, fmt.Errorf("anchor %q: want SEQ:HASH, as varde store verify prints it", anchor)
	}
	hash, err = hex.DecodeString(hashText)
	switch {
	case hashText == "" || strings.Trim(hashText, "0123456789abcdefABCDEF") != "":
		return 0, nil, fmt.Errorf("anchor %q: the hash is not hexadecimal", anchor)
	case err != nil || len(hash) != sha256.Size:
		return 0, nil, fmt.Errorf("anchor %q: the hash has %d hex digits, not the %d varde store verify prints; copy the whole anchor",
			anchor, len(hashText), 2*sha256.Size)
	}
	return seq, hash, nil
}

// CheckAnchor checks that the event at the anchor's sequence number
// ("SEQ:HASH", from Head.AnchorString) still has the anchor's hash. With
// a chain VerifyHead accepted, that means no event up to it was changed,
// removed or replaced since the anchor was taken.
func (l *Log) CheckAnchor(ctx context.Context, anchor string) error {
	seq, want, err := ParseAnchor(anchor)
	if err != nil {
		return err
	}
	page, err := l.Store.ListAudit(ctx, seq-1, 1)
	if err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	if len(page) == 0 || page[0].Seq != seq {
		return fmt.Errorf("%w: there is no event %d any more", ErrAnchor, seq)
	}
	if !bytes.Equal(page[0].Hash, want) {
		return fmt.Errorf("%w: event %d has another hash; the log up to it was rewritten", ErrAnchor, seq)
	}
	return nil
}

func (l *Log) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

func (l *Log) logger() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

// Scrub replaces, in place, every value of e that looks like a national
// identity number, and every Details value under a key that names a
// secret, with Redacted. It returns the names of the fields it changed
// ("reason", "details.password"), never their values. Details is copied
// before it is changed, so a map the caller shares is left alone.
func Scrub(e *store.AuditEvent) []string {
	var changed []string
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"type", &e.Type}, {"person_id", &e.PersonID}, {"client_id", &e.ClientID},
		{"provider", &e.Provider}, {"level", &e.Level}, {"result", &e.Result}, {"reason", &e.Reason},
	} {
		if LooksLikeNationalID(*f.v) {
			*f.v = Redacted
			changed = append(changed, f.name)
		}
	}
	copied := false
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		v := e.Details[k]
		// A value already Redacted needs nothing more, but its key may
		// still be a national identity number.
		idKey := LooksLikeNationalID(k)
		if !idKey && (v == Redacted || !(secretKey(k) || LooksLikeNationalID(v))) {
			continue
		}
		if !copied {
			e.Details = maps.Clone(e.Details)
			copied = true
		}
		if idKey {
			delete(e.Details, k)
			e.Details[Redacted] = Redacted
			changed = append(changed, "details key")
			continue
		}
		e.Details[k] = Redacted
		changed = append(changed, "details."+k)
	}
	return changed
}

// secretKey reports whether a Details key names something secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "passphrase", "private", "verifier", "assertion", "recovery_code", "salt", "cookie"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	switch k {
	case "code", "token", "access_token", "refresh_token", "id_token", "authorization":
		return true
	}
	return false
}

// LooksLikeNationalID reports whether s contains something shaped like a
// national identity number of a country whose numbers Varde takes in:
//
//   - Norwegian: a run of exactly 11 digits, or a run of 6 digits, one
//     space, '-' or '.', and a run of 5 digits. By shape alone: any such
//     run is taken for one.
//   - Danish CPR: 10 digits, or 6, a space or '-', and 4, whose first six
//     are a date DDMMYY.
//   - Swedish personnummer: 12 digits, or 8, '-' and 4; or 10 digits, or
//     6, '-' or '+' and 4, the short form people write; each with a date
//     and a valid check digit.
//   - Finnish HETU: 6 digits, a century sign, 3 digits and the check
//     character, temporary codes included.
//
// Digit runs of other lengths (timestamps in milliseconds, counters) do
// not match. A 10-digit run that happens to start with a date, such as a
// timestamp in seconds from 2027 on, is blanked too: a redacted
// timestamp costs little, a number in the log cannot be taken back.
func LooksLikeNationalID(s string) bool {
	// runs holds the [start, end) of each maximal run of ASCII digits.
	var runs [][2]int
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j
	}
	for i, r := range runs {
		run := s[r[0]:r[1]]
		switch len(run) {
		case 11:
			return true
		case 10:
			if danishOrSwedish(run) {
				return true
			}
		case 12:
			if identity.Validate(identity.SchemeSEPnr, run) == nil {
				return true
			}
		case 6:
			if r[0]+11 <= len(s) && finnish(s[r[0]:r[0]+11]) {
				return true
			}
		}
		if i+1 == len(runs) || runs[i+1][0] != r[1]+1 {
			continue
		}
		sep, next := s[r[1]], s[runs[i+1][0]:runs[i+1][1]]
		switch {
		case len(run) == 6 && len(next) == 5 && strings.IndexByte(" -.", sep) >= 0:
			return true
		case len(run) == 6 && len(next) == 4 && strings.IndexByte(" -+", sep) >= 0:
			if danishOrSwedish(run + next) {
				return true
			}
		case len(run) == 8 && len(next) == 4 && sep == '-':
			if identity.Validate(identity.SchemeSEPnr, run+next) == nil {
				return true
			}
		}
	}
	return false
}

// danishOrSwedish reports whether ten digits are a Danish CPR number or
// the short form of a Swedish personnummer, whichever century.
func danishOrSwedish(d string) bool {
	return identity.Validate(identity.SchemeDKCPR, d) == nil ||
		identity.Validate(identity.SchemeSEPnr, "19"+d) == nil ||
		identity.Validate(identity.SchemeSEPnr, "20"+d) == nil
}

// finnish reports whether v is a Finnish personal identity code,
// temporary ones included.
func finnish(v string) bool {
	err := identity.Validate(identity.SchemeFIHetu, v)
	return err == nil || errors.Is(err, identity.ErrTemporary)
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
