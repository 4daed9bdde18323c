package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// nodeKey is one key the node signs with, and its key set: the ES256
// key every node has, or the RSA key of a node that signs RS256 for the
// clients registered for it (ADR 32). Each lives as ADR 18 says: it is
// published, kept published, retired, and the node takes no traffic
// while either cannot sign.
type nodeKey struct {
	set *keys.Set
	// field is the setting the key comes from.
	field string
	// what names the key in logs and /readyz answers.
	what string
	// reason is the prefix of the readiness reasons it logs.
	reason string
}

// signingKeys are the node's keys: the ES256 one first.
func (a *App) signingKeys() []nodeKey {
	ks := []nodeKey{{set: a.keys, field: "keys.signing_key_file", what: "signing key", reason: "key"}}
	if a.rsaKeys != nil {
		ks = append(ks, nodeKey{set: a.rsaKeys, field: "keys.rsa_signing_key_file", what: "RSA signing key", reason: "RSA key"})
	}
	return ks
}

// publishKeys claims each of the node's keys in the store, refusing to
// start with one another node holds (ADR 18).
func (a *App) publishKeys(ctx context.Context, opt Options) error {
	cfg := a.Config
	a.keys = &keys.Set{Store: a.Store, Local: a.Signer, Node: cfg.Node, Now: opt.Now}
	if a.RSASigner != nil {
		a.rsaKeys = &keys.Set{Store: a.Store, Local: a.RSASigner, Node: cfg.Node, Now: opt.Now}
		// /readyz asks each set whether its key was retired (the ES256
		// one first): one read of the store answers both.
		a.keys.Also = []*keys.Set{a.rsaKeys}
	}
	for _, k := range a.signingKeys() {
		if err := k.set.Publish(ctx); err != nil {
			return keyOwner(err, k.field, cfg.Node)
		}
		if wait := k.set.UntilKnown(); wait > 0 && cfg.Store.Shared() {
			a.log.Info("this node's "+k.what+" is new to the cluster: /readyz answers 503 until every node's key set holds it",
				"kid", k.set.Local.KID(), "wait", wait)
		}
	}
	return nil
}

// keepPublished publishes k again when due (keys.Set.KeepPublished),
// saying when it is the node's alone again.
func (a *App) keepPublished(ctx context.Context, k nodeKey) {
	shared, _ := k.set.SharedWith()
	if err := k.set.KeepPublished(ctx); err != nil {
		a.log.Warn("publish "+k.what, "err", err)
	}
	if still, _ := k.set.SharedWith(); shared != "" && still == "" {
		a.log.Info(k.what+" is this node's alone again: the other node that published it left or its publication expired",
			"kid", k.set.Local.KID(), "other_node", shared)
	}
}

// keyUnready answers /readyz with 503, and reports true, while k cannot
// sign what relying parties accept (ADR 18).
func (a *App) keyUnready(ctx context.Context, w http.ResponseWriter, r *http.Request, k nodeKey) bool {
	cfg, log, set, kid := a.Config, a.log, k.set, k.set.Local.KID()
	// A node whose key an operator retired (varde keys retire) signs
	// ID tokens no relying party accepts: it takes no traffic until
	// it restarts with a new key.
	if at := set.Retired(ctx); !at.IsZero() {
		if why := k.reason + " retired"; a.unready.set(why) != why {
			log.Error("not ready: this node's "+k.what+" was retired; give it a new "+k.what+" and restart it",
				"kid", kid, "retired_at", at)
		}
		http.Error(w, k.what+" retired\n", http.StatusServiceUnavailable)
		return true
	}
	// A key set not read from the store for longer than
	// keys.Set.MaxStale serves no JWKS and verifies nothing (ADR 18),
	// though the store may answer a ping.
	if err := set.Stale(); err != nil {
		if why := "key set stale"; a.unready.set(why) != why {
			log.Error("not ready: the signing key set could not be read from the store for too long", "err", err)
		}
		http.Error(w, "signing key set not read from the store for too long\n", http.StatusServiceUnavailable)
		return true
	}
	// Another node published this node's key after it (this node's
	// publication lapsed, or an operator said it left, while it ran).
	if other, at := set.SharedWith(); other != "" {
		if why := k.reason + " shared"; a.unready.set(why) != why {
			log.Error("not ready: another node publishes this node's "+k.what+"; each node needs its own key file: "+
				"give one of them a new key and restart it", "kid", kid, "node", cfg.Node, "other_node", other,
				"other_published_at", at)
		}
		http.Error(w, fmt.Sprintf("%s %s of node %q also published by node %q\n", k.what, kid, cfg.Node, other),
			http.StatusServiceUnavailable)
		return true
	}
	if keyLapsed(w, k, log) {
		return true
	}
	a.noteSameName(k)
	// Nodes that share a store take traffic only once the others'
	// key sets list this node's key (keys.Set.UntilKnown); the
	// node's own health probe asks whether it works, not that.
	if wait := set.UntilKnown(); wait > 0 && cfg.Store.Shared() && r.Context().Value(selfProbe{}) == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		http.Error(w, k.what+" not yet in every node's key set\n", http.StatusServiceUnavailable)
		return true
	}
	return false
}

