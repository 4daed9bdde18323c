// Package session manages a person's browser session at Varde: the
// cookie that carries it and the stored record behind it. The broker
// starts sessions after a provider authenticates someone; the OpenID
// endpoints and the account pages read them.
package session
