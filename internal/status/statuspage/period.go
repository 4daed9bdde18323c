package statuspage

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
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

// ParseQuarter reads "2026-Q3" as [2026-07-01, 2026-10-01) UTC.
func ParseQuarter(s string) (from, to time.Time, err error) {
	if len(s) != 7 || s[4] != '-' || s[5] != 'Q' || s[6] < '1' || s[6] > '4' {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: quarter %q is not of the form 2026-Q3", ErrBadPeriod, s)
	}
	year, err := parseYear(s[:4])
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	q := int(s[6] - '0')
	from = time.Date(year, time.Month(3*(q-1)+1), 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 3, 0), nil
}

// QuarterOf names the quarter t (in UTC) falls in.
func QuarterOf(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%04d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
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

// ParseDate reads a calendar date "2026-07-01" as UTC midnight.
func ParseDate(s string) (time.Time, error) {
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
	return t, nil
}

// days is d in whole days, rounded up.
func days(d time.Duration) int64 { return int64((d + 24*time.Hour - 1) / (24 * time.Hour)) }

// ParsePeriod reads a report query: ?quarter=2026-Q3, or ?from=&to= dates
// (to exclusive; the title names from and the last day included), or nothing for the current quarter to date (the quarter
// just ended at the first instant of a quarter). A period
// that starts at or after now, is empty, longer than MaxPeriod, or mixes
// both forms is an error.
func ParsePeriod(q url.Values, now time.Time) (Period, error) {
	now = now.UTC()
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
		quarter = QuarterOf(now.Add(-time.Nanosecond))
		fallthrough
	case quarter != "":
		f, t, err := ParseQuarter(quarter)
		if err != nil {
			return Period{}, err
		}
		p = Period{From: f, To: t, Title: quarter, Quarter: quarter}
	default:
		if from == "" || to == "" {
			return Period{}, fmt.Errorf("%w: give both from and to", ErrBadPeriod)
		}
		f, err := ParseDate(from)
		if err != nil {
			return Period{}, err
		}
		t, err := ParseDate(to)
		if err != nil {
			return Period{}, err
		}
		// The title names the last day covered, as the page does ("up
		// to and including"), not the exclusive bound.
		p = Period{From: f, To: t, Title: from}
		if last := t.AddDate(0, 0, -1); last.After(f) {
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
