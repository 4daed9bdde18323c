package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/loadgen"
)

// TestKilledNodeKeepsWhatItAcknowledged: a node on SQLite, under
// concurrent logins, refresh-token rotations and account changes
// (enrolments, passkeys added, recovery codes replaced), is killed
// (SIGKILL) at a random moment while writes are in flight, three
// times, and started again on the same file each time. After every
// kill `varde store verify` passes (integrity, audit chain), and every
// answer a client received as a success is found in the file: each
// refresh token handed out is stored under its grant, with the grant's
// session and one token event per token response, and each passkey and
// set of recovery codes with its event. After each restart the last
// refresh token of every chain works once and a spent one is refused
// as reused, every acknowledged passkey logs in, every person's last
// acknowledged recovery codes work, and a code received but not
// redeemed is refused with invalid_grant (codes live in the node's
// memory, ADR 7). docs/RESILIENCE.md, A node killed mid-write.
func TestKilledNodeKeepsWhatItAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a node process three times")
	}
	c := newCrashRun(t)
	c.db = rawSQLite(t, c.cfgPath)
	c.bind = func(q string) string { return q }
	c.flowInMemory = true
	for i := range 3 {
		p := startServeProcess(t, c.cfgPath)
		waitReady(t, c.issuer)
		c.checkAfterRestart(t)
		kill := time.Duration(800+randN(1200)) * time.Millisecond
		c.load(t, kill, func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
		<-p.done
		t.Logf("kill %d after %v: %d answers acknowledged, %d requests in flight", i+1, kill, c.acked.Load(), c.inFlight.Load())
		if out, err := runCmd(t, "store", "verify", "--config", c.cfgPath); err != nil {
			t.Fatalf("store verify after kill %d: %v\n%s\nnode log:\n%s", i+1, err, out, p.logs.String())
		}
		c.checkStored(t)
	}
	p := startServeProcess(t, c.cfgPath)
	waitReady(t, c.issuer)
	c.checkAfterRestart(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if out, err := runCmd(t, "store", "verify", "--config", c.cfgPath); err != nil {
		t.Fatalf("store verify at the end: %v\n%s", err, out)
	}
	c.summary(t, 3)
}

// summary logs what was run and checked, for docs/RESILIENCE.md.
func (c *crashRun) summary(t *testing.T, faults int) {
	t.Helper()
	if t.Failed() {
		return
	}
	t.Logf("%d faults; %d answers acknowledged (%d requests in flight at the faults); checked after them: %d refresh chains, "+
		"%d of them with a rotation in flight, %d unredeemed codes, %d passkey logins, %d recovery codes; lost 0",
		faults, c.acked.Load(), c.inFlight.Load(), len(c.chains), c.checked.retried, c.checked.codes, c.checked.passkeys, c.checked.recovery)
}

// crashRun is one node's configuration and what its clients were
// told: the ledger the store is checked against after each kill.
type crashRun struct {
	cfgPath, issuer string
	rp              *loadgen.RP
	// db reads the store past the node; bind rewrites a query's ?
	// placeholders for its dialect.
	db   *sql.DB
	bind func(string) string

	mu sync.Mutex
	// chains are the refresh-token chains handed out; passkeys, every
	// passkey whose enrolment or addition was acknowledged.
	chains   []*crashChain
	passkeys []*loadgen.Person
	people   []*crashPerson
	// codes are authorization codes the relying party received and has
	// not redeemed; flowInMemory is true where they are kept in the
	// node's memory (SQLite, ADR 7), so that a restart ends them.
	codes        []*crashCode
	flowInMemory bool
	// codeSets counts the sets of recovery codes people were shown.
	codeSets int
	// checked counts what was checked after the faults: codes
	// redeemed or refused, rotations in flight at a fault found to go
	// through, passkey logins, recovery codes.
	checked struct{ codes, retried, passkeys, recovery int }
	// acked counts the answers clients received as a success, inFlight
	// the requests that got none.
	acked, inFlight atomic.Int64
	// round counts the loads run.
	round int
	// killed is set just before the node is killed: an error after it
	// is the kill's, one before it a failure.
	killed atomic.Bool
	// stop ends the workers at their next step.
	stop atomic.Bool
}

// crashChain is one grant's refresh tokens as the client received them.
type crashChain struct {
	// tokens are every refresh token received, the last one live.
	tokens []string
	// pending is true when a refresh of the last token got no answer.
	pending bool
	// spent is true once the chain was found revoked on purpose.
	spent bool
	// busy is true while a worker rotates it.
	busy bool
	// round is the load the chain began in.
	round int
}

// crashPerson is a person with a session at Varde and their last
// acknowledged recovery codes.
type crashPerson struct {
	device *loadgen.Person
	codes  []string
	// codesUnknown is true when a replacement of the codes got no
	// answer: the person does not know which codes hold.
	codesUnknown bool
	jar          http.CookieJar
	added        int
}

func randN(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
}

// newCrashRun writes a node's configuration on SQLite with a relying
// party that gets refresh tokens and synthetic enrolment on.
func newCrashRun(t *testing.T) *crashRun {
	t.Helper()
	dir := t.TempDir()
	return newCrashRunWith(t, dir, map[string]any{"dsn": filepath.Join(dir, "varde.db")})
}

// newCrashRunWith is newCrashRun with the store section given.
func newCrashRunWith(t *testing.T, dir string, storeCfg map[string]any) *crashRun {
	t.Helper()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	signing, _ := keyFile(t, dir, "signing-key.pem")
	rpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid, clientID, redirect = "crash-1", "crash", "https://crash.example/callback"
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rpKey.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, issuer := freeAddr(t)
	cfg := map[string]any{
		"version": 1, "issuer": issuer, "listen": addr, "node": "n1",
		"store":    storeCfg,
		"keys":     map[string]any{"signing_key_file": signing, "subject_salt_file": salt},
		"passkey":  map[string]any{"synthetic_enrolment": true},
		"shutdown": map[string]any{"drain": "0s"},
		"clients": []any{map[string]any{
			"id": clientID, "name": "Crash RP", "auth_method": "private_key_jwt", "jwks": string(jwks),
			"redirect_uris": []string{redirect}, "require_par": true, "sector_id": "crash.example",
			"refresh_tokens": true,
		}},
	}
	raw, err := json.Marshal(cfg) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "varde.yaml")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return &crashRun{cfgPath: cfgPath, issuer: issuer,
		rp: &loadgen.RP{Issuer: issuer, ClientID: clientID, RedirectURI: redirect, Key: rpKey, KeyID: kid, HTTP: loadgen.NewHTTPClient(16)}}
}

