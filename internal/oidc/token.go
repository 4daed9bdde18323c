package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Grant types.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
)

// scopeOfflineAccess asks for access while the person is not logged in
// (OIDC Core §11): a refresh token that outlives the session.
const scopeOfflineAccess = "offline_access"

// tokenResponse is a successful token response (RFC 6749 §5.1, OIDC
// Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// grantFailure is a refused grant worth an audit event: a replayed code,
// a reused refresh token, a code presented by the wrong client.
type grantFailure struct {
	err      *oauth2.Error
	reason   string
	grantID  string
	personID string
}

func (f *grantFailure) Error() string { return f.err.Error() }
func (f *grantFailure) Unwrap() error { return f.err }

func failure(err *oauth2.Error, reason, grantID, personID string) error {
	return &grantFailure{err: err, reason: reason, grantID: grantID, personID: personID}
}

// clientRequest takes the steps the PAR, token, revocation and
// introspection endpoints share, so that none can skip one: a
// form-encoded POST body (RFC 6749 §3.2, RFC 9126 §2.1, RFC 7009 §2.1,
// RFC 7662 §2.1), the client authenticated (RFC 6749 §2.3, §3.2.1; RFC
// 9126 §2; RFC 7009 §2.1), with a refused credential audited, and every
// parameter given once and as text (RFC 6749 §3.1). With false, the
// error has been written.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request, ep string) (*store.Client, url.Values, bool) {
	c, form, _, ok := p.clientProofRequest(w, r, ep, nil)
	return c, form, ok
}

// clientProofRequest is clientRequest at an endpoint that takes DPoP
// proofs (PAR, token): check, when not nil, checks the rest of the
// request for the authenticated client, writing nothing, and returns
// its DPoP proof, if any. Everything that can refuse the request
// without a store write runs before anything single-use is spent: the
// client's credentials and check are both passed first, then the
// proof's jti and the client assertion's jti are recorded (RFC 9449
// §11.1, OIDC Core §9). So a proof refused for any reason spends no
// client assertion, and an assertion refused spends no proof. With
// false, the error has been written.
func (p *Provider) clientProofRequest(w http.ResponseWriter, r *http.Request, ep string, check func(*store.Client, url.Values) (*oauth2.DPoPProof, error)) (*store.Client, url.Values, *oauth2.DPoPProof, bool) {
	if !formEncoded(r) {
		p.jsonError(w, r, ep, oauth2.InvalidRequest("body must be application/x-www-form-urlencoded"))
		return nil, nil, nil, false
	}
	if err := parseForm(r); err != nil {
		p.jsonError(w, r, ep, err)
		return nil, nil, nil, false
	}
	clientRefused := func(err error) {
		if e := oauth2.AsError(err); e.Code == oauth2.CodeInvalidClient {
			details := map[string]string{"endpoint": ep, "description": e.Description}
			if e.Detail != "" {
				details["detail"] = e.Detail
			}
			p.audit(r.Context(), &store.AuditEvent{Type: "token", Result: store.ResultFailure, Reason: "client_auth", Details: details})
		}
		p.jsonError(w, r, ep, err)
	}
	ca, err := p.ClientAuth.Check(r)
	if err != nil {
		clientRefused(err)
		return nil, nil, nil, false
	}
	c, form := ca.Client, r.PostForm
	if err := wellFormed(form); err != nil {
		p.jsonError(w, r, ep, err)
		return nil, nil, nil, false
	}
	// A refused proof is audited, whether it was refused by its checks
	// or as a replay; a request for a nonce is not a refusal worth an
	// event: every client that holds none yet gets one.
	refused := func(err error) {
		if !oauth2.IsInternal(err) && oauth2.AsError(err).Code == oauth2.CodeInvalidDPoPProof {
			details := map[string]string{"endpoint": ep, "description": oauth2.AsError(err).Description}
			if gt := form.Get("grant_type"); gt != "" {
				details["grant_type"] = gt
			}
			p.audit(r.Context(), &store.AuditEvent{Type: "token", ClientID: c.ID, Result: store.ResultFailure, Reason: "dpop_proof",
				Details: details})
		}
		p.jsonError(w, r, ep, err)
	}
	var proof *oauth2.DPoPProof
	if check != nil {
		if proof, err = check(c, form); err != nil {
			refused(err)
			return nil, nil, nil, false
		}
	}
	if proof != nil {
		if err := p.DPoP.Record(r.Context(), proof); err != nil {
			refused(err)
			return nil, nil, nil, false
		}
	}
	if err := p.ClientAuth.Record(r.Context(), ca); err != nil {
		clientRefused(err)
		return nil, nil, nil, false
	}
	return c, form, proof, true
}

