package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// String slices are stored as JSON arrays. Every row of a login carries
// a few (scope, amr, redirect URIs), so they skip encoding/json's
// reflection: encodeStrings writes the array directly and decodeStrings
// splits the common form (no escapes, no spaces) itself, handing
// anything else to encoding/json. FuzzStrings checks both against
// encoding/json.

// encodeStrings returns ss as a JSON array, or "null" for a nil slice.
func encodeStrings(ss []string) string {
	if ss == nil {
		return "null"
	}
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, s)
	}
	b.WriteByte(']')
	return b.String()
}

// writeJSONString writes s as a JSON string (RFC 8259 §7), replacing
// invalid UTF-8 with U+FFFD as encoding/json does.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// decodeStrings parses a JSON array of strings, or "null" as nil.
func decodeStrings(col, text string) ([]string, error) {
	switch text {
	case "null":
		return nil, nil
	case "[]":
		return []string{}, nil
	}
	if ss, ok := splitPlain(text); ok {
		return ss, nil
	}
	var ss []string
	if err := json.Unmarshal([]byte(text), &ss); err != nil {
		return nil, fmt.Errorf("decode %s: %w", col, err)
	}
	return ss, nil
}

// splitPlain parses ["a","b"] when no element holds a quote, a backslash,
// a control character or invalid UTF-8; ok is false otherwise.
func splitPlain(text string) (ss []string, ok bool) {
	if len(text) < 4 || text[:2] != `["` || text[len(text)-2:] != `"]` {
		return nil, false
	}
	inner := text[2 : len(text)-2]
	ascii := true
	for i := 0; i < len(inner); i++ {
		switch c := inner[i]; {
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(inner) {
		return nil, false
	}
	ss = strings.Split(inner, `","`)
	for _, s := range ss {
		if strings.IndexByte(s, '"') >= 0 {
			return nil, false
		}
	}
	return ss, true
}

// decodeStringsInto is decodeStrings storing into *dst.
func decodeStringsInto(col, text string, dst *[]string) error {
	ss, err := decodeStrings(col, text)
	*dst = ss
	return err
}