// noteSameName logs at error, once for each key, that another process
// publishes a key of its own under this node's name
// (keys.Set.SameNameElsewhere): two nodes given one node name. It does
// not make the node unready, since what either signs verifies; what
// goes wrong is the operator's view of them, so it says what to mend.
func (a *App) noteSameName(k nodeKey) {
	kid, at := k.set.SameNameElsewhere()
	if kid == "" {
		return
	}
	if _, seen := a.sameName.LoadOrStore(kid, true); seen {
		return
	}
	a.log.Error("another process runs as node "+strconv.Quote(a.Config.Node)+" with a "+k.what+" of its own: "+
		"give each node its own name (node) and restart the one renamed; until then varde keys list credits both keys to one node, "+
		"so that varde keys retire takes this one's key for an older key of it, and the status page and varde nodes count the two as one",
		"node", a.Config.Node, "kid", k.set.Local.KID(), "other_kid", kid, "other_published_at", at)
}

// keyLapsed answers /readyz with 503, and says so, once the node's key
// could not be published again for longer than the publish TTL
// (keys.Set.Lapsed): the other nodes' key sets no longer list it, so
// relying parties refuse what it signs, and it signs nothing more.
func keyLapsed(w http.ResponseWriter, k nodeKey, log *slog.Logger) bool {
	at := k.set.Lapsed()
	if at.IsZero() {
		return false
	}
	log.Error("not ready: this node's "+k.what+" could not be published again and dropped out of the key set; see the \"publish "+k.what+"\" warnings",
		"kid", k.set.Local.KID(), "lapsed_at", at)
	http.Error(w, k.what+" no longer published\n", http.StatusServiceUnavailable)
	return true
}

// needRSA refuses clients registered for RS256 ID tokens on a node
// without an RSA key, naming the first: the node could sign none of
// their ID tokens, and never signs them ES256 instead, which such a
// relying party refuses (ADR 32).
func needRSA(clients []*store.Client) error {
	for _, c := range clients {
		if c.IDTokenSigningAlg() == store.IDTokenRS256 {
			return fmt.Errorf("client %q wants its ID tokens signed RS256 (id_token_signed_response_alg), and this node has no RSA key "+
				"to sign them with: set keys.rsa_signing_key_file (env %s); create one with `%s`",
				c.ID, config.EnvRSASigningKeyFile, config.RSASigningKeyHowTo)
		}
	}
	return nil
}

// rs256Clients are the clients registered for RS256 ID tokens that a
// node without an RSA key has found while it runs: one switched to
// RS256 (varde clients remove, then add --id-token-alg RS256) after the
// start-up check (needRSA) passed. The node refuses their logins before
// the person authenticates (oidc: temporarily_unavailable) and answers
// /readyz 503, so that a load balancer sends them to a node that has
// one (ADR 32). It learns of them from each read of a client through
// the client cache, and from a listing of every client at each
// housekeeping round, which also forgets the ones removed.
type rs256Clients struct {
	log *slog.Logger

	mu  sync.Mutex
	ids map[string]bool
}

func newRS256Clients(log *slog.Logger) *rs256Clients {
	return &rs256Clients{log: log, ids: map[string]bool{}}
}

// saw records what the store holds of client id: c, or nil for none. A
// client found to want RS256, or to want it no longer, is logged once.
func (r *rs256Clients) saw(id string, c *store.Client) {
	wants := c != nil && c.IDTokenSigningAlg() == store.IDTokenRS256
	r.mu.Lock()
	had := r.ids[id]
	if wants {
		r.ids[id] = true
	} else {
		delete(r.ids, id)
	}
	r.mu.Unlock()
	switch {
	case wants && !had:
		r.log.Error("not ready: a client wants its ID tokens signed RS256, and this node has no RSA key: its logins are refused here; "+
			"give this node one (keys.rsa_signing_key_file, env "+config.EnvRSASigningKeyFile+") and restart it",
			"client", id)
	case had && !wants:
		r.log.Info("a client no longer wants RS256 ID tokens of this node, which has no RSA key", "client", id)
	}
}

// first is the first, by ID, of the clients found to want RS256; "" if
// none is (or r is nil: the node has an RSA key).
func (r *rs256Clients) first() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	first := ""
	for id := range r.ids {
		if first == "" || id < first {
			first = id
		}
	}
	return first
}