// token is the token endpoint (RFC 6749 §3.2). Every grant passes the
// same steps here: form checks, client authentication, audit, metrics
// and the response; each grant type is one unit below.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	const ep = "token"
	ctx := r.Context()
	// RFC 9449 §8: a proof without a fresh nonce is sent back for one
	// before the client is authenticated: asking for a nonce writes
	// nothing, not even an audit event, and the client may send the same
	// assertion again with its new proof. A proof refused for anything
	// else (a stale iat, a wrong htu or htm, a bad signature) is found
	// before the client assertion's jti is recorded (clientProofRequest),
	// so it spends no assertion either.
	if err := p.DPoP.CheckNonce(r); err != nil {
		p.jsonError(w, r, ep, err)
		return
	}
	c, form, proof, ok := p.clientProofRequest(w, r, ep, func(c *store.Client, _ url.Values) (*oauth2.DPoPProof, error) {
		return p.tokenProof(r, c)
	})
	if !ok {
		return
	}
	gt := form.Get("grant_type")
	var out *tokenResponse
	var err error
	switch gt {
	case grantAuthorizationCode:
		out, err = p.authorizationCodeGrant(ctx, c, form, proof)
	case grantRefreshToken:
		out, err = p.refreshTokenGrant(ctx, c, form, proof)
	case "":
		err = oauth2.InvalidRequest("grant_type is required")
	default:
		err = oauth2.UnsupportedGrantType("grant_type must be %s or %s (see grant_types_supported)", grantAuthorizationCode, grantRefreshToken)
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		// The code or refresh token may have been spent and tokens stored
		// that the client never got. It is not redeemed again here. The
		// client's next try with the same code or refresh token completes
		// the request if the write did not happen (a code is spent only in
		// the write that stores its tokens). If it did, a code's is a use
		// twice (RFC 6749 §4.1.2) that revokes the grant, which fails
		// closed: the client starts a new login; a refresh token's is a
		// retry after a lost answer if it is sender-constrained and soon
		// enough (ADR 55), which replaces the tokens stored, and
		// otherwise a reuse (RFC 9700 §4.14.2) that revokes the grant.
		p.Log.ErrorContext(ctx, "token outcome unknown: the code or refresh token may or may not have been spent, and its tokens stored",
			"grant_type", gt, "client", c.ID, "err", err, "req", httpx.RequestID(ctx))
		err = oauth2.NewError(oauth2.CodeServerError, "the request may or may not have been carried out; presenting the same code or refresh token again completes it if it was not; if it was, a code presented again revokes what it issued, and so does a refresh token, unless the client proves it is its own (client authentication or its DPoP key) within the retry interval, which gets a fresh pair")
	}
	if err != nil {
		var f *grantFailure
		if errors.As(err, &f) {
			p.audit(ctx, &store.AuditEvent{Type: "token", ClientID: c.ID, PersonID: f.personID,
				Result: store.ResultFailure, Reason: f.reason,
				Details: map[string]string{"grant_type": gt, "grant": f.grantID}})
		}
		p.jsonError(w, r, ep, err)
		return
	}
	p.Metrics.tokensIssued.WithLabelValues(gt).Inc()
	oauth2.WriteJSON(w, http.StatusOK, out)
}

// tokenEvent is the audit event of tokens issued to c under g.
func tokenEvent(c *store.Client, g *store.Grant, grantType string) *store.AuditEvent {
	return &store.AuditEvent{Type: "token", ClientID: c.ID, PersonID: g.PersonID, Provider: g.Provider,
		Level: g.Level, Result: store.ResultSuccess,
		Details: map[string]string{"grant_type": grantType, "grant": g.ID, "claims": strings.Join(releasedClaims(c), " ")}}
}

