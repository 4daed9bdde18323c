package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// Run with: go test -bench . -run '^$' ./internal/store/sqlstore/

func benchHash(prefix string, i int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(append([]byte(prefix), b[:]...))
	return h[:]
}

func benchAuthRequest(id string, now time.Time) *store.AuthRequest {
	return &store.AuthRequest{
		ID: id, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid", "profile"},
		State: "af0ifjsldkj", Nonce: "n-0S6_WzA2Mj", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", ResponseMode: "query", MaxAge: -1,
		ACRValues: []string{"urn:varde:loa:substantial"}, UILocales: []string{"nb"},
		Pushed: true, CreatedAt: now, ExpiresAt: now.Add(90 * time.Second),
	}
}

func benchAuthCode(hash []byte, now time.Time) *store.AuthCode {
	return &store.AuthCode{
		Hash: hash, GrantID: "g", ClientID: "bank", RedirectURI: "https://bank.example/cb",
		Scope: []string{"openid", "profile"}, Nonce: "n", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", SessionID: "s", PersonID: "p", Provider: "passkey", Level: "substantial",
		AMR: []string{"hwk"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Minute),
	}
}

func benchClient() *store.Client {
	return &store.Client{
		ID: "bank", Name: "Bank", AuthMethod: store.AuthPrivateKeyJWT,
		JWKS:         json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}]}`),
		RedirectURIs: []string{"https://bank.example/cb"}, RequirePAR: true,
		AllowedLevels: []string{"substantial", "high"}, Claims: []string{"name", "birthdate"}, Source: "config",
		CreatedAt: time.Now(),
	}
}

func BenchmarkCreateAuthRequest(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	now := time.Now()
	var n atomic.Int64 // IDs stay unique when the benchmark reruns with a larger b.N
	b.Run("serial", func(b *testing.B) {
		for range b.N {
			if err := db.CreateAuthRequest(ctx, benchAuthRequest(fmt.Sprint(n.Add(1)), now)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16) // 16 × GOMAXPROCS writers share commits
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := db.CreateAuthRequest(ctx, benchAuthRequest(fmt.Sprint(n.Add(1)), now)); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkRedeemAuthCode(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	now := time.Now()
	var n atomic.Int64 // hashes stay unique when the benchmark reruns with a larger b.N
	b.Run("serial", func(b *testing.B) {
		first := n.Load()
		for range b.N {
			if err := db.CreateAuthCode(ctx, benchAuthCode(benchHash("code", n.Add(1)), now)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := range int64(b.N) {
			if _, err := db.RedeemAuthCode(ctx, benchHash("code", first+i+1), now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendAudit(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	event := func() *store.AuditEvent {
		return &store.AuditEvent{
			Time: time.Now(), Type: "authentication", PersonID: "p1", ClientID: "bank", Provider: "passkey",
			Level: "substantial", Result: store.ResultSuccess, Details: map[string]string{"amr": "hwk"},
		}
	}
	b.Run("serial", func(b *testing.B) {
		for range b.N {
			if err := db.AppendAudit(ctx, event()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Most events are made while serving a request and hold its client's
	// address, which goes to a table of its own (ADR 38).
	b.Run("serial with address", func(b *testing.B) {
		for range b.N {
			e := event()
			e.Details[store.DetailAddr] = "192.0.2.1"
			if err := db.AppendAudit(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := db.AppendAudit(ctx, event()); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	// Under load, events share their transactions (group commit), whose
	// commit is then a small part of each: what remains is the CPU an
	// event costs the writer, which a login pays twice.
	b.Run("parallel with address", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e := event()
				e.Details[store.DetailAddr] = "192.0.2.1"
				if err := db.AppendAudit(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkGetClient(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	if err := db.AddClient(ctx, benchClient(), nil); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for range b.N {
			if _, err := db.GetClient(ctx, "bank"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.GetClient(ctx, "bank"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkLogin runs the store calls of one complete login, from PAR to
// token, in the order a node with store.flow_state: store makes them,
// from many goroutines: 11 write operations and 6 reads per login (the
// client read is served from memory by the node, see internal/app; the
// request and person reads from this package's own memory, see
// cache.go). The logins/s metric is the throughput the store alone
// allows.
func BenchmarkLogin(b *testing.B) { benchLogin(b, openTemp(b)) }

// BenchmarkLoginPostgres is BenchmarkLogin on a PostgreSQL server that
// the benchmark starts (internal/pgtest: durability off, on the same
// cores), as a node over a shared database makes the calls.
func BenchmarkLoginPostgres(b *testing.B) { benchLogin(b, openPostgres(b, pgtest.NewDatabase(b))) }

func benchLogin(b *testing.B, db *DB) {
	ctx := context.Background()
	now := time.Now()
	if err := db.AddClient(ctx, benchClient(), nil); err != nil {
		b.Fatal(err)
	}
	if err := db.CreatePerson(ctx, &store.Person{ID: "p1", WebAuthnID: benchHash("w", 0),
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "x"}}, ProofingLevel: "substantial"}); err != nil {
		b.Fatal(err)
	}
	cred := benchHash("cred", 0)
	if err := db.CreatePasskey(ctx, &store.Passkey{CredentialID: cred, PersonID: "p1", PublicKey: benchHash("pk", 0),
		Transports: []string{"internal"}}, 0, ""); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	login := func(i int64) error {
		id := fmt.Sprint("r", i)
		steps := []func() error{
			func() error { return db.Remember(ctx, "jti-par-"+id, now.Add(time.Minute), now) },
			func() error { _, err := db.GetClient(ctx, "bank"); return err },
			func() error { return db.CreateAuthRequest(ctx, benchAuthRequest(id, now)) },
			func() error {
				r, err := db.GetAuthRequest(ctx, id, now)
				if err != nil {
					return err
				}
				r.Used = true
				return db.UpdateAuthRequest(ctx, r)
			},
			func() error { return db.PutChallenge(ctx, "ch-"+id, benchHash("ch", i), now.Add(time.Minute)) },
			func() error { _, err := db.TakeChallenge(ctx, "ch-"+id, now); return err },
			func() error { _, err := db.GetPersonByWebAuthnID(ctx, benchHash("w", 0)); return err },
			func() error { _, err := db.GetPasskey(ctx, cred); return err },
			func() error {
				// Each login passes its own passkey count in real life; here
				// many goroutines share one passkey, so a lost race is fine.
				err := db.UpdatePasskeyUse(ctx, cred, 0, store.PasskeyUse{LastUsedAt: now})
				if err != nil && !isConflict(err) {
					return err
				}
				return nil
			},
			func() error { _, err := db.GetAuthRequest(ctx, id, now); return err },
			func() error {
				// The session lists the client it is for from the start, and
				// is stored with the authentication and consent events, if
				// the person still holds the passkey (ADR 49). Each event
				// holds the client's address, as a node's do (ADR 33), kept
				// apart from it (ADR 38).
				return db.CreateSession(ctx, &store.Session{ID: "s-" + id, PersonID: "p1", Provider: "passkey",
					Level: "substantial", AMR: []string{"hwk"}, Clients: []string{"bank"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
					WayIn: store.WayIn{Passkey: cred}},
					&store.AuditEvent{Time: now, Type: "authentication", PersonID: "p1",
						ClientID: "bank", Provider: "passkey", Level: "substantial", Result: store.ResultSuccess,
						Details: map[string]string{store.DetailAddr: benchAddr}},
					&store.AuditEvent{Time: now, Type: "consent", PersonID: "p1",
						ClientID: "bank", Provider: "passkey", Level: "substantial", Result: store.ResultSuccess,
						Details: map[string]string{"claims": "name birthdate", "basis": "registration", store.DetailAddr: benchAddr}})
			},
			func() error { return db.CreateAuthCodeForRequest(ctx, benchAuthCode(benchHash("code", i), now), id) },
			func() error { return db.Remember(ctx, "jti-tok-"+id, now.Add(time.Minute), now) },
			func() error { _, err := db.GetAuthCode(ctx, benchHash("code", i)); return err },
			func() error { _, err := db.GetPerson(ctx, "p1"); return err },
			func() error {
				// The code spent, the grant, its tokens and the token
				// event, in one write.
				_, err := db.CreateGrantTokensForCode(ctx, benchHash("code", i), now, &store.Grant{ID: "g-" + id, ClientID: "bank", PersonID: "p1",
					SessionID: "s-" + id, Scope: []string{"openid"}, Level: "substantial", AuthTime: now, CreatedAt: now},
					&store.AuditEvent{Time: now, Type: "token", PersonID: "p1", ClientID: "bank", Result: store.ResultSuccess,
						Details: map[string]string{store.DetailAddr: benchAddr}},
					&store.Token{Hash: benchHash("at", i), Kind: store.TokenAccess, GrantID: "g-" + id, ClientID: "bank",
						Scope: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
					&store.Token{Hash: benchHash("rt", i), Kind: store.TokenRefresh, GrantID: "g-" + id, ClientID: "bank",
						Scope: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
				return err
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}
	// Logins in flight at once, like concurrent HTTP requests: at 2,000
	// logins/s, each waiting some tens of milliseconds on the browser and
	// authenticator, a node has hundreds in flight.
	for _, inFlight := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			b.SetParallelism(max(1, inFlight/runtime.GOMAXPROCS(0)))
			ops, batches := db.wr.ops.Load(), db.wr.batches.Load()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := login(seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
			if n := db.wr.batches.Load() - batches; n > 0 {
				b.ReportMetric(float64(db.wr.ops.Load()-ops)/float64(n), "writes/commit")
			}
		})
	}
}

// benchAddr is the client address of BenchmarkLogin's events.
const benchAddr = "192.0.2.1"

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

// BenchmarkSweepUnderLoad: one sweep of a minute's expired access tokens
// at a thousand logins a second (60,000, with as many live ones beside
// them), while another goroutine writes one audit event after another,
// as logins do. It reports how long the sweep took and the longest any
// of those writes waited: what a sweep costs the logins running beside
// it. Run with -benchtime 1x: each run first stores 120,000 tokens.
func BenchmarkSweepUnderLoad(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		db := open(b, b.TempDir()+"/sweep.db")
		now := time.Now()
		const grants, perGrant = 600, 100
		for i := range int64(grants) {
			g := &store.Grant{ID: fmt.Sprintf("g%d", i), CreatedAt: now}
			var toks []*store.Token
			for j := range int64(perGrant) {
				toks = append(toks,
					&store.Token{Hash: benchHash("dead", i*perGrant+j), Kind: store.TokenAccess, GrantID: g.ID, ExpiresAt: now.Add(-time.Second)},
					&store.Token{Hash: benchHash("live", i*perGrant+j), Kind: store.TokenAccess, GrantID: g.ID, ExpiresAt: now.Add(time.Hour)})
			}
			if err := db.CreateGrantTokens(ctx, g, nil, toks...); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		var (
			stop    atomic.Bool
			worst   atomic.Int64
			done    = make(chan struct{})
			appends int
		)
		go func() {
			defer close(done)
			for !stop.Load() {
				t0 := time.Now()
				if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "token", Result: store.ResultSuccess}); err != nil {
					b.Error(err)
					return
				}
				if d := int64(time.Since(t0)); d > worst.Load() {
					worst.Store(d)
				}
				appends++
			}
		}()
		t0 := time.Now()
		n, err := db.DeleteExpired(ctx, now)
		took := time.Since(t0)
		stop.Store(true)
		<-done
		if err != nil || n != grants*perGrant {
			b.Fatalf("DeleteExpired = %d, %v", n, err)
		}
		b.ReportMetric(float64(took.Milliseconds()), "sweep-ms")
		b.ReportMetric(float64(worst.Load())/1e6, "worst-write-wait-ms")
		b.ReportMetric(float64(appends), "writes-beside")
	}
}