// crashWorkers is the number of people using the node at once.
const crashWorkers = 6

// load runs crashWorkers people against the node, each with a person
// of their own, and calls kill after d; it returns once every worker
// has stopped on the kill's errors.
func (c *crashRun) load(t *testing.T, d time.Duration, kill func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	if err := c.rp.Setup(ctx); err != nil {
		t.Fatalf("relying party setup: %v", err)
	}
	c.killed.Store(false)
	c.stop.Store(false)
	c.round++
	for len(c.people) < crashWorkers {
		c.people = append(c.people, &crashPerson{})
	}
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() { c.work(ctx, t, w) })
	}
	time.Sleep(d)
	c.killed.Store(true)
	kill()
	// Where another node takes over, the workers go on until told to
	// stop; elsewhere the kill's errors stop them.
	time.Sleep(300 * time.Millisecond)
	c.stop.Store(true)
	wg.Wait()
}

// failed reports err as a failure unless the node has been killed,
// and says whether the worker should stop.
func (c *crashRun) failed(t *testing.T, what string, err error) bool {
	if err == nil {
		return false
	}
	c.inFlight.Add(1)
	if !c.killed.Load() {
		t.Errorf("%s before the kill: %v", what, err)
	}
	return true
}

// work is one worker: it takes its person (enrolling one the first
// time), logs in with the passkey, and then, until the node dies,
// rotates refresh tokens, logs in again (single sign-on), enrols new
// people, adds passkeys and replaces recovery codes.
func (c *crashRun) work(ctx context.Context, t *testing.T, w int) {
	p := c.people[w]
	if p.device == nil {
		d, codes, err := c.enrol(ctx)
		if c.failed(t, "enrol", err) {
			return
		}
		p.device, p.codes = d, codes
	}
	p.jar, _ = cookiejar.New(nil)
	if c.failed(t, "passkey login", c.login(ctx, p.device, p.jar)) {
		return
	}
	for !c.stop.Load() {
		var err error
		var what string
		switch n := randN(10); {
		case n < 3:
			what, err = "refresh", c.refresh(ctx)
		case n < 5:
			what, err = "login", c.login(ctx, p.device, p.jar)
		case n < 6:
			what, err = "a login up to its code", c.codeOnly(ctx, p)
		case n < 7:
			what = "enrol"
			_, _, err = c.enrol(ctx)
		case n < 8 && p.added < 10:
			what, err = "add a passkey", c.addPasskey(ctx, p)
		default:
			what, err = "new recovery codes", c.newCodes(ctx, p)
		}
		if c.failed(t, what, err) {
			return
		}
	}
}

