package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// Signer signs a claim set as a compact JWS with the given typ header
// and the signing key's kid (*keys.Signer does).
type Signer interface {
	SignTyped(claims any, typ string) (string, error)
}

// Clients are the registered relying parties (store.Clients is one):
// Notify lists them, and each delivery attempt looks its client up, to
// send to the URL registered at that moment.
type Clients interface {
	ListClients(ctx context.Context) ([]*store.Client, error)
	GetClient(ctx context.Context, id string) (*store.Client, error)
}

// Options are what New builds a Notifier from.
type Options struct {
	// Config is the delivery schedule; zero fields take their defaults.
	Config Config
	// Issuer is the node's OpenID issuer, the SETs' "iss".
	Issuer string
	// Node names this node: in the SETs ("node") and as the owner of
	// the deliveries it claims.
	Node string
	// Signer signs the SETs with the node's key, published in the
	// issuer's JWKS.
	Signer Signer
	// Clients are the relying parties; Outbox holds the deliveries.
	Clients Clients
	Outbox  store.Webhooks
	// Providers are the IDs of this node's providers: a client that
	// names neither status components nor providers hears about these
	// and "store". Nil: about every component.
	Providers []string
	// StatusURL returns the public status API URL of a component, sent
	// as "status_url"; nil leaves it out.
	StatusURL func(component string) string
	// HTTPClient makes the POSTs; nil, or one without a transport, means
	// httpx.OutboundTransport (an answer's header bounded). It is
	// copied, never changed: the copy follows no redirect and keeps no
	// cookies.
	HTTPClient *http.Client
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now); Rand feeds SET IDs and jitter
	// (nil: crypto/rand).
	Now  func() time.Time
	Rand io.Reader
	// Log receives delivery failures; nil discards them.
	Log *slog.Logger
}

// Event is one change of a component's state, as package health reports
// it (health states).
type Event struct {
	Component string
	From, To  string
	Reason    string
	// Since is when the evidence for To began; zero if not known.
	Since time.Time
}

// Notifier turns component state changes into signed SETs in the outbox
// (Notify, or OnTransition without blocking) and delivers them (Run).
// It is safe for concurrent use.
type Notifier struct {
	cfg       Config
	issuer    string
	node      string
	signer    Signer
	clients   Clients
	outbox    store.Webhooks
	providers []string
	statusURL func(string) string
	http      *http.Client
	now       func() time.Time
	log       *slog.Logger
	met       *metrics

	randMu sync.Mutex
	rand   io.Reader

	// urls holds, by delivery event, where a client's deliveries go
	// (SendTo); renew, what renews a payload before an attempt
	// (RenewWith). renewing holds a token for every renewal under way, so
	// that at most Concurrency of them are ever left running by attempts
	// that stopped waiting for them (renewed).
	urls     map[string]func(*store.Client) string
	renew    map[string]renewal
	renewing chan struct{}
	// signing bounds Notify's signatures, so a signer that stops
	// answering leaves at most one signature running that nobody waits
	// for (sign).
	signing *keys.Bounded
	// retryRefused holds the events whose 400 is retried (RetryRefused).
	retryRefused map[string]bool

	// pending holds, in order, the events from Submit that Run has not
	// yet written to the outbox (at most QueueSize); wake tells Run
	// there are some.
	pendMu  sync.Mutex
	pending []Event
	wake    chan struct{}
}

