package httpx_test

import (
	"testing"

	"github.com/varde-eid/varde/internal/httpx"
)

// TestBackTo: a page's own path, with its query encoded again, is
// where a kept time limit goes back to; any other address is refused.
func TestBackTo(t *testing.T) {
	pages := []string{"/account", "/passkey/login"}
	tests := []struct {
		back, want string
		ok         bool
	}{
		{"/account", "/account", true},
		{"/passkey/login?attempt=abc", "/passkey/login?attempt=abc", true},
		{"/passkey/login?attempt=a%20b&lang=da", "/passkey/login?attempt=a+b&lang=da", true},
		{"/account?", "/account", true},
		{"", "", false},
		{"account", "", false},
		{"//evil.example/account", "", false},
		{"/\\evil.example/account", "", false},
		{"https://evil.example/account", "", false},
		{"/account/../status", "", false},
		{"/account/", "", false},
		{"/ACCOUNT", "", false},
		{"/account#x", "", false},
		{"/account?a=%zz", "", false},
		{"/account\r\nSet-Cookie: x=1", "", false},
		{"/status", "", false},
	}
	for _, tc := range tests {
		got, ok := httpx.BackTo(tc.back, pages)
		if got != tc.want || ok != tc.ok {
			t.Errorf("BackTo(%q) = %q, %v; want %q, %v", tc.back, got, ok, tc.want, tc.ok)
		}
	}
}
