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

func ticketKeys(kind, binding, token string) (id string, key []byte) {
	if binding != "" {
		token += "/" + binding
	}
	i := sha256.Sum256([]byte("varde/passkeyidp/ticket-id/" + kind + "/" + token))
	k := sha256.Sum256([]byte("varde/passkeyidp/ticket-key/" + kind + "/" + token))
	return "passkeyidp:" + kind + ":" + base64.RawURLEncoding.EncodeToString(i[:]), k[:]
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
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	id, key := ticketKeys(kind, binding, token)
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
// and decodes it into v.
func (p *Provider) takeTicket(ctx context.Context, kind, binding, token string, v any) error {
	if len(token) != 43 {
		return errNoTicket
	}
	id, key := ticketKeys(kind, binding, token)
	sealed, err := p.Challenges.TakeChallenge(ctx, id, p.now())
	if errors.Is(err, store.ErrNotFound) {
		return errNoTicket
	}
	if err != nil {
		return fmt.Errorf("ticket: %w", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	if len(sealed) < aead.NonceSize() {
		return errNoTicket
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if err != nil {
		return errNoTicket
	}
	return json.Unmarshal(plain, v)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	return cipher.NewGCM(b)
}