// New returns a Notifier. It does no I/O.
func New(o Options) (*Notifier, error) {
	cfg := o.Config.WithDefaults()
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(o.Issuer); o.Issuer == "" || err != nil || !u.IsAbs() {
		errs = append(errs, fmt.Errorf("webhook: issuer %q is not an absolute URL", o.Issuer))
	}
	if o.Node == "" {
		errs = append(errs, errors.New("webhook: node is required"))
	}
	if o.Signer == nil || o.Clients == nil || o.Outbox == nil {
		errs = append(errs, errors.New("webhook: signer, clients and outbox are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	hc := &http.Client{}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	}
	if hc.Transport == nil {
		hc.Transport = httpx.OutboundTransport()
	}
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	n := &Notifier{
		cfg: cfg, issuer: o.Issuer, node: o.Node, signer: o.Signer, clients: o.Clients, outbox: o.Outbox,
		providers: slices.Clone(o.Providers), statusURL: o.StatusURL, http: hc,
		now: o.Now, log: o.Log, met: met, rand: o.Rand,
		wake: make(chan struct{}, 1), renewing: make(chan struct{}, cfg.Concurrency),
		signing: keys.NewBounded(),
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.rand == nil {
		n.rand = rand.Reader
	}
	if n.log == nil {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n.SendTo(EventName, func(c *store.Client) string { return c.StatusWebhook })
	n.RenewWith(EventName, n.renewSET, ErrNotSET)
	return n, nil
}

// URLUnregistered is the LastError of a delivery abandoned because its
// client no longer registers a URL for its event.
const URLUnregistered = "URL no longer registered"

// SendTo makes every attempt to deliver a delivery of event go to the
// URL that url returns for its client as registered at that moment, not
// the one the delivery was queued with: a relying party that moved its
// endpoint, perhaps because its old host is someone else's now, is
// reached at the new one, and the old one gets nothing more. A delivery
// whose client url finds no URL for ("") is abandoned, with LastError
// URLUnregistered; one of an event nobody called SendTo for is
// abandoned too, since its URL cannot be checked. New calls it for the
// status SETs (EventName: Client.StatusWebhook); call it for any other
// event before Run.
func (n *Notifier) SendTo(event string, url func(*store.Client) string) {
	if n.urls == nil {
		n.urls = map[string]func(*store.Client) string{}
	}
	n.urls[event] = url
	n.met.zero(event)
}

// RenewFunc returns the payload to send, at now, for a queued delivery
// whose stored payload is payload: the same, or one renewed (a token
// with a short lifetime, signed again).
type RenewFunc func(payload []byte, now time.Time) ([]byte, error)

// renewal is what RenewWith registered for one event.
type renewal struct {
	f         RenewFunc
	malformed error
	// elsewhere, if set, is what a renewal's error wraps when this node
	// cannot make it but another may (RenewElsewhere).
	elsewhere error
}

// RenewWith makes every attempt to deliver a delivery of event send what
// f makes of its stored payload: the outbox keeps what was queued, and
// each attempt sends what is valid at its time. An error from f that
// wraps malformed means the stored payload can never be sent, and
// abandons the delivery; any other (a signer that failed, perhaps a
// hardware module out of reach for a moment) is a failed attempt,
// retried on the schedule like a failed POST, unless it is one only
// another node can make (RenewElsewhere). So is an f that takes
// longer than the attempt may (Config.AttemptTimeout): a signer that
// hangs fails the attempt when its time is up, and the attempt's slot
// goes on to the next delivery. New calls it for the status SETs
// (EventName: signed again with a fresh iat, ErrNotSET); call it for any
// other event before Run.
func (n *Notifier) RenewWith(event string, f RenewFunc, malformed error) {
	if n.renew == nil {
		n.renew = map[string]renewal{}
	}
	n.renew[event] = renewal{f: f, malformed: malformed}
}

// RenewElsewhere makes an error from the renewal of event (RenewWith,
// called first) that wraps elsewhere one that this node cannot make but
// another node may: a logout token for a client whose ID tokens are
// signed with a key this node does not have (ADR 32). Such an attempt
// is not made and not counted: the delivery's lease is released and it
// is due again a poll interval later, for the next node that claims it
// (leaveElsewhere). Counted, the attempts of a node without the key
// would use up those of a delivery no node could have failed, and
// abandon it.
func (n *Notifier) RenewElsewhere(event string, elsewhere error) {
	if n.renew == nil {
		n.renew = map[string]renewal{}
	}
	r := n.renew[event]
	r.elsewhere = elsewhere
	n.renew[event] = r
}

// RetryRefused makes a 400 to a delivery of event a failed attempt,
// retried on the schedule up to Config.MaxAttempts, not the end of it: a
// receiver whose 400 may mean a failure that passes (Back-Channel Logout
// 1.0 §2.8: the relying party answers 400 when "the logout failed",
// perhaps because it has not yet fetched the key that signed the token
// or its own store is down for a moment). A status SET's 400 stays final
// (RFC 8935 §2.3). Call it before Run.
func (n *Notifier) RetryRefused(event string) {
	if n.retryRefused == nil {
		n.retryRefused = map[string]bool{}
	}
	n.retryRefused[event] = true
}

// Config returns the configuration in effect, defaults filled in.
func (n *Notifier) Config() Config { return n.cfg }

// OnTransition hands a health transition to Run without blocking, for
// health.Monitor.Subscribe, whose callbacks must return quickly (Submit).
func (n *Notifier) OnTransition(t health.Transition) {
	n.Submit(Event{Component: t.Component, From: string(t.From), To: string(t.To), Reason: t.Reason, Since: t.Since})
}

// Submit queues ev for Run, which writes it to the outbox, without
// blocking. ev is always queued, since the latest state of a component
// matters most: if QueueSize events are waiting already, an older one
// makes room (makeRoom).
func (n *Notifier) Submit(ev Event) {
	n.hold(false, ev)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// hold adds ev to the events waiting for the outbox: last, or first if
// first is set (one that Run took but could not write). Beyond
// QueueSize, one makes room, and is counted.
func (n *Notifier) hold(first bool, ev Event) {
	n.pendMu.Lock()
	if first {
		n.pending = slices.Insert(n.pending, 0, ev)
	} else {
		n.pending = append(n.pending, ev)
	}
	var gone []Event
	for len(n.pending) > n.cfg.QueueSize {
		var g Event
		n.pending, g = makeRoom(n.pending)
		gone = append(gone, g)
	}
	n.pendMu.Unlock()
	for _, g := range gone {
		n.met.dropped.Inc()
		n.log.Warn("webhook queue full; state change not notified", "component", g.Component, "from", g.From, "to", g.To)
	}
}

// makeRoom removes one event from evs and returns it: the oldest that a
// later change of the same component follows, whose From that later one
// takes over, so it tells the relying parties of the change from what
// they last heard of to the latest state; if no component has two, the
// oldest.
func makeRoom(evs []Event) ([]Event, Event) {
	for i, ev := range evs {
		for j := i + 1; j < len(evs); j++ {
			if evs[j].Component == ev.Component {
				evs[j].From = ev.From
				return slices.Delete(evs, i, i+1), ev
			}
		}
	}
	ev := evs[0]
	return slices.Delete(evs, 0, 1), ev
}

// next takes the oldest event waiting for the outbox; false if none.
func (n *Notifier) next() (Event, bool) {
	n.pendMu.Lock()
	defer n.pendMu.Unlock()
	if len(n.pending) == 0 {
		return Event{}, false
	}
	ev := n.pending[0]
	n.pending = slices.Delete(n.pending, 0, 1)
	return ev, true
}

// held returns how many events are waiting for the outbox.
func (n *Notifier) held() int {
	n.pendMu.Lock()
	defer n.pendMu.Unlock()
	return len(n.pending)
}

// Newsworthy reports whether a change from one state to another is sent,
// and the public states. A change that leaves the public state as it was
// is not; neither is one from unknown to operational, which is what every
// component does when a node starts: that is not news to anyone.
func Newsworthy(from, to string) (pubFrom, pubTo string, ok bool) {
	pubFrom, pubTo = PublicState(from), PublicState(to)
	switch {
	case pubFrom == "" || pubTo == "" || pubFrom == pubTo:
		return pubFrom, pubTo, false
	case pubFrom == StateUnknown && pubTo == StateOperational:
		return pubFrom, pubTo, false
	}
	return pubFrom, pubTo, true
}

// Notify writes one signed SET per interested client with a status
// webhook to the outbox, all or none, due at once; each attempt to
// deliver it signs it again with a fresh iat (renewSET). It returns how many
// it wrote. It blocks on the store and the signer, never on the network
// to a receiver. It signs every SET first, each within AttemptTimeout
// (a signer that does not answer by then fails the change, which Run
// holds for its next round), and then writes them in one write within
// Lease of its own, so the time spent signing for many clients is never
// taken from the write.
func (n *Notifier) Notify(ctx context.Context, ev Event) (int, error) {
	from, to, ok := Newsworthy(ev.From, ev.To)
	if !ok {
		return 0, nil
	}
	lctx, cancel := context.WithTimeout(ctx, n.cfg.Lease)
	cs, err := n.clients.ListClients(lctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("webhook: list clients: %w", err)
	}
	now := n.now()
	payload := ComponentState{Component: ev.Component, State: to, PreviousState: from, Reason: ev.Reason, Node: n.node}
	if !ev.Since.IsZero() {
		payload.Since = ev.Since.Unix()
	}
	if n.statusURL != nil {
		payload.StatusURL = n.statusURL(ev.Component)
	}
	txn, err := n.randomID()
	if err != nil {
		return 0, err
	}
	var ds []*store.WebhookDelivery
	for _, c := range cs {
		if c.StatusWebhook == "" || !n.interested(c, ev.Component) {
			continue
		}
		if err := CheckURL(c.StatusWebhook); err != nil {
			n.log.Warn("webhook: client's status webhook refused", "client", c.ID, "err", err)
			continue
		}
		jti, err := n.randomID()
		if err != nil {
			return 0, err
		}
		set, err := n.sign(ctx, Claims{
			Issuer: n.issuer, IssuedAt: now.Unix(), ID: jti, Audience: c.ID, Txn: txn,
			Events: map[string]ComponentState{ComponentStateEvent: payload},
		})
		if err != nil {
			return 0, fmt.Errorf("webhook: sign for %s: %w", c.ID, err)
		}
		ds = append(ds, &store.WebhookDelivery{
			ID: jti, ClientID: c.ID, URL: c.StatusWebhook, Event: EventName,
			Payload: []byte(set), ContentType: ContentType, CreatedAt: now, NextAttemptAt: now,
		})
	}
	if len(ds) == 0 {
		return 0, nil
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.Lease)
	defer cancel()
	if err := n.outbox.EnqueueWebhooks(wctx, ds); err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	n.met.enqueued.Add(float64(len(ds)))
	return len(ds), nil
}

// sign signs claims as a status SET, within AttemptTimeout and ctx
// (keys.Bounded: a stuck signer holds at most one goroutine).
func (n *Notifier) sign(ctx context.Context, claims Claims) (string, error) {
	set, _, err := n.signing.Sign(ctx, n.cfg.AttemptTimeout, func() (string, error) {
		return n.signer.SignTyped(claims, Typ)
	})
	return set, err
}

// interested reports whether c wants to hear about component: the
// components it named, or else the store and the providers it accepts
// (all of this node's providers if it names none).
func (n *Notifier) interested(c *store.Client, component string) bool {
	switch {
	case len(c.StatusComponents) > 0:
		return slices.Contains(c.StatusComponents, component)
	case component == "store":
		return true
	case len(c.Providers) > 0:
		return slices.Contains(c.Providers, component)
	}
	return n.providers == nil || slices.Contains(n.providers, component)
}

// randomID returns 128 random bits, base64url without padding.
func (n *Notifier) randomID() (string, error) {
	var b [16]byte
	n.randMu.Lock()
	_, err := io.ReadFull(n.rand, b[:])
	n.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("webhook: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// random returns a number in [0, 1) from Rand.
func (n *Notifier) random() float64 {
	var b [8]byte
	n.randMu.Lock()
	_, err := io.ReadFull(n.rand, b[:])
	n.randMu.Unlock()
	if err != nil {
		return 0
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return float64(v>>11) / (1 << 53)
}

// CheckURL checks a status webhook URL: absolute, no fragment or user
// information, https, or http only to localhost or a loopback address.
// The node POSTs to it on its own initiative, so plain http elsewhere
// would expose the notifications on the network. (Package config applies
// the same rule when a client is registered; this check repeats it
// before anything is sent.)
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Hostname() == "":
		return fmt.Errorf("%q is not an absolute URL", httpx.RedactURL(raw))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a fragment", httpx.RedactURL(raw))
	case u.User != nil:
		return fmt.Errorf("%q has user information", httpx.RedactURL(raw))
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && httpx.LoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must use https (http only to localhost or a loopback address)", httpx.RedactURL(raw))
}
