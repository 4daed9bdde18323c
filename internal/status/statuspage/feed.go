package statuspage

import (
	"crypto/sha1"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/status"
)

// The Atom 1.0 feed (RFC 4287) of incidents and maintenance, as
// encoding/xml structs.

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string      `xml:"xml:lang,attr,omitempty"`
	ID      string      `xml:"id"`
	Title   atomText    `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     atomText   `xml:"title"`
	Updated   string     `xml:"updated"`
	Published string     `xml:"published,omitempty"`
	Author    atomPerson `xml:"author"`
	Links     []atomLink `xml:"link"`
	Content   atomText   `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Body string `xml:",chardata"`
}

type atomPerson struct {
	Name string `xml:"name"`
	URI  string `xml:"uri,omitempty"`
}

type atomLink struct {
	Rel      string `xml:"rel,attr,omitempty"`
	Type     string `xml:"type,attr,omitempty"`
	Href     string `xml:"href,attr"`
	HrefLang string `xml:"hreflang,attr,omitempty"`
}

// feedLinks are the feed's own address, the page's and each incident's;
// absolute when served, relative in the export.
type feedLinks struct {
	self, page string
	incident   func(id string) string
}

// absURL is base+path with the language chosen.
func absURL(base, path, lang string) string {
	return strings.TrimSuffix(base, "/") + path + "?lang=" + url.QueryEscape(lang)
}

// feedIncidents are the summary's open and then recent incidents, each
// once.
func feedIncidents(s *status.Summary) []status.Incident {
	seen := map[string]bool{}
	var out []status.Incident
	for _, list := range [][]status.Incident{s.Open, s.Recent} {
		for _, inc := range list {
			if !seen[inc.ID] {
				seen[inc.ID] = true
				out = append(out, inc)
			}
		}
	}
	return out
}

// incidentUpdated is when the incident's entry last changed (RFC 4287
// section 4.2.15): its latest timeline entry, its latest count of people
// affected, its RCA's publication, or the moment its RCA became overdue,
// whichever is last (its start without any).
func incidentUpdated(inc *status.Incident) time.Time {
	t := inc.OpenedAt
	if t.IsZero() {
		t = inc.StartedAt
	}
	ts := []time.Time{inc.CountedAt}
	for _, u := range inc.Timeline {
		ts = append(ts, u.Time)
	}
	if inc.RCAPublishedAt != nil {
		ts = append(ts, *inc.RCAPublishedAt)
	}
	if inc.RCAOverdue && inc.RCADueAt != nil {
		ts = append(ts, *inc.RCADueAt)
	}
	for _, u := range ts {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// atomTime is an RFC 3339 date-time (RFC 4287 section 3.3).
func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// entryID is an incident's permanent, universally unique id (RFC 4287
// section 4.2.6: an absolute IRI that never changes): a tag URI (RFC
// 4151) under the issuer's host and the incident's start date, or, with
// no issuer, a name-based UUID URN (RFC 9562 section 5.5).
func entryID(baseURL string, inc *status.Incident) string {
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		return "tag:" + u.Hostname() + "," + inc.StartedAt.UTC().Format(time.DateOnly) + ":status/incidents/" + url.PathEscape(inc.ID)
	}
	return nameUUID("varde:status/incidents/" + inc.ID)
}

func feedID(baseURL string) string {
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		return strings.TrimSuffix(baseURL, "/") + "/status/feed.atom"
	}
	return nameUUID("varde:status/feed")
}

