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

var errNoTicket = errors.New("ticket unknown, used or expired")

func ticketKeys(kind, token string) (id string, key []byte) {
	i := sha256.Sum256([]byte("varde/passkeyidp/ticket-id/" + kind + "/" + token))
	k := sha256.Sum256([]byte("varde/passkeyidp/ticket-key/" + kind + "/" + token))
	return "passkeyidp:" + kind + ":" + base64.RawURLEncoding.EncodeToString(i[:]), k[:]
}

// putTicket stores v and returns its token.
func (p *Provider) putTicket(ctx context.Context, kind string, v any, ttl time.Duration) (string, error) {
	token, err := p.randomID(32)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	id, key := ticketKeys(kind, token)
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(p.rand(), nonce); err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(id))
	if err := p.Challenges.PutChallenge(ctx, id, sealed, p.now().Add(ttl)); err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	return token, nil
}

// takeTicket removes the ticket for token and decodes it into v.
func (p *Provider) takeTicket(ctx context.Context, kind, token string, v any) error {
	if len(token) != 43 {
		return errNoTicket
	}
	id, key := ticketKeys(kind, token)
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
