package providersim

import (
	"io/fs"
	"log/slog"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/web"
)

// languages are the sim's page languages; the first is the fallback.
func languages() []httpx.Language {
	return []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}, {Tag: "da", Name: "Dansk"}}
}

// simTemplates is web.Templates with templates/sim_layout.html in place
// of templates/layout.html, so every page the sim shows (its own and the
// OpenID Provider's error and logout pages) carries the simulation's
// frame and never Varde's.
type simTemplates struct{ base fs.FS }

func (t simTemplates) Open(name string) (fs.File, error) {
	if name == "templates/layout.html" {
		name = "templates/sim_layout.html"
	}
	return t.base.Open(name)
}

func newPages(log *slog.Logger) (*httpx.Pages, error) {
	return httpx.NewPages(simTemplates{web.Templates}, web.Locales, languages(), log)
}