// scan reads every client, so that one no request has asked this node
// for yet is found too, and one removed is forgotten.
func (r *rs256Clients) scan(ctx context.Context, clients store.Clients) error {
	if r == nil {
		return nil
	}
	all, err := clients.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	listed := make(map[string]bool, len(all))
	for _, c := range all {
		listed[c.ID] = true
		r.saw(c.ID, c)
	}
	r.mu.Lock()
	var gone []string
	for id := range r.ids {
		if !listed[id] {
			gone = append(gone, id)
		}
	}
	r.mu.Unlock()
	for _, id := range gone {
		r.saw(id, nil)
	}
	return nil
}

// rs256Unready answers /readyz with 503, and reports true, while a
// client wants RS256 ID tokens of this node, which has no RSA key. The
// client is read again first (through the client cache), so that the
// node is ready again soon after it was switched back or removed.
func (a *App) rs256Unready(ctx context.Context, w http.ResponseWriter) bool {
	id := a.rs256.first()
	if id == "" {
		return false
	}
	_, _ = a.clients.GetClient(ctx, id) // tells a.rs256 what it finds
	if id = a.rs256.first(); id == "" {
		return false
	}
	// rs256Clients.saw logged it when it found it.
	a.unready.set("RS256 client")
	http.Error(w, fmt.Sprintf("client %q wants its ID tokens signed RS256, and this node has no RSA key: "+
		"give this node one (keys.rsa_signing_key_file) and restart it\n", id), http.StatusServiceUnavailable)
	return true
}

// ErrKeyRefused means the store would refuse a node one of the keys its
// configuration names: another node that has not left publishes it (one
// key file given to two nodes), or an operator retired it.
var ErrKeyRefused = errors.New("the store refuses this node's key")

// CheckStoreKeys reads the signing keys cfg names and compares each with
// what its store holds under the key's kid, as a node's first publish
// does (publishKeys), but reading the store only: it returns an error
// wrapping ErrKeyRefused, naming the setting, for each key a node
// started from cfg at now would be refused. A key the store does not
// hold, the node's own, or one whose node left since it last published
// it passes. Any other error means the keys were not checked.
func CheckStoreKeys(ctx context.Context, cfg *config.Config, now time.Time) error {
	local, err := configuredKeys(cfg)
	if err != nil {
		return err
	}
	st, err := OpenExistingStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	stored, err := st.ListPublicKeys(ctx, now)
	if err != nil {
		return err
	}
	left, err := st.ListNodeDepartures(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range local {
		i := slices.IndexFunc(stored, func(k *store.PublicKey) bool { return k.KID == c.signer.KID() })
		if i < 0 {
			continue
		}
		if err := keyRefusal(stored[i], left, c.field, cfg.Node); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrKeyRefused, err))
		}
	}
	return errors.Join(errs...)
}

// configuredKey is a signing key a configuration names, and its setting.
type configuredKey struct {
	field  string
	signer *keys.Signer
}

// configuredKeys reads the signing keys cfg names: the ES256 one first.
// A node on localhost without a key file makes up a key at each start
// (secrets), which no store holds.
func configuredKeys(cfg *config.Config) ([]configuredKey, error) {
	var out []configuredKey
	for _, k := range []struct {
		field, path string
		alg         jose.SignatureAlgorithm
	}{
		{"keys.signing_key_file", cfg.Keys.SigningKeyFile, keys.Algorithm},
		{"keys.rsa_signing_key_file", cfg.Keys.RSASigningKeyFile, keys.RS256},
	} {
		if k.path == "" {
			continue
		}
		s, err := loadSigningKey(k.field, k.path, k.alg)
		if err != nil {
			return nil, err
		}
		out = append(out, configuredKey{k.field, s})
	}
	return out, nil
}

// keyRefusal is why the store refuses node the stored key k, from the
// setting field, or nil if it does not: the rule of
// store.PublicKeys.ClaimPublicKey, given the nodes' departures.
func keyRefusal(k *store.PublicKey, left []*store.NodeDeparture, field, node string) error {
	if !k.RetiredAt.IsZero() {
		return fmt.Errorf("%s: its key (kid %s) was retired at %s (varde keys list), and no node signs with a retired key again: "+
			"give this node a new key", field, k.KID, k.RetiredAt.UTC().Format(time.RFC3339))
	}
	if k.Node == node || slices.ContainsFunc(left, func(d *store.NodeDeparture) bool {
		return d.Node == k.Node && !d.LeftAt.Before(k.CreatedAt)
	}) {
		return nil
	}
	return keyOwner(&store.KeyHeldError{Key: k}, field, node)
}
