// Package statuspage publishes what package status measures: the public
// status page, its JSON API, an Atom feed of incidents and maintenance,
// resilience reports, and a static export of all of them that can be
// hosted anywhere (a second path to the page when every node is down).
//
// It renders; it decides nothing. Component states, uptime, incidents,
// people affected and RCA deadlines come from a Source (package status's
// service) as the value types of package status, whose JSON field names
// are the public API. Every view of one request or export — page, JSON
// and feed — is rendered from the same status.Summary value, so they
// agree.
//
// # Routes (Handler.Register)
//
//	GET /status                      the page: overall state, open incidents,
//	                                 maintenance, components with 90-day
//	                                 uptime bars (each day's figures also
//	                                 in a disclosure), incidents and maintenance
//	                                 completed in the past 90 days,
//	                                 maintenance cancelled whose announced
//	                                 end is less than 90 days ago, and last
//	                                 the operator's help desk
//	                                 (httpx.Pages.Support, if configured)
//	GET /status/incidents/{id}       one incident and its timeline
//	GET /status/reports              ?quarter=2026-Q3 or ?from=YYYY-MM-DD&to=YYYY-MM-DD
//	                                 (to exclusive; default: this quarter to date);
//	                                 dates from the page's form that cannot
//	                                 make a period come back to the form,
//	                                 over this quarter's report, as typed
//	                                 (400); any other bad query is an error page
//	GET /status/feed.atom            Atom 1.0 (RFC 4287), one entry per incident
//	                                 and per maintenance window, cancelled
//	                                 ones included
//	GET /status/api/v1/summary       status.Summary
//	GET /status/api/v1/components    status.Summary with version, generated_at,
//	                                 node, overall and components only
//	GET /status/api/v1/incidents     status.Summary with version, generated_at,
//	                                 open_incidents and recent_incidents only
//	GET /status/api/v1/incidents/{id} status.Incident
//	GET /status/api/v1/reports       status.Report, same query as the page
//
// An ongoing incident of ways to log in (providers), and maintenance
// of them under way, also says what people can do meanwhile: the
// other ways to log in working now
// (degraded ones too), if the service offers them, or that there is
// none and to try again later. It is said on the pages only, from the
// states in the same Summary; the feed's entry text stays the
// incident's own, so it changes only with it. The banner, when the
// overall state is degraded while ways to log in are down (another
// works, ADR 66), says that logging in works but not with those, and
// names them. The list of past incidents says when it also holds
// incidents resolved before its 90 days, kept while their root-cause
// analysis is overdue.
//
// The JSON API is public data: it answers with CORS
// "Access-Control-Allow-Origin: *" and "Cache-Control: public,
// max-age=N", N being what is left of the 10 s for which the service
// shares the answer's data (one Summary, one report per period and one
// lookup per incident, so a flood of requests costs the store one
// computation per 10 s), so a cache keeps it no longer than the node
// does; the feed too. Errors are {"error", "error_description"}
// (400 invalid_request, 404 not_found, 500 server_error, and 503
// temporarily_unavailable with Retry-After when a report would have to
// be computed while the service computes as many as it may at once; the
// page then says so in plain language, with the same status). Pages are localised
// through httpx.Pages (?lang=, cookie, Accept-Language); component names
// and incident titles fall back to English and then to the ID. Pages
// carry no JavaScript; every state is given as text and a shape, never by
// colour alone. Times are shown in the pages' zone (httpx.Pages.TimeZone,
// config pages.time_zone), named ("10:35 CET"), as each language writes
// a time (httpx.FormatTime), inside <time datetime> with RFC 3339 UTC;
// the uptime bars' days, and the reports' quarters and dates, are the
// zone's, from midnight to midnight there, their dates in the page's
// language (ADR 39), and the page's footer names the zone. The API and
// the feed's timestamps stay in UTC; the summary and a report name the
// zone (time_zone), and each day gives its date there (day).
//
// # Templates
//
// The pages are web/templates/status.html (one template, three views)
// with web/static/status.css. status.html defines its own "layout.html"
// frame, which replaces the shared one for the status pages only: its
// links to styles, languages and other status pages are built from a base
// path, so the same template serves /status (absolute paths) and the
// static export (relative paths).
//
// # Static export (Export)
//
// Export writes, for the default language (English) and then each other
// language <tag> of the Pages:
//
//	index.html, index.<tag>.html
//	incidents/<id>.html, incidents/<id>.<tag>.html
//	reports/<quarter>.html, reports/<quarter>.<tag>.html, reports/<quarter>.json
//	feed.atom, feed.<tag>.atom
//	api/v1/summary.json, components.json, incidents.json, incidents/<id>.json
//	static/varde.css, static/status.css
//
// with relative links only. The reports are those of the current quarter
// and the seven before it (ExportQuarters), so each export, which
// replaces the whole directory, keeps two years of quarterly reports
// published; each report links to all of them. Quarters that ended
// before the node's first health record (status.Report.DataFrom) are
// left out, and not linked from served reports either: nothing was
// measured in them. The incident pages and documents are those of every
// incident the page, the feed or an exported report shows, so a report's
// link to an incident older than the page's 90 days resolves too. The
// JSON files are byte for byte what the API
// answers for the same Summary. The export is built in a temporary
// directory beside dir and renamed into place, so a failed or half-written
// export never replaces a good one.
package statuspage
