package passkeyidp

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
)

// The cursor of an activity page (?page=) is sealed: AES-256-GCM under
// CursorKey, with the person's ID as additional data, over the page's
// direction and the audit log's Seq it starts from. A Seq in the clear
// would let a person read, from the links of their own pages, how many
// events the whole service recorded between two of theirs (everyone's
// logins); sealed, a link says nothing but that it is a link, and only
// a node of the cluster can open it, for the person it was made for. A
// cursor of another person's page, changed, or of another key does not
// open, and gets the page saying the link does not work. The link stays
// good as long as the key does (it is derived from the subject salt,
// which the store pins): paging by Seq, new events do not move it.
const (
	// MinCursorKeySize is the length of CursorKey (AES-256).
	MinCursorKeySize = 32
	// cursorLabel binds a sealed cursor to what it is, beside the
	// person's ID.
	cursorLabel = "varde/passkeyidp/activity-cursor/v1/"
	// cursorParam is the query parameter of a sealed cursor.
	cursorParam = "page"
	// cursorOlder and cursorNewer are the direction's byte.
	cursorOlder, cursorNewer = 'o', 'n'
	// cursorPlain is the length of a cursor's plaintext: direction and
	// Seq.
	cursorPlain = 1 + 8
)

// cursorAEAD is the cipher of sealed cursors.
func (p *Provider) cursorAEAD() (cipher.AEAD, error) {
	if len(p.CursorKey) < MinCursorKeySize {
		return nil, fmt.Errorf("activity cursor key: %d bytes, want at least %d", len(p.CursorKey), MinCursorKeySize)
	}
	block, err := aes.NewCipher(p.CursorKey[:MinCursorKeySize])
	if err != nil {
		return nil, fmt.Errorf("activity cursor key: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealCursor is c, sealed for the person with ID personID.
func (p *Provider) sealCursor(personID string, c cursor) (string, error) {
	aead, err := p.cursorAEAD()
	if err != nil {
		return "", err
	}
	plain := make([]byte, cursorPlain)
	plain[0] = cursorNewer
	seq := c.after
	if c.older() {
		plain[0], seq = cursorOlder, c.before
	}
	binary.BigEndian.PutUint64(plain[1:], uint64(seq))
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+cursorPlain+aead.Overhead())
	if _, err := io.ReadFull(p.rand(), nonce); err != nil {
		return "", fmt.Errorf("activity cursor nonce: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(cursorLabel+personID))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openCursor is the cursor token seals for the person with ID personID;
// errBadCursor if it is not one sealed for them under CursorKey.
func (p *Provider) openCursor(personID, token string) (cursor, error) {
	aead, err := p.cursorAEAD()
	if err != nil {
		return cursor{}, err
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(sealed) != aead.NonceSize()+cursorPlain+aead.Overhead() {
		return cursor{}, errBadCursor
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(cursorLabel+personID))
	if err != nil {
		return cursor{}, errBadCursor
	}
	seq := binary.BigEndian.Uint64(plain[1:])
	switch {
	case seq > math.MaxInt64:
		return cursor{}, errBadCursor
	case plain[0] == cursorOlder && seq >= 1:
		return cursor{before: int64(seq)}, nil
	case plain[0] == cursorNewer && seq < math.MaxInt64:
		return cursor{after: int64(seq)}, nil
	}
	return cursor{}, errBadCursor
}

// oldCursorParams are the query parameters of a page's Seq in the
// clear, as links had it before cursors were sealed (ADR 41).
var oldCursorParams = []string{"before", "after"}

// errOldCursor is a link of before cursors were sealed: a person's
// bookmark, which leads to their newest activity (withoutOldCursor).
var errOldCursor = errors.New("a link to activity from before its cursors were sealed")

// parseCursor reads the page's cursor from q, for the person with ID
// personID: none (the newest page), or one sealed cursor. A Seq in the
// clear (?before=, ?after=) alone is errOldCursor; beside a sealed
// cursor, which no link ever had, errBadCursor.
func (p *Provider) parseCursor(personID string, q url.Values) (cursor, error) {
	if q.Has("before") || q.Has("after") {
		if q.Has(cursorParam) {
			return cursor{}, errBadCursor
		}
		return cursor{}, errOldCursor
	}
	switch v := q[cursorParam]; len(v) {
	case 0:
		return cursor{before: noCursor}, nil
	case 1:
		return p.openCursor(personID, v[0])
	}
	return cursor{}, errBadCursor
}

// withoutOldCursor is the link r followed, to the newest activity:
// without the Seq in the clear, with its other parameters (the
// language it asked for).
func withoutOldCursor(r *http.Request) string {
	q := r.URL.Query()
	for _, k := range oldCursorParams {
		q.Del(k)
	}
	if len(q) == 0 {
		return historyPath
	}
	return historyPath + "?" + q.Encode()
}

// historyURL is the page of the activity of the person with ID
// personID at c.
func (p *Provider) historyURL(personID string, c cursor) (string, error) {
	token, err := p.sealCursor(personID, c)
	if err != nil {
		return "", err
	}
	return historyPath + "?" + url.Values{cursorParam: {token}}.Encode(), nil
}
