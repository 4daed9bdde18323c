package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

const keysUsage = `usage: varde keys <list|retire> --config FILE [flags]

  list     list the signing keys in the cluster's key set (the JWKS), each
           node's ES256 key and RSA key (RS256) alike, and the retired
           ones not yet expired
  retire   take a key out of every node's JWKS for good (--kid KID;
           --reason TEXT says why in the audit log), after a compromise
           or when its node is gone; a node's newest key, or an older
           one while ID tokens it signed may still be valid, needs --force
`

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path, err := adminFlags("keys", keysUsage, args, stderr)
	if err != nil {
		return err
	}
	var kid, reason string
	var force bool
	switch args[0] {
	case "list":
	case "retire":
		fs.StringVar(&kid, "kid", "", "the key ID, as varde keys list shows it (required)")
		fs.StringVar(&reason, "reason", "", "why, for the audit log (e.g. \"key file copied to a lost laptop\")")
		fs.BoolVar(&force, "force", false, "retire a node's newest key, which the node is probably signing with: "+
			"that node stops signing, answers 503 at /readyz and will not start again until it has a new key; "+
			"or an older key while ID tokens it signed may still be valid, which then no longer verify")
	default:
		return unknownSubcommand("keys", keysUsage, args[0], stderr, "list", "retire")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if args[0] == "retire" && kid == "" {
		return usageErrorf("keys retire: --kid is required")
	}
	cfg, st, err := openNodeStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	if args[0] == "list" {
		return listKeys(ctx, st, now, stdout)
	}
	return retireKey(ctx, st, kid, reason, force, cfg.OIDC.IDTokenLifetime, now, stdout)
}

// nodeAlg is a node and one algorithm it signs with: a node has an ES256
// key, and may have an RSA key beside it (ADR 32), each rotated and
// retired on its own.
type nodeAlg struct{ node, alg string }

// keyAlg is the algorithm of a stored key, by its JWK's alg: "ES256"
// or "RS256" ("" for one the key set would not serve).
func keyAlg(k *store.PublicKey) string {
	var jwk struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(k.JWK, &jwk) != nil {
		return ""
	}
	return jwk.Alg
}

// newestOfNode maps each node and algorithm to the key it published
// last, of those not retired: the one it is signing with, if it runs.
func newestOfNode(ks []*store.PublicKey) map[nodeAlg]*store.PublicKey {
	newest := map[nodeAlg]*store.PublicKey{}
	for _, k := range ks {
		if !k.RetiredAt.IsZero() {
			continue
		}
		at := nodeAlg{k.Node, keyAlg(k)}
		if n, ok := newest[at]; !ok || k.CreatedAt.After(n.CreatedAt) {
			newest[at] = k
		}
	}
	return newest
}

