package statuspage

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
)

// pageData is the data of the "status" template; View picks "home",
// "incident" or "report".
type pageData struct {
	View      string
	Title     string
	Static    bool
	Links     navLinks
	LangLinks []langLink
	Generated timeView
	Node      string
	// Zone names the zone whose days the bars and reports count (the
	// summary's, or the pages' for a summary that does not say).
	Zone     string
	Home     *homeView
	Incident *incidentView
	Report   *reportView
}

// navLinks are the links every status page carries, served or exported.
type navLinks struct {
	Home, Report, Feed, API, VardeCSS, StatusCSS string
}

type langLink struct {
	Tag, Name, URL string
	Current        bool
}

// linker builds the URLs of one rendering: absolute paths under /status
// when served, paths relative to the page's folder when exported.
type linker struct {
	export  bool
	root    string // export: "" or "../"
	suffix  string // export: "" for the default language, ".nb" otherwise
	quarter string // export: the one report exported
}

func servedLinks() linker { return linker{} }

func (l linker) home() string {
	if l.export {
		return l.root + "index" + l.suffix + ".html"
	}
	return "/status"
}

func (l linker) incident(id string) string {
	if l.export {
		return l.root + "incidents/" + id + l.suffix + ".html"
	}
	return "/status/incidents/" + url.PathEscape(id)
}

func (l linker) report() string {
	if l.export {
		return l.root + "reports/" + l.quarter + l.suffix + ".html"
	}
	return "/status/reports"
}

func (l linker) nav() navLinks {
	if l.export {
		return navLinks{
			Home: l.home(), Report: l.report(), Feed: l.root + "feed" + l.suffix + ".atom", API: l.root + "api/v1/summary.json",
			VardeCSS: l.root + "static/varde.css", StatusCSS: l.root + "static/status.css",
		}
	}
	return navLinks{
		Home: l.home(), Report: l.report(), Feed: "/status/feed.atom", API: "/status/api/v1/summary",
		VardeCSS: "/static/varde.css", StatusCSS: "/static/status.css",
	}
}

// pageParams are the query parameters a status page is chosen by (a
// report's period); its language links keep these and no others, so a
// parameter that came with the request from elsewhere is not copied
// into links the reader shares or bookmarks.
var pageParams = [...]string{"quarter", "from", "to"}

// servedLangLinks link the requested page in each language, keeping its
// own parameters (a report's period).
func servedLangLinks(p *httpx.Pages, r *http.Request, lang string) []langLink {
	all := r.URL.Query()
	var out []langLink
	for _, l := range p.Languages() {
		q := url.Values{}
		for _, k := range pageParams {
			if v, ok := all[k]; ok {
				q[k] = v
			}
		}
		q.Set("lang", l.Tag)
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		out = append(out, langLink{Tag: l.Tag, Name: l.Name, URL: u.String(), Current: l.Tag == lang})
	}
	return out
}

type timeView struct {
	ISO, Text string
}

type stateView struct {
	Class, Icon, Text string
}

type homeView struct {
	Overall     stateView
	Components  []componentView
	Open        []incidentView
	Maintenance []maintenanceView
	Recent      []incidentView
	// OlderOwed is set when Recent holds an incident resolved before the
	// 90 days, listed because its root-cause analysis is owed.
	OlderOwed bool
	// Done is the maintenance completed in the last 90 days.
	Done []maintenanceView
	// Cancelled is the maintenance cancelled whose announced end is less
	// than 90 days ago.
	Cancelled []maintenanceView
}

type componentView struct {
	ID, Name  string
	State     stateView
	Since     *timeView
	Uptime    string
	BarLabel  string
	Days      []dayView
	BadDays   []dayView
	HasUptime bool
}

type dayView struct {
	Class, Label, Title string
}

type incidentView struct {
	ID, Title, URL string
	Status         string
	Open           bool
	// Ongoing: not yet recovered, so Duration is so far; a recovering
	// incident's runs to its recovery and does not grow.
	Ongoing    bool
	Severity   stateView
	Components string
	Started    timeView
	Recovered  *timeView
	Resolved   *timeView
	Duration   string
	People     string
	Failed     string
	Rerouted   string
	Counted    timeView
	// Meanwhile says what people can do while the incident goes on.
	Meanwhile string
	RCA       rcaView
	Timeline  []updateView
}

type rcaView struct {
	// Kind: pending, due, overdue or published.
	Kind, Text, Body string
}

type updateView struct {
	Time                  timeView
	What, Message, Author string
}

