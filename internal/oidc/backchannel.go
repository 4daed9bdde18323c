package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// Back-Channel Logout 1.0 vocabulary.
const (
	// BackchannelLogoutEvent is the one member of a logout token's events
	// claim (§2.4).
	BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// LogoutTokenTyp is the logout token's JWS typ header (§2.4:
	// explicit typing is recommended, so it cannot pass for an ID token).
	LogoutTokenTyp = "logout+jwt"
	// LogoutTokenLifetime is how long after iat a logout token expires
	// (§2.4 asks for a short lifetime, recommending at most two minutes).
	LogoutTokenLifetime = 2 * time.Minute
	// LogoutDeliveryEvent is store.WebhookDelivery.Event for a logout
	// token.
	LogoutDeliveryEvent = "backchannel_logout"
	// LogoutContentType is how a logout token is POSTed (§2.5): as the
	// form parameter logout_token.
	LogoutContentType = "application/x-www-form-urlencoded"
	// logoutTokenFreshFor is how long after iat a logout token is sent
	// as it is; an attempt later than that (a retry, a backlog) sends it
	// signed anew (RenewLogoutToken).
	logoutTokenFreshFor = 30 * time.Second
)

// LogoutOutbox holds the sessions that ended with relying parties to tell
// (recorded by store.Sessions.EndSession in the write that deleted them)
// and takes the logout tokens for each in exchange for its end, in one
// write. store.SessionEnds implements it; the webhook outbox's worker
// (package webhook) POSTs the tokens, retries and survives restarts.
type LogoutOutbox interface {
	PendingSessionEnds(ctx context.Context, before time.Time, limit int) ([]*store.Session, error)
	DeferSessionEnd(ctx context.Context, id string, due func(attempts int) time.Time) (int, error)
	SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error)
}

// LeftoverEndsAfter is how long after a session ended SettleLeftoverEnds
// takes its end as left over: long enough for the node that ended it to
// settle it itself, moments later (SessionsEnded).
const LeftoverEndsAfter = 30 * time.Second

// SettleEndsTimeout bounds how long SessionsEnded takes to queue the
// logout tokens of the sessions it is told of, whether or not the
// request that ended them is still there; what it has not queued by
// then is left to SettleLeftoverEnds.
const SettleEndsTimeout = 10 * time.Second

// LogoutClaims is the claim set of a logout token (§2.4). It has no
// nonce: §2.4 forbids one, so a logout token can never be taken for an
// ID token.
type LogoutClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
	// SessionID is the ended session's sid, as in the ID tokens issued
	// to the client in it and in the sessions it continued (SessionRef of
	// the client's sector and the session's Root).
	SessionID string                    `json:"sid"`
	Events    map[string]map[string]any `json:"events"`
}

// logoutTokens signs the logout tokens telling each of cs that the
// person's session sess ended, at now: jtis[i] and tokens[i] are cs[i]'s.
func (p *Provider) logoutTokens(ctx context.Context, cs []*store.Client, sess *store.Session, now time.Time) (jtis, tokens []string, err error) {
	claims := make([]LogoutClaims, len(cs))
	signers := make([]*keys.Signer, len(cs))
	jtis = make([]string, len(cs))
	for i, c := range cs {
		if jtis[i], err = p.randomToken(16); err != nil {
			return nil, nil, err
		}
		// Back-Channel Logout 1.0 §2.6: the relying party validates the
		// logout token's signature as it does an ID token's, so it is
		// signed with the client's ID token algorithm.
		if signers[i], err = p.signerFor(c.IDTokenSigningAlg()); err != nil {
			return nil, nil, fmt.Errorf("sign logout token for %s: %w: %w", c.ID, errLogoutSigner, err)
		}
		claims[i] = LogoutClaims{
			Issuer: p.Issuer,
			// §2.4: sub, sid or both; Varde sends both. sub is the
			// pairwise subject of c's sector, the one its ID tokens
			// carry.
			Subject:   p.subject(c, sess.PersonID),
			Audience:  c.ID,
			IssuedAt:  now.Unix(),
			Expiry:    now.Add(LogoutTokenLifetime).Unix(),
			ID:        jtis[i],
			SessionID: p.sessionRef(c, sess.Root()),
			Events:    map[string]map[string]any{BackchannelLogoutEvent: {}},
		}
	}
	tokens, err = p.signLogouts(ctx, claims, signers)
	if err != nil {
		return nil, nil, fmt.Errorf("sign logout tokens: %w: %w", errLogoutSigner, err)
	}
	return jtis, tokens, nil
}

