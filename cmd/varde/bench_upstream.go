package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
)

// The bench's flows (--flow).
const (
	flowPasskey  = "passkey"  // Varde's own passkey login
	flowBrokered = "brokered" // Varde brokering the simulated BankID
	flowDirect   = "direct"   // the same relying party library straight at the simulated BankID
)

const (
	benchUpstreamID   = "bankid"
	benchUpstreamName = "Demo BankID"
	// The direct relying party at the sim: the sim's one client
	// registration (client_id "varde") with a second redirect URI and a
	// second key in the client's JWK set.
	benchDirectRedirect = "https://bench.example/direct"
	benchDirectKeyID    = "bench-direct-1"
)

// benchFlow is one kind of login a phase runs: identity i (0 ≤ i < n) is
// logged in by login; a virtual user uses its own identities only.
type benchFlow struct {
	name  string
	n     int
	login func(ctx context.Context, i int) error
}

// benchSim is the simulated eID, `varde provider-sim` in a child process.
type benchSim struct {
	resChild
	dir, readyFile string
	ready          providersim.Ready
	// directKey signs the direct relying party's client assertions.
	directKey *ecdsa.PrivateKey
}

// startBenchSim starts the simulated BankID (level high) as a child
// process with Varde (redirect to Varde's callback, Varde's upstream
// client key) and the bench's direct relying party registered as
// private_key_jwt client "varde", and waits for its ready file. It
// returns the upstream entry for the node's configuration.
func startBenchSim(ctx context.Context, o *benchOptions, env []string, dir, issuer string) (*benchSim, map[string]any, error) {
	s := &benchSim{resChild: resChild{name: benchUpstreamName, log: filepath.Join(dir, "sim.log")},
		dir: filepath.Join(dir, "sim-"+benchUpstreamID), readyFile: filepath.Join(dir, benchUpstreamID+".ready.json")}
	keyFile := filepath.Join(dir, "upstream-client-key.pem")
	vardeKey, err := loadOrCreateSigner(keyFile)
	if err != nil {
		return nil, nil, err
	}
	s.directKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		vardeKey.PublicJWK(),
		{Key: &s.directKey.PublicKey, KeyID: benchDirectKeyID, Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		return nil, nil, err
	}
	jwksFile := filepath.Join(dir, "upstream-client-jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find own executable: %w", err)
	}
	err = s.start(exe, env, "provider-sim", "--name", benchUpstreamName, "--id", benchUpstreamID, "--level", "high",
		"--addr", "localhost:0", "--admin-addr", "localhost:0", "--data", s.dir,
		"--client-id", "varde", "--client-jwks-file", jwksFile,
		"--redirect-uri", issuer+oidcup.CallbackPath(benchUpstreamID), "--redirect-uri", benchDirectRedirect,
		"--ready-file", s.readyFile, "--log-level", o.logLevel)
	if err != nil {
		return nil, nil, err
	}
	err = s.waitFor(ctx, 20*time.Millisecond, "ready", func() bool {
		r, err := providersim.ReadReadyFile(s.readyFile)
		if err != nil {
			return false
		}
		s.ready = r
		return true
	})
	if err != nil {
		return s, nil, err
	}
	acrs := map[string]string{assurance.ACRLow: "low", assurance.ACRSubstantial: "substantial", assurance.ACRHigh: "high"}
	up := map[string]any{
		"id": benchUpstreamID, "name": map[string]string{"en": benchUpstreamName, "nb": benchUpstreamName},
		"issuer": s.ready.Issuer, "client_id": "varde", "auth_method": "private_key_jwt", "client_key_file": keyFile,
		// As the direct relying party does: PAR, and a fresh login.
		"use_par": true, "prompt_login": true,
		"max_level": "high", "acr_map": acrs,
		"identifier_claim": "national_id", "identifier_schemes": []string{"no:fnr", "no:dnr"},
	}
	return s, up, nil
}

