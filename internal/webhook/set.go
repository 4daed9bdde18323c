package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/varde-eid/varde/internal/store"
)

// ComponentStateEvent is the event type URI of a component state change
// (RFC 8417 §2.2 "events": the key names the event type, the value is
// the event's payload, ComponentState).
const ComponentStateEvent = "https://varde.dev/secevent/component-state"

// ContentType is the media type of a SET, sent as the Content-Type of
// every delivery (RFC 8935 §2.1); Typ is the JWS "typ" header that
// explicitly types it (RFC 8417 §2.3).
const (
	ContentType = "application/secevent+jwt"
	Typ         = "secevent+jwt"
)

// EventName is store.WebhookDelivery.Event for component state changes.
const EventName = "component_state"

// Public states, as relying parties see them. They are the status page's
// names for measured states: operational (health "up"), degraded, down
// and unknown (no evidence either way, for example after a component
// stopped being probed). The status page's "maintenance", an announced
// window, is not a state a SET carries.
const (
	StateOperational = "operational"
	StateDegraded    = "degraded"
	StateDown        = "down"
	StateUnknown     = "unknown"
)

// PublicState maps a health state (store.Health*) or a public state to
// the public state; "" if s is neither.
func PublicState(s string) string {
	switch s {
	case store.HealthUp, StateOperational:
		return StateOperational
	case store.HealthDegraded:
		return StateDegraded
	case store.HealthDown:
		return StateDown
	case store.HealthUnknown:
		return StateUnknown
	}
	return ""
}

// Claims is the claim set of one SET (RFC 8417 §2.2).
type Claims struct {
	// Issuer is the node's OpenID issuer; its jwks_uri has the key.
	Issuer string `json:"iss"`
	// IssuedAt is when the SET was signed (NumericDate, RFC 7519 §2):
	// each attempt signs it again, so a retry carries the time of that
	// attempt, with the same jti and events.
	IssuedAt int64 `json:"iat"`
	// ID is unique per SET (128 random bits, base64url): receivers use
	// it to drop duplicates.
	ID string `json:"jti"`
	// Audience is the client ID of the receiver.
	Audience string `json:"aud"`
	// Txn is the same in the SETs every client receives about one change.
	Txn    string                    `json:"txn,omitempty"`
	Events map[string]ComponentState `json:"events"`
}

// ErrNotSET is the renewal error of a queued status delivery whose
// stored payload is not a SET this package signed: it is abandoned.
var ErrNotSET = errors.New("webhook: stored payload is not a status SET")

// renewSET signs the SET stored in payload again, as of now: the same
// claims (jti, txn, events), with iat now. RFC 8935 §2 leaves freshness
// to the receiver, and a receiver that refuses an old iat would refuse
// a retry minutes after the change; receivers drop duplicates by jti
// (RFC 8417 §2.2), which stays put. The stored payload is the node's own
// signed SET; its signature is not checked again here, since only its
// claims are reused and the new signature is the node's.
func (n *Notifier) renewSET(payload []byte, now time.Time) ([]byte, error) {
	parts := bytes.Split(payload, []byte("."))
	if len(parts) != 3 {
		return nil, ErrNotSET
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		return nil, ErrNotSET
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" || c.Audience == "" || len(c.Events) == 0 {
		return nil, ErrNotSET
	}
	c.IssuedAt = now.Unix()
	set, err := n.signer.SignTyped(c, Typ)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return []byte(set), nil
}

// ComponentState is the payload of a ComponentStateEvent.
type ComponentState struct {
	// Component is the component's ID: "store", "passkey" or an
	// upstream provider's ID.
	Component string `json:"component"`
	// State and PreviousState are public states (State*).
	State         string `json:"state"`
	PreviousState string `json:"previous_state"`
	// Reason is the machine-readable cause reported by health checks
	// (for example "probe timeout"); may be empty.
	Reason string `json:"reason,omitempty"`
	// Since is when the evidence for the new state began, as a
	// NumericDate (seconds since the epoch, RFC 7519 §2), like iat;
	// absent when not known.
	Since int64 `json:"since,omitempty"`
	// Node is the node that measured the change. Every node measures on
	// its own, so in a cluster a change can be reported by each node.
	Node string `json:"node"`
	// StatusURL is the public status API URL of the component.
	StatusURL string `json:"status_url,omitempty"`
}

// maxErrorBody bounds how much of a receiver's response is read.
const maxErrorBody = 4 << 10

// SETError is the error a SET Recipient returns with HTTP 400 (RFC 8935
// §2.3), with the codes of §2.4 ("invalid_request", "invalid_key",
// "invalid_issuer", "invalid_audience", "authentication_failed",
// "access_denied") or others.
type SETError struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// ParseSETError reads a receiver's error body. It never fails: a body
// that is neither the JSON of RFC 8935 §2.3 nor an OAuth error (the
// "error" and "error_description" a relying party may return with a 400
// to a logout token, Back-Channel Logout 1.0 §2.8) gives a zero
// SETError. Strings are cut short and stripped of control characters,
// since they end up in logs and the operator's view of deliveries.
func ParseSETError(body []byte) SETError {
	var e struct {
		SETError
		OAuthErr         string `json:"error"`
		OAuthDescription string `json:"error_description"`
	}
	if len(body) > maxErrorBody || json.Unmarshal(body, &e) != nil {
		return SETError{}
	}
	if e.Err == "" && e.Description == "" {
		e.Err, e.Description = e.OAuthErr, e.OAuthDescription
	}
	return SETError{Err: clean(e.Err, 64), Description: clean(e.Description, 200)}
}

// String is "err: description", "err", or "".
func (e SETError) String() string {
	switch {
	case e.Err == "" && e.Description == "":
		return ""
	case e.Description == "":
		return e.Err
	}
	return e.Err + ": " + e.Description
}

// clean drops control and invalid characters from s and cuts it to max
// runes.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