// authorizationCodeGrant redeems a code (RFC 6749 §4.1.3, OIDC Core
// §3.1.3.2, RFC 7636 §4.6).
func (p *Provider) authorizationCodeGrant(ctx context.Context, c *store.Client, form url.Values, proof *oauth2.DPoPProof) (*tokenResponse, error) {
	code := form.Get("code")
	if code == "" {
		return nil, oauth2.InvalidRequest("code is required")
	}
	now := p.Now()
	// The code is read first and spent only once the request shows what
	// only its client holds (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449
	// §10): someone who has intercepted the code alone, and presents it
	// as another client, with another redirect_uri, without the PKCE
	// verifier or without the bound DPoP key, is refused without spending
	// it, so cannot end the client's login (RFC 7636 §1, RFC 9700
	// §4.5.3: PKCE makes a stolen code useless), nor, by replaying it
	// after the client redeemed it, revoke the client's tokens. A replay
	// that passes every check is the use twice of RFC 6749 §4.1.2.
	ac, err := p.AuthCodes.GetAuthCode(ctx, hash(code))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauth2.InvalidGrant("code is unknown")
	case err != nil:
		return nil, fmt.Errorf("get code: %w", err)
	}
	if err := codePresenter(ac, c, form, proof); err != nil {
		return nil, err
	}
	// An expired code is refused unspent; a used one, expired or not, is
	// the replay below.
	if ac.UsedAt.IsZero() && now.After(ac.ExpiresAt) {
		return nil, failure(oauth2.InvalidGrant("code has expired"), "code_expired", ac.GrantID, ac.PersonID)
	}
	if !ac.UsedAt.IsZero() {
		return nil, p.codeReplay(ctx, ac)
	}
	// The session the code was issued in must not have ended: the person
	// logged out, or their sessions were ended, before its redemption.
	// Its relying party, listed in the session with the code, was told
	// of the end (Back-Channel Logout §2.7) before it could have had
	// tokens from it, and tokens issued now (a refresh token with
	// offline_access above all) would outlive a logout the person has
	// already seen. The code is not spent; it expires. ac.SessionID is
	// the root of the session's line, as a grant's is.
	if err := p.sessionLive(ctx, ac.SessionID, now, oauth2.InvalidGrant("the session the code was issued in has ended; start a new login"),
		ac.GrantID, ac.PersonID); err != nil {
		return nil, err
	}
	g := &store.Grant{
		ID: ac.GrantID, ClientID: c.ID, PersonID: ac.PersonID, SessionID: ac.SessionID, Scope: ac.Scope,
		Provider: ac.Provider, Level: ac.Level, AMR: ac.AMR, AuthTime: ac.AuthTime, Degraded: ac.Degraded, CreatedAt: now,
	}
	// Refresh tokens live RefreshTokenLifetime from the code exchange;
	// rotation does not extend it. The code is spent, and the grant
	// stored together with its tokens and the event recording their
	// issue, in one write (issueTokens): a code is not used up unless
	// its tokens are stored, so a failed write leaves it for the
	// client's retry, and no tokens without their event.
	ev := p.auditWith(ctx, tokenEvent(c, g, grantAuthorizationCode))
	var used *store.AuthCode
	save := func(tokens ...*store.Token) error {
		var err error
		used, err = p.Grants.CreateGrantTokensForCode(ctx, hash(code), now, g, ev, tokens...)
		return err
	}
	resp, err := p.issueTokens(ctx, c, g, g.Scope, ac.Nonce, now.Add(p.RefreshTokenLifetime), proof, save)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauth2.InvalidGrant("code is unknown")
	case errors.Is(err, store.ErrUsed) && used != nil, errors.Is(err, store.ErrConflict):
		// RFC 6749 §4.1.2, RFC 9700 §4.5: a code used twice is stolen or
		// replayed; revoke everything issued from it. A taken grant ID is
		// this code's grant, stored by an earlier redemption.
		if used == nil {
			used = ac
		}
		return nil, p.codeReplay(ctx, used)
	case err != nil:
		return nil, err
	}
	return resp, nil
}

