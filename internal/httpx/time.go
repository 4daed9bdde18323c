package httpx

import "time"

// Time is a moment as a page shows it: Text for people, in the pages'
// time zone and the page language's way of writing it, and ISO, the
// same moment in RFC 3339 and UTC, for the datetime attribute of the
// <time> element that holds Text, so that machines read it exactly.
type Time struct {
	ISO, Text string
}

// FormatTime writes t in loc (nil: UTC) as people who read lang write
// a date and time: nb "22.11.2026 kl. 10:35" (Språkrådet: "kl." and a
// colon or period between hours and minutes), da "22.11.2026 kl. 10.35"
// (Dansk Sprognævn: "kl." and a period), en "22 Nov 2026, 10:35". A
// language it does not know is written as en. With zone set, the zone's
// abbreviation follows ("10:35 CET", "10:35 CEST", "10:35 UTC"), for a
// page read by people who may live in another zone.
func FormatTime(lang string, t time.Time, loc *time.Location, zone bool) string {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	var layout string
	switch lang {
	case "nb":
		layout = "02.01.2006 kl. 15:04"
	case "da":
		layout = "02.01.2006 kl. 15.04"
	default:
		layout = "2 Jan 2006, 15:04"
	}
	if zone {
		layout += " MST"
	}
	return t.Format(layout)
}

// Location is the time zone the pages show times in (TimeZone), UTC if
// none is set.
func (p *Pages) Location() *time.Location {
	if p == nil || p.TimeZone == nil {
		return time.UTC
	}
	return p.TimeZone
}

// Time is t as a page in lang shows it, in the pages' time zone, its
// name left out: for pages read by people in that zone, such as their
// own account.
func (p *Pages) Time(lang string, t time.Time) Time {
	return Time{ISO: t.UTC().Format(time.RFC3339), Text: FormatTime(lang, t, p.Location(), false)}
}

// ZonedTime is t as Time writes it, followed by the zone's
// abbreviation: for pages that anyone anywhere may read, such as the
// status page.
func (p *Pages) ZonedTime(lang string, t time.Time) Time {
	return Time{ISO: t.UTC().Format(time.RFC3339), Text: FormatTime(lang, t, p.Location(), true)}
}

// FormatDate writes the calendar date of t, in t's own zone, as people
// who read lang write a date: nb and da "22.11.2026", en "22 Nov 2026"
// (a language it does not know as en). For a day that is a day
// wherever it is read, such as one of the status page's days in UTC.
func FormatDate(lang string, t time.Time) string {
	switch lang {
	case "nb", "da":
		return t.Format("02.01.2006")
	}
	return t.Format("2 Jan 2006")
}