// errLogoutSigner is what the error of a logout token the signer did not
// sign wraps: the signer failed or gave no answer in time, so the ends
// still to settle are left for housekeeping rather than each wait for it
// in turn.
var errLogoutSigner = errors.New("signer")

// logoutSignConcurrency is how many of one session end's logout tokens
// are signed at once: a signer that takes a while (a hardware module
// over the network) signs a session with many relying parties in a
// fraction of the time one at a time would take, and a stuck one holds
// no more than this many signatures.
const logoutSignConcurrency = 4

// signLogouts signs each of claims as a logout token with the key of the
// same index in signers, up to
// logoutSignConcurrency at once, all within LogoutSignTimeout and ctx
// (keys.Bounded: the signatures of one session end are one signing, so
// a stuck signer leaves at most one session end's signing running, of
// at most logoutSignConcurrency signatures). A signing given up on is
// counted (varde_backchannel_logout_signatures_abandoned_total).
func (p *Provider) signLogouts(ctx context.Context, claims []LogoutClaims, signers []*keys.Signer) ([]string, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	// signed is set by the signing before it returns, and read only
	// once Sign has its result, never when it was given up on.
	var signed []string
	_, abandoned, err := p.logoutSigning.Sign(ctx, p.LogoutSignTimeout, func() (string, error) {
		out := make([]string, len(claims))
		errs := make([]error, len(claims))
		slots := make(chan struct{}, logoutSignConcurrency)
		var wg sync.WaitGroup
		for i := range claims {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				if out[i], errs[i] = signers[i].SignTyped(claims[i], LogoutTokenTyp); errs[i] != nil {
					errs[i] = fmt.Errorf("for %s: %w", claims[i].Audience, errs[i])
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		signed = out
		return "", nil
	})
	if abandoned {
		p.Metrics.logoutSignAbandoned.Inc()
	}
	if err != nil {
		return nil, err
	}
	return signed, nil
}

// ErrNotLogoutDelivery is what RenewLogoutToken's error wraps when the
// payload it was given is not a logout delivery's (the form
// logout_token=... with a JWT in it): no later attempt can renew it. A
// signer's failure does not wrap it.
var ErrNotLogoutDelivery = errors.New("not a logout delivery's payload, logout_token=<JWT>")

// RenewLogoutToken is the outbox's renewal of a queued logout delivery's
// payload before an attempt (webhook.Notifier.RenewWith): a token issued
// more than 30 s before now is signed again, with the current key, iat
// now and exp two minutes on, so that a relying party that was down for
// longer than the token's lifetime still gets one it can accept. The
// other claims stay, jti included, so a relying party that took an
// earlier copy can still drop this one as a duplicate. A token still
// fresh goes as it is. A payload that is not a logout delivery's gives
// an error wrapping ErrNotLogoutDelivery; a signer that fails, one that
// does not, since it may sign the next time.
func (p *Provider) RenewLogoutToken(payload []byte, now time.Time) ([]byte, error) {
	form, err := url.ParseQuery(string(payload))
	if err != nil || len(form["logout_token"]) != 1 {
		return nil, fmt.Errorf("renew logout token: %w", ErrNotLogoutDelivery)
	}
	tok, err := jwt.ParseSigned(form.Get("logout_token"), keys.Algorithms)
	if err != nil {
		return nil, fmt.Errorf("renew logout token: %w: %w", ErrNotLogoutDelivery, err)
	}
	// The token is Varde's own, read back from its own outbox: it was
	// verified by being signed here, and may be signed by a key retired
	// since.
	var claims LogoutClaims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return nil, fmt.Errorf("renew logout token: %w: %w", ErrNotLogoutDelivery, err)
	}
	if now.Before(time.Unix(claims.IssuedAt, 0).Add(logoutTokenFreshFor)) {
		return payload, nil
	}
	// It is signed again with the algorithm the client is registered
	// for now, which it verifies (§2.6), as it goes to the URI the
	// client has now (LogoutURI). The renewal has no context of its
	// own; the outbox bounds how long it waits for it.
	c, err := p.Clients.GetClient(context.Background(), claims.Audience)
	if err != nil {
		return nil, fmt.Errorf("renew logout token for %s: %w", claims.Audience, err)
	}
	signer, err := p.signerFor(c.IDTokenSigningAlg())
	if err != nil {
		return nil, fmt.Errorf("renew logout token for %s: %w", claims.Audience, err)
	}
	claims.IssuedAt = now.Unix()
	claims.Expiry = now.Add(LogoutTokenLifetime).Unix()
	signed, err := signer.SignTyped(claims, LogoutTokenTyp)
	if err != nil {
		return nil, fmt.Errorf("renew logout token for %s: %w", claims.Audience, err)
	}
	return logoutForm(signed), nil
}

// LogoutURI is where c's logout tokens go: its backchannel_logout_uri,
// "" if it has none. The outbox asks it before each attempt
// (webhook.Notifier.SendTo), so a token queued before the client moved
// its endpoint goes to the new one, and one queued before the client
// dropped its URI is not sent.
func LogoutURI(c *store.Client) string { return c.BackchannelLogoutURI }

// logoutForm is the body that carries token (§2.5): the form parameter
// logout_token.
func logoutForm(token string) []byte {
	return []byte("logout_token=" + url.QueryEscape(token))
}

// SessionsEnded tells the relying parties of each ended session (why
// says how, in the session package's words): it is session.Manager's
// Ended, so every way a session ends at Varde — a logout, another
// person's login in the same browser, the end of a person's other
// sessions when their ways in change — reaches the relying parties the
// same way. A failure is logged and leaves the end pending, for
// SettleLeftoverEnds: the sessions have ended regardless; a signer that
// fails or gives no answer within LogoutSignTimeout leaves the ends
// still to settle pending with it, while a session with a client this
// node has no key for (ErrNoRSAKey) leaves its own end pending alone. The tokens
// are queued even if ctx ends meanwhile (a browser that hangs up right
// after its logout), within SettleEndsTimeout, so a relying party hears
// of the logout at once and not LeftoverEndsAfter later.
func (p *Provider) SessionsEnded(ctx context.Context, why string, ended []*store.Session) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SettleEndsTimeout)
	defer cancel()
	for i, s := range ended {
		n, settled, err := p.BackchannelLogout(sctx, s)
		switch {
		case errors.Is(err, ErrNoRSAKey):
			// Only a node with an RSA key can sign this session's
			// logout tokens (ADR 32): its end stays pending for one
			// (SettleLeftoverEnds there), and the other sessions go on,
			// since their signer is here.
			p.Metrics.sessionEnds.WithLabelValues("failed").Inc()
			p.Log.WarnContext(ctx, "back-channel logout left to a node with an RSA key", "why", why, "err", err)
		case errors.Is(err, errLogoutSigner):
			// The others would wait for the same signer in turn: all are
			// left for SettleLeftoverEnds.
			p.Metrics.sessionEnds.WithLabelValues("failed").Add(float64(len(ended) - i))
			p.Log.ErrorContext(ctx, "back-channel logout not queued; it will be tried again", "why", why, "sessions", len(ended)-i, "err", err)
			return
		case err != nil:
			p.Metrics.sessionEnds.WithLabelValues("failed").Inc()
			p.Log.ErrorContext(ctx, "back-channel logout not queued; it will be tried again", "why", why, "err", err)
		case settled:
			p.Metrics.sessionEnds.WithLabelValues("settled").Inc()
			if n > 0 {
				p.Log.InfoContext(ctx, "back-channel logout queued", "why", why, "tokens", n)
			}
		}
	}
}

