package passkeyidp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// A ticket is single-use state handed to the browser as a random token:
// the store keeps it under a hash of the token, encrypted with a key
// derived from the token, and Take deletes it. So the browser cannot
// change it, a replayed token finds nothing, and a copy of the database
// does not show what it holds (the enrolled page's recovery codes).
//
// A ticket put with a binding (a session ID) is found only by a take
// with the same binding: a take from anyone else finds nothing and
// leaves the ticket for its owner.

var errNoTicket = errors.New("ticket unknown, used or expired")

// errTicketExpired: the ticket was still held but its time had run out,
// as when the person left its page open. It wraps errNoTicket, so that
// it is refused as any ticket that cannot be used; a page that can say
// so tells it apart. One swept from the store after its expiry is
// unknown, and so errNoTicket.
var errTicketExpired = fmt.Errorf("%w: expired", errNoTicket)

// errSealedElse: the ticket found was sealed for another token. It wraps
// errNoTicket.
var errSealedElse = fmt.Errorf("%w: sealed for another token", errNoTicket)

// sealed is what a ticket's ciphertext holds: the ticket and its expiry,
// which the store does not return.
type sealed struct {
	Expires time.Time       `json:"expires"`
	Ticket  json.RawMessage `json:"ticket"`
}

func ticketKeys(kind, binding, token string) (id string, key []byte) {
	if binding != "" {
		token += "/" + binding
	}
	i := sha256.Sum256([]byte("varde/passkeyidp/ticket-id/" + kind + "/" + token))
	k := sha256.Sum256([]byte("varde/passkeyidp/ticket-key/" + kind + "/" + token))
	return "passkeyidp:" + kind + ":" + base64.RawURLEncoding.EncodeToString(i[:]), k[:]
}

// A ticket put in its binding's slot (putSlotTicket) is stored under an
// ID made of its kind and binding alone, not of its token, so that a
// binding (a session) holds at most one ticket of that kind: putting
// another replaces it. Tickets share the flow state's challenges with
// everyone's logins (a bounded store: flowmem.DefaultMaxChallenges), so
// without the slot a session asking again and again would fill them
// and refuse other people's; with it, it holds one, and the newest is
// the only one worth keeping (new recovery codes void those before).
// The token still makes the key, so a take with another token, such as
// an older page's link in the same session, cannot open it, and puts it
// back for the page it was made for.
func slotKeys(kind, binding, token string) (id string, key []byte) {
	i := sha256.Sum256([]byte("varde/passkeyidp/ticket-slot/" + kind + "/" + binding))
	_, key = ticketKeys(kind, binding, token)
	return "passkeyidp:" + kind + ":" + base64.RawURLEncoding.EncodeToString(i[:]), key
}

// putSlotTicket stores v in binding's slot for kind, replacing the
// ticket there, and returns its token.
func (p *Provider) putSlotTicket(ctx context.Context, kind, binding string, v any, ttl time.Duration) (string, error) {
	if binding == "" {
		return "", errors.New("ticket: a slot needs a binding")
	}
	token, err := p.randomID(32)
	if err != nil {
		return "", err
	}
	id, key := slotKeys(kind, binding, token)
	if err := p.seal(ctx, id, key, v, p.now().Add(ttl)); err != nil {
		return "", err
	}
	return token, nil
}

// takeSlotTicket takes the ticket in binding's slot for kind if token
// is the one it was put with, and decodes it into v. One put with
// another token is put back, for ttl at most (its own expiry, sealed
// in it, still holds), and the take finds nothing.
func (p *Provider) takeSlotTicket(ctx context.Context, kind, binding, token string, v any, ttl time.Duration) error {
	if len(token) != 43 || binding == "" {
		return errNoTicket
	}
	id, key := slotKeys(kind, binding, token)
	ciphertext, err := p.takeSealed(ctx, id)
	if err != nil {
		return err
	}
	err = p.open(id, key, ciphertext, v)
	if errors.Is(err, errSealedElse) {
		if err := p.Challenges.PutChallenge(ctx, id, ciphertext, p.now().Add(ttl)); err != nil {
			return fmt.Errorf("ticket: put back: %w", err)
		}
	}
	return err
}

// putTicket stores v, bound to binding if it is not "", and returns its
// token.
func (p *Provider) putTicket(ctx context.Context, kind, binding string, v any, ttl time.Duration) (string, error) {
	token, err := p.randomID(32)
	if err != nil {
		return "", err
	}
	if err := p.storeTicket(ctx, kind, binding, token, v, p.now().Add(ttl)); err != nil {
		return "", err
	}
	return token, nil
}

// restoreTicket puts back, under the same token, a ticket taken by a
// request that turned out not to be its owner's, so that the owner can
// still use it until it expires.
func (p *Provider) restoreTicket(ctx context.Context, kind, binding, token string, v any, expiresAt time.Time) error {
	if !expiresAt.After(p.now()) {
		return nil
	}
	return p.storeTicket(ctx, kind, binding, token, v, expiresAt)
}

func (p *Provider) storeTicket(ctx context.Context, kind, binding, token string, v any, expiresAt time.Time) error {
	id, key := ticketKeys(kind, binding, token)
	return p.seal(ctx, id, key, v, expiresAt)
}

// seal stores v under id, encrypted with key, until expiresAt.
func (p *Provider) seal(ctx context.Context, id string, key []byte, v any, expiresAt time.Time) error {
	ticket, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	plain, err := json.Marshal(sealed{Expires: expiresAt, Ticket: ticket})
	if err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(p.rand(), nonce); err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(id))
	if err := p.Challenges.PutChallenge(ctx, id, sealed, expiresAt); err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	return nil
}

// takeTicket removes the ticket for token, put with the same binding,
// and decodes it into v; errTicketExpired for one still held past its
// expiry.
func (p *Provider) takeTicket(ctx context.Context, kind, binding, token string, v any) error {
	if len(token) != 43 {
		return errNoTicket
	}
	id, key := ticketKeys(kind, binding, token)
	ciphertext, err := p.takeSealed(ctx, id)
	if err != nil {
		return err
	}
	return p.open(id, key, ciphertext, v)
}

// takeSealed removes and returns the ciphertext stored under id. It is
// taken whatever its expiry (the zero time is before any), so that one
// past its time is told apart from one unknown or used, and checked
// against the expiry sealed in it.
func (p *Provider) takeSealed(ctx context.Context, id string) ([]byte, error) {
	ciphertext, err := p.Challenges.TakeChallenge(ctx, id, time.Time{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoTicket
	}
	if err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	return ciphertext, nil
}

// open decrypts ciphertext, stored under id, with key into v;
// errSealedElse if key does not open it, errTicketExpired if its time
// has run out.
func (p *Provider) open(id string, key, ciphertext []byte, v any) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	if len(ciphertext) < aead.NonceSize() {
		return errNoTicket
	}
	plain, err := aead.Open(nil, ciphertext[:aead.NonceSize()], ciphertext[aead.NonceSize():], []byte(id))
	if err != nil {
		return errSealedElse
	}
	var t sealed
	if err := json.Unmarshal(plain, &t); err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	// One sealed without its expiry fails closed.
	if !p.now().Before(t.Expires) {
		return errTicketExpired
	}
	return json.Unmarshal(t.Ticket, v)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	return cipher.NewGCM(b)
}