// sessionLive returns refused, audited session_ended for grant grantID
// of person personID, unless the line of sessions that began with root
// is live at now.
func (p *Provider) sessionLive(ctx context.Context, root string, now time.Time, refused *oauth2.Error, grantID, personID string) error {
	live, err := p.LiveSessions.SessionLineLive(ctx, root, now)
	switch {
	case err != nil:
		return fmt.Errorf("read session: %w", err)
	case !live:
		return failure(refused, "session_ended", grantID, personID)
	}
	return nil
}

// codeReplay revokes everything issued from the used code ac (RFC 6749
// §4.1.2, RFC 9700 §4.5) and returns the token endpoint's refusal.
func (p *Provider) codeReplay(ctx context.Context, ac *store.AuthCode) error {
	p.revokeCodeGrant(ctx, ac)
	return failure(oauth2.InvalidGrant("code was already used"), "code_replay", ac.GrantID, ac.PersonID)
}

// codePresenter checks that the token request for code ac comes from
// the party the code was issued to: the client c (RFC 6749 §4.1.3),
// with the redirect_uri of the authorization request (exactly; empty
// only if the request omitted it), the PKCE verifier (RFC 7636 §4.6)
// and, for a code bound to a DPoP key, a proof made with that key (RFC
// 9449 §10). It reads nothing and writes nothing.
func codePresenter(ac *store.AuthCode, c *store.Client, form url.Values, proof *oauth2.DPoPProof) error {
	if ac.ClientID != c.ID {
		return failure(oauth2.InvalidGrant("code was issued to another client"), "wrong_client", ac.GrantID, ac.PersonID)
	}
	if form.Get("redirect_uri") != ac.RedirectURI {
		return failure(oauth2.InvalidGrant("redirect_uri does not match the authorization request"), "redirect_uri_mismatch", ac.GrantID, ac.PersonID)
	}
	if err := oauth2.VerifyPKCE(ac.CodeChallenge, ac.CodeChallengeMethod, form.Get("code_verifier")); err != nil {
		return failure(oauth2.AsError(err), "pkce_failed", ac.GrantID, ac.PersonID)
	}
	// RFC 9449 §10: a code whose request named a key (dpop_jkt, or a
	// proof sent with the pushed request) is redeemed only with a proof
	// made with that key.
	if ac.DPoPJKT != "" && (proof == nil || proof.JKT != ac.DPoPJKT) {
		return failure(oauth2.InvalidDPoPProof("the code is bound to a DPoP key; the proof must be made with it"), "dpop_key_mismatch", ac.GrantID, ac.PersonID)
	}
	return nil
}

// Audit reasons of the refresh grant.
const (
	// reasonRefreshReuse: a rotated refresh token presented again, not
	// as a retry (RFC 9700 §4.14.2): its grant is revoked.
	reasonRefreshReuse = "refresh_reuse"
	// reasonRefreshRetried: a rotated refresh token presented again as
	// a retry after a lost answer (ADR 55): a fresh pair was issued and
	// the lost answer's pair revoked. The event of a success.
	reasonRefreshRetried = "refresh_retried"
	// reasonRefreshReplaced: a refresh token a retry replaced, which
	// only the lost answer held, was presented: its grant is revoked.
	reasonRefreshReplaced = "refresh_replaced"
)