// SettleLeftoverEnds queues the logout tokens of the sessions that ended
// more than LeftoverEndsAfter before now and were not settled: those
// whose node stopped after ending them, or failed to queue them. Any
// node may run it (housekeeping does, every minute); an end is settled
// once, whoever gets to it first. It returns how many ends it settled.
// An end it cannot settle stays pending, due again a minute later,
// then two, doubling up to six hours (endRetryAfter), behind the ends
// due before it; after maxEndAttempts (12) failures, about a day, it is
// given up on, with an error log and an audit event naming its clients
// (deferEnd). The
// round goes on past a failure to the newer ends, up to
// maxFailedEndsPerRound failures; the error then says how many were
// left, once for the round.
// A signer that fails or gives no answer within LogoutSignTimeout ends
// the round with an error, the ends left for the next; so does the end
// of ctx, which bounds the round (housekeeping gives it 20 s). An end
// with a client this node has no key for (ErrNoRSAKey) is passed over,
// left to a node with the key, and counts no failure; the node
// remembers it (keylessEnds), reports it once, and tries it again only
// after keylessRetryAfter, in case its client no longer wants RS256, or
// at once when its own RSA key changes.
func (p *Provider) SettleLeftoverEnds(ctx context.Context, now time.Time) (int, error) {
	if p.LogoutOutbox == nil {
		return 0, nil
	}
	p.keyless.startRound(p.RSASigner)
	// timedOut counts the settled ends of sessions that ran out of time,
	// which nobody settles but housekeeping: not late, unlike the rest.
	settled, tokens, timedOut, timedOutTokens := 0, 0, 0, 0
	// passed holds the ends this round read and will not try again:
	// those it could not settle, which stay pending, in order, those it
	// remembers passing over for want of an RSA key, and any still read
	// though settled (by another node, moments ago). The next reads ask
	// for as many more, so the ends behind them are reached all the
	// same.
	passed := map[string]bool{}
	failed, elsewhere, readAll := 0, 0, false
	var lastErr error
	defer func() {
		if timedOut > 0 {
			p.Log.InfoContext(ctx, "back-channel logout queued for sessions that ran out of time", "sessions", timedOut, "tokens", timedOutTokens)
		}
		if late := settled - timedOut; late > 0 {
			p.Log.InfoContext(ctx, "back-channel logout queued late, for sessions whose end was left pending", "sessions", late, "tokens", tokens)
		}
		if elsewhere > 0 {
			p.Log.WarnContext(ctx, "back-channel logout left to a node with an RSA key: sessions with a client registered for RS256 ID tokens",
				"sessions", elsewhere)
		}
		if readAll {
			p.keyless.keepOnly(passed)
		}
	}()
	// The first read takes in the ends remembered as passed over as
	// well as a batch: read page after page, each page would read them
	// again.
	remembered := p.keyless.count()
	for failed < maxFailedEndsPerRound {
		limit := settleEndsBatch + max(len(passed), remembered)
		ends, err := p.LogoutOutbox.PendingSessionEnds(ctx, now.Add(-LeftoverEndsAfter), limit)
		if err != nil {
			return settled, fmt.Errorf("back-channel logout: %w", err)
		}
		reached := 0
		for _, s := range ends {
			if passed[s.ID] {
				continue
			}
			reached++
			passed[s.ID] = true
			if p.keyless.waiting(s.ID, now) {
				continue
			}
			if err := ctx.Err(); err != nil {
				// The round's time is up: the ends not tried stay
				// pending for the next, and are not counted as failed.
				return settled, fmt.Errorf("back-channel logout: round stopped with ended sessions left for the next: %w", err)
			}
			n, ok, err := p.BackchannelLogout(ctx, s)
			if errors.Is(err, ErrNoRSAKey) {
				// Only a node with an RSA key can settle it (ADR 32):
				// left pending for one, with no failure counted that
				// would give it up, and the round goes on, since the
				// signer of the ends behind it is here. Reported once.
				if p.keyless.passOver(s.ID, now) {
					elsewhere++
				}
				continue
			}
			p.keyless.forget(s.ID)
			if errors.Is(err, errLogoutSigner) {
				// Every end would wait for the same signer in turn: the
				// round ends, and the next tries again.
				p.Metrics.sessionEnds.WithLabelValues("failed").Inc()
				return settled, fmt.Errorf("back-channel logout: %w", err)
			}
			if err != nil && ctx.Err() != nil {
				// The round's time ran out while this end was settled:
				// not the end's failure, so neither counted nor
				// deferred; it is due at once in the next round.
				return settled, fmt.Errorf("back-channel logout: round stopped with ended sessions left for the next: %w", ctx.Err())
			}
			if err != nil {
				// Left pending, tried again later; the others go on.
				p.Metrics.sessionEnds.WithLabelValues("failed").Inc()
				failed++
				lastErr = err
				p.deferEnd(ctx, s, now, err)
				continue
			}
			switch {
			case ok && s.EndReason != "":
				// Swept at its lifetime or idle timeout (ADR 60): no
				// request ended it, so no node settled it at once.
				settled++
				timedOut++
				timedOutTokens += n
				p.Metrics.sessionEnds.WithLabelValues("settled_timed_out").Inc()
			case ok:
				settled++
				tokens += n
				p.Metrics.sessionEnds.WithLabelValues("settled_late").Inc()
			}
		}
		if len(ends) < limit {
			readAll = true
			break
		}
		if reached == 0 {
			break
		}
	}
	if failed > 0 {
		return settled, fmt.Errorf("%d ended sessions' logout tokens not queued; they will be tried again: %w", failed, lastErr)
	}
	return settled, nil
}

