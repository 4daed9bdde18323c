package store

import "testing"

func TestSamePasskeyName(t *testing.T) {
	cases := []struct {
		name string
		a, b string
		want bool
	}{
		{"equal", "Phone", "Phone", true},
		{"case", "Phone", "pHONE", true},
		{"Norwegian letters in another case", "Mobil på hytta", "MOBIL PÅ HYTTA", true},
		{"composed and decomposed", "Caf\u00e9", "Cafe\u0301", true},
		{"different", "Phone", "Laptop", false},
		// Shown on a page, runs of spaces are one space, and characters
		// of no width are not shown at all: names that differ only so
		// look the same.
		{"a space more", "Work phone", "Work  phone", true},
		{"a no-break space", "Work phone", "Work\u00a0phone", true},
		{"spaces around", "Phone", " Phone\u3000", true},
		{"a zero-width space", "Phone", "Pho\u200bne", true},
		{"a zero-width joiner", "Phone", "Phone\u200d", true},
		{"a variation selector", "Phone", "Phone\ufe0f", true},
		{"a soft hyphen", "Phone", "Ph\u00adone", true},
		{"a Hangul filler", "Phone", "Phone\u3164", true},
		{"an emoji with and without its selector", "\u2764\ufe0f phone", "\u2764 phone", true},
		{"a space between words", "Work phone", "Workphone", false},
		{"a prefix", "Phone", "Phone 2", false},
	}
	for _, c := range cases {
		if got := SamePasskeyName(c.a, c.b); got != c.want {
			t.Errorf("%s: SamePasskeyName(%q, %q) = %v, want %v", c.name, c.a, c.b, got, c.want)
		}
	}
}

func TestVisiblePasskeyName(t *testing.T) {
	for typed, want := range map[string]string{
		"Phone":                     "Phone",
		"  Work \u00a0 phone ":      "Work phone",
		"\u200b":                    "",
		"\u200b\u2060\ufe0f \u3164": "",
		"\u2764\ufe0f":              "\u2764",
	} {
		if got := VisiblePasskeyName(typed); got != want {
			t.Errorf("VisiblePasskeyName(%q) = %q, want %q", typed, got, want)
		}
	}
}