// refreshTokenGrant rotates a refresh token (RFC 6749 §6, RFC 9700
// §4.14.2): the old one is used up, a new pair is issued, and a used
// token presented again revokes the whole grant, unless it is its
// client's retry after a lost answer (retryable, ADR 55).
func (p *Provider) refreshTokenGrant(ctx context.Context, c *store.Client, form url.Values, proof *oauth2.DPoPProof) (*tokenResponse, error) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, oauth2.InvalidRequest("refresh_token is required")
	}
	h := hash(rt)
	now := p.Now()
	tok, err := p.Tokens.GetToken(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauth2.InvalidGrant("refresh token is unknown")
	}
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	if tok.Kind != store.TokenRefresh {
		return nil, oauth2.InvalidGrant("not a refresh token")
	}
	// RFC 6749 §6: the token is bound to the client it was issued to.
	if tok.ClientID != c.ID {
		return nil, failure(oauth2.InvalidGrant("refresh token was issued to another client"), "wrong_client", tok.GrantID, p.personOf(ctx, tok.GrantID))
	}
	// RFC 9449 §5: a bound refresh token (a public client's) is used only
	// with a proof made with its key. Checked before reuse, so that only
	// the key's holder can set off the revocation below, or retry.
	if tok.JKT != "" && (proof == nil || proof.JKT != tok.JKT) {
		return nil, failure(oauth2.InvalidDPoPProof("the refresh token is bound to a DPoP key; the proof must be made with it"), "dpop_key_mismatch", tok.GrantID, p.personOf(ctx, tok.GrantID))
	}
	retry, err := p.presentedAgain(ctx, c, tok, now)
	if err != nil {
		return nil, err
	}
	// Expired at ExpiresAt itself, as introspection has it.
	if !now.Before(tok.ExpiresAt) {
		return nil, oauth2.InvalidGrant("refresh token has expired")
	}
	g, err := p.Grants.GetGrant(ctx, tok.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauth2.InvalidGrant("grant is unknown")
	}
	if err != nil {
		return nil, fmt.Errorf("get grant: %w", err)
	}
	if !g.RevokedAt.IsZero() {
		return nil, failure(oauth2.InvalidGrant("grant was revoked"), "grant_revoked", g.ID, g.PersonID)
	}
	if err := p.refreshAllowed(ctx, c, g, now); err != nil {
		return nil, err
	}
	// RFC 6749 §6: a narrower scope may be asked for, never a wider one;
	// omitted means the scope originally granted. The new access token
	// carries the narrower scope; the refresh token keeps the grant's.
	scope := g.Scope
	if requested := strings.Fields(form.Get("scope")); len(requested) > 0 {
		for _, s := range requested {
			if !slices.Contains(g.Scope, s) {
				return nil, oauth2.InvalidScope("scope exceeds the original grant")
			}
		}
		scope = requested
	}
	// The old token is used up, its successors stored and their issue
	// audited in one write: if any of it fails, none of it happened and
	// the relying party can retry with the same refresh token instead of
	// being taken for a thief. A retry replaces, in its one write, the
	// pair the lost answer carried.
	ev := p.auditWith(ctx, tokenEvent(c, g, grantRefreshToken))
	var reused *store.Token
	save := func(tokens ...*store.Token) error {
		if retry {
			return p.retryRotation(ctx, h, now, ev, tokens)
		}
		var err error
		reused, err = p.Tokens.RotateToken(ctx, h, now, ev, tokens...)
		if errors.Is(err, store.ErrConflict) && reused != nil && reused.RevokedAt.IsZero() && p.retryable(c, reused, now) {
			// A concurrent use of the same token got there first: this
			// one is a retry of it, as it would be a moment later.
			retry = true
			return p.retryRotation(ctx, h, now, ev, tokens)
		}
		return err
	}
	// OIDC Core §12.2: a refreshed ID token keeps auth_time and has no nonce.
	resp, err := p.issueTokens(ctx, c, g, scope, "", tok.ExpiresAt, proof, save)
	switch {
	case errors.Is(err, store.ErrConflict) && reused != nil && !retry, retry && (errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrConflict)):
		// A concurrent use of the same token got there first, and this is
		// no retry; or the retry found what the lost answer carried used
		// (the client did receive it), or the rotation no longer within
		// the window.
		reason := reasonRefreshReuse
		if reused != nil && !reused.RevokedAt.IsZero() {
			reason = reasonRefreshReplaced
		}
		p.revoke(ctx, g.ID)
		return nil, failure(oauth2.InvalidGrant("refresh token was already used"), reason, g.ID, g.PersonID)
	case retry && errors.Is(err, store.ErrNotFound):
		return nil, oauth2.InvalidGrant("refresh token is unknown")
	case err != nil:
		return nil, err
	}
	return resp, nil
}

