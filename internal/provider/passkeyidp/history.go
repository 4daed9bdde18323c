package passkeyidp

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// The pages of the person's activity (GET /account/activity) go back
// from the account page's newest lines to the person's first event, a
// page at a time. They page by the audit log's Seq (keyset, never
// OFFSET): a page's cursor is the page of the lines just older than an
// event, or just newer, and no cursor the newest page. The cursor is
// sealed for the person (cursor.go), so that it says nothing of the
// Seqs of other people's events; and every read is of the session's own
// person (store.AuditLog.ListPersonAuditBefore and
// ListPersonAuditAfter) whatever the cursor. The pages only read: like
// the account page they need a session, and nothing more.

const (
	// noCursor reads from the newest event on.
	noCursor = math.MaxInt64
	// activityBatch is how many events one read of the store asks for:
	// many of a person's events are not shown (tokens issued, logouts).
	activityBatch = 100
	// activityScanLimit bounds the events read for one page, so that a
	// person with a long run of events that are not shown gets a short
	// page, and a link to go on, rather than a page that reads their
	// whole history.
	activityScanLimit = 20 * activityBatch
)

// cursor is where a page of activity begins: before an event (older
// lines, newest first) or after one (newer lines).
type cursor struct {
	before, after int64
}

// older reports whether the page reads back in time.
func (c cursor) older() bool { return c.before != 0 }

// errBadCursor is a cursor that is not one this server sealed for the
// person reading (cursor.go).
var errBadCursor = errors.New("not a cursor of the activity pages")

// activityRead is what readActivity found.
type activityRead struct {
	// lines are in the order read: newest first reading back, oldest
	// first reading forward; seqs are their events' Seq.
	lines []activityView
	seqs  []int64
	// more: there may be lines beyond, read on from next.
	more bool
	next int64
}

// readActivity reads up to n lines of the person's activity from c on.
func (p *Provider) readActivity(ctx context.Context, personID, lang string, c cursor, n int) (activityRead, error) {
	var out activityRead
	pos := c.before
	if !c.older() {
		pos = c.after
	}
	for scanned := 0; ; {
		evs, err := p.readEvents(ctx, personID, c.older(), pos)
		if err != nil {
			return out, err
		}
		for _, e := range evs {
			v, ok := p.activityLine(ctx, e, lang)
			if !ok {
				pos = e.Seq
				continue
			}
			if len(out.lines) == n {
				out.more = true
				return out, nil
			}
			out.lines, out.seqs, out.next = append(out.lines, v), append(out.seqs, e.Seq), e.Seq
			pos = e.Seq
		}
		scanned += len(evs)
		switch {
		case len(evs) < activityBatch:
			return out, nil
		case scanned >= activityScanLimit:
			// Go on after the events passed over, not from the last
			// line shown: else the next page would read them again.
			out.more, out.next = true, pos
			return out, nil
		}
	}
}

// readEvents reads a batch of the person's events past pos, back in
// time or forward.
func (p *Provider) readEvents(ctx context.Context, personID string, older bool, pos int64) ([]*store.AuditEvent, error) {
	if older {
		return p.History.ListPersonAuditBefore(ctx, personID, pos, activityBatch)
	}
	return p.History.ListPersonAuditAfter(ctx, personID, pos, activityBatch)
}

// historyData is the activity page.
type historyData struct {
	Activity activityLines
	// From and To are the times of the oldest and newest lines shown.
	From, To httpx.Time
	// Newer and Older are the pages on either side, "" when there is
	// none.
	Newer, Older string
	// AddrDays is how many days an address in the activity is kept
	// (addrDays), 0 when not known.
	AddrDays int
	// Timeout is what the page says of the session's time limits (keep.go).
	Timeout *timeoutView
}

// historyPage: GET /account/activity[?page=CURSOR].
func (p *Provider) historyPage(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.pagePerson(w, r)
	if !ok {
		return
	}
	if p.History == nil {
		p.notFound(w, r)
		return
	}
	lang := p.lang(r)
	c, err := p.parseCursor(person.ID, r.URL.Query())
	if errors.Is(err, errOldCursor) {
		// A bookmark of before cursors were sealed names a Seq no
		// longer taken in the clear: the person gets their newest
		// activity, from which the link's page is a few steps back.
		http.Redirect(w, r, withoutOldCursor(r), http.StatusSeeOther)
		return
	}
	if errors.Is(err, errBadCursor) {
		p.Pages.Error(w, r, http.StatusBadRequest, lang, errorPage("account.history.bad", historyPath))
		return
	}
	if err != nil {
		p.internalError(w, r, "account activity", err)
		return
	}
	d, err := p.historyOf(r.Context(), person.ID, lang, c)
	if err != nil {
		p.internalError(w, r, "account activity", err)
		return
	}
	d.Timeout = p.timeout(r, lang, s, historyBack(r))
	p.Pages.Render(w, r, http.StatusOK, "account_activity", lang, d)
}

// historyBack is the page of activity r asked for, as a keep without
// script goes back to it: its cursor, if any, and nothing else.
func historyBack(r *http.Request) string {
	if c := r.URL.Query().Get("page"); c != "" {
		return historyPath + "?" + url.Values{"page": {c}}.Encode()
	}
	return historyPath
}

// historyPath is where the pages of activity are.
const historyPath = "/account/activity"

// historyOf reads the page of the person's activity at c, and whether
// there are lines on either side of it.
func (p *Provider) historyOf(ctx context.Context, personID, lang string, c cursor) (historyData, error) {
	read, err := p.readActivity(ctx, personID, lang, c, activityLimit)
	if err != nil {
		return historyData{}, err
	}
	// newest and oldest are the Seqs the page spans: of its lines, or of
	// its cursor when it has none.
	var newest, oldest int64
	last := len(read.seqs) - 1
	switch {
	case c.older() && last >= 0:
		newest, oldest = read.seqs[0], read.seqs[last]
	case c.older():
		newest, oldest = c.before-1, c.before
	case last >= 0:
		newest, oldest = read.seqs[last], read.seqs[0]
		slices.Reverse(read.lines)
	default:
		newest, oldest = c.after, c.after+1
	}
	d := historyData{Activity: read.lines, AddrDays: p.addrDays()}
	if len(d.Activity) > 0 {
		d.To, d.From = d.Activity[0].When, d.Activity[len(d.Activity)-1].When
	}
	// Past the page, in the direction it was read, read says; the other
	// side takes a read of its own.
	beyond := func(c cursor) (bool, error) {
		r, err := p.readActivity(ctx, personID, lang, c, 1)
		return len(r.lines) > 0 || r.more, err
	}
	older, newer := read.more, read.more
	if c.older() {
		newer, err = beyond(cursor{after: newest})
	} else {
		older, err = beyond(cursor{before: oldest})
	}
	if err != nil {
		return historyData{}, err
	}
	if older {
		at := cursor{before: oldest}
		if c.older() {
			at = cursor{before: read.next}
		}
		if d.Older, err = p.historyURL(personID, at); err != nil {
			return historyData{}, err
		}
	}
	if newer {
		at := cursor{after: newest}
		if !c.older() {
			at = cursor{after: read.next}
		}
		if d.Newer, err = p.historyURL(personID, at); err != nil {
			return historyData{}, err
		}
	}
	return d, nil
}
