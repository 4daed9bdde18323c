package status

import "time"

// zone is the zone whose days the page counts (Service.Zone), UTC if
// none is set.
func (s *Service) zone() *time.Location {
	if s.Zone == nil {
		return time.UTC
	}
	return s.Zone
}

// dayStart is the start of the day in loc that holds t, in UTC.
func dayStart(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return Midnight(t.Year(), t.Month(), t.Day(), loc)
}

// addDays is the start of the day n days after the one that starts at
// day (a dayStart), in loc: 23 or 25 hours make a day where the clocks
// change, so days are counted on the calendar, not in hours.
func addDays(day time.Time, n int, loc *time.Location) time.Time {
	d := day.In(loc)
	return Midnight(d.Year(), d.Month(), d.Day()+n, loc)
}

// Midnight is the first instant of the calendar day y-m-d in loc (nil:
// UTC), in UTC; m and d may run past the year and the month, as in
// time.Date. Where the clocks skip midnight (America/Santiago goes from
// 23:59:59 to 01:00), the day starts when they jump: time.Date would
// place the skipped midnight by the new offset, an hour before the
// jump, on the day before.
func Midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	date := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	t := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, loc)
	if t.Day() != date.Day() {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			t = end
		}
	}
	return t.UTC()
}

// dateOf is the calendar date ("2026-11-22") in loc of the day that
// starts at day.
func dateOf(day time.Time, loc *time.Location) string {
	return day.In(loc).Format(time.DateOnly)
}