func listKeys(ctx context.Context, st store.PublicKeys, now time.Time, w io.Writer) error {
	ks, err := st.ListPublicKeys(ctx, now)
	if err != nil {
		return err
	}
	newest := newestOfNode(ks)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tNODE\tFIRST PUBLISHED\tLAST PUBLISHED\tEXPIRES\tSTATE")
	for _, k := range ks {
		state := "in the JWKS, an older key of its node"
		switch {
		case !k.RetiredAt.IsZero():
			state = "retired " + k.RetiredAt.UTC().Format(time.RFC3339) + ", in no JWKS"
		case newest[nodeAlg{k.Node, keyAlg(k)}].KID == k.KID:
			state = "in the JWKS, its node's newest"
		}
		expires := "never"
		if !k.ExpiresAt.IsZero() {
			expires = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
		// The retire guard counts from the first publish: a key
		// stored before it was recorded shows its last one there.
		first := k.FirstPublishedAt
		if first.IsZero() {
			first = k.CreatedAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, cmp.Or(keyAlg(k), "-"), k.Node, first.UTC().Format(time.RFC3339),
			k.CreatedAt.UTC().Format(time.RFC3339), expires, state)
	}
	return tw.Flush()
}

// retireKey retires kid. Without force it refuses a node's newest key,
// and an older key of a node that first published its newest less than
// idTokenLifetime ago: the node may have signed ID tokens with the older
// key until it switched, and they would stop verifying before they
// expire.
func retireKey(ctx context.Context, st store.PublicKeys, kid, reason string, force bool, idTokenLifetime time.Duration, now time.Time, w io.Writer) error {
	ks, err := st.ListPublicKeys(ctx, now)
	if err != nil {
		return err
	}
	var key *store.PublicKey
	for _, k := range ks {
		if k.KID == kid {
			key = k
		}
	}
	if key == nil {
		return fmt.Errorf("no key %q in the key set (varde keys list shows them); an expired key is in no JWKS already", kid)
	}
	if !key.RetiredAt.IsZero() {
		return fmt.Errorf("key %s was retired already, at %s, and is in no JWKS: nothing changed", kid, key.RetiredAt.UTC().Format(time.RFC3339))
	}
	newestKey := newestOfNode(ks)[nodeAlg{key.Node, keyAlg(key)}]
	newest := newestKey != nil && newestKey.KID == kid
	if newest && !force {
		return fmt.Errorf("key %s is node %s's newest: the node is probably signing with it, and retiring it stops the node "+
			"signing and serving until it has a new key. Give node %s a new signing key and restart it first, then retire this one; "+
			"or, if the key is compromised or the node is gone for good, run again with --force", kid, key.Node, key.Node)
	}
	// The node switched to its newest key when it first published it;
	// its daily republish (CreatedAt) says nothing of the switch.
	var switchedAt time.Time
	if newestKey != nil {
		switchedAt = newestKey.FirstPublishedAt
		if switchedAt.IsZero() {
			switchedAt = newestKey.CreatedAt
		}
	}
	if switched := newestKey; !newest && switched != nil && key.RetiredAt.IsZero() && !force &&
		now.Before(switchedAt.Add(idTokenLifetime)) {
		return fmt.Errorf("node %s first published its newest key, %s, at %s, less than the ID token lifetime (%v) ago: "+
			"if it switched to that key then, ID tokens it signed with key %s before are valid until %s, and retiring %s "+
			"makes them fail at every relying party. Retire it after then; or, if the key is compromised, run again with --force",
			key.Node, switched.KID, switchedAt.UTC().Format(time.RFC3339), idTokenLifetime, kid,
			switchedAt.Add(idTokenLifetime).UTC().Format(time.RFC3339), kid)
	}
	details := map[string]string{"kid": kid, "node": key.Node, "via": "cli"}
	if reason != "" {
		details["reason"] = reason
	}
	ev := &store.AuditEvent{Type: "key_retired", Result: store.ResultSuccess, Details: details}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	retired, err := st.RetirePublicKey(ctx, kid, now, ev)
	if errors.Is(err, store.ErrConflict) {
		// Retired by another command since the list above.
		return fmt.Errorf("key %s was retired already, a moment ago, and is in no JWKS: nothing changed", kid)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "retired key %s of node %s at %s.\n", retired.KID, retired.Node, retired.RetiredAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Every node leaves it out of its JWKS within %v. Relying parties that cached the JWKS keep the key until they fetch it again: "+
		"the JWKS is served with max-age=%d, so one that honours HTTP caching stops trusting the key within %v of now; "+
		"one that keeps the set longer on its own schedule trusts it for as long as it does.\n",
		keys.DefaultCacheTTL, int(oidc.JWKSMaxAge.Seconds()), keys.DefaultCacheTTL+oidc.JWKSMaxAge)
	if newest {
		fmt.Fprintf(w, "Node %s stops signing with it and answers 503 at /readyz once it next reads the key set, and will not start with this key: give it a new signing key and restart it.\n",
			retired.Node)
	}
	return nil
}
