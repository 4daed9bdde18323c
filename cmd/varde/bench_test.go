package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
)

// childEnvMarker makes the test binary act as `varde` when the bench
// starts it as the node (os.Executable is the test binary here).
const childEnvMarker = "GO_VARDE_TEST_RUN_MAIN"

// TestMain runs the tests through pgtest, which starts a PostgreSQL
// server for those that ask for a database (the cluster's) and stops it
// afterwards; a child process acting as `varde` runs the command only.
func TestMain(m *testing.M) {
	if os.Getenv(childEnvMarker) == "1" {
		os.Exit(exitStatus(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(pgtest.Main(m))
}

// TestBench runs the real bench briefly: a throwaway node in a child
// process, complete passkey logins at two concurrencies, and the report.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and runs logins for a few seconds")
	}
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	var out, errOut bytes.Buffer
	o, err := parseBenchFlags([]string{"--concurrency", "1,4", "--duration", "1s", "--warmup", "200ms",
		"--persons", "8", "--max-flows", "500", "--json", jsonFile}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.nodeEnv = []string{childEnvMarker + "=1"}
	start := time.Now()
	err = runBench(context.Background(), o, &out, &errOut)
	t.Logf("bench took %v\n%s%s", time.Since(start), out.String(), errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"machine:", "concurrency", "flows/s", "p99 ms", "POST /token"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Phases) != 2 || rep.Persons != 8 || rep.Machine.CPUs < 1 {
		t.Fatalf("report: %s", raw)
	}
	for _, p := range rep.Phases {
		if p.Flows < 1 || p.Errors != 0 || p.FlowsPerSec <= 0 || p.P50MS <= 0 || p.P50MS > p.P99MS || p.P99MS > p.MaxMS {
			t.Errorf("phase %+v", p)
		}
		// A whole login is five requests to the node: PAR, authorize,
		// passkey begin and finish (which answers with the code's
		// redirect), token.
		var perFlow float64
		for _, r := range p.Routes {
			perFlow += r.PerFlow
		}
		if perFlow < 4.5 || perFlow > 5.5 {
			t.Errorf("concurrency %d: %.1f node requests per login, want 5 (routes %+v)", p.Concurrency, perFlow, p.Routes)
		}
	}
}

// TestBenchDPoP: with --dpop the relying party's client is registered
// with dpop_bound_access_tokens and every login sends proofs; a login
// counts only if its tokens came back bound (token_type DPoP).
func TestBenchDPoP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and runs logins for a few seconds")
	}
	var out, errOut bytes.Buffer
	o, err := parseBenchFlags([]string{"--dpop", "--concurrency", "2", "--duration", "1s", "--warmup", "200ms",
		"--persons", "4", "--max-flows", "200"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.nodeEnv = []string{childEnvMarker + "=1"}
	err = runBench(context.Background(), o, &out, &errOut)
	t.Logf("%s%s", out.String(), errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "POST /token") {
		t.Errorf("output lacks the token endpoint's time")
	}
}

// TestBenchBrokered runs the brokered comparison briefly: the node and
// a simulated BankID as child processes, logins through Varde and
// straight at the sim, and what the broker adds; the relying party names
// the eID (provider_hint), or, with --brokered-choice page, the person
// picks it on Varde's login page.
func TestBenchBrokered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and an eID and runs logins for a few seconds")
	}
	for _, tc := range []struct {
		choice, concurrency string
		// routes are the node's requests in a brokered login: PAR,
		// authorize (straight on to the eID with the hint), the login
		// page and the choice on it (without), the upstream callback
		// (which answers with the code's redirect), token.
		routes float64
		want   []string
	}{
		{choiceHint, "1,3", 4, []string{"GET /authorize", "GET /upstream/bankid/callback"}},
		{choicePage, "1", 6, []string{"GET /login ", "GET /login/start", "GET /upstream/bankid/callback"}},
	} {
		t.Run(tc.choice, func(t *testing.T) {
			benchBrokered(t, tc.choice, tc.concurrency, tc.routes, tc.want)
		})
	}
}

func benchBrokered(t *testing.T, choice, concurrency string, routes float64, wantRoutes []string) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	var out, errOut bytes.Buffer
	o, err := parseBenchFlags([]string{"--flow", "brokered", "--brokered-choice", choice, "--concurrency", concurrency, "--duration", "700ms", "--warmup", "200ms",
		"--persons", "6", "--max-flows", "300", "--json", jsonFile}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.nodeEnv = []string{childEnvMarker + "=1"}
	start := time.Now()
	err = runBench(context.Background(), o, &out, &errOut)
	t.Logf("bench took %v\n%s%s", time.Since(start), out.String(), errOut.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"brokered logins", "direct logins", "what the broker adds", "sim CPU ms/flow"}, wantRoutes...) {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	levels := len(strings.Split(concurrency, ","))
	if len(rep.Phases) != 2*levels || len(rep.BrokerAdded) != levels {
		t.Fatalf("want %d phases and %d comparisons: %s", 2*levels, levels, raw)
	}
	for i, p := range rep.Phases {
		wantFlow := []string{flowBrokered, flowDirect}[i%2]
		if p.Flow != wantFlow || p.Flows < 1 || p.Errors != 0 || p.P50MS <= 0 || p.P50MS > p.P99MS {
			t.Errorf("phase %d: %+v", i, p)
		}
		var perFlow float64
		for _, r := range p.Routes {
			perFlow += r.PerFlow
		}
		if want := map[string]float64{flowBrokered: routes, flowDirect: 0}[p.Flow]; perFlow < want-0.5 || perFlow > want+0.5 {
			t.Errorf("%s at %d: %.1f node requests per login, want %v (routes %+v)", p.Flow, p.Concurrency, perFlow, want, p.Routes)
		}
	}
	for _, c := range rep.BrokerAdded {
		b := rep.Phases[slices.IndexFunc(rep.Phases, func(p *benchPhase) bool { return p.Flow == flowBrokered && p.Concurrency == c.Concurrency })]
		if c.AddedP50MS != c.BrokeredP50MS-c.DirectP50MS || c.BrokeredP50MS != b.P50MS || c.NodeCPUMS != b.NodeCPUMS {
			t.Errorf("comparison %+v does not match phase %+v", c, b)
		}
	}
}

