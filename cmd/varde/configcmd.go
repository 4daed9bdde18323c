package main

import (
	"fmt"
	"io"
	"os"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
)

const configUsage = `usage: varde config check --config FILE

  check    read the configuration as varde serve does (the file, then the
           VARDE_* environment), then read every key and secret file it
           names (signing key, subject salt, each client's secret_file,
           each upstream's client_key_file or client_secret_file) and
           check them as a node does at start, printing none of them.
           Every problem is named by its setting; the exit status is 0
           if there is none, 1 otherwise. Run it as the node's user: the
           files are read with the rights of whoever runs it. The
           database is not opened: a subject salt other than the one the
           store was first used with is found when the node starts
`

// configCmd runs config's commands.
func configCmd(args []string, stdout, stderr io.Writer) error {
	if err := groupHelp(configUsage, args, stderr); err != nil {
		return err
	}
	if args[0] != "check" {
		return unknownSubcommand("config", configUsage, args[0], stderr, "check")
	}
	fs, path, err := adminFlags("config", configUsage, args, stderr)
	if err != nil {
		return err
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if _, err := loadNodeConfig(*path); err != nil {
		return err
	}
	from := "the environment"
	if *path != "" {
		from = *path
	}
	fmt.Fprintf(stdout, "%s: the configuration, and every key and secret file it names, can serve\n", from)
	return nil
}

// loadNodeConfig reads a node's configuration from the file at path and
// the environment, and every key and secret file it names
// (app.CheckFiles): what varde serve starts from, and all that varde
// config check checks, so that the two cannot disagree.
func loadNodeConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadEnviron(path, os.Environ)
	if err != nil {
		return nil, err
	}
	if err := app.CheckFiles(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
