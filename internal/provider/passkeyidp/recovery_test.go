package passkeyidp

import (
	"bytes"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
)

func TestNewRecoveryCodes(t *testing.T) {
	// All-zero and all-one bits give the alphabet's ends.
	codes, hashes, err := newRecoveryCodes(bytes.NewReader(append(make([]byte, 10), bytes.Repeat([]byte{0xff}, 10)...)), 2)
	if err != nil {
		t.Fatal(err)
	}
	if codes[0] != "0000-0000-0000-0000" || codes[1] != "ZZZZ-ZZZZ-ZZZZ-ZZZZ" {
		t.Fatalf("codes = %v", codes)
	}
	// 0x08 0x86 0x42 0x98 0xe8 = 00001 00010 00011 00100 00101 00110 00111 01000
	codes, _, err = newRecoveryCodes(bytes.NewReader([]byte{0x08, 0x86, 0x42, 0x98, 0xe8, 0x08, 0x86, 0x42, 0x98, 0xe8}), 1)
	if err != nil || codes[0] != "1234-5678-1234-5678" {
		t.Fatalf("codes = %v, %v", codes, err)
	}
	if !bytes.Equal(hashes[0], hashCode("0000000000000000")) {
		t.Fatal("hash is not over the normalised code")
	}
	if _, _, err := newRecoveryCodes(bytes.NewReader(make([]byte, 5)), 1); err == nil {
		t.Fatal("short random source accepted")
	}

	re := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)
	codes, _, err = newRecoveryCodes(rand.Reader, 200)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !re.MatchString(c) || seen[c] {
			t.Fatalf("bad or repeated code %q", c)
		}
		seen[c] = true
		if n, ok := normaliseCode(c); !ok || n != strings.ReplaceAll(c, "-", "") {
			t.Fatalf("code %q does not normalise to itself", c)
		}
	}
}

func TestNormaliseCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"7KQ3-M9XD-2HFW-BN4R", "7KQ3M9XD2HFWBN4R", true},
		{" 7kq3 m9xd 2hfw bn4r ", "7KQ3M9XD2HFWBN4R", true},
		{"7KQ3–M9XD–2HFW–BN4R", "7KQ3M9XD2HFWBN4R", true}, // en dashes from a word processor
		{"IL0O-0000-0000-0000", "1100000000000000", true}, // Crockford: I, L read as 1, O as 0
		{"7KQ3-M9XD-2HFW-BN4", "", false},
		{"7KQ3-M9XD-2HFW-BN4RX", "", false},
		{"7KQ3-M9XD-2HFW-BN4U", "", false}, // U is not in the alphabet
		{"7KQ3-M9XD-2HFW-BN4Ø", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := normaliseCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normaliseCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormaliseCode(f *testing.F) {
	f.Add("7KQ3-M9XD-2HFW-BN4R")
	f.Add("il0o il0o il0o il0o")
	f.Fuzz(func(t *testing.T, in string) {
		n, ok := normaliseCode(in)
		if !ok {
			return
		}
		again, ok := normaliseCode(n)
		if !ok || again != n || len(n) != 16 {
			t.Fatalf("normaliseCode(%q) = %q, then %q %v", in, n, again, ok)
		}
	})
}
