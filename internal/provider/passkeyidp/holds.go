package passkeyidp

import (
	"context"
	"fmt"

	"github.com/varde-eid/varde/internal/provider"
)

var _ provider.Holder = (*Provider)(nil)

// Holds implements provider.Holder: whether the passkey or recovery
// code a login used (res.Credential: the credential ID, the code's
// hash) is still the person's, read after the broker stored the login's
// session. The person may have removed the passkey, or replaced their
// codes, between the login's check of it and that session's write; the
// write that did so ended the sessions it found, not this one, which
// the broker then ends. A result naming no credential (an enrolment,
// whose passkey is new) holds.
func (p *Provider) Holds(ctx context.Context, res provider.Result) (bool, error) {
	if len(res.Credential) == 0 {
		return true, nil
	}
	switch res.Method {
	case methodRecoveryCode:
		held, err := p.RecoveryCodes.HasRecoveryCode(ctx, res.PersonID, res.Credential)
		if err != nil {
			return false, fmt.Errorf("read the recovery code a login used: %w", err)
		}
		return held, nil
	default:
		held, err := p.Passkeys.HasPasskey(ctx, res.PersonID, res.Credential)
		if err != nil {
			return false, fmt.Errorf("read the passkey a login used: %w", err)
		}
		return held, nil
	}
}
