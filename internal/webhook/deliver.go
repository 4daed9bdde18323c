package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// Run writes queued transitions to the outbox as they come, and keeps
// up to Concurrency deliveries in flight until ctx ends. Every
// PollInterval, and whenever an attempt ends after a claim that got any
// (more may be due, held back by PerEndpoint or by the slots), it claims
// as many due deliveries as it has free slots, at most PerEndpoint of
// one endpoint in flight, and POSTs each at once, on its own: a slow
// receiver holds at most PerEndpoint slots, never the others, and no
// claimed delivery waits for a slot while its lease runs. When ctx ends, Run waits for the attempts
// in flight, which release their deliveries uncounted, and returns nil,
// once it has written the state changes still waiting to the outbox
// (for at most AttemptTimeout: those the store does not take by then are
// logged as lost). The state changes are written on a goroutine of
// their own, one round at a time, so a store or a signer that is slow
// to answer never holds up the deliveries.
// Store errors are retried on the next round; a claim that fails is
// logged when the failures begin and when they end, not every round.
// Call it once
// per Notifier; every node of a cluster runs its own.
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	var (
		wg sync.WaitGroup
		// ended has room for every slot, so an attempt never waits to
		// say it ended, even once Run no longer listens.
		ended = make(chan struct{}, n.cfg.Concurrency)
		busy  int
		more  bool
		// unreachable is set while claims fail: the failure is logged
		// once, when it begins, not every PollInterval.
		unreachable bool
	)
	defer wg.Wait()
	fill := func() {
		free := n.cfg.Concurrency - busy
		if free == 0 || ctx.Err() != nil {
			return
		}
		ds, err := n.claim(ctx, free)
		switch {
		case err != nil && !unreachable && ctx.Err() == nil:
			unreachable = true
			n.log.Warn("webhook outbox out of reach; deliveries wait until it is back", "err", err)
		case err == nil && unreachable:
			unreachable = false
			n.log.Info("webhook outbox reachable again")
		}
		more = len(ds) > 0
		busy += len(ds)
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.attempt(ctx, d); err != nil {
					n.log.Warn("webhook delivery", "id", d.ID, "err", err)
				}
				ended <- struct{}{}
			}()
		}
	}
	// The held changes are written on a goroutine of their own, one
	// flush at a time, so a signer or a store that is slow to answer
	// never stops the deliveries already in the outbox.
	var (
		flushing bool
		flushed  = make(chan struct{}, 1)
	)
	flush := func() {
		if flushing {
			return
		}
		flushing = true
		go func() {
			n.flushHeld(ctx)
			flushed <- struct{}{}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			if flushing {
				<-flushed
			}
			// The changes still held live in this node's memory only:
			// write them now, within an attempt's time, or they are lost
			// with it.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.AttemptTimeout)
			n.flushHeld(fctx)
			cancel()
			if left := n.held(); left > 0 {
				n.log.Warn("webhook: node stopping; state changes not notified", "count", left)
			}
			return nil
		case <-n.wake:
			flush()
		case <-flushed:
			flushing = false
		case <-t.C:
			flush()
			fill()
		case <-ended:
			busy--
			if more {
				fill()
			}
		}
	}
}

// flushHeld writes the events waiting for the outbox to it in order,
// stopping at the first failure (the store is likely down; that event
// goes back first, and the rest waits, in order, for the next round).
// Only Run calls it.
func (n *Notifier) flushHeld(ctx context.Context) {
	for ctx.Err() == nil {
		ev, ok := n.next()
		if !ok {
			return
		}
		_, err := n.Notify(ctx, ev)
		if err != nil {
			n.hold(true, ev)
			n.log.Warn("webhook: state change not yet in the outbox", "component", ev.Component, "to", ev.To, "err", err)
			return
		}
	}
}

