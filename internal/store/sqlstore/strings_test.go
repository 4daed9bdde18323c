package sqlstore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestStringsJSON(t *testing.T) {
	tests := []struct {
		name string
		ss   []string
		want string
	}{
		{"nil", nil, "null"},
		{"empty", []string{}, "[]"},
		{"one empty string", []string{""}, `[""]`},
		{"plain", []string{"openid", "profile"}, `["openid","profile"]`},
		{"quote and backslash", []string{`a"b`, `c\d`}, `["a\"b","c\\d"]`},
		{"controls", []string{"a\nb\tc\r\x00\x1f"}, `["a\nb\tc\r\u0000\u001f"]`},
		{"unicode", []string{"Ødegård", "日本", "\u2028"}, "[\"Ødegård\",\"日本\",\"\u2028\"]"},
		{"invalid utf-8", []string{"a\xffb"}, `["a\ufffdb"]`},
		{"separator inside", []string{`a","b`}, `["a\",\"b"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeStrings(tt.ss)
			if got != tt.want {
				t.Errorf("encodeStrings = %s, want %s", got, tt.want)
			}
			back, err := decodeStrings("col", got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.ss
			if tt.name == "invalid utf-8" {
				want = []string{"a\ufffdb"}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("decodeStrings(%s) = %q, want %q", got, back, want)
			}
		})
	}
	for _, bad := range []string{"", "[", `["a"`, `{"a":1}`, `[1]`, `["a",]`} {
		if _, err := decodeStrings("col", bad); err == nil {
			t.Errorf("decodeStrings(%q) succeeded", bad)
		}
	}
	// Other writers' formatting decodes too.
	got, err := decodeStrings("col", `[ "a" , "b\u0041" ]`)
	if err != nil || !reflect.DeepEqual(got, []string{"a", "bA"}) {
		t.Errorf("decodeStrings with spaces and escapes = %q, %v", got, err)
	}
}

// FuzzStrings checks encodeStrings and decodeStrings against encoding/json
// in both directions. The input is split on NUL into elements.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{"", "openid\x00profile", `a"b\c`, "\x01\n", "Ø\xff", `","`, "[\"x\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ss := strings.Split(in, "\x00")
		mine := encodeStrings(ss)
		theirs, err := json.Marshal(ss)
		if err != nil {
			t.Fatal(err)
		}
		var fromMine, fromTheirs []string
		if err := json.Unmarshal([]byte(mine), &fromMine); err != nil {
			t.Fatalf("encoding/json rejects %s: %v", mine, err)
		}
		if err := json.Unmarshal(theirs, &fromTheirs); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromMine, fromTheirs) {
			t.Fatalf("encodeStrings(%q) means %q, encoding/json's means %q", ss, fromMine, fromTheirs)
		}
		for _, text := range []string{mine, string(theirs)} {
			got, err := decodeStrings("col", text)
			if err != nil {
				t.Fatalf("decodeStrings(%s): %v", text, err)
			}
			if !reflect.DeepEqual(got, fromTheirs) {
				t.Fatalf("decodeStrings(%s) = %q, want %q", text, got, fromTheirs)
			}
		}
		// Arbitrary text: decodeStrings agrees with encoding/json on
		// whether it is an array of strings, and on its value.
		var want []string
		jerr := json.Unmarshal([]byte(in), &want)
		got, err := decodeStrings("col", in)
		if (err == nil) != (jerr == nil) {
			t.Fatalf("decodeStrings(%q) error %v, encoding/json %v", in, err, jerr)
		}
		if err == nil && jerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeStrings(%q) = %q, encoding/json %q", in, got, want)
		}
	})
}
