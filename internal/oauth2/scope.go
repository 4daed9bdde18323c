package oauth2

// ValidScope reports whether s is a scope token (RFC 6749 §3.3):
// one or more of %x21 / %x23-5B / %x5D-7E.
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}
