package storetest

import (
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testNoteIdentifierUse checks Persons.NoteIdentifierUse: a login's use
// of the person's numbers is recorded on those they hold, only ever
// forward, in UTC to the microsecond.
func testNoteIdentifierUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	own := store.Identifier{Scheme: "no:dnr", Value: "dnr-user"}
	linked := store.Identifier{Scheme: "no:fnr", Value: "fnr-user", MaxLevel: "substantial", LinkedThrough: "bankid", LinkedAt: now}
	p := fullPerson(t, "user")
	p.Identifiers = []store.Identifier{own, linked}
	other := fullPerson(t, "user-other")
	for _, q := range []*store.Person{p, other} {
		wantErr(t, "CreatePerson "+q.ID, s.CreatePerson(ctx, q), nil)
	}
	usedAt := func(id string) map[string]time.Time {
		t.Helper()
		q, err := s.GetPerson(ctx, id)
		wantErr(t, "GetPerson", err, nil)
		out := map[string]time.Time{}
		for _, h := range q.Identifiers {
			out[h.Value] = h.LastUsedAt
		}
		return out
	}
	want := func(name string, got map[string]time.Time, ownAt, linkedAt time.Time) {
		t.Helper()
		if !got[own.Value].Equal(ownAt) || !got[linked.Value].Equal(linkedAt) {
			t.Errorf("%s: last used %v, want %s at %v and %s at %v", name, got, own.Value, ownAt, linked.Value, linkedAt)
		}
	}

	used := now.Add(time.Hour + 789*time.Nanosecond).In(loadZones(t).tokyo)
	// Named by scheme and value; one the person does not hold, another
	// person's, is passed over.
	err := s.NoteIdentifierUse(ctx, p.ID, []store.Identifier{{Scheme: linked.Scheme, Value: linked.Value}, other.Identifiers[0]}, used)
	wantErr(t, "NoteIdentifierUse", err, nil)
	want("after a use", usedAt(p.ID), time.Time{}, used.UTC().Truncate(time.Microsecond))
	for v, at := range usedAt(other.ID) {
		if !at.IsZero() {
			t.Errorf("the other person's %s was marked used at %v", v, at)
		}
	}
	// The rest of the identifier stays as it was.
	q, err := s.GetPersonByIdentifier(ctx, linked.Scheme, linked.Value)
	wantErr(t, "GetPersonByIdentifier", err, nil)
	if h := q.Identifiers[1]; h.MaxLevel != "substantial" || h.LinkedThrough != "bankid" || !h.LinkedAt.Equal(now) {
		t.Errorf("the identifier after a use: %+v", h)
	}

	// Only forward: an earlier use, recorded late, changes nothing.
	wantErr(t, "NoteIdentifierUse earlier", s.NoteIdentifierUse(ctx, p.ID, []store.Identifier{linked, own}, now), nil)
	want("after an earlier use", usedAt(p.ID), now, used.UTC().Truncate(time.Microsecond))
	later := now.Add(48 * time.Hour)
	wantErr(t, "NoteIdentifierUse later", s.NoteIdentifierUse(ctx, p.ID, []store.Identifier{linked}, later), nil)
	want("after a later use", usedAt(p.ID), now, later)

	wantErr(t, "NoteIdentifierUse of nobody", s.NoteIdentifierUse(ctx, "nobody", []store.Identifier{linked}, later), store.ErrNotFound)
}
