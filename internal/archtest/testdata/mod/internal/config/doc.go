// Package config may read the environment.
package config

import "os"

// Load reads the environment through env.
func Load(env func(string) string) string {
	v, _ := os.LookupEnv("B")
	return env("A") + v
}

// LoadEnviron reads the environment through environ.
func LoadEnviron(environ func() []string) string {
	return environ()[0]
}