func (s *benchSim) pid() int {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// syntheticNumbers returns n distinct synthetic Norwegian birth numbers
// (identity.SyntheticNO), which the sim accepts as typed numbers.
func syntheticNumbers(n int) ([]string, error) {
	seen := map[string]bool{}
	out := make([]string, 0, n)
	rnd := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	for len(out) < n {
		born := time.Date(1940+rnd.IntN(60), time.Month(1+rnd.IntN(12)), 1+rnd.IntN(28), 0, 0, 0, 0, time.UTC)
		v, err := identity.SyntheticNO(rand.Reader, identity.KindFnr, born)
		if err != nil {
			return nil, err
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// How a brokered login reaches the eID (--brokered-choice).
const (
	// choiceHint: the relying party names the eID (provider_hint), as a
	// "Log in with BankID" button does, and Varde's authorization
	// endpoint sends the browser straight there, as the direct login's
	// relying party does.
	choiceHint = "hint"
	// choicePage: the person opens Varde's login page and picks the eID.
	choicePage = "page"
)

// brokeredFlows prepares the brokered and the direct flow: n synthetic
// persons, each logged in once through Varde first, so the measured
// phases find them known at Varde and at the sim (as the passkey flow
// finds its persons enrolled).
func brokeredFlows(ctx context.Context, t *benchTarget, n int, choice string) ([]*benchFlow, error) {
	numbers, err := syntheticNumbers(n)
	if err != nil {
		return nil, err
	}
	var opts loadgen.LoginOptions
	if choice == choiceHint {
		opts.ProviderHint = benchUpstreamID
	}
	brokered := &benchFlow{name: flowBrokered, n: n, login: func(ctx context.Context, i int) error {
		res, err := t.rp.LoginWith(ctx, loadgen.Brokered{Provider: benchUpstreamID, Number: numbers[i]}, opts)
		if err != nil {
			return err
		}
		if res.Claims["provider"] != benchUpstreamID || res.Claims["acr"] != assurance.ACRHigh {
			return fmt.Errorf("id token: provider %v, acr %v; want %s, %s", res.Claims["provider"], res.Claims["acr"], benchUpstreamID, assurance.ACRHigh)
		}
		return nil
	}}
	direct := &benchFlow{name: flowDirect, n: n, login: func(ctx context.Context, i int) error {
		res, err := t.direct.LoginWith(ctx, loadgen.SimLogin{Number: numbers[i]}, loadgen.LoginOptions{Prompt: "login"})
		if err != nil {
			return err
		}
		if res.Claims["acr"] != assurance.ACRHigh {
			return fmt.Errorf("id token: acr %v, want %s", res.Claims["acr"], assurance.ACRHigh)
		}
		return nil
	}}
	var next atomic.Int64
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := brokered.login(ctx, i); err != nil {
					errs[w] = fmt.Errorf("first brokered login of person %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return []*benchFlow{brokered, direct}, ctx.Err()
}

// brokerAdded compares brokered logins with direct logins at the
// upstream at one concurrency: what the broker adds to a login.
type brokerAdded struct {
	Concurrency int `json:"concurrency"`
	// Latency of whole logins, ms: brokered, direct, and the difference.
	BrokeredP50MS float64 `json:"brokered_p50_ms"`
	DirectP50MS   float64 `json:"direct_p50_ms"`
	AddedP50MS    float64 `json:"added_p50_ms"`
	BrokeredP95MS float64 `json:"brokered_p95_ms"`
	DirectP95MS   float64 `json:"direct_p95_ms"`
	AddedP95MS    float64 `json:"added_p95_ms"`
	BrokeredRate  float64 `json:"brokered_flows_per_sec"`
	DirectRate    float64 `json:"direct_flows_per_sec"`
	// CPU per login, ms, of all three processes together, and the
	// broker's own (the node's CPU in the brokered phase).
	BrokeredCPUMS float64 `json:"brokered_cpu_ms_per_flow"`
	DirectCPUMS   float64 `json:"direct_cpu_ms_per_flow"`
	NodeCPUMS     float64 `json:"node_cpu_ms_per_flow"`
}

// compareBrokered pairs each concurrency's brokered and direct phases.
func compareBrokered(phases []*benchPhase) []brokerAdded {
	var out []brokerAdded
	for _, b := range phases {
		if b.Flow != flowBrokered || b.Flows == 0 {
			continue
		}
		i := slices.IndexFunc(phases, func(d *benchPhase) bool {
			return d.Flow == flowDirect && d.Concurrency == b.Concurrency && d.Flows > 0
		})
		if i < 0 {
			continue
		}
		d := phases[i]
		out = append(out, brokerAdded{
			Concurrency:   b.Concurrency,
			BrokeredP50MS: b.P50MS, DirectP50MS: d.P50MS, AddedP50MS: b.P50MS - d.P50MS,
			BrokeredP95MS: b.P95MS, DirectP95MS: d.P95MS, AddedP95MS: b.P95MS - d.P95MS,
			BrokeredRate: b.FlowsPerSec, DirectRate: d.FlowsPerSec,
			BrokeredCPUMS: b.NodeCPUMS + b.SimCPUMS + b.LoadgenCPUMS,
			DirectCPUMS:   d.NodeCPUMS + d.SimCPUMS + d.LoadgenCPUMS,
			NodeCPUMS:     b.NodeCPUMS,
		})
	}
	return out
}

func printBrokerAdded(w io.Writer, rows []brokerAdded) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nwhat the broker adds per login: brokered through Varde − direct at the upstream (same RP library, same sim):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tbrokered p50\tdirect p50\tadded p50 ms\tbrokered p95\tdirect p95\tadded p95 ms\tbrokered flows/s\tdirect flows/s\tCPU ms/flow brokered\tdirect\tof which node\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t\n", r.Concurrency,
			r.BrokeredP50MS, r.DirectP50MS, r.AddedP50MS, r.BrokeredP95MS, r.DirectP95MS, r.AddedP95MS,
			r.BrokeredRate, r.DirectRate, r.BrokeredCPUMS, r.DirectCPUMS, r.NodeCPUMS)
	}
	_ = tw.Flush()
}
