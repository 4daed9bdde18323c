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
		{"a space more", "Work phone", "Work  phone", false},
		{"a prefix", "Phone", "Phone 2", false},
	}
	for _, c := range cases {
		if got := SamePasskeyName(c.a, c.b); got != c.want {
			t.Errorf("%s: SamePasskeyName(%q, %q) = %v, want %v", c.name, c.a, c.b, got, c.want)
		}
	}
}
