// Package session is a policy package.
package session
