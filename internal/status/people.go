package status

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// Audit event vocabulary written by package broker.
const (
	eventAuthentication = broker.EventAuthentication
	eventRouting        = broker.EventRouting
	resultRerouted      = broker.ResultRerouted
	detailAttempt       = broker.DetailAttempt
	detailBrowser       = broker.DetailBrowser
	// reasonCancelled is the failure reason of a person's own cancel.
	reasonCancelled = provider.ReasonCancelled
	// reasonUnverified is a failure on a response that came back
	// through the browser without the provider's word for it: anyone
	// can forge one, so it shows no one was affected.
	reasonUnverified = provider.ReasonUnverifiedResponse
	// reasonNotAccepted is a login through a provider the relying party
	// does not accept: the provider worked.
	reasonNotAccepted = broker.ReasonProviderNotAccepted
	// reasonNodeError is a failure of the Varde node's own, not the
	// provider's.
	reasonNodeError = provider.ReasonNodeError
)

// notTheProvider are the reasons of failed logins through a provider
// that are not the provider's failure.
var notTheProvider = []string{reasonCancelled, reasonUnverified, reasonNotAccepted, reasonNodeError}

// auditPage is how many audit events one read returns.
const auditPage = 2000

// Affected is what an outage did to people, counted from the audit log.
type Affected struct {
	// People is the number of distinct people whose logins failed or
	// were rerouted.
	People int64
	// FailedAttempts counts failed logins through the components, and
	// login attempts that found every provider they could use down.
	FailedAttempts int64
	// Rerouted counts login attempts that met a component down or failing
	// and then got through another provider.
	Rerouted int64
}

// attemptTrace is what the audit log says about one login attempt.
type attemptTrace struct {
	affected bool
	browser  string
	// person is who the attempt authenticated, and through which
	// provider; empty if it never got through.
	person, via string
	// routingFailed is set once an all-down page was counted.
	routingFailed bool
}

// Affected counts, over [from, to), the people whose logins through
// components failed or who were rerouted around them (see the package
// documentation). Events up to Config.CountGrace after to tell whether
// an affected attempt got through in the end.
func (s *Service) Affected(ctx context.Context, components []string, from, to time.Time) (Affected, error) {
	var out Affected
	attempts := map[string]*attemptTrace{}
	browserPerson := map[string]string{}
	loose := map[string]bool{} // affected events that name no attempt
	until := to.Add(s.cfg().CountGrace)
	if now := s.now(); until.After(now) {
		until = now.Add(time.Microsecond)
	}
	q := store.AuditQuery{Since: from, Until: until, Types: []string{eventAuthentication, eventRouting}, Limit: auditPage}
	for {
		evs, err := s.Store.ListAuditRange(ctx, q)
		if err != nil {
			return Affected{}, fmt.Errorf("read audit log: %w", err)
		}
		for _, ev := range evs {
			attempt, browser := ev.Details[detailAttempt], ev.Details[detailBrowser]
			success := ev.Type == eventAuthentication && ev.Result == store.ResultSuccess
			if success && browser != "" && ev.PersonID != "" {
				browserPerson[browser] = ev.PersonID
			}
			var a *attemptTrace
			if attempt != "" {
				if a = attempts[attempt]; a == nil {
					a = &attemptTrace{}
					attempts[attempt] = a
				}
				if browser != "" {
					a.browser = browser
				}
				if success && a.person == "" {
					a.person, a.via = ev.PersonID, ev.Provider
				}
			}
			if !ev.Time.Before(to) || !slices.Contains(components, ev.Provider) {
				continue
			}
			hit := false
			switch {
			case ev.Type == eventAuthentication && ev.Result == store.ResultFailure && !slices.Contains(notTheProvider, ev.Reason):
				out.FailedAttempts++
				hit = true
			case ev.Type == eventRouting && ev.Result == resultRerouted:
				// Only a person headed for the provider was rerouted;
				// one who merely saw it listed as down was not.
				via := ev.Details[broker.DetailVia]
				hit = via == broker.ViaStart || via == broker.ViaHint
			case ev.Type == eventRouting && ev.Result == store.ResultFailure:
				// The all-down page, shown again on every reload: one
				// failed attempt per login attempt.
				if a == nil || !a.routingFailed {
					out.FailedAttempts++
				}
				if a != nil {
					a.routingFailed = true
				}
				hit = true
			}
			if hit {
				switch {
				case a != nil:
					a.affected = true
				case browser != "":
					loose["b:"+browser] = true
				default:
					loose["e:"+strconv.FormatInt(ev.Seq, 10)] = true
				}
			}
		}
		if len(evs) < auditPage {
			break
		}
		q.AfterSeq = evs[len(evs)-1].Seq
	}
	people := map[string]bool{}
	for id, a := range attempts {
		if !a.affected {
			continue
		}
		switch {
		case a.person != "":
			people["p:"+a.person] = true
			if !slices.Contains(components, a.via) {
				out.Rerouted++
			}
		case a.browser != "" && browserPerson[a.browser] != "":
			people["p:"+browserPerson[a.browser]] = true
		case a.browser != "":
			people["b:"+a.browser] = true
		default:
			people["a:"+id] = true
		}
	}
	for k := range loose {
		if p := browserPerson[k[2:]]; k[0] == 'b' && p != "" {
			k = "p:" + p
		}
		people[k] = true
	}
	out.People = int64(len(people))
	return out, nil
}