// enrol makes a new person with a passkey and reads their recovery
// codes, as the browser that enrolled is shown them.
func (c *crashRun) enrol(ctx context.Context) (*loadgen.Person, []string, error) {
	d := loadgen.NewDevice(c.issuer, false)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: c.rp.HTTP.Transport, CheckRedirect: c.rp.HTTP.CheckRedirect}
	// loadgen.Enrol stops at the enrolment's answer; the codes are on
	// the page it sends the browser to, read here in the same browser.
	begin, _ := json.Marshal(map[string]string{"attempt": "", "given_name": "Kari", "family_name": "Nordmann", "birth_date": "", "kind": "fnr"})
	reply, err := postJSON(ctx, hc, c.issuer+"/passkey/enrol/begin", "", begin)
	if err != nil {
		return nil, nil, err
	}
	att, err := attest(d, reply)
	if err != nil {
		return nil, nil, err
	}
	done, err := postJSON(ctx, hc, c.issuer+"/passkey/enrol/finish?ceremony="+url.QueryEscape(reply.Ceremony), "", att)
	if err != nil {
		return nil, nil, err
	}
	d.Auth.AddCredential(d.Cred)
	c.ack(func() { c.passkeys = append(c.passkeys, d) })
	_, page, err := get(ctx, hc, c.issuer+done.Redirect)
	if err != nil {
		return d, nil, err
	}
	codes := codesIn(page)
	if len(codes) == 0 {
		return d, nil, fmt.Errorf("enrolled: no recovery codes on the page:\n%.500s", page)
	}
	c.ack(func() { c.codeSets++ })
	return d, codes, nil
}

// login logs device in (a passkey login, or single sign-on from the
// session in jar) with offline_access, keeping the refresh token.
func (c *crashRun) login(ctx context.Context, device *loadgen.Person, jar http.CookieJar) error {
	res, err := c.rp.Login(ctx, device, loadgen.LoginOptions{Jar: jar, Scope: "offline_access"})
	if err != nil {
		return err
	}
	if res.Token.RefreshToken == "" {
		return errors.New("login: no refresh token")
	}
	c.ack(func() {
		c.chains = append(c.chains, &crashChain{tokens: []string{res.Token.RefreshToken}, round: c.round})
	})
	return nil
}

// ack records what a client was told, and counts it.
func (c *crashRun) ack(record func()) {
	c.mu.Lock()
	record()
	c.mu.Unlock()
	c.acked.Add(1)
}

// takeChain takes a live chain no other worker is rotating, and its
// last token; nil if there is none. The chain is the caller's until it
// sets busy false.
func (c *crashRun) takeChain() (*crashChain, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*crashChain
	for _, ch := range c.chains {
		if !ch.spent && !ch.pending && !ch.busy {
			live = append(live, ch)
		}
	}
	if len(live) == 0 {
		return nil, ""
	}
	ch := live[randN(int64(len(live)))]
	ch.busy = true
	return ch, ch.tokens[len(ch.tokens)-1]
}

// refresh rotates the refresh token of a chain no other worker holds.
func (c *crashRun) refresh(ctx context.Context) error {
	ch, last := c.takeChain()
	if ch == nil {
		return nil
	}
	defer func() {
		c.mu.Lock()
		ch.busy = false
		c.mu.Unlock()
	}()
	tok, err := c.rp.Refresh(ctx, last)
	if err != nil {
		c.mu.Lock()
		ch.pending = true
		c.mu.Unlock()
		return err
	}
	if tok.RefreshToken == "" {
		return errors.New("refresh: no refresh token")
	}
	c.ack(func() { ch.tokens = append(ch.tokens, tok.RefreshToken) })
	return nil
}

// addPasskey adds a passkey on a new device to p's account, from the
// account page in p's session.
func (c *crashRun) addPasskey(ctx context.Context, p *crashPerson) error {
	hc := c.browser(p.jar)
	csrf, err := accountCSRF(ctx, hc, c.issuer)
	if err != nil {
		return err
	}
	reply, err := postJSON(ctx, hc, c.issuer+"/account/passkeys/begin", csrf, []byte(`{"name": ""}`))
	if err != nil {
		return err
	}
	d := loadgen.NewDevice(c.issuer, false)
	att, err := attest(d, reply)
	if err != nil {
		return err
	}
	if _, err := postJSON(ctx, hc, c.issuer+"/account/passkeys/finish?ceremony="+url.QueryEscape(reply.Ceremony), csrf, att); err != nil {
		return err
	}
	d.Auth.AddCredential(d.Cred)
	c.ack(func() { c.passkeys = append(c.passkeys, d); p.added++ })
	return nil
}

