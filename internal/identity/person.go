package identity

import (
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidName reports whether s can be a given or family name: valid
// UTF-8, 1 to 100 characters, no control characters.
func ValidName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 100 || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// ValidBirthDate reports whether s is a full date of birth in the form
// YYYY-MM-DD (OpenID Connect Core §5.1 birthdate, without the forms
// that leave the year or the day out).
func ValidBirthDate(s string) bool {
	t, err := time.Parse(time.DateOnly, s)
	return err == nil && t.Year() > 1800
}
