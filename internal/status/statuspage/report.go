package statuspage

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
)

type reportView struct {
	Title    string
	From, To string // dates; To is the last day included
	// Unmeasured says the period ended before the node's first health
	// record: its figures are not measured.
	Unmeasured bool
	// MeasuredFrom, when the first health record falls inside the
	// period, says from when its figures are measured.
	MeasuredFrom *timeView
	Chart        chartView
	Rows         []reportRow
	Total        reportRow
	Incident     []incidentView
	// Maintenance is the windows behind the maintenance minutes.
	Maintenance []maintenanceView
	// Quarters are links to recent quarters: served, the five up to the
	// one shown; exported, the ExportQuarters exported beside it.
	Quarters []quarterLink
	// PeriodForm offers any other period (served pages only: it asks
	// the server).
	PeriodForm bool
	// Form, when set, is a period the form sent and ParsePeriod refused.
	Form *periodForm
}

// periodForm is what the report form sent, as typed, and which of its
// fields is at fault.
type periodForm struct {
	From, To       string
	BadFrom, BadTo bool
}

// refusedForm reads the report form's fields from q, a query ParsePeriod
// refused, and says which is at fault: a date missing or unreadable, or,
// both being dates, both (their order, the length of the period, a start
// in the future). It is false for a query the form does not send (a
// quarter, a field given twice), which has no form to go back to.
func refusedForm(q url.Values, loc *time.Location) (*periodForm, bool) {
	if q.Has("quarter") || !q.Has("from") && !q.Has("to") || len(q["from"]) > 1 || len(q["to"]) > 1 {
		return nil, false
	}
	f := &periodForm{From: q.Get("from"), To: q.Get("to")}
	_, errFrom := ParseDate(f.From, loc)
	_, errTo := ParseDate(f.To, loc)
	f.BadFrom, f.BadTo = errFrom != nil, errTo != nil
	if !f.BadFrom && !f.BadTo {
		f.BadFrom, f.BadTo = true, true
	}
	return f, true
}

type reportRow struct {
	Name, Availability, Incidents, Downtime, MTTR, People, RCAs string
}

type quarterLink struct {
	Name, URL string
	Current   bool
}

// chartView is a horizontal bar chart of availability, drawn on the
// server as SVG: one bar per component on a scale from Low to 100 %.
type chartView struct {
	Width, Height int
	Label         string
	Scale         string
	Bars          []barView
}

type barView struct {
	NameY, BarY, ValueY int
	W                   string
	ValueX              string
	Name, Value         string
	Class               string
}

const (
	chartWidth = 480
	barTrack   = 380
	rowHeight  = 54
)

func (v *viewer) reportPage(s *status.Summary, rep *status.Report, p Period, ll []langLink) pageData {
	d := v.base(s, "report", "", ll)
	from, to := v.period(rep)
	rv := &reportView{Title: rep.Title, From: from, To: to}
	rv.Unmeasured, rv.MeasuredFrom = v.measuredSpan(rep)
	d.Title = v.tf("status.report.title", rep.Title)
	for _, c := range rep.Components {
		rv.Rows = append(rv.Rows, v.reportRow(v.componentName(c.Component), c))
	}
	rv.Total = v.reportRow(v.t("status.report.total"), rep.Total)
	rv.Chart = v.chart(rep.Components)
	for _, inc := range rep.Incidents {
		rv.Incident = append(rv.Incident, v.incident(&inc))
	}
	for _, m := range rep.Maintenance {
		rv.Maintenance = append(rv.Maintenance, v.maintenance(m))
	}
	if !v.links.export {
		rv.PeriodForm = true
		loc := v.pages.Location()
		q := p.From.In(loc)
		if p.Quarter == "" {
			q = v.now.In(loc)
		}
		for i := 0; i < 5 && (i == 0 || measured(rep, q, loc)); i++ {
			name := QuarterOf(q, loc)
			rv.Quarters = append([]quarterLink{{Name: name, URL: "/status/reports?quarter=" + name, Current: name == p.Quarter}}, rv.Quarters...)
			q = q.AddDate(0, -3, 0)
		}
	} else {
		// The exported reports, beside this one in reports/.
		loc := v.pages.Location()
		q, _, _ := ParseQuarter(QuarterOf(v.now, loc), loc)
		q = q.In(loc)
		for i := 0; i < ExportQuarters && (i == 0 || measured(rep, q, loc)); i++ {
			name := QuarterOf(q, loc)
			rv.Quarters = append([]quarterLink{{Name: name, URL: name + v.links.suffix + ".html", Current: name == p.Quarter}}, rv.Quarters...)
			q = q.AddDate(0, -3, 0)
		}
	}
	d.Report = rv
	return d
}

