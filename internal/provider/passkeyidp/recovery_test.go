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
		// Pasted from a list: one group a line, with the line ends
		// of any system, or a zero-width space from a document.
		{"7KQ3\nM9XD\r\n2HFW\rBN4R\n", "7KQ3M9XD2HFWBN4R", true},
		{"7KQ3\u200bM9XD-2HFW-BN4R\ufeff", "7KQ3M9XD2HFWBN4R", true},
		// A zero printed with a slash, typed on a Nordic keyboard.
		{"7KQ3-M9XD-2HFW-BN4Ø", "7KQ3M9XD2HFWBN40", true},
		{"7kq3-m9xd-2hfw-bn4ø", "7KQ3M9XD2HFWBN40", true},
		{"7KQ3-M9XD-2HFW-BN4Å", "", false},
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

// TestReadCodeSaysWhatToFix: a code that cannot be one is refused with
// what to fix: nothing typed, how many symbols were typed of the 16,
// or the first character no code has, as the person typed it.
func TestReadCodeSaysWhatToFix(t *testing.T) {
	tests := []struct {
		in    string
		fault codeFault
	}{
		{"", codeFault{Key: "recover.err.empty"}},
		{" \n - ", codeFault{Key: "recover.err.empty"}},
		{"7KQ3-M9XD-2HFW-BN4", codeFault{Key: "recover.err.short", Arg: 15}},
		{"7KQ3-M9XD-2HFW-BN4R-7KQ3", codeFault{Key: "recover.err.long", Arg: 20}},
		{"7KQ3-M9XD-2HFW-BN4u", codeFault{Key: "recover.err.char", Arg: "u"}},
		{"7KQ3-M9XD-2HFW-BN4*", codeFault{Key: "recover.err.char", Arg: "*"}},
		{"7KQ3-M9XD-Å-BN4R-7KQ3", codeFault{Key: "recover.err.char", Arg: "Å"}},
	}
	for _, tt := range tests {
		got, fault := readCode(tt.in)
		if got != "" || fault == nil || *fault != tt.fault {
			t.Errorf("readCode(%q) = %q, %+v; want %+v", tt.in, got, fault, tt.fault)
		}
	}
	if got, fault := readCode("7kq3 m9xd 2hfw bn4r"); got != "7KQ3M9XD2HFWBN4R" || fault != nil {
		t.Errorf("readCode of a good code = %q, %+v", got, fault)
	}
}
