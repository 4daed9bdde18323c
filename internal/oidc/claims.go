package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/varde-eid/varde/internal/store"
)

// PairwiseSubject is the sub a person has at a sector (OIDC Core §8.1):
// base64url(HMAC-SHA256(salt, sectorID || 0x00 || personID)). Clients of
// one sector see one sub; clients of different sectors cannot link it.
func PairwiseSubject(salt []byte, sectorID, personID string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(sectorID))
	m.Write([]byte{0})
	m.Write([]byte(personID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) subject(c *store.Client, personID string) string {
	return PairwiseSubject(p.SubjectSalt, c.Sector(), personID)
}

// SessionRef is the sid claim a client of sector sectorID gets for a
// session given the ID of its root (store.Session.Root): an HMAC of the
// two under a key derived from salt, the pairwise subjects' secret. It
// differs from sector to sector, as the sub does, so two relying parties
// of different sectors that both got tokens in one single sign-on session
// cannot join their records on it (OIDC Core §8.1's reason for pairwise
// subjects); and ID tokens do not carry the store key.
func SessionRef(salt []byte, sectorID, sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(saltMAC(salt, "varde sid key v1", sectorID, sessionID)[:16])
}

// saltMAC is an HMAC-SHA256 of parts (each but the first after a NUL)
// under a key derived from salt for the use label names, so that no
// two uses of the pairwise subjects' secret share a key.
func saltMAC(salt []byte, label string, parts ...string) []byte {
	k := hmac.New(sha256.New, salt)
	k.Write([]byte(label))
	m := hmac.New(sha256.New, k.Sum(nil))
	for i, part := range parts {
		if i > 0 {
			m.Write([]byte{0})
		}
		m.Write([]byte(part))
	}
	return m.Sum(nil)
}

// sessionRef is c's sid for the session whose root has ID root.
func (p *Provider) sessionRef(c *store.Client, root string) string {
	return SessionRef(p.SubjectSalt, c.Sector(), root)
}

// releasedClaims are the person claims a client is registered to get.
func releasedClaims(c *store.Client) []string {
	var out []string
	for _, name := range userClaims {
		if slices.Contains(c.Claims, name) {
			out = append(out, name)
		}
	}
	return out
}

// NationalID is the national_id claim.
type NationalID struct {
	Scheme string `json:"scheme"`
	Value  string `json:"value"`
}

// nationalSchemes is the preference order for national_id.
var nationalSchemes = []string{"no:fnr", "no:dnr"}

// nationalID is the person's number of the first of nationalSchemes
// they hold; of two of one scheme the one added last, since a number
// added beside another replaced it (a birth number replaced, ADR 30),
// and the old one is kept only so that logins with it still find the
// person.
func nationalID(p *store.Person) (NationalID, bool) {
	for _, s := range nationalSchemes {
		for _, id := range slices.Backward(p.Identifiers) {
			if id.Scheme == s {
				return NationalID{id.Scheme, id.Value}, true
			}
		}
	}
	if len(p.Identifiers) > 0 {
		return NationalID{p.Identifiers[0].Scheme, p.Identifiers[0].Value}, true
	}
	return NationalID{}, false
}

// personClaims adds to claims what the client may receive about the
// person (minimal disclosure: only what its registration lists).
func personClaims(claims map[string]any, c *store.Client, p *store.Person) {
	for _, name := range releasedClaims(c) {
		switch name {
		case "name":
			if n := strings.TrimSpace(p.GivenName + " " + p.FamilyName); n != "" {
				claims["name"] = n
			}
		case "given_name":
			if p.GivenName != "" {
				claims["given_name"] = p.GivenName
			}
		case "family_name":
			if p.FamilyName != "" {
				claims["family_name"] = p.FamilyName
			}
		case "birthdate":
			if p.BirthDate != "" {
				claims["birthdate"] = p.BirthDate
			}
		case "national_id":
			if id, ok := nationalID(p); ok {
				claims["national_id"] = id
			}
		}
	}
}