// presentedAgain decides on tok, a refresh token presented by c at now,
// if it was used already: false if it was not; true if it was, by its
// rotation, and this is a retry (retryable); otherwise it revokes the
// grant and returns the refusal. A token a retry replaced was only in
// the answer the client did not receive: whoever presents it holds
// that answer, so it is a reuse, never a retry.
func (p *Provider) presentedAgain(ctx context.Context, c *store.Client, tok *store.Token, now time.Time) (bool, error) {
	switch {
	case !tok.RevokedAt.IsZero():
		p.revoke(ctx, tok.GrantID)
		return false, failure(oauth2.InvalidGrant("refresh token was replaced by a retry of its rotation"), reasonRefreshReplaced, tok.GrantID, p.personOf(ctx, tok.GrantID))
	case tok.UsedAt.IsZero():
		return false, nil
	case p.retryable(c, tok, now):
		return true, nil
	}
	p.revoke(ctx, tok.GrantID)
	return false, failure(oauth2.InvalidGrant("refresh token was already used"), reasonRefreshReuse, tok.GrantID, p.personOf(ctx, tok.GrantID))
}

// personOf is the person of grant grantID, read from the stored grant
// (never from the request), for the event of a refusal of a token of
// theirs: one that ends their login at a service, or one presented by
// another client or with another key, so that their record of events
// shows it and an operator can find it by person; "" if the grant
// cannot be read, which the event then says by its grant alone.
func (p *Provider) personOf(ctx context.Context, grantID string) string {
	g, err := p.Grants.GetGrant(ctx, grantID)
	if err != nil {
		return ""
	}
	return g.PersonID
}

// retryable reports whether tok, a refresh token rotated already and
// presented again by c at now, is taken for c's retry after an answer
// lost in transit (ADR 55): within RefreshReuseInterval of its
// rotation, and sender-constrained, so that only the client itself can
// present it: a confidential client, which authenticated itself
// (clientProofRequest), or a token bound to a DPoP key, whose proof
// refreshTokenGrant has checked. A public client's unbound token is
// never retried: whoever has it can present it. Whether anything from
// the lost answer was used is the store's to tell, in the retry's
// write (store.Tokens.RetryRotation).
func (p *Provider) retryable(c *store.Client, tok *store.Token, now time.Time) bool {
	if p.RefreshReuseInterval <= 0 || now.After(tok.UsedAt.Add(p.RefreshReuseInterval)) {
		return false
	}
	return c.AuthMethod != store.AuthNone || tok.JKT != ""
}

// useAccessToken records the use at now of access token t, if a retry
// of the rotation that issued it could still replace it: the first use
// within twice RefreshReuseInterval of its issue (ADR 55). A retry comes
// within the interval by the clock of the node it reaches, which may be
// behind the clock of the node t is used on; the interval once more
// covers any difference between the clocks of a cluster's nodes. Other
// uses write nothing. It reports whether t may be used: false if a
// retry replaced it, before or as it was used.
func (p *Provider) useAccessToken(ctx context.Context, t *store.Token, now time.Time) (bool, error) {
	switch {
	case !t.RevokedAt.IsZero():
		return false, nil
	case t.Parent == nil, !t.UsedAt.IsZero(), p.RefreshReuseInterval <= 0, now.After(t.CreatedAt.Add(2 * p.RefreshReuseInterval)):
		return true, nil
	}
	ok, err := p.Tokens.MarkTokenUsed(ctx, t.Hash, now)
	if err != nil {
		return false, fmt.Errorf("record access token use: %w", err)
	}
	return ok, nil
}

// retryRotation redoes the rotation of the refresh token with hash h at
// now, storing tokens and ev, audited as a retry, in place of what the
// rotation issued (store.Tokens.RetryRotation, ADR 55).
func (p *Provider) retryRotation(ctx context.Context, h []byte, now time.Time, ev *store.AuditEvent, tokens []*store.Token) error {
	if ev != nil {
		ev.Reason = reasonRefreshRetried
	}
	_, replaced, err := p.Tokens.RetryRotation(ctx, h, now.Add(-p.RefreshReuseInterval), now, ev, tokens...)
	if err != nil {
		return err
	}
	p.Metrics.refreshRetries.Inc()
	p.Log.InfoContext(ctx, "refresh retried: the tokens of the lost answer are revoked", "replaced", len(replaced), "req", httpx.RequestID(ctx))
	return nil
}

