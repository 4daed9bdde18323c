package statuspage

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/status"
)

// MaxPeriod is the longest report period a query may ask for.
const MaxPeriod = 2 * 366 * 24 * time.Hour

// ErrBadPeriod is returned for a report period that cannot be read or
// makes no sense.
var ErrBadPeriod = errors.New("bad report period")

// Period is a report's time span [From, To) and its title. To may be
// after now: the report covers the period to date (status.Service.Report
// caps it), and every request for a period in progress names the same
// period, so they can share one report.
type Period struct {
	From, To time.Time
	Title    string
	// Quarter is set ("2026-Q3") when the period is a quarter (possibly
	// cut short at now).
	Quarter string
}

// ParseQuarter reads "2026-Q3" as [2026-07-01, 2026-10-01), from
// midnight to midnight in loc (nil: UTC), the pages' zone: a quarter of
// a Norwegian operator's report is a quarter in Norway. The times are
// in UTC.
func ParseQuarter(s string, loc *time.Location) (from, to time.Time, err error) {
	if len(s) != 7 || s[4] != '-' || s[5] != 'Q' || s[6] < '1' || s[6] > '4' {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: quarter %q is not of the form 2026-Q3", ErrBadPeriod, s)
	}
	year, err := parseYear(s[:4])
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	q := int(s[6] - '0')
	first := time.Month(3*(q-1) + 1)
	return status.Midnight(year, first, 1, loc), status.Midnight(year, first+3, 1, loc), nil
}

// QuarterOf names the quarter t falls in, in loc (nil: UTC).
func QuarterOf(t time.Time, loc *time.Location) string {
	t = t.In(zone(loc))
	return fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
}

// zone is loc, UTC if nil.
func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

func parseYear(s string) (int, error) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: year %q", ErrBadPeriod, s)
		}
	}
	y, err := strconv.Atoi(s)
	if err != nil || y < 2000 || y > 9998 {
		return 0, fmt.Errorf("%w: year %q", ErrBadPeriod, s)
	}
	return y, nil
}

// ParseDate reads a calendar date "2026-07-01" as its midnight in loc
// (nil: UTC), in UTC.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	if len(s) != 10 {
		return time.Time{}, fmt.Errorf("%w: date %q is not of the form 2026-07-01", ErrBadPeriod, s)
	}
	if _, err := parseYear(s[:4]); err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q: %w", ErrBadPeriod, s, err)
	}
	return status.Midnight(t.Year(), t.Month(), t.Day(), loc), nil
}

// days is d in whole days, rounded up.
func days(d time.Duration) int64 { return int64((d + 24*time.Hour - 1) / (24 * time.Hour)) }

// ParsePeriod reads a report query: ?quarter=2026-Q3, or ?from=&to= dates
// (to exclusive; the title names from and the last day included), or nothing for the current quarter to date (the quarter
// just ended at the first instant of a quarter). Quarters and dates are
// those of loc (nil: UTC), the pages' zone: they begin at midnight
// there. A period that starts at or after now, is empty, longer than
// MaxPeriod, or mixes both forms is an error.
func ParsePeriod(q url.Values, now time.Time, loc *time.Location) (Period, error) {
	quarter, from, to := q.Get("quarter"), q.Get("from"), q.Get("to")
	for _, k := range []string{"quarter", "from", "to"} {
		if len(q[k]) > 1 {
			return Period{}, fmt.Errorf("%w: %s given twice", ErrBadPeriod, k)
		}
	}
	var p Period
	switch {
	case quarter != "" && (from != "" || to != ""):
		return Period{}, fmt.Errorf("%w: give either quarter or from and to", ErrBadPeriod)
	case quarter == "" && from == "" && to == "":
		// At a quarter's first instant it has no time to date: the
		// quarter just ended is the one to show.
		quarter = QuarterOf(now.Add(-time.Nanosecond), loc)
		fallthrough
	case quarter != "":
		f, t, err := ParseQuarter(quarter, loc)
		if err != nil {
			return Period{}, err
		}
		p = Period{From: f, To: t, Title: quarter, Quarter: quarter}
	default:
		if from == "" || to == "" {
			return Period{}, fmt.Errorf("%w: give both from and to", ErrBadPeriod)
		}
		f, err := ParseDate(from, loc)
		if err != nil {
			return Period{}, err
		}
		t, err := ParseDate(to, loc)
		if err != nil {
			return Period{}, err
		}
		// The title names the last day covered, as the page does ("up
		// to and including"), not the exclusive bound.
		p = Period{From: f, To: t, Title: from}
		if last := t.In(zone(loc)).AddDate(0, 0, -1); last.After(f) {
			p.Title += " – " + last.Format(time.DateOnly)
		}
	}
	if !p.From.Before(p.To) {
		return Period{}, fmt.Errorf("%w: from must be before to", ErrBadPeriod)
	}
	if p.To.Sub(p.From) > MaxPeriod {
		return Period{}, fmt.Errorf("%w: the period is %d days long, at most %d", ErrBadPeriod, days(p.To.Sub(p.From)), days(MaxPeriod))
	}
	if !p.From.Before(now) {
		return Period{}, fmt.Errorf("%w: the period has not started", ErrBadPeriod)
	}
	return p, nil
}
