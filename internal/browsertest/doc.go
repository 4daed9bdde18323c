// Package browsertest starts headless Chromium for tests that drive
// Varde's pages the way a person does, with the DevTools WebAuthn virtual
// authenticator standing in for the person's passkey. It is used only by
// tests (the passkey pages, the demo); nothing in a node imports it.
//
// A test that needs a browser calls Start. Where Chromium is missing the
// test is skipped, unless Options.Required is set (tests set it when the
// CI environment variable is, so that CI cannot pass without running
// them): then it fails. scripts/ensure-chromium.sh installs Chromium.
//
// Steps that click, type or read elements run through Do (or Settled),
// which runs a step again when Chromium renewed the page's node ids
// between finding the element and acting on it, as it does when a page
// finishes loading.
//
// The tab keeps its last navigation events (documents requested and
// answered, navigations the page asked for, load events); Trace returns
// them, so that a step that timed out can say what the page was doing.
package browsertest
