// Package a11ytest checks Varde's people-facing pages against WCAG 2.2
// level AA with axe-core in headless Chromium.
//
// The package has no code of its own: its test starts a real node on
// 127.0.0.1, opens every page a person can reach during a login, an
// enrolment, on the account page and at logout, and the public status
// pages (status, incidents, quarterly reports) over incidents and
// maintenance seeded into the node's store, and Demo Bank's pages
// through a whole demo login with a new test person, in every language, and
// fails on any violation axe rates serious or critical, and on content
// that does not reflow at 320 CSS pixels (WCAG 1.4.10), which axe does
// not check, nor does it walk a page with the Tab key, which
// focus_test.go does, looking at the focus ring at every stop, nor
// space text out as WCAG 1.4.12 allows, which spacing_test.go does. The
// status pages must also carry no script. axe-core is
// pinned in third_party/axe and installed by scripts/ensure-axe.sh
// (`make axe`, part of `make test`). Without Chromium or axe-core the test
// is skipped on a developer's machine and fails when CI is set. The
// templates and styles it checks live in web/.
package a11ytest
