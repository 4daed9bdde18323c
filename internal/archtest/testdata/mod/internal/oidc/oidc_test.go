package oidc

import (
	"os"
	"testing"
)

// Tests may read the environment.
func TestEnv(t *testing.T) { _ = os.Getenv("HOME") }
