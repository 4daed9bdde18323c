// Package config reads a node's configuration: one versioned YAML file,
// overridden by a few VARDE_* environment variables (EnvNames), filled
// with defaults and validated before the node does any other I/O.
// Validate reports every problem at once, each with its field path, and
// LoadEnviron refuses VARDE_* variables that are not settings.
//
// This is the only package that reads the environment; cmd/varde passes
// os.Environ to LoadEnviron (and os.Getenv to ServerGCPercent). Each component receives its own section of Config
// from the composition root. Secrets never appear in the file itself:
// clients' secrets and the node's keys are named by file path and read by
// ReadSecretFile, which refuses a file other users can read. A
// configuration file whose store.dsn holds a password is refused on the
// same terms by Load. varde.example.yaml in the repository
// root documents every field.
package config