// deferEnd records the failure, err, to settle the end of s: the end is
// tried again after endRetryAfter, and after maxEndAttempts failures it
// is given up on, with an error log and an audit event
// (backchannel_logout, failure, given_up) naming the session, its person
// and its clients, whose relying parties are then not told of it.
func (p *Provider) deferEnd(ctx context.Context, s *store.Session, now time.Time, err error) {
	n, derr := p.LogoutOutbox.DeferSessionEnd(ctx, s.ID, func(n int) time.Time {
		// Due when PendingSessionEnds' before, now-LeftoverEndsAfter,
		// passes it.
		return now.Add(endRetryAfter(n) - LeftoverEndsAfter)
	})
	if derr != nil {
		// Left as it was: tried again in the next round.
		p.Log.WarnContext(ctx, "back-channel logout: failure not recorded on the ended session", "err", derr)
		return
	}
	if n < maxEndAttempts {
		return
	}
	settled, derr := p.LogoutOutbox.SettleSessionEnd(ctx, s.ID, nil)
	if derr != nil {
		p.Log.WarnContext(ctx, "back-channel logout: ended session not given up on; it will be tried again", "err", derr)
		return
	}
	if !settled {
		// Settled meanwhile by another node, which told the relying
		// parties or gave up on it itself.
		return
	}
	p.Metrics.sessionEnds.WithLabelValues("given_up").Inc()
	p.Log.ErrorContext(ctx, "back-channel logout given up: these relying parties are not told of the session's end",
		"session", s.ID, "clients", s.Clients, "attempts", n, "err", err)
	// The audit trail says so too: the person's sessions at these
	// relying parties may outlive their end at Varde.
	p.audit(ctx, &store.AuditEvent{Type: "backchannel_logout", Result: store.ResultFailure, Reason: "given_up",
		PersonID: s.PersonID, Provider: s.Provider,
		Details: map[string]string{"session": s.ID, "clients": strings.Join(s.Clients, " "), "attempts": strconv.Itoa(n)}})
}