type maintenanceView struct {
	Title, Message, Status, Components string
	Ongoing                            bool
	// Meanwhile says what people can do while it is under way.
	Meanwhile  string
	Start, End timeView
	// AnnouncedEnd is the end a window ended early was announced with.
	AnnouncedEnd *timeView
	// AnnouncedAt is when it was announced, if known.
	AnnouncedAt *timeView
	// CancelledAt is when a cancelled window was withdrawn.
	CancelledAt *timeView
}

// viewer turns package status values into template data in one language.
type viewer struct {
	pages *httpx.Pages
	lang  string
	now   time.Time
	links linker
	names map[string]map[string]string // component ID → names
	comps []status.Component           // the summary's, in its order
}

func newViewer(p *httpx.Pages, lang string, now time.Time, l linker) *viewer {
	return &viewer{pages: p, lang: lang, now: now, links: l}
}

func (v *viewer) t(key string) string { return v.pages.T(v.lang, key) }

func (v *viewer) tf(key string, args ...any) string { return fmt.Sprintf(v.t(key), args...) }

// defaultLang is the language of the export's unsuffixed files.
const defaultLang = "en"

// localized picks m[lang], then m["en"], then fallback.
func localized(m map[string]string, lang, fallback string) string {
	if s := m[lang]; s != "" {
		return s
	}
	if s := m["en"]; s != "" {
		return s
	}
	return fallback
}

func (v *viewer) learn(s *status.Summary) {
	v.names = map[string]map[string]string{}
	v.comps = s.Components
	for _, c := range s.Components {
		v.names[c.ID] = c.Name
	}
}

func (v *viewer) componentName(id string) string { return localized(v.names[id], v.lang, id) }

func (v *viewer) base(s *status.Summary, view, title string, ll []langLink) pageData {
	v.learn(s)
	return pageData{
		View: view, Title: title, Static: v.links.export, Links: v.links.nav(), LangLinks: ll,
		Generated: v.time(s.GeneratedAt), Node: s.Node, Zone: cmp.Or(s.TimeZone, v.pages.Location().String()),
	}
}

func (v *viewer) homePage(s *status.Summary, ll []langLink) pageData {
	d := v.base(s, "home", v.t("status.title"), ll)
	h := &homeView{Overall: v.overall(s.Overall)}
	hist := map[string]status.History{}
	for _, x := range s.History {
		hist[x.Component] = x
	}
	for _, c := range s.Components {
		h.Components = append(h.Components, v.component(c, hist[c.ID]))
	}
	open := map[string]bool{}
	for _, inc := range s.Open {
		open[inc.ID] = true
		h.Open = append(h.Open, v.incident(&inc))
	}
	for _, inc := range s.Recent {
		if !open[inc.ID] {
			h.Recent = append(h.Recent, v.incident(&inc))
		}
		if inc.ResolvedAt != nil && inc.ResolvedAt.Before(v.now.AddDate(0, 0, -status.HistoryDays)) {
			h.OlderOwed = true
		}
	}
	for _, m := range s.Maintenance {
		if (m.Status == "scheduled" || m.Status == "in_progress") && m.End.After(v.now) {
			h.Maintenance = append(h.Maintenance, v.maintenance(m))
		}
	}
	for _, m := range s.RecentMaintenance {
		h.Done = append(h.Done, v.maintenance(m))
	}
	for _, m := range s.CancelledMaintenance {
		h.Cancelled = append(h.Cancelled, v.maintenance(m))
	}
	d.Home = h
	return d
}

func (v *viewer) incidentPage(s *status.Summary, inc *status.Incident, ll []langLink) pageData {
	d := v.base(s, "incident", "", ll)
	iv := v.incident(inc)
	d.Title = iv.Title
	d.Incident = &iv
	return d
}

// overall is the banner: the overall state, and, when it is degraded
// while ways to log in are down (the service found another that works),
// that logging in works but not with those, so a person reads at once
// that they can get in and how.
func (v *viewer) overall(st status.State) stateView {
	sv := v.state(st)
	sv.Text = v.t("status.overall." + stateKey(st))
	if st != status.Degraded {
		return sv
	}
	var down []string
	for _, c := range v.comps {
		if c.Kind == status.KindProvider && c.State == status.Down {
			down = append(down, localized(c.Name, v.lang, c.ID))
		}
	}
	if len(down) > 0 {
		sv.Text = v.tf("status.overall.logins", v.either(down))
	}
	return sv
}

func stateKey(st status.State) string {
	switch st {
	case status.Operational, status.Degraded, status.Down, status.InMaintenance:
		return string(st)
	}
	return string(status.Unknown)
}

// state is a state's text and shape; colour only repeats them.
func (v *viewer) state(st status.State) stateView {
	k := stateKey(st)
	icons := map[string]string{"operational": "✓", "degraded": "▲", "down": "✕", "maintenance": "◷", "unknown": "?"}
	return stateView{Class: "st-" + k, Icon: icons[k], Text: v.t("status.state." + k)}
}

