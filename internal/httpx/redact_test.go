package httpx

import "testing"

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://bank.example/events", "https://bank.example/events"},
		{"https://bank.example/events?token=s3cret", "https://bank.example/events?redacted"},
		{"https://u:s3cret@bank.example/events", "https://redacted@bank.example/events"},
		{"https://bank.example/events#s3cret", "https://bank.example/events#redacted"},
		{"https://bank.example/%zz?s3cret", "(unparsable URL)"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
