package oidc

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// ExpiredLoginPage is the page for a login whose request has run out
// of time or been used. With c, the client it was for, still known, it
// names the service ("Go back to Demo Bank and start again") and, when
// the client has a home (ClientHome), links to it: an address from the
// client's registration, never one the request carried, so the page
// sends nobody where a link's author chose.
func ExpiredLoginPage(c *store.Client) httpx.ErrorPage {
	e := kindPage(pageExpired)
	if c == nil || c.Name == "" {
		return e
	}
	e.Next, e.NextArg = "error.expired.service.next", c.Name
	e.Service, e.ServiceURL = c.Name, ClientHome(c)
	return e
}

// ClientHome is the home of client c as its registration gives it: the
// origin of its first redirect URI that is an https URL (a native
// app's custom scheme or a loopback address is no page a person can be
// sent to), "" if it has none.
func ClientHome(c *store.Client) string {
	for _, raw := range c.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || httpx.LoopbackHost(u.Hostname()) {
			continue
		}
		return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}).String()
	}
	return ""
}

// ExpiredRequestError is LiveRequest's answer for a request that ran
// out of time while the store still holds it, with the request as read,
// so that the page saying so can name its client without reading the
// request again. It is store.ErrNotFound to errors.Is, as a request the
// store no longer holds is.
type ExpiredRequestError struct {
	Request *store.AuthRequest
}

func (e *ExpiredRequestError) Error() string {
	return "authorization request expired"
}

func (e *ExpiredRequestError) Unwrap() error { return store.ErrNotFound }

// LiveRequest reads request id once, as at the zero time (before any
// expiry), and returns it if it is live at now: expired, it is an
// *ExpiredRequestError holding it; unknown, or deleted, the store's
// store.ErrNotFound. Expiry is the store's own (GetAuthRequest at now):
// live while ExpiresAt is after now.
func LiveRequest(ctx context.Context, reqs store.AuthRequests, id string, now time.Time) (*store.AuthRequest, error) {
	req, err := reqs.GetAuthRequest(ctx, id, time.Time{})
	if err != nil {
		return nil, err
	}
	if !req.ExpiresAt.After(now) {
		return nil, &ExpiredRequestError{Request: req}
	}
	return req, nil
}

// ExpiredClient is the client of the request err says ran out of time
// (an *ExpiredRequestError from LiveRequest), if browser may act on it
// (InBrowser: a login's ID learnt elsewhere does not tell which service
// it was for); nil for any other error, or when its client is gone.
func ExpiredClient(ctx context.Context, clients store.Clients, err error, browser string) *store.Client {
	var expired *ExpiredRequestError
	if !errors.As(err, &expired) || !InBrowser(expired.Request, browser) {
		return nil
	}
	c, err := clients.GetClient(ctx, expired.Request.ClientID)
	if err != nil {
		return nil
	}
	return c
}
