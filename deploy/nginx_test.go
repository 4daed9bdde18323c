package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const proxyPath = "nginx/varde.conf"

// TestLoginThroughNginx: a relying party of its own (go-oidc and
// x/oauth2) logs a person in with a passkey through nginx run from the
// example, ending TLS with a certificate for localhost, in front of a
// node started from the example unit and configuration: discovery, a
// pushed request with client_secret_basic, the authorization and the
// passkey login, the token request and the ID token's checks, and
// userinfo. Every request goes to nginx, every answer carries HSTS once,
// every cookie is Secure. The browser connects from 127.0.0.2, nginx
// from 127.0.0.1, which the example configuration trusts: the node's
// access log and audit events name the browser's address, never
// nginx's, and a forged X-Forwarded-For, sent through nginx or straight
// to the node from 127.0.0.3, is not believed. The node stops on
// SIGTERM with status 0 within the unit's TimeoutStopSec; nginx then
// answers 502 itself, with HSTS. Once with the issuer at the root, once
// under a path.
func TestLoginThroughNginx(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"issuer at the root", ""},
		{"issuer under a path", "/eid"},
	} {
		t.Run(tc.name, func(t *testing.T) { loginThroughNginx(t, tc.path) })
	}
}

func loginThroughNginx(t *testing.T, issuerPath string) {
	nginx := lookPath(t, "nginx", "scripts/ensure-nginx.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pool := writeCert(t, dir)

	httpsPort, httpPort := freePort(t), freePort(t)
	origin := fmt.Sprintf("https://localhost:%d", httpsPort)
	issuer := origin + issuerPath
	nodeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	u := readUnit(t, unitPath)
	node, secret := startNode(t, u, dir, issuer, nodeAddr)
	startNginx(t, nginx, dir, nodeAddr, httpsPort, httpPort)

	rec := &recorder{base: &http.Transport{
		DialContext:     dialFrom(browserAddr),
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
	client := &http.Client{
		Transport:     rec,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	waitFor(t, ctx, client, issuer+"/readyz")

	// A person with a passkey, made at the node through the proxy.
	person := loadgen.NewDevice(origin, false)
	if err := loadgen.Enrol(ctx, client, issuer, person, "Kari", "Nordmann"); err != nil {
		t.Fatalf("enrol: %v", err)
	}

	// The relying party: discovery, a pushed request, the person's
	// login, the code for tokens, the ID token checked.
	octx := oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(octx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		PAR string `json:"pushed_authorization_request_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || !strings.HasPrefix(meta.PAR, issuer+"/") {
		t.Fatalf("discovery: pushed_authorization_request_endpoint %q (%v), want under %s", meta.PAR, err, issuer)
	}
	const clientID, redirectURI = "tax-portal", "https://skatt.example.no/login/callback"
	verifier, state, nonce := oauth2.GenerateVerifier(), randomString(t), randomString(t)
	challenge := sha256.Sum256([]byte(verifier))
	form := url.Values{
		"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {redirectURI},
		"scope": {"openid profile"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, meta.PAR, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var pushed struct {
		RequestURI string `json:"request_uri"`
	}
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &pushed) != nil || pushed.RequestURI == "" {
		t.Fatalf("PAR: status %d: %s", res.StatusCode, body)
	}
	authURL := provider.Endpoint().AuthURL + "?" + url.Values{"client_id": {clientID}, "request_uri": {pushed.RequestURI}}.Encode()
	rp := &loadgen.RP{Issuer: issuer, RedirectURI: redirectURI, HTTP: client}
	cb, err := rp.Authorize(ctx, person, authURL, loadgen.LoginOptions{})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	q := cb.Query()
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("callback %s: want the state, iss %s and a code", cb.Redacted(), issuer)
	}
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURI, Endpoint: provider.Endpoint()}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	tok, err := conf.Exchange(octx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(octx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != nonce || idt.Issuer != issuer || idt.Subject == "" {
		t.Fatalf("ID token: nonce %q, iss %q, sub %q; want nonce %q, iss %s and a sub", idt.Nonce, idt.Issuer, idt.Subject, nonce, issuer)
	}
	// The unit hands the node its RSA key too: it signs RS256 for the
	// relying parties registered for it (ADR 32).
	var algs struct {
		IDToken []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&algs); err != nil || strings.Join(algs.IDToken, " ") != "ES256 RS256" {
		t.Errorf("id_token_signing_alg_values_supported %q (%v), want ES256 RS256", algs.IDToken, err)
	}
	info, err := provider.UserInfo(octx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != idt.Subject {
		t.Fatalf("userinfo: %v, sub %v; want the ID token's %s", err, info, idt.Subject)
	}

	// Through the proxy only, with HSTS once, and Secure cookies.
	cookiePrefix := "__Host-"
	if issuerPath != "" {
		cookiePrefix = "__Secure-"
	}
	rec.check(t, "localhost:"+fmt.Sprint(httpsPort), cookiePrefix)

	// The browser's address in the node's log; forged ones not.
	checkAccessLog(t, ctx, node, client, issuer, "http://"+nodeAddr+issuerPath)

	// Plain HTTP is sent to HTTPS.
	plain := &http.Client{CheckRedirect: client.CheckRedirect, Timeout: 10 * time.Second}
	res, err = plain.Get(fmt.Sprintf("http://localhost:%d%s/.well-known/openid-configuration", httpPort, issuerPath))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusMovedPermanently || loc != "https://localhost"+issuerPath+"/.well-known/openid-configuration" {
		t.Errorf("plain HTTP: status %d, Location %q; want 301 to https", res.StatusCode, loc)
	}

	// SIGTERM stops the node gracefully, within the unit's time.
	stopWithin, err := time.ParseDuration(u.one(t, "Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	if err := node.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-node.done:
		if node.err != nil {
			t.Fatalf("node stopped with %v, want status 0:\n%s", node.err, node.output())
		}
	case <-time.After(stopWithin):
		t.Fatalf("node still running %s after SIGTERM", stopWithin)
	}
	res, err = client.Get(issuer + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || len(res.Header.Values("Strict-Transport-Security")) != 1 {
		t.Errorf("with the node stopped: status %d, HSTS %q; want nginx's 502 with HSTS", res.StatusCode, res.Header.Values("Strict-Transport-Security"))
	}
	checkAuditAddrs(t, ctx, filepath.Join(dir, "state", "varde.db"))
}

// The addresses the test's clients connect from, all on the loopback
// interface: the browser (to nginx) and a client that goes straight to
// the node. nginx reaches the node from 127.0.0.1.
const browserAddr, directAddr, forgedAddr = "127.0.0.2", "127.0.0.3", "203.0.113.66"

// dialFrom dials from the address local.
func dialFrom(local string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return d.DialContext
}

// checkAccessLog fails t unless the node's access log names the
// browser's address for every request nginx passed on, nginx's own
// never, and the sender's for a request with a forged X-Forwarded-For:
// the browser's through nginx, directAddr's straight to the node at
// direct (its base URL).
func checkAccessLog(t *testing.T, ctx context.Context, node *process, client *http.Client, issuer, direct string) {
	t.Helper()
	viaProxy := forgedRequest(t, ctx, client, issuer+"/healthz")
	straight := forgedRequest(t, ctx, &http.Client{Transport: &http.Transport{DialContext: dialFrom(directAddr)}, Timeout: 10 * time.Second},
		direct+"/healthz")
	addrs := map[string]string{} // request ID → address logged
	seen := map[string]int{}     // address → lines
	for line := range strings.SplitSeq(node.output(), "\n") {
		var l struct{ Msg, Addr, Req string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "http" {
			continue
		}
		addrs[l.Req] = l.Addr
		seen[l.Addr]++
	}
	if got := addrs[viaProxy]; got != browserAddr {
		t.Errorf("a forged X-Forwarded-For through nginx: the node logged %q, want the browser's %s", got, browserAddr)
	}
	if got := addrs[straight]; got != directAddr {
		t.Errorf("a forged X-Forwarded-For straight to the node: the node logged %q, want the sender's %s", got, directAddr)
	}
	if seen[browserAddr] < 10 || seen["127.0.0.1"] > 0 || seen[forgedAddr] > 0 {
		t.Errorf("access log lines by address %v: want the login's from %s, none from nginx's 127.0.0.1 or the forged %s",
			seen, browserAddr, forgedAddr)
	}
}

// forgedRequest gets u with a forged X-Forwarded-For and returns the
// answer's request ID.
func forgedRequest(t *testing.T, ctx context.Context, c *http.Client, u string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("X-Forwarded-For", forgedAddr)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("%s: status %d, request ID %q", u, res.StatusCode, id)
	}
	return id
}

// checkAuditAddrs fails t unless the stopped node's audit log holds the
// browser's address in its login event, and no other address in any.
func checkAuditAddrs(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	db, err := sqlstore.OpenSQLiteReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	logins := 0
	for _, e := range evs {
		addr, ok := e.Details[store.DetailAddr]
		if ok && addr != browserAddr {
			t.Errorf("audit event %d (%s): addr %q, want the browser's %s", e.Seq, e.Type, addr, browserAddr)
		}
		if e.Type == "authentication" && e.Result == store.ResultSuccess && addr == browserAddr {
			logins++
		}
	}
	if logins == 0 {
		t.Errorf("no successful authentication event with the browser's address among %d events", len(evs))
	}
}

// process is a program the test started, and how it ended.
type process struct {
	cmd  *exec.Cmd
	log  string // what it wrote to stdout and stderr
	done chan struct{}
	err  error
}

// output is what p wrote so far.
func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// start starts cmd, its output going to a file of its own, and stops
// it when the test ends, showing its output if the test failed.
func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), filepath.Base(cmd.Path)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p := &process{cmd: cmd, log: out.Name(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// SIGTERM stops nginx (its workers too) and a node at once.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(cmd.Path), p.output())
		}
	})
	return p
}

// startNode starts a node as the unit does: ExecStart's arguments, the
// example configuration with the test's issuer, addresses and
// directories (for /etc/varde, /var/lib/varde), its key and salt handed
// over as credentials are (mode 0400 in a directory of their own, %d)
// and named by the unit's Environment=. It returns the node and the
// client's secret.
func startNode(t *testing.T, u unit, dir, issuer, addr string) (*process, string) {
	t.Helper()
	etc, state, creds := filepath.Join(dir, "etc"), filepath.Join(dir, "state"), filepath.Join(dir, "credentials")
	for _, d := range []string{etc, filepath.Join(etc, "clients"), state, creds} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	secret := base64.StdEncoding.EncodeToString(salt[:24]) + randomString(t)
	writeSecret(t, filepath.Join(etc, "signing-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writeSecret(t, filepath.Join(etc, "rsa-signing-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), 0o600)
	writeSecret(t, filepath.Join(etc, "subject-salt"), salt, 0o600)
	writeSecret(t, filepath.Join(etc, "clients", "tax-portal.secret"), []byte(secret+"\n"), 0o640)
	// LoadCredential=ID:SOURCE, as systemd does it: a copy of SOURCE,
	// mode 0400, in the credentials directory.
	for _, lc := range u["Service"]["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		b, err := os.ReadFile(strings.Replace(src, "/etc/varde", etc, 1))
		if err != nil {
			t.Fatalf("LoadCredential=%s: %v", lc, err)
		}
		writeSecret(t, filepath.Join(creds, id), b, 0o400)
	}

	cfg := render(t, nodeConfig, readFile(t, nodeConfig),
		"https://login.example.no", issuer,
		"127.0.0.1:8080", addr,
		"127.0.0.1:9090", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"/var/lib/varde", state,
		"/etc/varde", etc,
		// The access log, which the test reads.
		"level: info", "level: debug")
	// A synthetic person to log in; a node allows it on localhost.
	cfg += "\npasskey:\n  synthetic_enrolment: true\n"
	cfgPath := filepath.Join(etc, "varde.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	_, args := u.execStart(t)
	args = strings.Fields(strings.Replace(strings.Join(args, " "), flagValue(t, args, "config"), cfgPath, 1))
	cmd := exec.Command(vardeBin, args...)
	cmd.Dir = state
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + state}, u.env(t, creds)...)
	return start(t, cmd), secret
}

// startNginx runs nginx as the test's user from the example: its own
// prefix, pid, logs and temporary files in dir, in the foreground; the
// test's ports on 127.0.0.1 instead of 80 and 443 on every address, the
// test's certificate, and the node's address.
func startNginx(t *testing.T, nginx, dir, nodeAddr string, httpsPort, httpPort int) {
	t.Helper()
	site := render(t, proxyPath, readFile(t, proxyPath),
		"server 127.0.0.1:8080 ", "server "+nodeAddr+" ",
		"    listen [::]:80;\n", "",
		"    listen [::]:443 ssl http2;\n", "",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort),
		"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort),
		"server_name login.example.no;", "server_name localhost;",
		"/etc/ssl/varde/fullchain.pem", filepath.Join(dir, "cert.pem"),
		"/etc/ssl/varde/privkey.pem", filepath.Join(dir, "key.pem"))
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "varde.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		// nginx started by root hands its workers to nobody, who may
		// not reach the test's directory.
		user = "user root;\n"
	}
	main := user + `daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log info;
events { worker_connections 256; }
http {
    access_log access.log;
    client_body_temp_path client_body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    include varde.conf;
}
`
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", prefix + "/", "-c", conf, "-e", filepath.Join(prefix, "error.log")}
	out, err := exec.Command(nginx, append(args, "-t", "-q")...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	p := start(t, exec.Command(nginx, args...))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("nginx ended: %v\n%s", p.err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits until u answers 200: the node is up behind nginx and
// ready.
func waitFor(t *testing.T, ctx context.Context, c *http.Client, u string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v %v", u, err, res)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeCert writes a certificate authority and a certificate for
// localhost that it signed, with its key, to dir (cert.pem, key.pem),
// and returns a pool with the authority.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Varde deploy test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	writeSecret(t, filepath.Join(dir, "cert.pem"), chain, 0o644)
	writeSecret(t, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func writeSecret(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// recorder is a transport that keeps, of every answer, where the
// request went and the answer's headers.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	url    *url.URL
	header http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.base.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, seen{url: req.URL, header: res.Header.Clone()})
		r.mu.Unlock()
	}
	return res, err
}

// check fails t unless every request went to host over https, every
// answer carried HSTS once, and every cookie set was Secure, HttpOnly
// and named with prefix (at least one was set).
func (r *recorder) check(t *testing.T, host, prefix string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cookies := 0
	for _, s := range r.seen {
		if s.url.Scheme != "https" || s.url.Host != host {
			t.Errorf("a request to %s, not through the proxy at https://%s", s.url.Redacted(), host)
		}
		if h := s.header.Values("Strict-Transport-Security"); len(h) != 1 || h[0] != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security %q, want max-age=31536000 once", s.url.Path, h)
		}
		for _, c := range (&http.Response{Header: s.header}).Cookies() {
			cookies++
			if !c.Secure || !c.HttpOnly || !strings.HasPrefix(c.Name, prefix) {
				t.Errorf("%s: cookie %s (Secure %v, HttpOnly %v), want Secure, HttpOnly and named %s…", s.url.Path, c.Name, c.Secure, c.HttpOnly, prefix)
			}
		}
	}
	if cookies == 0 {
		t.Error("no cookie was set")
	}
}