// measuredSpan says whether nothing of the report's period was
// measured, and, when the node's first health record falls inside it,
// from when it was.
func (v *viewer) measuredSpan(rep *status.Report) (unmeasured bool, from *timeView) {
	unmeasured = rep.DataFrom.IsZero() || !rep.DataFrom.Before(rep.To)
	if !unmeasured && rep.DataFrom.After(rep.From) {
		from = v.timePtr(&rep.DataFrom)
	}
	return unmeasured, from
}

// ReportWords is what a report's page says of its period, in lang: the
// period, and that nothing of it was measured or from when it was. The
// command line prints them beside the report.
func ReportWords(pages *httpx.Pages, lang string, rep *status.Report) []string {
	v := newViewer(pages, lang, time.Time{}, linker{})
	first, last := v.period(rep)
	out := []string{v.tf("status.report.period", first, last)}
	unmeasured, from := v.measuredSpan(rep)
	if unmeasured {
		out = append(out, v.t("status.report.unmeasured"))
	}
	if from != nil {
		out = append(out, v.tf("status.report.measuredfrom", from.Text))
	}
	return out
}

// period is the report's first and last day, dates in the pages' zone,
// where its quarters and days begin at midnight.
func (v *viewer) period(rep *status.Report) (first, last string) {
	loc := v.pages.Location()
	return rep.From.In(loc).Format(time.DateOnly), rep.To.Add(-time.Nanosecond).In(loc).Format(time.DateOnly)
}

// measured reports whether the quarter holding t (in loc) ends after the
// node's first health record: the quarters before are neither linked
// nor exported, since nothing was measured in them.
func measured(rep *status.Report, t time.Time, loc *time.Location) bool {
	_, end, _ := ParseQuarter(QuarterOf(t, loc), loc)
	return !rep.DataFrom.IsZero() && rep.DataFrom.Before(end)
}

func (v *viewer) reportRow(name string, c status.ComponentReport) reportRow {
	r := reportRow{
		Name: name, Availability: v.availability(c.AvailabilityPercent), Incidents: v.number(int64(c.Incidents)),
		Downtime: v.decimal(c.DowntimeMinutes, 1), People: v.number(c.PeopleAffected), MTTR: v.t("status.report.none"),
	}
	if c.MTTRMinutes != nil {
		r.MTTR = v.tf("status.report.minutes", v.decimal(*c.MTTRMinutes, 1))
	}
	switch {
	case c.RCAsDue == 0:
		r.RCAs = v.t("status.report.nonedue")
	case c.RCAOnTimePercent != nil:
		r.RCAs = v.tf("status.report.rcas", c.RCAsOnTime, c.RCAsDue) + " (" + v.percent(*c.RCAOnTimePercent) + ")"
	default:
		r.RCAs = v.tf("status.report.rcas", c.RCAsOnTime, c.RCAsDue)
	}
	return r
}

// chartLow picks where the scale starts, so that the differences people
// care about (99.5 % against 99.9 %) are visible; the scale is stated in
// text beside the chart.
func chartLow(cs []status.ComponentReport) float64 {
	lowest := 100.0
	for _, c := range cs {
		if c.AvailabilityPercent != nil {
			lowest = min(lowest, *c.AvailabilityPercent)
		}
	}
	for _, lo := range []float64{99, 95, 90} {
		if lowest >= lo {
			return lo
		}
	}
	return 0
}

func (v *viewer) chart(cs []status.ComponentReport) chartView {
	lo := chartLow(cs)
	ch := chartView{Width: chartWidth, Height: max(rowHeight*len(cs), rowHeight), Scale: v.tf("status.report.scale", v.percent(lo))}
	var parts []string
	for i, c := range cs {
		name := v.componentName(c.Component)
		val := v.availability(c.AvailabilityPercent)
		// An unmeasured component has a track and no bar.
		w, cls := 0.0, "bar-ok"
		if a := c.AvailabilityPercent; a != nil {
			frac := (min(max(*a, lo), 100) - lo) / (100 - lo)
			w = max(frac*barTrack, 2)
			switch {
			case *a < 99:
				cls = "bar-bad"
			case *a < 99.9:
				cls = "bar-warn"
			}
		}
		y := i * rowHeight
		ch.Bars = append(ch.Bars, barView{
			NameY: y + 18, BarY: y + 26, ValueY: y + 42, W: trimFloat(w), ValueX: trimFloat(w + 8),
			Name: name, Value: val, Class: cls,
		})
		parts = append(parts, name+" "+val)
	}
	ch.Label = v.tf("status.report.chartlabel", ch.Scale, strings.Join(parts, "; "))
	return ch
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// availability is a report's availability figure, or says that nothing
// was measured.
func (v *viewer) availability(p *float64) string {
	if p == nil {
		return v.t("status.report.notmeasured")
	}
	return v.percent(*p)
}
