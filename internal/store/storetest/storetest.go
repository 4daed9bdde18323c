package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	// The zone checks need Europe/Oslo and America/Los_Angeles even on
	// hosts without a zone database.
	_ "time/tzdata"

	"github.com/varde-eid/varde/internal/store"
)

// Run runs the conformance suite against the stores open returns.
//
// open must return a new, empty store each time it is called, and must be
// safe to call from parallel subtests: each aggregate's subtest opens its
// own store and runs in parallel with the others. open should close the
// store with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Clients", testClients},
		{"Persons", testPersons},
		{"PersonBlocks", testPersonBlocks},
		{"PersonNumbers", testPersonNumbers},
		{"RemoveIdentifier", testRemoveIdentifier},
		{"UnlinkIdentifier", testUnlinkIdentifier},
		{"NoteIdentifierUse", testNoteIdentifierUse},
		{"Passkeys", testPasskeys},
		{"RecoveryCodes", testRecoveryCodes},
		{"DeskCodes", testDeskCodes},
		{"AuthRequests", testAuthRequests},
		{"Challenges", testChallenges},
		{"Sessions", testSessions},
		{"SessionWayIn", testSessionWayIn},
		{"SessionEnds", testSessionEnds},
		{"AuthCodes", testAuthCodes},
		{"Grants", testGrants},
		{"Tokens", testTokens},
		{"TokenRetries", func(t *testing.T, s store.Store) { tokenRetries(t, s, s) }},
		{"ReplayCache", testReplayCache},
		{"AuditLog", testAuditLog},
		{"AuditAddresses", testAuditAddresses},
		{"AuditHolds", testAuditHolds},
		{"PublicKeys", testPublicKeys},
		{"Pins", testPins},
		{"Sweeper", testSweeper},
		{"SweeperIdleSessions", testSweeperIdleSessions},
		{"SweptSessionEnds", testSweptSessionEnds},
		{"SweptDeskCodes", testSweptDeskCodes},
		{"EndedAfterTimingOut", testEndedAfterTimingOut},
		{"Health", testHealth},
		{"Incidents", testIncidents},
		{"IncidentList", testIncidentList},
		{"Maintenance", testMaintenance},
		{"Nodes", testNodes},
		{"Webhooks", testWebhooks},
		{"WebhookClaimsPerEndpoint", func(t *testing.T, s store.Store) { sharedWebhookClaimsPerEndpoint(t, s, s) }},
		{"AuditRange", testAuditRange},
		{"Snapshot", func(t *testing.T, s store.Store) { snapshotReads(t, s, s) }},
		{"Ping", testPing},
		{"NotText", testNotText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// contenders is how many goroutines race for one single-use value.
const contenders = 16

// zones the suite writes times in; reads must come back in UTC.
type zones struct {
	oslo, la, tokyo *time.Location
}

func loadZones(t *testing.T) zones {
	t.Helper()
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatalf("load zone: %v", err)
		}
		return loc
	}
	return zones{load("Europe/Oslo"), load("America/Los_Angeles"), load("Asia/Tokyo")}
}

// base is the suite's fixed "now": one second before clocks in Oslo jump
// from 02:00 to 03:00, with a microsecond part, in Oslo time.
func base(t *testing.T) time.Time {
	return time.Date(2026, 3, 29, 1, 59, 59, 123456000, loadZones(t).oslo)
}

// hash returns a 32-byte value derived from s, like the SHA-256 of a code.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// race starts n goroutines at once, each calling fn with its index, and
// returns their errors.
func race(n int, fn func(i int) error) []error {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of errs is nil and every other one
// is loser (by errors.Is). It returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("goroutine %d: got %v, want %v", i, err, loser)
		}
	}
	if winner < 0 {
		t.Errorf("no goroutine succeeded")
	}
	return winner
}

// wantErr fails t unless err matches want (nil means success).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// same fails t if got differs from want under diff's rules.
func same(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Errorf("%s differs:\n%s", what, d)
	}
}

func id(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }

func testPing(t *testing.T, s store.Store) {
	wantErr(t, "Ping", s.Ping(t.Context()), nil)
}
