package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// balancer is a load balancer in front of a cluster's nodes, in this
// process, as an operator puts one there (nginx, HAProxy), kept to what
// Varde's nodes need:
//   - round robin per request, without affinity: a login's state is in
//     the database, so each of its requests may go to any node;
//   - passive health: a node it cannot connect to (refused, reset or
//     timed out while connecting) is marked down at once, and the
//     request goes to the next node that is up (nothing reached the
//     node; the body is kept to send again);
//   - active health: every interval it asks each node's /readyz; one
//     answer 200 marks a node up, two failures in a row or a failed
//     connection mark it down. A node that comes back takes requests
//     only once it says it is ready;
//   - a request that a node fails while answering (it dies, say) is not
//     sent again, since the node may have acted on it: the client gets
//     502 Bad Gateway;
//   - a fresh connection for each request, as nginx's default, so that
//     a dead node is seen at the next request and no request goes out on
//     a connection it left behind.
//
// When no node is up it tries them all anyway.
type balancer struct {
	// pick, if set, chooses the node a request tries first; otherwise
	// the next in turn.
	pick func(*http.Request) int
	// observe, if set, is told of each request passed on.
	observe func(lbHop)

	nodes []*lbNode
	proxy *httputil.ReverseProxy
	tr    *http.Transport
	turn  atomic.Uint64

	mu      sync.Mutex
	changes []lbChange
}

var (
	_ http.Handler      = (*balancer)(nil)
	_ http.RoundTripper = (*balancer)(nil)
)

// lbNode is a node behind the balancer.
type lbNode struct {
	addr string // 127.0.0.1:PORT
	up   atomic.Bool
}

// lbHop is a request the balancer passed on.
type lbHop struct {
	at    time.Time // when it was sent to node
	route string    // "POST /token"
	node  int       // the node that answered, or failed the request
	// skipped is true when the node chosen first (by turn or pick) was
	// passed over: it was down, or refused the connection.
	skipped bool
	// err is why the node failed the request; its client got 502.
	err error
}

// lbChange is a node marked up or down.
type lbChange struct {
	at   time.Time
	node int
	up   bool
	why  string // "connect: connection refused", "/readyz 200", …
}

// The balancer's limits.
const (
	lbMaxBody      = 1 << 20
	lbCheckTimeout = 2 * time.Second
	lbFailsToDown  = 2
)

// newBalancer balances over the nodes at addrs (host:port), all taken
// to be up until a check or a request says otherwise.
func newBalancer(addrs ...string) *balancer {
	lb := &balancer{tr: &http.Transport{
		DisableKeepAlives:     true,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	for _, a := range addrs {
		n := &lbNode{addr: a}
		n.up.Store(true)
		lb.nodes = append(lb.nodes, n)
	}
	lb.proxy = &httputil.ReverseProxy{
		// The Host header stays the issuer's, as behind a real one.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: lb,
		// A failed request is told to observe; its client gets 502.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "bad gateway: the node failed the request", http.StatusBadGateway)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return lb
}

func (lb *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Kept, to send again to another node if the first refuses.
	body, err := io.ReadAll(io.LimitReader(r.Body, lbMaxBody+1))
	switch {
	case err != nil:
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	case len(body) > lbMaxBody:
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	lb.proxy.ServeHTTP(w, r)
}

// RoundTrip sends req to the node chosen for it, or, if that one is
// down or cannot be connected to, to the next one that can.
func (lb *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	first := lb.first(req)
	hop := lbHop{route: req.Method + " " + req.URL.Path}
	var err error
	for i, n := range lb.order(first) {
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = "http", lb.nodes[n].addr
		if i > 0 && req.Body != nil {
			out.Body, _ = req.GetBody()
		}
		hop.at, hop.node, hop.skipped = time.Now(), n, n != first
		var res *http.Response
		res, err = lb.tr.RoundTrip(out)
		if err == nil {
			lb.tell(hop)
			return res, nil
		}
		if !connectFailed(err) {
			break
		}
		lb.mark(n, false, netFailure(err))
	}
	hop.err = err
	lb.tell(hop)
	return nil, err
}

func (lb *balancer) first(req *http.Request) int {
	if lb.pick != nil {
		return lb.pick(req) % len(lb.nodes)
	}
	return int((lb.turn.Add(1) - 1) % uint64(len(lb.nodes)))
}

// order is every node, from first on in turn: those up, then those down.
func (lb *balancer) order(first int) []int {
	up := make([]int, 0, len(lb.nodes))
	var down []int
	for i := range lb.nodes {
		n := (first + i) % len(lb.nodes)
		if lb.nodes[n].up.Load() {
			up = append(up, n)
		} else {
			down = append(down, n)
		}
	}
	return append(up, down...)
}

func (lb *balancer) tell(h lbHop) {
	if lb.observe != nil {
		lb.observe(h)
	}
}

// mark marks node n up or down, noting the change if it is one.
func (lb *balancer) mark(n int, up bool, why string) {
	if lb.nodes[n].up.CompareAndSwap(!up, up) {
		lb.mu.Lock()
		lb.changes = append(lb.changes, lbChange{at: time.Now(), node: n, up: up, why: why})
		lb.mu.Unlock()
	}
}

// history returns the changes so far, in order.
func (lb *balancer) history() []lbChange {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]lbChange(nil), lb.changes...)
}

// check asks each node's /readyz every interval until ctx ends.
func (lb *balancer) check(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for n := range lb.nodes {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			fails := 0
			for {
				err := lb.ready(ctx, n)
				switch {
				case err == nil:
					fails = 0
					lb.mark(n, true, "/readyz 200")
				case ctx.Err() != nil:
					return
				case connectFailed(err):
					lb.mark(n, false, "/readyz: "+netFailure(err))
				default:
					if fails++; fails >= lbFailsToDown {
						lb.mark(n, false, "/readyz: "+err.Error())
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// connectFailed reports whether err is a failure to connect, so that
// nothing of the request reached the node.
func connectFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// netFailure is a failure to connect or to exchange with a node, in a
// few words: "connect: connection refused", "read: connection reset by
// peer", "EOF".
func netFailure(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// ready asks node n's /readyz once.
func (lb *balancer) ready(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, lbCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lb.nodes[n].addr+"/readyz", nil)
	if err != nil {
		return err
	}
	res, err := lb.tr.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}
