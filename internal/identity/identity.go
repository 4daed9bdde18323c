package identity

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// Identifier schemes.
const (
	SchemeNOFnr  = "no:fnr"
	SchemeNODnr  = "no:dnr"
	SchemeDKCPR  = "dk:cpr"
	SchemeSEPnr  = "se:pnr"
	SchemeFIHetu = "fi:hetu"
	// SchemePassportPrefix is followed by the issuing state's ISO 3166-1
	// alpha-3 code: "passport:NOR".
	SchemePassportPrefix = "passport:"
)

// Errors callers can branch on with errors.Is. They carry no input.
var (
	ErrUnknownScheme = errors.New("unknown identifier scheme")
	ErrLength        = errors.New("wrong length")
	ErrCharacter     = errors.New("character not allowed")
	ErrDate          = errors.New("date part is not a valid date")
	ErrIndividual    = errors.New("individual number does not fit the year")
	ErrCheckDigit1   = errors.New("check digit 1 does not match")
	ErrCheckDigit2   = errors.New("check digit 2 does not match")
	ErrCheckDigit    = errors.New("check digit does not match")
	// ErrKind means a valid number of another kind than the scheme names:
	// a D-number given as no:fnr, or the other way round.
	ErrKind = errors.New("number is of another kind than the scheme")
	// ErrHNumber means a Norwegian H-number (month+40), an assistance
	// number of the health sector that identifies no one nationally.
	ErrHNumber = errors.New("H-number is not a national identity number")
	// ErrTemporary means a Finnish temporary identity code (individual
	// number 900–999), which organisations make up locally and which
	// identifies no one nationally.
	ErrTemporary = errors.New("temporary code is not a national identity number")
	ErrState     = errors.New("issuing state must be an ISO 3166-1 alpha-3 code")
)

// Number is a parsed, well-formed identifier.
type Number struct {
	// Scheme is one of the Scheme constants, or passport:<state>.
	Scheme string
	// Value is the canonical form: digits only for no:fnr, no:dnr,
	// dk:cpr and se:pnr; upper case for fi:hetu and passports.
	Value string
	// BirthDate is the date the number encodes (UTC midnight), zero for
	// passports and for Norwegian numbers issued from 2032, whose
	// century of birth the number does not say.
	BirthDate time.Time
	synthetic bool
}

// Synthetic reports whether the number belongs to a synthetic test person
// (Norwegian numbers with month+80).
func (n *Number) Synthetic() bool { return n.synthetic }

// Identifier returns the number as a stored identifier.
func (n *Number) Identifier() store.Identifier {
	return store.Identifier{Scheme: n.Scheme, Value: n.Value}
}

// Parse checks value against scheme and returns it in canonical form.
// Spaces are ignored; for se:pnr one hyphen before the last four digits
// is allowed, for dk:cpr one before the last four. Only ASCII digits and
// letters count: a character that merely looks like one, or that
// Unicode case mapping turns into one, is refused, so every canonical
// value has one spelling.
func Parse(scheme, value string) (*Number, error) {
	n, err := parse(scheme, value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", schemeLabel(scheme), err)
	}
	return n, nil
}

// Validate reports whether value is a well-formed identifier of scheme.
func Validate(scheme, value string) error {
	_, err := Parse(scheme, value)
	return err
}

// KnownScheme reports whether scheme is one Varde can validate.
func KnownScheme(scheme string) bool { return schemeLabel(scheme) != "identifier" }

// schemeLabel keeps error messages free of arbitrary input: a scheme we
// do not know is not echoed.
func schemeLabel(scheme string) string {
	switch scheme {
	case SchemeNOFnr, SchemeNODnr, SchemeDKCPR, SchemeSEPnr, SchemeFIHetu:
		return scheme
	}
	if st, ok := strings.CutPrefix(scheme, SchemePassportPrefix); ok && validState(st) {
		return scheme
	}
	return "identifier"
}

func parse(scheme, value string) (*Number, error) {
	v := strings.ReplaceAll(value, " ", "")
	switch scheme {
	case SchemeNOFnr, SchemeNODnr:
		return parseNO(scheme, v)
	case SchemeDKCPR:
		return parseCPR(v)
	case SchemeSEPnr:
		return parsePnr(v)
	case SchemeFIHetu:
		return parseHetu(v)
	}
	if st, ok := strings.CutPrefix(scheme, SchemePassportPrefix); ok {
		return parsePassport(st, v)
	}
	return nil, ErrUnknownScheme
}

// Mask hides most of an identifier for display to its owner: the date
// part of national numbers stays visible, the rest becomes "•"; passport
// numbers show only their last three characters.
func Mask(id store.Identifier) string {
	r := []rune(id.Value)
	keep := 6
	switch {
	case strings.HasPrefix(id.Scheme, SchemePassportPrefix):
		keep = -3
	case id.Scheme == SchemeSEPnr:
		keep = 8
	}
	for i := range r {
		if (keep >= 0 && i >= keep) || (keep < 0 && i < len(r)+keep) {
			r[i] = '•'
		}
	}
	return string(r)
}

// upperASCII returns s in upper case, and false if s holds anything but
// ASCII. strings.ToUpper alone would turn "ı" (U+0131) into "I" and "ſ"
// (U+017F) into "S", letting characters no scheme allows pass for ones
// it does.
func upperASCII(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 0x80:
			return "", false
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// date returns the UTC date or false if day/month do not form one.
func date(year, month, day int) (time.Time, bool) {
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day || int(t.Month()) != month {
		return time.Time{}, false
	}
	return t, true
}