// nameUUID is a version 5 (SHA-1, name-based) UUID in the URL namespace.
func nameUUID(name string) string {
	ns := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.Sum(append(ns, name...))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// feed renders the summary's incidents and maintenance windows as an
// Atom feed in v's language.
func (v *viewer) feed(s *status.Summary, baseURL string, fl feedLinks) ([]byte, error) {
	v.learn(s)
	author := atomPerson{Name: v.t("status.feed.author")}
	f := atomFeed{
		Lang:   v.lang,
		ID:     feedID(baseURL),
		Title:  atomText{Type: "text", Body: v.t("status.feed.title")},
		Author: author,
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: fl.self},
			{Rel: "alternate", Type: "text/html", Href: fl.page, HrefLang: v.lang},
		},
	}
	latest := time.Time{}
	for _, inc := range feedIncidents(s) {
		up := incidentUpdated(&inc)
		if up.After(latest) {
			latest = up
		}
		iv := v.incident(&inc)
		f.Entries = append(f.Entries, atomEntry{
			ID:        entryID(baseURL, &inc),
			Title:     atomText{Type: "text", Body: iv.Title},
			Updated:   atomTime(up),
			Published: atomTime(inc.StartedAt),
			Author:    author,
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: fl.incident(inc.ID), HrefLang: v.lang}},
			Content:   atomText{Type: "text", Body: v.entryText(iv)},
		})
	}
	for _, m := range feedMaintenance(s) {
		up := maintenanceUpdated(&m, s.GeneratedAt)
		if up.After(latest) {
			latest = up
		}
		pub := m.AnnouncedAt
		if pub.IsZero() || pub.After(up) {
			pub = up
		}
		// A cancelled window's title says so: many readers list titles
		// only, and its updated moves with the cancellation.
		title := "status.feed.maintenance"
		if m.Status == "cancelled" {
			title = "status.feed.maintenance.cancelled"
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:        maintenanceEntryID(baseURL, &m),
			Title:     atomText{Type: "text", Body: v.tf(title, m.Title)},
			Updated:   atomTime(up),
			Published: atomTime(pub),
			Author:    author,
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: fl.page, HrefLang: v.lang}},
			Content:   atomText{Type: "text", Body: v.maintenanceText(m)},
		})
	}
	// An entry that leaves the feed, its incident or window aged out of
	// the window, changes it too (RFC 4287 section 4.1.1: updated is the
	// most recent significant change), so updated never goes back to an
	// older entry's. A feed that never had an entry gives the start of
	// the data, which does not move while nothing happens, rather than
	// now. Only a store without any health record falls back to now.
	if s.AgedOut.After(latest) {
		latest = s.AgedOut
	}
	switch {
	case !latest.IsZero():
	case !s.DataFrom.IsZero():
		latest = s.DataFrom
	default:
		latest = s.GeneratedAt
	}
	f.Updated = atomTime(latest)
	out, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("atom feed: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// entryText is an incident in a few plain sentences. It changes only
// when the entry's updated does (incidentUpdated): a reader keeps an
// entry whose updated has not moved, so an ongoing incident's duration,
// which grows by the minute, is not in it, only that it is not over.
func (v *viewer) entryText(iv incidentView) string {
	dur := iv.Duration
	if iv.Ongoing {
		dur = v.t("status.feed.ongoing")
	}
	lines := []string{
		v.t("status.incident.status") + ": " + iv.Status + " (" + iv.Severity.Text + ")",
		v.t("status.incident.components") + ": " + iv.Components,
		v.t("status.incident.started") + ": " + iv.Started.Text,
		v.t("status.incident.duration") + ": " + dur,
		v.t("status.incident.people") + ": " + iv.People,
		v.t("status.incident.failed") + ": " + iv.Failed,
		v.t("status.incident.rca") + ": " + iv.RCA.Text,
	}
	if iv.RCA.Body != "" {
		lines = append(lines, "", iv.RCA.Body)
	}
	return strings.Join(lines, "\n")
}

// feedMaintenance are the summary's maintenance windows: announced or in
// progress, completed, and cancelled.
func feedMaintenance(s *status.Summary) []status.Maintenance {
	seen := map[string]bool{}
	return slices.DeleteFunc(slices.Concat(s.Maintenance, s.RecentMaintenance, s.CancelledMaintenance), func(m status.Maintenance) bool {
		dup := seen[m.ID]
		seen[m.ID] = true
		return dup
	})
}

// maintenanceUpdated is when a window's entry last changed, as of now
// (RFC 4287 section 4.2.15): its announcement, its cancellation, its
// start and its end (the moment it was ended, for one ended early),
// whichever is last and has happened.
func maintenanceUpdated(m *status.Maintenance, now time.Time) time.Time {
	t := m.AnnouncedAt
	ts := []time.Time{m.CancelledAt}
	if m.CancelledAt.IsZero() {
		ts = append(ts, m.Start, m.End)
	}
	for _, u := range ts {
		if u.After(t) && !u.After(now) {
			t = u
		}
	}
	if t.IsZero() {
		// Not dated, and not begun: as of now.
		t = now
	}
	return t
}

// maintenanceEntryID is a window's permanent id, as entryID is an
// incident's: a tag URI under the issuer's host and the window's
// announced start date, or a name-based UUID URN.
func maintenanceEntryID(baseURL string, m *status.Maintenance) string {
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		return "tag:" + u.Hostname() + "," + m.Start.UTC().Format(time.DateOnly) + ":status/maintenance/" + url.PathEscape(m.ID)
	}
	return nameUUID("varde:status/maintenance/" + m.ID)
}

// maintenanceText is a window in a few plain sentences.
func (v *viewer) maintenanceText(m status.Maintenance) string {
	mv := v.maintenance(m)
	st := mv.Status
	switch m.Status {
	case "completed":
		st = v.t("status.maintenance.completed")
	case "cancelled":
		st = v.t("status.maintenance.cancelled")
	}
	lines := []string{
		v.t("status.incident.status") + ": " + st,
		v.t("status.incident.components") + ": " + mv.Components,
		v.t("status.maintenance.window") + ": " + mv.Start.Text + " – " + mv.End.Text,
	}
	if mv.AnnouncedEnd != nil {
		lines = append(lines, v.t("status.maintenance.done.early")+" "+mv.AnnouncedEnd.Text+".")
	}
	if m.Message != "" {
		lines = append(lines, "", m.Message)
	}
	return strings.Join(lines, "\n")
}