// newCodes replaces p's recovery codes from the account page and reads
// the new ones.
func (c *crashRun) newCodes(ctx context.Context, p *crashPerson) error {
	hc := c.browser(p.jar)
	res, page, err := get(ctx, hc, c.issuer+"/account")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("account page: status %d", res.StatusCode)
	}
	c.mu.Lock()
	p.codesUnknown = true
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.issuer+"/account/recovery-codes",
		strings.NewReader(url.Values{"csrf": {m[1]}, "confirm": {"yes"}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = hc.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/account/recovery-codes?") {
		return fmt.Errorf("new codes: status %d, to %q", res.StatusCode, loc)
	}
	_, page, err = get(ctx, hc, c.issuer+res.Header.Get("Location"))
	if err != nil {
		return err
	}
	codes := codesIn(page)
	if len(codes) == 0 {
		return fmt.Errorf("new codes: none on the page:\n%.500s", page)
	}
	c.ack(func() { p.codes, p.codesUnknown = codes, false; c.codeSets++ })
	return nil
}

// browser is a person's browser with jar, not following redirects.
func (c *crashRun) browser(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Transport: c.rp.HTTP.Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ceremonyReply is the JSON a passkey ceremony's step answers.
type ceremonyReply struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
	Redirect string          `json:"redirect"`
}

// postJSON posts body to u (with the CSRF header, if csrf is not "")
// and decodes a 200 answer.
func postJSON(ctx context.Context, hc *http.Client, u, csrf string, body []byte) (*ceremonyReply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d: %.300s", u, res.StatusCode, raw)
	}
	var r ceremonyReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return &r, nil
}

// get reads u in hc.
func get(ctx context.Context, hc *http.Client, u string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, string(body), err
}

// attest makes d's attestation for the registration options in reply.
func attest(d *loadgen.Person, reply *ceremonyReply) ([]byte, error) {
	var wrapped struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(reply.Options, &wrapped); err != nil {
		return nil, err
	}
	o, err := virtualwebauthn.ParseAttestationOptions(string(wrapped.PublicKey))
	if err != nil {
		return nil, err
	}
	d.Auth.Options.UserHandle = []byte(o.UserID)
	return []byte(virtualwebauthn.CreateAttestationResponse(d.WebAuthnRP, d.Auth, d.Cred, *o)), nil
}

// accountCSRF reads the account page's CSRF token for its JSON calls.
func accountCSRF(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	res, page, err := get(ctx, hc, issuer+"/account")
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("account page: status %d, no data-csrf", res.StatusCode)
	}
	return m[1], nil
}

var codesRE = regexp.MustCompile(`<code class="codes">([^<]+)</code>`)