// endRetryAfter is how long after its nth failure an end is tried again:
// a minute, doubled at each failure up to six hours, so that
// maxEndAttempts failures take about a day.
func endRetryAfter(n int) time.Duration {
	if n > 9 {
		return maxEndRetryAfter
	}
	return min(time.Minute<<max(n-1, 0), maxEndRetryAfter)
}

const (
	maxEndAttempts   = 12
	maxEndRetryAfter = 6 * time.Hour
)

// settleEndsBatch is how many pending ends SettleLeftoverEnds reads at
// a time beyond those it failed to settle in the round;
// maxFailedEndsPerRound, how many failures end a round (the store is
// likely failing them all).
const (
	settleEndsBatch       = 100
	maxFailedEndsPerRound = 1000
)

// BackchannelLogout settles the end of sess, a session that ended with
// clients in it: in one write, it forgets the end and queues one logout
// token for every client that received tokens in sess and registered a
// backchannel_logout_uri (§2.7: the OP sends to every RP with a session,
// the one that asked for the logout included). It returns how many
// tokens it queued and whether it settled the end; false if the end was
// not pending (settled already, by this node or another, or never
// recorded: the session had expired). It waits on the store only, never
// on a relying party: the outbox's worker POSTs the tokens. A client that
// no longer exists is skipped.
func (p *Provider) BackchannelLogout(ctx context.Context, sess *store.Session) (int, bool, error) {
	if p.LogoutOutbox == nil || len(sess.Clients) == 0 {
		return 0, false, nil
	}
	now := p.Now()
	var told []*store.Client
	for _, id := range sess.Clients {
		c, err := p.Clients.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("back-channel logout: %w", err)
		}
		if c.BackchannelLogoutURI == "" {
			continue
		}
		told = append(told, c)
	}
	jtis, tokens, err := p.logoutTokens(ctx, told, sess, now)
	if err != nil {
		return 0, false, fmt.Errorf("back-channel logout: %w", err)
	}
	var ds []*store.WebhookDelivery
	for i, c := range told {
		ds = append(ds, &store.WebhookDelivery{
			ID: jtis[i], ClientID: c.ID, URL: c.BackchannelLogoutURI, Event: LogoutDeliveryEvent,
			Payload: logoutForm(tokens[i]), ContentType: LogoutContentType,
			CreatedAt: now, NextAttemptAt: now,
		})
	}
	settled, err := p.LogoutOutbox.SettleSessionEnd(ctx, sess.ID, ds)
	if err != nil {
		return 0, false, fmt.Errorf("back-channel logout: %w", err)
	}
	if !settled {
		return 0, false, nil
	}
	return len(ds), true, nil
}