// refreshAllowed checks that grant g may still be refreshed by c (ADR
// 22): c is still registered for refresh tokens, and a grant without
// offline_access (OIDC Core §11) is refreshed only while the session it
// came from is live: such a token ends when the person logs out, or
// their session expires or is ended, as the login it continues does.
func (p *Provider) refreshAllowed(ctx context.Context, c *store.Client, g *store.Grant, now time.Time) error {
	if !c.RefreshTokens {
		return failure(oauth2.InvalidGrant("the client is no longer registered for refresh tokens"), "refresh_not_allowed", g.ID, g.PersonID)
	}
	if slices.Contains(g.Scope, scopeOfflineAccess) {
		return nil
	}
	// g.SessionID is the root of the session's line: a step-up or a
	// prompt=login in the same browser continues the session under
	// another ID, and the person is still logged in.
	return p.sessionLive(ctx, g.SessionID, now, oauth2.InvalidGrant("the session the refresh token belongs to has ended; offline_access was not granted"),
		g.ID, g.PersonID)
}

// revokeCodeGrant revokes what a replayed code issued. If the first
// redemption has not created its grant yet, the grant is created already
// revoked, so that redemption fails instead of issuing live tokens.
func (p *Provider) revokeCodeGrant(ctx context.Context, ac *store.AuthCode) {
	now := p.Now()
	err := p.Grants.RevokeGrant(ctx, ac.GrantID, now)
	if errors.Is(err, store.ErrNotFound) {
		err = p.Grants.CreateGrant(ctx, &store.Grant{
			ID: ac.GrantID, ClientID: ac.ClientID, PersonID: ac.PersonID, SessionID: ac.SessionID, Scope: ac.Scope,
			Provider: ac.Provider, Level: ac.Level, AMR: ac.AMR, AuthTime: ac.AuthTime, CreatedAt: now, RevokedAt: now,
		})
		if errors.Is(err, store.ErrConflict) {
			err = p.Grants.RevokeGrant(ctx, ac.GrantID, now)
		}
	}
	if err != nil {
		p.Log.ErrorContext(ctx, "revoke grant of replayed code", "err", err)
	}
}

func (p *Provider) revoke(ctx context.Context, grantID string) {
	if err := p.Grants.RevokeGrant(ctx, grantID, p.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.Log.ErrorContext(ctx, "revoke grant", "err", err)
	}
}