// DeliverDue claims the deliveries due now (at most Concurrency), POSTs
// them at once and records each attempt, all before it returns: one
// round, for tests and tools (Run keeps its slots busy instead). It
// returns how many it claimed.
func (n *Notifier) DeliverDue(ctx context.Context) (int, error) {
	ds, err := n.claim(ctx, n.cfg.Concurrency)
	if err != nil {
		return 0, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.attempt(ctx, d); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// claim leases up to limit due deliveries to this node for Lease, at
// most PerEndpoint in flight of any one endpoint.
func (n *Notifier) claim(ctx context.Context, limit int) ([]*store.WebhookDelivery, error) {
	now := n.now()
	ds, err := n.outbox.ClaimWebhooks(ctx, n.node, now, now.Add(n.cfg.Lease), limit, n.cfg.PerEndpoint)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return ds, nil
}

// Attempt outcomes, the "result" label of varde_webhook_deliveries_total;
// its "event" label is the delivery's event (store.WebhookDelivery.Event).
const (
	resultDelivered = "delivered"
	resultRetry     = "retry"
	resultAbandoned = "abandoned"
	// resultElsewhere is a pass that made no attempt: only another node
	// can renew the delivery (RenewElsewhere).
	resultElsewhere = "elsewhere"
)

// attempt POSTs d once and records the outcome.
func (n *Notifier) attempt(ctx context.Context, d *store.WebhookDelivery) error {
	permanent, elsewhere, failure, after := n.send(ctx, d)
	if failure != "" && ctx.Err() != nil {
		// Shutting down: the attempt was cut short by us, not the
		// receiver. Release the lease without counting it.
		if err := n.outbox.FinishWebhookAttempt(context.WithoutCancel(ctx), n.node, d); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		return nil
	}
	if failure != "" && elsewhere {
		return n.leaveElsewhere(ctx, d, failure)
	}
	now := n.now()
	d.Attempts++
	d.LastError = failure
	result := resultDelivered
	switch {
	case failure == "":
		d.DeliveredAt = now
	case permanent || d.Attempts >= n.cfg.MaxAttempts:
		d.AbandonedAt = now
		result = resultAbandoned
	default:
		delay := n.cfg.Backoff(d.Attempts)
		delay -= time.Duration(float64(delay) * n.cfg.Jitter * n.random())
		// A receiver that asked for time (Retry-After, at most MaxDelay)
		// gets it; the schedule is never shortened by it.
		delay = max(delay, after)
		d.NextAttemptAt = now.Add(delay)
		result = resultRetry
	}
	// The attempt's own deadline has passed by now; recording it must
	// not depend on it.
	if err := n.outbox.FinishWebhookAttempt(context.WithoutCancel(ctx), n.node, d); err != nil {
		// Nothing of this attempt is stored: the delivery stays as it
		// was and is attempted again when its lease ends, so no result
		// or next time is told here.
		if failure != "" {
			return fmt.Errorf("webhook: attempt %d of %s not recorded (it failed: %s): %w", d.Attempts, d.ID, failure, err)
		}
		return fmt.Errorf("webhook: attempt %d of %s not recorded (it was delivered): %w", d.Attempts, d.ID, err)
	}
	// Logged once recorded, so the result and the next time it names
	// are those the outbox holds.
	if result != resultDelivered {
		n.log.Warn("webhook not delivered", "client", d.ClientID, "event", d.Event, "id", d.ID, "attempt", d.Attempts,
			"result", result, "err", failure, "next", d.NextAttemptAt)
	}
	// Counted once recorded: an attempt the outbox does not hold (the
	// lease went to another node meanwhile, the store failed) is made
	// again, and only the attempt recorded is counted.
	n.count(d, result)
	return nil
}

// count adds one pass of d with result to varde_webhook_deliveries_total.
func (n *Notifier) count(d *store.WebhookDelivery, result string) {
	event := d.Event
	if _, ok := n.urls[event]; !ok {
		event = otherEvent
	}
	n.met.deliveries.WithLabelValues(event, result).Inc()
}

// leaveElsewhere releases d, which only another node can renew
// (RenewElsewhere), without counting an attempt. It is due again after
// a poll interval, not at once: released due, it would be the first a
// free slot of this node claims, again and again, a claim and a release
// written each time, while a node with the key waits for its poll. Where
// no node can renew it, nothing would end it; so once it has waited as
// long as its attempts would have taken at most (Config.giveUpAfter),
// it is abandoned, logged and counted as any abandonment.
func (n *Notifier) leaveElsewhere(ctx context.Context, d *store.WebhookDelivery, failure string) error {
	now := n.now()
	d.LastError = failure
	result := resultElsewhere
	if now.Sub(d.CreatedAt) >= n.cfg.giveUpAfter() {
		d.AbandonedAt = now
		result = resultAbandoned
	} else {
		d.NextAttemptAt = now.Add(n.cfg.PollInterval)
	}
	if err := n.outbox.FinishWebhookAttempt(context.WithoutCancel(ctx), n.node, d); err != nil {
		return fmt.Errorf("webhook: %s of %s not recorded (%s): %w", result, d.ID, failure, err)
	}
	if result == resultAbandoned {
		n.log.Warn("webhook not delivered: no node could renew it", "client", d.ClientID, "event", d.Event, "id", d.ID,
			"result", result, "err", failure)
	}
	n.count(d, result)
	return nil
}

// send makes one attempt of d, all of it within AttemptTimeout: it finds
// where d goes now (target) and sets d.URL to it, renews the payload
// (renewed) and POSTs it (post). It returns "" on success, or why the
// attempt failed and whether the failure is permanent or this node's
// alone (elsewhere: RenewElsewhere), and how long the receiver asked to
// be left alone (Retry-After), if it did. Bounding the
// whole attempt, not only the POST, keeps it within the lease (at least
// twice AttemptTimeout), so no other node takes the delivery over while
// this one may still send it.
func (n *Notifier) send(ctx context.Context, d *store.WebhookDelivery) (permanent, elsewhere bool, failure string, after time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
	defer cancel()
	url, permanent, failure := n.target(ctx, d)
	if failure != "" {
		return permanent, false, failure, 0
	}
	d.URL = url
	payload, permanent, elsewhere, failure := n.renewed(ctx, d)
	if failure != "" {
		return permanent, elsewhere, failure, 0
	}
	permanent, failure, after = n.post(ctx, d, payload)
	return permanent, false, failure, after
}

// target returns the URL d goes to now: the one its client registers
// for d.Event at this moment (SendTo). A client removed since, or one
// that registers no URL for the event any more, abandons d; so does a
// URL that breaks the rule (CheckURL). A client that cannot be looked
// up (the store is out of reach) fails only this attempt.
func (n *Notifier) target(ctx context.Context, d *store.WebhookDelivery) (url string, permanent bool, failure string) {
	urlOf, ok := n.urls[d.Event]
	if !ok {
		return "", true, fmt.Sprintf("no URL for event %q", clean(d.Event, 100))
	}
	c, err := n.clients.GetClient(ctx, d.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", true, store.DeliveryClientRemoved
	case err != nil:
		return "", false, n.failed(ctx, "client", err)
	}
	url = urlOf(c)
	if url == "" {
		return "", true, URLUnregistered
	}
	if err := CheckURL(url); err != nil {
		return "", true, "refused: " + err.Error()
	}
	return url, false, ""
}

// renewed returns the payload to send for d: as stored, or as renewed
// by what RenewWith registered for its event. The renewal runs on its
// own, and the attempt waits for it only until ctx ends: neither
// RenewFunc nor crypto.Signer takes a context, and a signer that hangs
// (a hardware module that stopped answering) must not hold the
// delivery's slot for longer than an attempt may take. A renewal left
// running keeps one of Concurrency tokens until it returns, so hung
// signers leave at most Concurrency goroutines behind; once they hold
// every token, attempts that need a renewal fail when their time is up,
// and are retried on the schedule.
func (n *Notifier) renewed(ctx context.Context, d *store.WebhookDelivery) (payload []byte, permanent, elsewhere bool, failure string) {
	r, ok := n.renew[d.Event]
	if !ok {
		return d.Payload, false, false, ""
	}
	select {
	case n.renewing <- struct{}{}:
	case <-ctx.Done():
		return nil, false, false, n.failed(ctx, "renew", ctx.Err())
	}
	type result struct {
		p   []byte
		err error
	}
	done := make(chan result, 1)
	stored, now := d.Payload, n.now()
	go func() {
		defer func() { <-n.renewing }()
		p, err := r.f(stored, now)
		done <- result{p, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			// A malformed payload will never be sent, so it is
			// abandoned; any other failure (the signer) may pass, and
			// is retried like a failed POST.
			malformed := r.malformed != nil && errors.Is(res.err, r.malformed)
			elsewhere := r.elsewhere != nil && errors.Is(res.err, r.elsewhere)
			return nil, malformed, elsewhere, "renew: " + clean(res.err.Error(), 200)
		}
		return res.p, false, false, ""
	case <-ctx.Done():
		return nil, false, false, n.failed(ctx, "renew", ctx.Err())
	}
}

// failed says why step failed with err, for LastError: "timeout after"
// the attempt's timeout when that is what ended it.
func (n *Notifier) failed(ctx context.Context, step string, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("%s: timeout after %v", step, n.cfg.AttemptTimeout)
	}
	return step + ": " + clean(err.Error(), 200)
}

// post sends payload to d.URL and returns "" on success, or why it
// failed, whether the failure is permanent and, for a 429 or a 503, the
// wait its Retry-After asks for, at most MaxDelay (RFC 9110 §10.2.3;
// RFC 6585 §4).
//
// RFC 8935 §2.2: the recipient acknowledges a valid SET with 202; any
// 2xx is taken as success, since some receivers answer 200 or 204. §2.3:
// 400 with {"err", "description"} means the recipient refuses this SET,
// so sending it again cannot help: the delivery is abandoned. A logout
// token (Back-Channel Logout 1.0 §2.8) is acknowledged with 200 and
// answered with 400, {"error", "error_description"}, when "the logout
// failed", which may pass: for an event registered with RetryRefused a
// 400 is retried like any other failure. Any other status (3xx
// included: redirects are never followed), a timeout or a connection
// failure is retried.
func (n *Notifier) post(ctx context.Context, d *store.WebhookDelivery, payload []byte) (permanent bool, failure string, after time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(payload))
	if err != nil {
		return true, "request: " + redactErr(err).Error(), 0
	}
	ct := d.ContentType
	if ct == "" {
		ct = ContentType
	}
	// RFC 8935 §2.1: the SET is the body, typed application/secevent+jwt;
	// a logout token goes as a form (Back-Channel Logout 1.0 §2.5): the
	// body and its type are sent as stored. Accept says an error comes
	// back as JSON.
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := n.http.Do(req)
	n.met.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		return false, n.failed(ctx, "post", redactErr(err)), 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, "", 0
	case code == http.StatusBadRequest:
		msg := "status 400"
		if e := ParseSETError(body).String(); e != "" {
			msg += " " + e
		}
		return !n.retryRefused[d.Event], msg, 0
	case code >= 300 && code < 400:
		return false, fmt.Sprintf("status %d (redirects are not followed)", code), 0
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		after := min(retryAfter(resp.Header.Get("Retry-After"), n.now()), n.cfg.MaxDelay)
		if after > 0 {
			return false, fmt.Sprintf("status %d (retry after %v)", code, after), after
		}
		return false, fmt.Sprintf("status %d", code), 0
	default:
		return false, fmt.Sprintf("status %d", code), 0
	}
}

// retryAfter is the wait a Retry-After value asks for at now (RFC 9110
// §10.2.3): delay-seconds, or an HTTP-date less now. It is 0 for a value
// that is neither, or a date already past; the caller caps it.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		// More digits than a duration holds is as good as forever.
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return t.Sub(now)
}

// redactErr returns err with the URL it names (Go's *url.Error) cut down
// by httpx.RedactURL: the error goes to the log and to the delivery's
// LastError, where a secret in the receiver's query must not land.
func redactErr(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: httpx.RedactURL(ue.URL), Err: ue.Err}
}