// time is t in the pages' time zone, named: anyone anywhere may read the
// status page, and its exported copy.
func (v *viewer) time(t time.Time) timeView {
	return timeView(v.pages.ZonedTime(v.lang, t))
}

func (v *viewer) timePtr(t *time.Time) *timeView {
	if t == nil {
		return nil
	}
	tv := v.time(*t)
	return &tv
}

func (v *viewer) component(c status.Component, h status.History) componentView {
	name := localized(c.Name, v.lang, c.ID)
	cv := componentView{ID: c.ID, Name: name, State: v.state(c.State), Since: v.timePtr(c.Since)}
	switch {
	case h.Percent != nil:
		cv.Uptime, cv.HasUptime = v.percent(*h.Percent), true
	case c.Uptime90 != nil:
		cv.Uptime, cv.HasUptime = v.percent(*c.Uptime90), true
	}
	cv.BarLabel = v.tf("status.bar.label", name)
	for _, d := range h.Days {
		dv := v.day(d)
		cv.Days = append(cv.Days, dv)
		if (d.Worst != status.Operational && d.Worst != status.Unknown) || len(d.Incidents) > 0 {
			cv.BadDays = append(cv.BadDays, dv)
		}
	}
	return cv
}

func (v *viewer) day(d status.Day) dayView {
	date := httpx.FormatDate(v.lang, v.dayDate(d))
	var parts []string
	if d.Percent != nil {
		parts = append(parts, v.tf("status.day.percent", v.percent(*d.Percent)))
	} else {
		parts = append(parts, v.t("status.day.noprobes"))
	}
	if d.Worst == status.Degraded || d.Worst == status.Down || d.Worst == status.InMaintenance {
		parts = append(parts, v.t("status.day.worst."+string(d.Worst)))
	}
	switch n := len(d.Incidents); n {
	case 0:
	case 1:
		parts = append(parts, v.t("status.day.incident.one"))
	default:
		parts = append(parts, v.tf("status.day.incident.other", n))
	}
	label := date + ": " + strings.Join(parts, ", ")
	return dayView{Class: "day-" + stateKey(d.Worst), Label: label, Title: label}
}

// dayDate is the calendar date of a day of the bars: the one the
// service counted it as (Day, in the summary's zone), else its start's
// date in the pages' zone.
func (v *viewer) dayDate(d status.Day) time.Time {
	if t, err := time.Parse(time.DateOnly, d.Day); err == nil {
		return t
	}
	return d.Date.In(v.pages.Location())
}

func (v *viewer) incident(inc *status.Incident) incidentView {
	iv := incidentView{
		ID: inc.ID, Title: localized(inc.Title, v.lang, inc.ID), URL: v.links.incident(inc.ID),
		Open:      inc.Status != "resolved",
		Ongoing:   inc.Status == "open",
		Status:    v.t("status.incident.status." + statusKey(inc.Status)),
		Severity:  v.state(status.State(inc.Severity)),
		Started:   v.time(inc.StartedAt),
		Recovered: v.timePtr(inc.RecoveredAt),
		Resolved:  v.timePtr(inc.ResolvedAt),
		Duration:  v.duration(inc.DurationSeconds),
		People:    v.number(inc.PeopleAffected),
		Failed:    v.number(inc.FailedAttempts),
		Rerouted:  v.number(inc.Rerouted),
		Counted:   v.time(inc.CountedAt),
		RCA:       v.rca(inc),
	}
	comps := inc.Components
	if len(comps) == 0 && inc.Component != "" {
		comps = []string{inc.Component}
	}
	var names []string
	for _, c := range comps {
		names = append(names, v.componentName(c))
	}
	iv.Components = strings.Join(names, ", ")
	iv.Meanwhile = v.meanwhile(inc.Status == "open", comps)
	for _, u := range inc.Timeline {
		iv.Timeline = append(iv.Timeline, v.update(u))
	}
	return iv
}

// meanwhile tells people what they can do while an outage or
// maintenance of the components affected goes on (ongoing): when they
// are all ways to log in, it names the other ways that work now (slowly
// too), or says there is none. It says nothing of one that is over or
// not yet begun, or of a part people do not choose (a node, the store).
func (v *viewer) meanwhile(ongoing bool, affected []string) string {
	if !ongoing || len(affected) == 0 {
		return ""
	}
	kinds := map[string]string{}
	for _, c := range v.comps {
		kinds[c.ID] = c.Kind
	}
	for _, id := range affected {
		if kinds[id] != status.KindProvider {
			return ""
		}
	}
	var others []string
	for _, c := range v.comps {
		working := c.State == status.Operational || c.State == status.Degraded
		if c.Kind == status.KindProvider && working && !slices.Contains(affected, c.ID) {
			others = append(others, localized(c.Name, v.lang, c.ID))
		}
	}
	if len(others) == 0 {
		return v.t("status.meanwhile.none")
	}
	return v.tf("status.meanwhile.other", v.either(others))
}