// issueTokens issues an access token for scope (the grant's, or a
// narrower one on refresh), a refresh token for the grant's scope if the
// client is registered for them (ADR 22), and an ID token if scope has
// openid. Tokens are opaque random values stored by SHA-256. With a
// DPoP proof the access token is bound to the proof's key, and so is a
// public client's refresh token (RFC 9449 §5); a confidential client's
// refresh token is bound to the client's own authentication. save
// stores the token records, with whatever the grant type stores in
// the same atomic write; it runs last, once everything that can fail
// without touching the store has succeeded, and an error from it is
// returned as it is.
func (p *Provider) issueTokens(ctx context.Context, c *store.Client, g *store.Grant, scope []string, nonce string, refreshExpires time.Time, proof *oauth2.DPoPProof, save func(tokens ...*store.Token) error) (*tokenResponse, error) {
	person, err := p.Persons.GetPerson(ctx, g.PersonID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauth2.InvalidGrant("the person no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("get person: %w", err)
	}
	if person.Blocked() {
		// Blocking revokes the person's grants; this stops a code
		// issued just before the block, redeemed after it.
		return nil, oauth2.InvalidGrant("the person's Varde ID is blocked")
	}
	now := p.Now()
	access, at, err := p.newToken(store.TokenAccess, g, scope, now, now.Add(p.AccessTokenLifetime))
	if err != nil {
		return nil, err
	}
	// ADR 22: a refresh token only to a client registered for them.
	var refresh string
	var rt *store.Token
	if c.RefreshTokens {
		if refresh, rt, err = p.newToken(store.TokenRefresh, g, g.Scope, now, refreshExpires); err != nil {
			return nil, err
		}
	}
	// An ID token belongs to the openid scope: a refresh narrowed to a
	// scope without it gets none (OIDC Core §12.2, RFC 6749 §6).
	var idt string
	if slices.Contains(scope, "openid") {
		if idt, err = p.idToken(c, g, person, nonce, now); err != nil {
			return nil, err
		}
	}
	tokenType := "Bearer"
	if proof != nil {
		// RFC 9449 §5.1: token_type DPoP tells the client it is bound.
		tokenType, at.JKT = "DPoP", proof.JKT
		if c.AuthMethod == store.AuthNone && rt != nil {
			rt.JKT = proof.JKT
		}
	}
	tokens := []*store.Token{at}
	if rt != nil {
		tokens = append(tokens, rt)
	}
	if err := save(tokens...); err != nil {
		return nil, fmt.Errorf("store tokens: %w", err)
	}
	return &tokenResponse{
		AccessToken: access, TokenType: tokenType, ExpiresIn: int64(p.AccessTokenLifetime / time.Second),
		RefreshToken: refresh, IDToken: idt, Scope: strings.Join(scope, " "),
	}, nil
}

// newToken makes a token value and the record to store for it.
func (p *Provider) newToken(kind string, g *store.Grant, scope []string, now, expires time.Time) (string, *store.Token, error) {
	v, err := p.randomToken(32)
	if err != nil {
		return "", nil, err
	}
	return v, &store.Token{
		Hash: hash(v), Kind: kind, GrantID: g.ID, ClientID: g.ClientID, Scope: scope,
		CreatedAt: now, ExpiresAt: expires,
	}, nil
}

// ErrNoRSAKey means a client registered for RS256 ID tokens asked a node
// that has no RSA key: it gets none signed ES256 instead, which it would
// refuse, or worse, accept against its registration (ADR 32). The error
// of RenewLogoutToken wraps it for such a client's logout token, which
// a node with an RSA key can renew.
var ErrNoRSAKey = errors.New("the client is registered for RS256 ID tokens, and this node has no RSA key (keys.rsa_signing_key_file)")

// canSignFor refuses, with ErrNoRSAKey, a login for a client whose ID
// tokens this node cannot sign, before the person authenticates: at the
// token endpoint, after they did, it would fail all the same. Another
// node may have the key, so the client is told to try again
// (retryable).
func (p *Provider) canSignFor(c *store.Client) error {
	_, err := p.signerFor(c.IDTokenSigningAlg())
	return err
}

// signerFor is the key that signs ID tokens and logout tokens with alg
// (store.Client.IDTokenSigningAlg; OIDC Core §15.1: RS256 is mandatory
// to implement, ES256 is Varde's default).
func (p *Provider) signerFor(alg string) (*keys.Signer, error) {
	switch alg {
	case store.IDTokenES256:
		return p.Signer, nil
	case store.IDTokenRS256:
		if p.RSASigner == nil {
			return nil, ErrNoRSAKey
		}
		return p.RSASigner, nil
	}
	return nil, fmt.Errorf("no signing key for ID token algorithm %q", alg)
}

// idToken builds and signs an ID token (OIDC Core §2, §3.1.3.6).
func (p *Provider) idToken(c *store.Client, g *store.Grant, person *store.Person, nonce string, now time.Time) (string, error) {
	claims := map[string]any{
		"iss":       p.Issuer,
		"sub":       p.subject(c, g.PersonID),
		"aud":       c.ID,
		"azp":       c.ID,
		"iat":       now.Unix(),
		"exp":       now.Add(p.IDTokenLifetime).Unix(),
		"auth_time": g.AuthTime.Unix(),
		"sid":       p.sessionRef(c, g.SessionID),
		"provider":  g.Provider,
	}
	if level, err := assurance.Parse(g.Level); err == nil {
		claims["acr"] = level.ACR()
	}
	if len(g.AMR) > 0 {
		claims["amr"] = g.AMR
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if g.Degraded {
		// Below the level asked for, let through by the client's
		// degraded-mode policy; acr above is the level actually reached.
		claims["degraded"] = true
	}
	personClaims(claims, c, person)
	signer, err := p.signerFor(c.IDTokenSigningAlg())
	if err != nil {
		return "", fmt.Errorf("sign id token for %s: %w", c.ID, err)
	}
	tok, err := signer.SignJWT(claims)
	if err != nil {
		return "", fmt.Errorf("sign id token: %w", err)
	}
	return tok, nil
}