// TestPhaseCountsFailures: logins that fail are counted by kind, never
// dropped; the phase still ends on time; and the command's verdict is a
// failure. The "node" here refuses every pushed authorization request.
func TestPhaseCountsFailures(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hc := loadgen.NewHTTPClient(2)
	rp := &loadgen.RP{Issuer: srv.URL, ClientID: "bench", RedirectURI: "https://bench.example/callback", Key: key, KeyID: "k", HTTP: hc}
	if err := rp.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	tgt := &benchTarget{issuer: srv.URL, rp: rp, http: hc}
	persons := []*loadgen.Person{loadgen.NewDevice(srv.URL, false), loadgen.NewDevice(srv.URL, false)}

	start := time.Now()
	p := runPhase(context.Background(), tgt, passkeyFlow(tgt, persons), 2, 300*time.Millisecond, 1000, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("phase of 300ms took %v", d)
	}
	if p.Flows != 0 || p.Errors == 0 || p.Errors > 1000 {
		t.Fatalf("flows %d, errors %d", p.Flows, p.Errors)
	}
	var kinds []string
	for k := range p.ErrorKinds {
		kinds = append(kinds, k)
	}
	if len(kinds) != 1 || !strings.Contains(kinds[0], "par: status 400") {
		t.Errorf("error kinds %v", kinds)
	}
	var out bytes.Buffer
	printPhases(&out, []*benchPhase{p})
	if !strings.Contains(out.String(), "errors at concurrency 2:") {
		t.Errorf("errors not reported:\n%s", out.String())
	}
	if err := verdict([]*benchPhase{p}); err == nil || !strings.Contains(err.Error(), "logins failed") {
		t.Errorf("verdict = %v, want failure", err)
	}
	if err := verdict([]*benchPhase{{Flows: 3}}); err != nil {
		t.Errorf("verdict without errors = %v", err)
	}
}

// TestParseBenchFlags: bad flags are refused before anything starts.
func TestParseBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--concurrency", "1,16,64"}, true},
		{[]string{"--concurrency", "0"}, false},
		{[]string{"--concurrency", "a"}, false},
		{[]string{"--duration", "0s"}, false},
		{[]string{"--max-flows", "0"}, false},
		{[]string{"--target", "http://localhost:8080"}, false},
		{[]string{"--target", "http://localhost:8080", "--client-id", "a", "--client-key", "k.pem", "--cpuprofile", "d"}, false},
		{[]string{"extra"}, false},
		{[]string{"--flow", "brokered"}, true},
		{[]string{"--flow", "both"}, true},
		{[]string{"--flow", "upstream"}, false},
		{[]string{"--flow", "brokered", "--target", "http://localhost:8080", "--client-id", "a", "--client-key", "k.pem"}, false},
	} {
		_, err := parseBenchFlags(tc.args, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
	o, err := parseBenchFlags([]string{"--concurrency", "4,32", "--persons", "8", "--duration", "3s"}, io.Discard)
	if err != nil || o.persons != 32 || o.profileTime != 3*time.Second {
		t.Errorf("persons %d (want raised to 32), profile time %v (want capped at 3s): %v", o.persons, o.profileTime, err)
	}
}

func TestParseTop(t *testing.T) {
	out := []byte(`File: varde
Type: cpu
Showing nodes accounting for 1s, 100% of 1s total
      flat  flat%   sum%        cum   cum%
     0.40s 40.00% 40.00%      0.40s 40.00%  internal/runtime/syscall/linux.Syscall6
     0.30s 30.00% 70.00%      0.30s 30.00%  p256MulInternal
     0.20s 20.00% 90.00%      0.50s 50.00%  modernc.org/sqlite/lib._sqlite3VdbeExec
     0.10s 10.00%   100%      0.10s 10.00%  github.com/varde-eid/varde/internal/oidc.(*Provider).token
`)
	s := parseTop("x.pprof", out)
	want := map[string]float64{"syscalls (network, file)": 40, "crypto": 30, "sqlite": 20, "varde": 10}
	if len(s.Categories) != len(want) {
		t.Errorf("categories %v, want %v", s.Categories, want)
	}
	for k, v := range want {
		if s.Categories[k] != v {
			t.Errorf("%s = %v, want %v", k, s.Categories[k], v)
		}
	}
	if len(s.Top) != 4 || s.Top[2].Func != "modernc.org/sqlite/lib._sqlite3VdbeExec" || s.Top[2].CumPct != 50 {
		t.Errorf("top %+v", s.Top)
	}
}
