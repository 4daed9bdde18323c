package passkeyidp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// Where the person is logged in, and which services can reach their
// data while they are away: two sections of the account page, each
// with what ends it. "Log out everywhere else" ends the person's other
// sessions at Varde, and with them the refresh tokens of services that
// were not granted offline_access (those last while the session does,
// ADR 22); it leaves offline access alone, which "Stop access" ends one
// service at a time (ADR 26). Both are changes to the account, made
// under the same rules as the others (changeForm) and audited in the
// write that makes them.

// Audit event types of the two changes; refused ones are recorded
// with the same types and Result failure.
const (
	eventLoggedOutElsewhere = "logged_out_elsewhere"
	eventAccessStopped      = "offline_access_stopped"
)

// elsewhereView is one of the person's other sessions at Varde.
type elsewhereView struct {
	// Began is when the login that made it was; How says how the person
	// logged in and at which level.
	Began httpx.Time
	How   string
}

// awayView is a service that can reach the person's data while they are
// away.
type awayView struct {
	ClientID, Name string
	Since          httpx.Time
	// LastUsed is when the service last used its access; nil if it has
	// not yet.
	LastUsed *httpx.Time
}

// elsewhere fills d with the person's other live sessions (s is the one
// asking) and the services holding offline access to their data.
func (p *Provider) elsewhere(ctx context.Context, s *store.Session, lang string, d *accountData) error {
	now := p.now()
	others, err := p.Sessions.Store.ListPersonSessions(ctx, s.PersonID, now)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	for _, o := range others {
		if o.ID == s.ID {
			continue
		}
		d.Elsewhere = append(d.Elsewhere, elsewhereView{Began: p.Pages.Time(lang, o.AuthTime), How: p.sessionWay(o, lang)})
	}
	if p.Grants == nil {
		return nil
	}
	d.ShowAway = true
	d.Away, err = p.awayServices(ctx, s.PersonID, lang, now)
	return err
}

// awayServices is the services that can reach personID's data while
// they are away at now, as the account page lists them (in lang): those
// holding offline access (store.Grants.ListOfflineAccess) and still
// registered for refresh tokens, whose tokens would otherwise be
// refused already (ADR 22).
func (p *Provider) awayServices(ctx context.Context, personID, lang string, now time.Time) ([]awayView, error) {
	away, err := p.Grants.ListOfflineAccess(ctx, personID, now)
	if err != nil {
		return nil, fmt.Errorf("list offline access: %w", err)
	}
	var out []awayView
	for _, a := range away {
		if p.Clients == nil {
			break
		}
		c, err := p.Clients.GetClient(ctx, a.ClientID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !c.RefreshTokens {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read client: %w", err)
		}
		v := awayView{ClientID: a.ClientID, Name: c.Name, Since: p.Pages.Time(lang, a.GrantedAt)}
		if !a.RefreshedAt.IsZero() {
			used := p.Pages.Time(lang, a.RefreshedAt)
			v.LastUsed = &used
		}
		out = append(out, v)
	}
	return out, nil
}

// sessionWay says, in lang, how session o was logged in, in the words
// of the activity list: the way in and the level.
func (p *Provider) sessionWay(o *store.Session, lang string) string {
	way := p.providerName(o.Provider, lang)
	if o.Provider == ID && slices.Contains(o.AMR, "otp") {
		way = p.Pages.T(lang, "account.activity.recovery_code")
	}
	if lvl := "account.level." + o.Level; o.Level != "" && p.Pages.T(lang, lvl) != lvl {
		return fmt.Sprintf(p.Pages.T(lang, "account.activity.login"), way, p.Pages.T(lang, lvl))
	}
	return fmt.Sprintf(p.Pages.T(lang, "account.activity.login.nolevel"), way)
}

// endElsewhere: POST /account/sessions/end-others (form: csrf) logs the
// person out of every session but this one, in one write with its
// event, and tells the services that received tokens in them
// (back-channel logout). Their refresh tokens without offline_access
// end with them; offline access stays (ADR 26), as the page says.
func (p *Provider) endElsewhere(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.changeForm(w, r, eventLoggedOutElsewhere)
	if !ok {
		return
	}
	events := func(n int) []*store.AuditEvent {
		return p.changeEvents(ctx, &store.AuditEvent{Type: eventLoggedOutElsewhere, Result: store.ResultSuccess, PersonID: person.ID,
			Details: sessionDetails(s, map[string]string{"count": fmt.Sprint(n)})})
	}
	notice := "account.notice.elsewhere.none"
	switch ended, err := p.Sessions.EndElsewhere(ctx, s, events); {
	case errors.Is(err, store.ErrNotFound):
		// The session ended since changeForm read it (logged out from
		// elsewhere): the write reads it too, and ended nobody.
		p.auditChange(ctx, s, eventLoggedOutElsewhere, reasonSessionEnded, person.ID, nil)
		p.toLogin(w, r)
		return
	case err != nil:
		p.internalError(w, r, "end other sessions", err)
		return
	case ended > 0:
		notice = "account.notice.elsewhere.ended"
	}
	http.Redirect(w, r, noticeURL("/account", p.putNotice(ctx, s, noticeTicket{Notice: notice})), http.StatusSeeOther)
}

// stopService: POST /account/services/stop (form: csrf, client) revokes
// every grant of the person to that client, and with them its refresh
// and access tokens, in one write with its event: the service's next
// refresh is refused (invalid_grant). Only a service the account page
// lists (ListOfflineAccess) can be named; another gets the page again,
// saying its access had ended already.
func (p *Provider) stopService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if p.Grants == nil {
		// The page lists no services: nothing here to stop.
		p.Pages.Error(w, r, http.StatusNotFound, p.lang(r), httpx.NotFoundPage())
		return
	}
	s, person, ok := p.changeForm(w, r, eventAccessStopped)
	if !ok {
		return
	}
	client := r.PostFormValue("client")
	if client == "" {
		p.badRequest(w, r)
		return
	}
	away, err := p.awayServices(ctx, person.ID, p.lang(r), p.now())
	if err != nil {
		p.internalError(w, r, "list offline access", err)
		return
	}
	if !slices.ContainsFunc(away, func(a awayView) bool { return a.ClientID == client }) {
		p.renderAccount(w, r, http.StatusNotFound, "", "account.err.service.gone")
		return
	}
	events := p.changeEvents(ctx, &store.AuditEvent{Type: eventAccessStopped, Result: store.ResultSuccess, PersonID: person.ID,
		ClientID: client, Details: sessionDetails(s, nil)})
	// Revoked by another tab meanwhile, it revokes nothing more, and is
	// recorded all the same: the person asked.
	switch _, err := p.Grants.RevokePersonClientGrants(ctx, person.ID, client, s.ID, p.now().UTC().Truncate(time.Microsecond), first(events)); {
	case errors.Is(err, store.ErrNotFound):
		// The session ended since changeForm read it (logged out from
		// elsewhere): the write reads it too, and revoked nothing.
		p.auditChange(ctx, s, eventAccessStopped, reasonSessionEnded, person.ID, nil)
		p.toLogin(w, r)
		return
	case err != nil:
		p.internalError(w, r, "stop offline access", err)
		return
	}
	http.Redirect(w, r, noticeURL("/account", p.putNotice(ctx, s, noticeTicket{Notice: "account.notice.service.stopped"})), http.StatusSeeOther)
}

// first is the first of events, or nil.
func first(events []*store.AuditEvent) *store.AuditEvent {
	if len(events) == 0 {
		return nil
	}
	return events[0]
}
