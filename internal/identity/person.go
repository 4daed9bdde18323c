package identity

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidName reports whether s can be a given or family name: valid
// UTF-8, 1 to 100 characters, none of them a HiddenRune.
func ValidName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 100 || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, HiddenRune)
}

// HiddenRune reports whether c is a character that does not show as
// itself where a name typed by a person or sent by an eID is shown (the
// account page, the help desk's screen, varde persons show): a control
// character, a line or paragraph separator, or one of the controls that
// reorder text (bidirectional marks, embeddings, overrides and
// isolates, Unicode's Bidi_Control), with which one name can be made to
// read as another, or backwards. Names in right-to-left scripts need
// none of them. A person's name and a passkey's name refuse the same
// characters.
func HiddenRune(c rune) bool {
	return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) ||
		unicode.In(c, unicode.Zl, unicode.Zp)
}

// ValidBirthDate reports whether s is a full date of birth in the form
// YYYY-MM-DD (OpenID Connect Core §5.1 birthdate, without the forms
// that leave the year or the day out).
func ValidBirthDate(s string) bool {
	t, err := time.Parse(time.DateOnly, s)
	return err == nil && t.Year() > 1800
}
