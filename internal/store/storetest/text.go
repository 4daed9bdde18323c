package storetest

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// notText are keys no record can have: not UTF-8, or holding NUL. They
// reach the store from cookies and request parameters that no one has
// checked, and a database that keeps only UTF-8 text (PostgreSQL) cannot
// even compare them. Looking one up finds nothing, like any unknown key.
var notText = []string{"\xff\xfe", "a\x00b", "\xc3"}

// testNotText checks lookups and single-use operations by keys that are
// not text: each reports not found, never a storage failure.
func testNotText(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base(t)
	for _, k := range notText {
		checks := []struct {
			what string
			err  error
		}{
			{"GetClient", second(s.GetClient(ctx, k))},
			{"GetPerson", second(s.GetPerson(ctx, k))},
			{"GetPersonByIdentifier scheme", second(s.GetPersonByIdentifier(ctx, k, "x"))},
			{"GetPersonByIdentifier value", second(s.GetPersonByIdentifier(ctx, "no:fnr", k))},
			{"GetAuthRequest", second(s.GetAuthRequest(ctx, k, now))},
			{"UseAuthRequest", s.UseAuthRequest(ctx, k, k, now.Add(60e9), now)},
			{"TakeChallenge", second(s.TakeChallenge(ctx, k, now))},
			{"GetSession", second(s.GetSession(ctx, k, now))},
			{"AddSessionClient", s.AddSessionClient(ctx, k, "c", nil)},
			{"GetGrant", second(s.GetGrant(ctx, k))},
			{"RevokeGrant", s.RevokeGrant(ctx, k, now)},
			{"RetirePublicKey", second(s.RetirePublicKey(ctx, k, now, nil))},
			{"GetIncident", second(s.GetIncident(ctx, k))},
			{"UpdateIncident", s.UpdateIncident(ctx, &store.Incident{ID: k, Version: 1})},
			{"AddIncidentUpdate", s.AddIncidentUpdate(ctx, &store.IncidentUpdate{IncidentID: k, Time: now, Kind: store.UpdateOperator, Message: "m", Author: "a"})},
			{"CancelMaintenance", s.CancelMaintenance(ctx, k, now)},
			{"EndMaintenance", s.EndMaintenance(ctx, k, now)},
		}
		for _, c := range checks {
			if !errors.Is(c.err, store.ErrNotFound) {
				t.Errorf("%s(%q) = %v, want ErrNotFound", c.what, k, c.err)
			}
		}
		if ended, err := s.DeleteSession(ctx, k); ended != nil || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("DeleteSession(%q) = %v, %v, want nil and nil or ErrNotFound", k, ended, err)
		}
		if ended, err := s.EndSession(ctx, k, now); ended != nil || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("EndSession(%q) = %v, %v, want nil and nil or ErrNotFound", k, ended, err)
		}
		if ended, err := s.EndPersonSessions(ctx, k, "", now, nil); err != nil || len(ended) != 0 {
			t.Errorf("EndPersonSessions(%q) = %v, %v, want none, nil", k, ended, err)
		}
		if ok, err := s.SettleSessionEnd(ctx, k, nil); ok || err != nil {
			t.Errorf("SettleSessionEnd(%q) = %v, %v, want false, nil", k, ok, err)
		}
		if n, err := s.CountRecoveryCodes(ctx, k); err != nil || n != 0 {
			t.Errorf("CountRecoveryCodes(%q) = %d, %v, want 0, nil", k, n, err)
		}
		if ps, err := s.ListPasskeys(ctx, k); err != nil || len(ps) != 0 {
			t.Errorf("ListPasskeys(%q) = %d passkeys, %v, want none", k, len(ps), err)
		}
		if es, err := s.ListPersonAudit(ctx, k, 10); err != nil || len(es) != 0 {
			t.Errorf("ListPersonAudit(%q) = %d events, %v, want none", k, len(es), err)
		}
		if es, err := s.ListPersonAuditAfter(ctx, k, 0, 10); err != nil || len(es) != 0 {
			t.Errorf("ListPersonAuditAfter(%q) = %d events, %v, want none", k, len(es), err)
		}
		if es, err := s.ListPersonAuditBefore(ctx, k, math.MaxInt64, 10); err != nil || len(es) != 0 {
			t.Errorf("ListPersonAuditBefore(%q) = %d events, %v, want none", k, len(es), err)
		}
		if gs, err := s.ListPersonGrants(ctx, k, now); err != nil || len(gs) != 0 {
			t.Errorf("ListPersonGrants(%q) = %d grants, %v, want none", k, len(gs), err)
		}
		if rc, err := s.DescribeRecoveryCodes(ctx, k); err != nil || rc != (store.RecoveryCodeSet{}) {
			t.Errorf("DescribeRecoveryCodes(%q) = %+v, %v, want none", k, rc, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("store unusable afterwards: %v", err)
	}
}

// second returns the error of a two-valued call.
func second[T any](_ T, err error) error { return err }
