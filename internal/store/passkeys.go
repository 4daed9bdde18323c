package store

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// SamePasskeyName reports whether two passkey names read as one to a
// person: equal under Unicode case folding once both are in one normal
// form (NFC), so that "Phone" and "phone", or an "é" typed as one
// character and as "e" with a combining accent, are one name. Two of a
// person's passkeys with one name could not be told apart on the
// account page, where the person picks the one to remove.
func SamePasskeyName(a, b string) bool {
	return strings.EqualFold(norm.NFC.String(a), norm.NFC.String(b))
}
