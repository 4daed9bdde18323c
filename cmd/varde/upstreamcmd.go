package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
)

const upstreamUsage = `usage: varde upstream jwks --config FILE ID

  jwks     print the public JWK set Varde authenticates with at upstream
           ID (auth_method private_key_jwt), as a node serves it at
           ISSUER/upstream/ID/jwks: the key of client_key_file, which
           signs, then those of client_next_key_file and
           client_previous_key_file, if set, which never sign; each with
           its RFC 7638 thumbprint as kid, use sig and alg. Register this
           set at an eID that holds Varde's keys in its client
           registration instead of fetching them from that URL, and
           again at each step of a rotation of the key
           (docs/upstream-key-rotation.md). It
           reads the configuration (the file, then the VARDE_*
           environment) and the upstream's key files as a node does, so
           run it as the node's user or as root, and prints no private
           key. Exit status 0; 1 if a file cannot be read or holds no
           usable key, or the upstream is unknown or has no client keys;
           2 if called wrongly.
`

// upstreamCmd runs upstream's commands.
func upstreamCmd(args []string, stdout, stderr io.Writer) error {
	fs, path, err := adminFlags("upstream", upstreamUsage, args, stderr)
	if err != nil {
		return err
	}
	if args[0] != "jwks" {
		return unknownSubcommand("upstream", upstreamUsage, args[0], stderr, "jwks")
	}
	if err := parseFlags(fs, args[1:], "ID"); err != nil {
		return err
	}
	cfg, err := config.LoadEnvironAsRead(*path, os.Environ)
	if err != nil {
		return withoutConfigHint(*path, err)
	}
	set, err := app.UpstreamJWKS(cfg, fs.Arg(0))
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return fmt.Errorf("upstream %s: %w", fs.Arg(0), err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
