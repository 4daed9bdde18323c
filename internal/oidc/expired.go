package oidc

import (
	"context"
	"net"
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
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || loopback(u.Hostname()) {
			continue
		}
		return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}).String()
	}
	return ""
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ExpiredClient is the client of request id, which is no longer usable,
// read from its record while the store still holds it (read as at the
// zero time, before any expiry), if browser may act on it (InBrowser:
// a login's ID learnt elsewhere does not tell which service it was
// for); nil when the record or its client is gone.
func ExpiredClient(ctx context.Context, reqs store.AuthRequests, clients store.Clients, id, browser string) *store.Client {
	if id == "" {
		return nil
	}
	req, err := reqs.GetAuthRequest(ctx, id, time.Time{})
	if err != nil || !InBrowser(req, browser) {
		return nil
	}
	c, err := clients.GetClient(ctx, req.ClientID)
	if err != nil {
		return nil
	}
	return c
}
