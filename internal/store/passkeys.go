package store

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// SamePasskeyName reports whether two passkey names read as one to a
// person: equal under Unicode case folding once both are in one normal
// form (NFC) and as a page shows them (VisiblePasskeyName), so that
// "Phone" and "phone", an "é" typed as one character and as "e" with a
// combining accent, or "Phone" with a zero-width space or a second space
// in it, are one name. Two of a person's passkeys with one name could
// not be told apart on the account page, where the person picks the one
// to remove.
func SamePasskeyName(a, b string) bool {
	return strings.EqualFold(VisiblePasskeyName(a), VisiblePasskeyName(b))
}

// VisiblePasskeyName is name as a page shows it: in NFC, without the
// characters that have no width and show nothing (Unicode's default
// ignorable code points: zero-width spaces and joiners, variation
// selectors, soft hyphens, fillers), its spaces of every width as one,
// and none around it. It is "" for a name that shows nothing.
func VisiblePasskeyName(name string) string {
	shown := strings.Map(func(r rune) rune {
		if ignorable(r) {
			return -1
		}
		return r
	}, norm.NFC.String(name))
	return strings.Join(strings.Fields(shown), " ")
}

// ignorable reports whether r is a default ignorable code point
// (Unicode's DerivedCoreProperties: format characters, variation
// selectors and the other default ignorables), which a page shows as
// nothing.
func ignorable(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}
