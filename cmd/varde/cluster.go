package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The cluster's relying party, declared in every node's configuration.
const (
	clusterClient   = "bank"
	clusterKID      = "bank-1"
	clusterCallback = "https://bank.example/cb"
	clusterLogout   = "https://bank.example/logged-out"
)

// nodeCluster is `varde serve` nodes, child processes over one
// PostgreSQL database, each with its own signing key and the same
// subject salt, behind a balancer in this process whose address is the
// issuer (http://localhost:PORT, WebAuthn's RP ID localhost).
type nodeCluster struct {
	issuer string
	dir    string
	exe    string
	env    []string
	nodes  []*clusterNode
	bal    *balancer
	// rpKey is the relying party's key (clusterClient, private_key_jwt).
	rpKey *ecdsa.PrivateKey

	ln     net.Listener
	srv    *http.Server
	checks context.CancelFunc
	done   chan struct{}
}

// clusterNode is one node: its own address, configuration and key.
type clusterNode struct {
	resChild
	url string // http://127.0.0.1:PORT, the node itself
	cfg string
	kid string
}

// clusterSpec is what the nodes are given.
type clusterSpec struct {
	dsn      string
	names    []string // the nodes' names (node: in their configuration)
	salt     []byte   // the subject salt, the same for all
	env      []string // the nodes' whole environment
	logLevel string
	// upstreams are upstream eIDs for each node's configuration.
	upstreams []any
	// drain is each node's shutdown.drain: how long a stopping node
	// stays up, unready, so the balancer moves away first.
	drain time.Duration
}

// listenCluster opens the balancer's listener on a free loopback port,
// so that the issuer is known before anything is configured with it.
// The nodes' files go into dir.
func listenCluster(dir string) (*nodeCluster, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	return &nodeCluster{issuer: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port), dir: dir, exe: exe, ln: ln}, nil
}

// start writes each node's configuration and key, starts the nodes all
// at once, as a cluster's nodes may (one applies the schema, the others
// wait for it), and waits until each is ready. A node whose key is new
// to the database is ready after the JWKS cache lifetime (5 s).
func (c *nodeCluster) start(ctx context.Context, s clusterSpec) error {
	c.env = s.env
	salt := filepath.Join(c.dir, "subject-salt")
	if err := os.WriteFile(salt, s.salt, 0o600); err != nil {
		return err
	}
	var err error
	if c.rpKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &c.rpKey.PublicKey, KeyID: clusterKID, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return err
	}
	for _, name := range s.names {
		port, err := freePort()
		if err != nil {
			return err
		}
		keyFile := filepath.Join(c.dir, name+"-signing-key.pem")
		signer, err := loadOrCreateSigner(keyFile)
		if err != nil {
			return err
		}
		n := &clusterNode{resChild: resChild{name: "node " + name, log: filepath.Join(c.dir, name+".log")},
			url: fmt.Sprintf("http://127.0.0.1:%d", port), cfg: filepath.Join(c.dir, name+".yaml"), kid: signer.KID()}
		cfg := map[string]any{
			"version":  1,
			"issuer":   c.issuer,
			"listen":   fmt.Sprintf("127.0.0.1:%d", port),
			"node":     name,
			"store":    map[string]any{"driver": "postgres", "dsn": s.dsn, "flow_state": "store"},
			"keys":     map[string]any{"signing_key_file": keyFile, "subject_salt_file": salt},
			"passkey":  map[string]any{"synthetic_enrolment": true},
			"log":      map[string]any{"level": s.logLevel, "format": "text"},
			"shutdown": map[string]any{"drain": s.drain.String()},
			"clients": []any{map[string]any{
				"id": clusterClient, "name": "Bank", "auth_method": "private_key_jwt", "jwks": string(jwks),
				"redirect_uris": []string{clusterCallback}, "post_logout_redirect_uris": []string{clusterLogout},
				"require_par": true, "sector_id": "bank.example", "refresh_tokens": true,
			}},
		}
		if len(s.upstreams) > 0 {
			cfg["upstreams"] = s.upstreams
		}
		raw, err := json.MarshalIndent(cfg, "", "  ") // JSON is YAML
		if err != nil {
			return err
		}
		if err := os.WriteFile(n.cfg, raw, 0o600); err != nil {
			return err
		}
		if err := n.start(c.exe, c.env, "serve", "--config", n.cfg); err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		if err := n.waitReady(ctx, hc, n.url); err != nil {
			return err
		}
		addrs[i] = strings.TrimPrefix(n.url, "http://")
	}
	c.bal = newBalancer(addrs...)
	return nil
}

// serve puts the balancer (built by start, its hooks set) in front of
// the nodes, on the issuer's address, and starts its checks of their
// /readyz every interval.
func (c *nodeCluster) serve(interval time.Duration) {
	c.srv = &http.Server{Handler: c.bal, ReadHeaderTimeout: 5 * time.Second}
	var ctx context.Context
	ctx, c.checks = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	go func() { _ = c.srv.Serve(c.ln) }()
	go func() { c.bal.check(ctx, interval); close(c.done) }()
}

// restart starts node i again, with its configuration and key.
func (c *nodeCluster) restart(i int) error {
	n := c.nodes[i]
	return n.start(c.exe, c.env, "serve", "--config", n.cfg)
}

// stop ends the balancer, then the nodes.
func (c *nodeCluster) stop() {
	if c.srv != nil {
		_ = c.srv.Close()
		c.checks()
		<-c.done
	} else {
		c.ln.Close()
	}
	for _, n := range c.nodes {
		n.stop()
	}
}