// codesIn is the recovery codes a page shows.
func codesIn(page string) []string {
	var out []string
	for _, m := range codesRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkStored reads the store of the killed node: every refresh token
// a client received is there, under a grant whose session is there
// (for the logins of the last load), and the audit log holds a token
// event for every token response acknowledged under each grant, an
// enrolment or passkey_added event for every passkey acknowledged and
// a recovery_codes_regenerated event for every set of recovery codes
// shown.
func (c *crashRun) checkStored(t *testing.T) {
	t.Helper()
	codeEvents := 0
	c.eachEvent(t, "recovery_codes_regenerated", func(map[string]string) { codeEvents++ })
	tokenEvents := map[string]int{} // grant → token events
	c.eachEvent(t, "token", func(d map[string]string) { tokenEvents[d["grant"]]++ })
	passkeyEvents := map[string]bool{} // credential reference → its event
	for _, typ := range []string{"enrolment", "passkey_added"} {
		c.eachEvent(t, typ, func(d map[string]string) { passkeyEvents[d["credential"]] = true })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	answers := map[string]int{} // grant → token responses acknowledged
	for _, ch := range c.chains {
		for _, tok := range ch.tokens {
			sum := sha256.Sum256([]byte(tok))
			var grant string
			err := c.db.QueryRow(c.bind("SELECT g.id FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ? AND t.kind = 'refresh'"), sum[:]).Scan(&grant)
			if err != nil {
				t.Errorf("a refresh token the client received is not stored with its grant: %v", err)
				continue
			}
			answers[grant]++
		}
		// The session of a login in the last load is there: nothing in
		// it ended the session a person's logins share (new codes and
		// passkeys added end the person's other sessions only).
		if ch.round == c.round {
			sum := sha256.Sum256([]byte(ch.tokens[0]))
			var n int
			err := c.db.QueryRow(c.bind("SELECT count(*) FROM sessions s JOIN grants g ON s.id = g.session_id OR s.continues = g.session_id JOIN tokens t ON t.grant_id = g.id WHERE t.hash = ?"), sum[:]).Scan(&n)
			if err != nil || n == 0 {
				t.Errorf("a login acknowledged in the last load: its session is not stored (%d, %v)", n, err)
			}
		}
	}
	for grant, n := range answers {
		if tokenEvents[grant] < n {
			t.Errorf("grant %s: %d token responses acknowledged, %d token events in the audit log", grant, n, tokenEvents[grant])
		}
	}
	if codeEvents < c.codeSets {
		t.Errorf("%d sets of recovery codes shown, %d recovery_codes_regenerated events in the audit log", c.codeSets, codeEvents)
	}
	for i, d := range c.passkeys {
		h := sha256.Sum256(d.Cred.ID)
		if !passkeyEvents[base64.RawURLEncoding.EncodeToString(h[:12])] {
			t.Errorf("passkey %d, acknowledged, has no enrolment or passkey_added event", i)
		}
	}
}

// eachEvent calls f with the details of every successful audit event
// of type typ.
func (c *crashRun) eachEvent(t *testing.T, typ string, f func(map[string]string)) {
	t.Helper()
	rows, err := c.db.Query(c.bind("SELECT details FROM audit_log WHERE type = ? AND result = 'success'"), typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var d map[string]string
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("%s event details %q: %v", typ, raw, err)
		}
		f(d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkAfterRestart checks, on the node started again, what the
// clients were told before the kill: each chain's last refresh token
// works (one whose rotation got no answer too, as a retry, ADR 55) and
// a spent token is refused as reused; each acknowledged passkey logs in;
// each person's last acknowledged recovery codes work.
func (c *crashRun) checkAfterRestart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.rp.Setup(ctx); err != nil {
		t.Fatalf("relying party setup after the restart: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkCodes(ctx, t)
	for i, ch := range c.chains {
		if ch.spent {
			continue
		}
		c.checkChain(ctx, t, i, ch)
	}
	for i, d := range c.passkeys {
		if _, err := c.rp.Login(ctx, d, loadgen.LoginOptions{}); err != nil {
			t.Errorf("passkey %d, acknowledged before the kill, does not log in: %v", i, err)
		}
		c.checked.passkeys++
	}
	for i, p := range c.people {
		if p.device == nil || p.codesUnknown || len(p.codes) == 0 {
			continue
		}
		if err := c.recover(ctx, p.codes[0]); err != nil {
			t.Errorf("person %d: a recovery code acknowledged before the kill: %v", i, err)
		}
		c.checked.recovery++
		p.codes = p.codes[1:]
	}
}

// checkChain checks one chain after a restart: its last token rotates
// twice, and then the last-but-one presented again is refused as a
// reuse (which revokes the grant, so the chain is spent).
func (c *crashRun) checkChain(ctx context.Context, t *testing.T, i int, ch *crashChain) {
	t.Helper()
	last := ch.tokens[len(ch.tokens)-1]
	first, err := c.rp.Refresh(ctx, last)
	if err != nil {
		t.Errorf("chain %d (%d tokens, rotation in flight at the kill: %v): its last refresh token after the restart: %v", i, len(ch.tokens), ch.pending, err)
		ch.spent = true
		return
	}
	if ch.pending {
		c.checked.retried++
	}
	second, err := c.rp.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Errorf("chain %d: the refresh token issued after the restart: %v", i, err)
		ch.spent = true
		return
	}
	_, err = c.rp.Refresh(ctx, last)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("chain %d: a spent refresh token presented again: %v, want invalid_grant", i, err)
	}
	if _, err := c.rp.Refresh(ctx, second.RefreshToken); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("chain %d: the grant's last token after a reuse: %v, want invalid_grant", i, err)
	}
	ch.spent = true
}

// recover logs in to the account pages with a recovery code.
func (c *crashRun) recover(ctx context.Context, code string) error {
	jar, _ := cookiejar.New(nil)
	hc := c.browser(jar)
	_, page, err := get(ctx, hc, c.issuer+"/passkey/recover?attempt=")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return errors.New("the recovery page has no csrf field")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.issuer+"/passkey/recover",
		strings.NewReader(url.Values{"attempt": {""}, "csrf": {m[1]}, "code": {code}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/account" {
		return fmt.Errorf("recover: status %d, to %q", res.StatusCode, loc)
	}
	return nil
}
