// Package web holds what people see: HTML templates, static assets and
// translations, embedded into the binary. It has no handlers; packages
// render pages through httpx.Pages.
package web

import "embed"

// Templates are the page templates; layout.html wraps every page, which
// defines the blocks "title" and "content".
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds CSS and JavaScript served under /static/.
//
//go:embed static
var Static embed.FS

// Locales holds one JSON catalogue per language: locales/<tag>.json, a
// flat object of message keys to text. The texts follow the terms and
// style in locales/GLOSSARY.md.
//
//go:embed locales/*.json
var Locales embed.FS
