package identity

import (
	"time"
)

// parseCPR checks a Danish CPR number DDMMYY-SSSS. The first digit of the
// sequence number, with the year, fixes the century (CPR office rules).
// Since 2007 not every CPR number passes the old mod-11 check, so it is
// not applied.
func parseCPR(v string) (*Number, error) {
	if len(v) == 11 && v[6] == '-' {
		v = v[:6] + v[7:]
	}
	if len(v) != 10 {
		return nil, ErrLength
	}
	if !allDigits(v) {
		return nil, ErrCharacter
	}
	day, month, yy, s := atoi(v[0:2]), atoi(v[2:4]), atoi(v[4:6]), int(v[6]-'0')
	century := 1900
	switch {
	case s <= 3:
	case s == 4 || s == 9:
		if yy <= 36 {
			century = 2000
		}
	default: // 5–8
		if yy <= 57 {
			century = 2000
		} else {
			century = 1800
		}
	}
	born, ok := date(century+yy, month, day)
	if !ok {
		return nil, ErrDate
	}
	return &Number{Scheme: SchemeDKCPR, Value: v, BirthDate: born}, nil
}

// parsePnr checks a Swedish personnummer in its 12-digit form
// YYYYMMDDNNNC (one hyphen before NNNC allowed). The check digit C is the
// Luhn digit over the 10-digit form YYMMDDNNN. A samordningsnummer has 60
// added to the day. The 10-digit form is refused: its century depends on
// today's date and a separator, so it is not a stable identifier.
func parsePnr(v string) (*Number, error) {
	if len(v) == 13 && v[8] == '-' {
		v = v[:8] + v[9:]
	}
	if len(v) != 12 {
		return nil, ErrLength
	}
	if !allDigits(v) {
		return nil, ErrCharacter
	}
	if !luhnValid(v[2:]) {
		return nil, ErrCheckDigit
	}
	year, month, day := atoi(v[0:4]), atoi(v[4:6]), atoi(v[6:8])
	if day > 60 {
		day -= 60
	}
	born, ok := date(year, month, day)
	if !ok || year < 1800 {
		return nil, ErrDate
	}
	return &Number{Scheme: SchemeSEPnr, Value: v, BirthDate: born}, nil
}

// luhnValid reports whether the last digit of s is the Luhn check digit
// of the rest (ISO/IEC 7812-1 Annex B).
func luhnValid(s string) bool {
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

const hetuChecks = "0123456789ABCDEFHJKLMNPRSTUVWXY"

// parseHetu checks a Finnish personal identity code DDMMYYCZZZQ: C is the
// century sign, ZZZ the individual number (002–899) and Q the check
// character, DDMMYYZZZ mod 31 (Population Information Act 661/2009 and
// Government Decree 128/2010, as amended with the new century signs from
// 2023). Individual numbers 900–999 are temporary codes that hospitals
// and others make up for someone whose code they do not know; they are
// not in the Population Information System and two organisations may
// give the same one to two people, so, like a Norwegian H-number, such a
// code is refused rather than taken as a person.
func parseHetu(v string) (*Number, error) {
	v, ok := upperASCII(v)
	if !ok {
		return nil, ErrCharacter
	}
	if len(v) != 11 {
		return nil, ErrLength
	}
	if !allDigits(v[0:6]) || !allDigits(v[7:10]) {
		return nil, ErrCharacter
	}
	var century int
	switch v[6] {
	case '+':
		century = 1800
	case '-', 'Y', 'X', 'W', 'V', 'U':
		century = 1900
	case 'A', 'B', 'C', 'D', 'E', 'F':
		century = 2000
	default:
		return nil, ErrCharacter
	}
	if atoi(v[7:10]) < 2 {
		return nil, ErrIndividual
	}
	if hetuChecks[atoi(v[0:6]+v[7:10])%31] != v[10] {
		return nil, ErrCheckDigit
	}
	if atoi(v[7:10]) >= 900 {
		return nil, ErrTemporary
	}
	born, ok := date(century+atoi(v[4:6]), atoi(v[2:4]), atoi(v[0:2]))
	if !ok {
		return nil, ErrDate
	}
	return &Number{Scheme: SchemeFIHetu, Value: v, BirthDate: born}, nil
}

// parsePassport checks a passport number: 1–9 letters and digits, the
// document number field of the machine-readable zone (ICAO Doc 9303 Part
// 4 §4.2.2), issued by state, an ISO 3166-1 alpha-3 code in upper case.
func parsePassport(state, v string) (*Number, error) {
	if !validState(state) {
		return nil, ErrState
	}
	v, ok := upperASCII(v)
	if !ok {
		return nil, ErrCharacter
	}
	if len(v) < 1 || len(v) > 9 {
		return nil, ErrLength
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return nil, ErrCharacter
		}
	}
	return &Number{Scheme: SchemePassportPrefix + state, Value: v, BirthDate: time.Time{}}, nil
}

func validState(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