// either joins names as a choice: "A, B or C".
func (v *viewer) either(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	last := len(names) - 1
	return strings.Join(names[:last], ", ") + " " + v.t("status.or") + " " + names[last]
}

func statusKey(s string) string {
	switch s {
	case "open", "recovering", "resolved":
		return s
	}
	return "open"
}

func (v *viewer) rca(inc *status.Incident) rcaView {
	switch {
	case inc.RCA != "":
		k := "status.rca.published.late"
		if inc.RCAOnTime {
			k = "status.rca.published.ontime"
		}
		when := ""
		if inc.RCAPublishedAt != nil {
			when = v.time(*inc.RCAPublishedAt).Text
		}
		return rcaView{Kind: "published", Text: v.tf(k, when), Body: inc.RCA}
	case inc.RCAOverdue:
		due := ""
		if inc.RCADueAt != nil {
			due = v.time(*inc.RCADueAt).Text
		}
		return rcaView{Kind: "overdue", Text: v.tf("status.rca.overdue", due)}
	case inc.RCADueAt != nil:
		return rcaView{Kind: "due", Text: v.tf("status.rca.due", v.time(*inc.RCADueAt).Text)}
	}
	return rcaView{Kind: "pending", Text: v.t("status.rca.pending")}
}

func (v *viewer) update(u status.Update) updateView {
	uv := updateView{Time: v.time(u.Time), Message: u.Message, Author: u.Author}
	switch u.Kind {
	case "opened", "recovered", "resolved", "operator", "rca":
		uv.What = v.t("status.update." + u.Kind)
	case "state":
		uv.What = v.tf("status.update.state", v.t("status.state."+stateKey(status.State(u.State))))
	default:
		uv.What = v.t("status.update.other")
	}
	return uv
}

func (v *viewer) maintenance(m status.Maintenance) maintenanceView {
	var names []string
	for _, c := range m.Components {
		names = append(names, v.componentName(c))
	}
	// A cancelled window never takes place, whatever its planned time;
	// a completed one is over, even if it was ended before its planned end.
	ongoing := m.Status == "in_progress" || (m.Status != "cancelled" && m.Status != "completed" && !m.Start.After(v.now) && m.End.After(v.now))
	st := "status.maintenance.scheduled"
	if ongoing {
		st = "status.maintenance.ongoing"
	}
	mv := maintenanceView{
		Title: m.Title, Message: m.Message, Status: v.t(st), Components: strings.Join(names, ", "),
		Ongoing: ongoing, Start: v.time(m.Start), End: v.time(m.End), Meanwhile: v.meanwhile(ongoing, m.Components),
	}
	if !m.AnnouncedEnd.IsZero() {
		ae := v.time(m.AnnouncedEnd)
		mv.AnnouncedEnd = &ae
	}
	if !m.AnnouncedAt.IsZero() {
		at := v.time(m.AnnouncedAt)
		mv.AnnouncedAt = &at
	}
	if !m.CancelledAt.IsZero() {
		ct := v.time(m.CancelledAt)
		mv.CancelledAt = &ct
	}
	return mv
}

// decimal writes x with at most prec decimals, in the language's style.
func (v *viewer) decimal(x float64, prec int) string {
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if v.lang == "nb" || v.lang == "da" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// percent never rounds a shortfall up to 100 %.
func (v *viewer) percent(p float64) string {
	if p < 100 && p > 99.99 {
		p = 99.99
	}
	if p < 100 {
		p = math.Floor(p*100) / 100
	}
	return v.decimal(p, 2) + "\u00a0%"
}

// number groups thousands: 12,345 (en), 12 345 (nb), 12.345 (da).
func (v *viewer) number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := ","
	switch v.lang {
	case "nb":
		sep = "\u00a0"
	case "da":
		sep = "."
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (v *viewer) duration(secs int64) string {
	if secs < 60 {
		return v.t("status.dur.lessmin")
	}
	m := secs / 60
	d, h, m := m/(24*60), (m/60)%24, m%60
	switch {
	case d > 0:
		return v.tf("status.dur.dhm", d, h, m)
	case h > 0 && m == 0:
		return v.tf("status.dur.h", h)
	case h > 0:
		return v.tf("status.dur.hm", h, m)
	}
	return v.tf("status.dur.m", m)
}
