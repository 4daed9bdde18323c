package oidc

import (
	"os"
	"testing"
)

// Tests may read the environment.
func TestEnv(t *testing.T) { _ = os.Getenv("HOME") }

// FuzzListed is in the test's inventory; FuzzUnlisted is not.
func FuzzListed(f *testing.F) {}

func FuzzUnlisted(f *testing.F) {}
