package oauth2

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// MethodS256 is the only PKCE method Varde accepts (RFC 9700 §2.1.1:
// "plain" gives no protection if the request leaks).
const MethodS256 = "S256"

// ValidVerifier reports whether v has the syntax of RFC 7636 §4.1:
// 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !unreserved(v[i]) {
			return false
		}
	}
	return true
}

// ValidChallenge reports whether c can be an S256 challenge: the
// unpadded base64url encoding of a SHA-256 hash, 43 characters
// (RFC 7636 §4.2).
func ValidChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// S256Challenge returns BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE checks verifier against the challenge stored with the code
// (RFC 7636 §4.6). Any mismatch is invalid_grant.
func VerifyPKCE(challenge, method, verifier string) error {
	if method != MethodS256 {
		return InvalidGrant("code was issued without an S256 code challenge")
	}
	if verifier == "" {
		return InvalidGrant("code_verifier is required")
	}
	if !ValidVerifier(verifier) {
		return InvalidGrant("code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 section 4.1)")
	}
	got := S256Challenge(verifier)
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return InvalidGrant("code_verifier does not match the code challenge")
	}
	return nil
}
