package passkeyidp

import (
	"testing"
	"time"
)

// TestFormatTime: each language writes dates and times its own way.
func TestFormatTime(t *testing.T) {
	at := time.Date(2026, time.March, 5, 14, 7, 0, 0, time.Local)
	tests := []struct{ lang, want string }{
		{"en", "5 Mar 2026 14:07"},
		{"nb", "05.03.2026 14:07"},
		{"da", "05.03.2026 14.07"},
		{"xx", "5 Mar 2026 14:07"},
	}
	for _, tt := range tests {
		if got := formatTime(tt.lang, at); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.lang, got, tt.want)
		}
	}
}
