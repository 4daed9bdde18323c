package identity

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Norwegian birth numbers (fødselsnummer) and D-numbers: DDMMYYIIIKK.
// DDMMYY is the birth date, III the individual number (which, for
// numbers issued before 2032, also fixes the century), KK two mod-11
// check digits. A D-number has 40 added to the day. Synthetic test
// numbers from the Norwegian Tax Administration have 80 added to the
// month; an H-number has 40 added to the month.
//
// From 2032 the Norwegian Tax Administration issues numbers under a
// changed rule for the first check digit, because individual numbers run
// out: the weighted sum of the first ten digits (the first check digit
// with weight 1) may leave the remainder 0, 1, 2 or 3 modulo 11, where
// the old rule allows only 0. The individual number of such numbers says
// nothing about gender or the century of birth any more; nothing here
// reads gender from any number. A number whose remainder is 1, 2 or 3,
// or whose individual number does not fit its year under the old table,
// is one issued from 2032: it is accepted, with the century of birth,
// and so Number.BirthDate, unknown (zero). Any other is taken as issued
// before 2032 and given the century of the old table (a number issued
// from 2032 can look the same, and its BirthDate may then be a century
// off: the National Population Register has the true date). The second
// check digit is unchanged: the weighted sum of all eleven digits leaves
// remainder 0.

var (
	noWeights1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	noWeights2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// mod11 returns the check digit for digits under weights, and false when
// the remainder would give 10 (no number has such a check digit).
func mod11(d []int, w []int) (int, bool) {
	sum := 0
	for i, wi := range w {
		sum += d[i] * wi
	}
	k := 11 - sum%11
	switch k {
	case 11:
		return 0, true
	case 10:
		return 0, false
	}
	return k, true
}

// noCheck1 returns the remainder modulo 11 of the sum of d[0..8] under
// noWeights1 plus the first check digit d[9]: 0 for numbers issued
// before 2032, 0, 1, 2 or 3 for numbers issued from 2032, anything else
// for no number.
func noCheck1(d []int) int {
	sum := d[9]
	for i, w := range noWeights1 {
		sum += d[i] * w
	}
	return sum % 11
}

// noCentury maps the individual number and two-digit year to the century,
// as the National Population Register assigned them before 2032.
func noCentury(individual, yy int) (int, bool) {
	switch {
	case individual <= 499:
		return 1900, true
	case individual <= 749 && yy >= 54:
		return 1800, true
	case individual >= 500 && yy <= 39:
		return 2000, true
	case individual >= 900 && yy >= 40:
		return 1900, true
	}
	return 0, false
}

func parseNO(scheme, v string) (*Number, error) {
	if len(v) != 11 {
		return nil, ErrLength
	}
	if !allDigits(v) {
		return nil, ErrCharacter
	}
	var d [11]int
	for i := range d {
		d[i] = int(v[i] - '0')
	}
	rem := noCheck1(d[:10])
	if rem > 3 {
		return nil, ErrCheckDigit1
	}
	if k, ok := mod11(d[:10], noWeights2[:]); !ok || k != d[10] {
		return nil, ErrCheckDigit2
	}
	day, month, yy := atoi(v[0:2]), atoi(v[2:4]), atoi(v[4:6])
	dnr := day > 40
	if dnr {
		day -= 40
	}
	synthetic := false
	switch {
	case month > 80:
		month -= 80
		synthetic = true
	case month > 40:
		if _, ok := date(2000, month-40, 1); ok {
			return nil, ErrHNumber
		}
	}
	var born time.Time
	century, ok := noCentury(atoi(v[6:9]), yy)
	if rem == 0 && ok {
		if born, ok = date(century+yy, month, day); !ok {
			return nil, ErrDate
		}
	} else {
		// Issued from 2032: the century is not in the number, so the
		// date need only exist in one of the centuries a living person
		// can be born in.
		_, in19 := date(1900+yy, month, day)
		_, in20 := date(2000+yy, month, day)
		if !in19 && !in20 {
			return nil, ErrDate
		}
	}
	if dnr != (scheme == SchemeNODnr) {
		return nil, ErrKind
	}
	return &Number{Scheme: scheme, Value: v, BirthDate: born, synthetic: synthetic}, nil
}

// ParseNO parses a Norwegian number whose kind is not known in advance
// and returns it under no:fnr or no:dnr.
func ParseNO(value string) (*Number, error) {
	n, err := Parse(SchemeNOFnr, value)
	if errors.Is(err, ErrKind) {
		return Parse(SchemeNODnr, value)
	}
	return n, err
}

// Synthetic number kinds for SyntheticNO.
const (
	KindFnr = "fnr"
	KindDnr = "dnr"
)

// SyntheticNO returns a valid synthetic Norwegian number of kind "fnr" or
// "dnr" for someone born on birth (1900–2039): the month has 80 added,
// the individual number is drawn from rand (000–499 for 1900–1999,
// 500–999 for 2000–2039), and individual numbers whose check digits
// would be 10 are drawn again.
func SyntheticNO(rand io.Reader, kind string, birth time.Time) (string, error) {
	if kind != KindFnr && kind != KindDnr {
		return "", fmt.Errorf("synthetic number: unknown kind")
	}
	y := birth.Year()
	lo := 0
	switch {
	case y >= 1900 && y <= 1999:
	case y >= 2000 && y <= 2039:
		lo = 500
	default:
		return "", fmt.Errorf("synthetic number: birth year outside 1900-2039")
	}
	day := birth.Day()
	if kind == KindDnr {
		day += 40
	}
	prefix := fmt.Sprintf("%02d%02d%02d", day, int(birth.Month())+80, y%100)
	var b [2]byte
	for range 1000 {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return "", fmt.Errorf("synthetic number: %w", err)
		}
		// 65536 = 131*500 + 36: reject the top 36 values so every
		// individual number is equally likely.
		r := int(b[0])<<8 | int(b[1])
		if r >= 65536-65536%500 {
			continue
		}
		s := fmt.Sprintf("%s%03d", prefix, lo+r%500)
		var d [11]int
		for i := range 9 {
			d[i] = int(s[i] - '0')
		}
		k1, ok := mod11(d[:9], noWeights1[:])
		if !ok {
			continue
		}
		d[9] = k1
		k2, ok := mod11(d[:10], noWeights2[:])
		if !ok {
			continue
		}
		return fmt.Sprintf("%s%d%d", s, k1, k2), nil
	}
	return "", fmt.Errorf("synthetic number: no valid individual number found")
}
