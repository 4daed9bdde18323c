package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/varde-eid/varde/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(exitStatus(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitStatus reports err, the outcome of run, on stderr and returns the
// process's exit status: 0 for success, 2 for a command called wrongly
// (usage shown, an unknown flag or command, an unexpected argument) or
// a node refused (a refusal), 1 for any other failure.
func exitStatus(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2 // the usage is already on stderr
	}
	fmt.Fprintln(stderr, "varde:", err)
	if _, ok := errors.AsType[*usageError](err); ok {
		return 2
	}
	if _, ok := errors.AsType[*refusal](err); ok {
		return 2
	}
	return 1
}

// refusal is a node refused to start for what starting it again would
// not change: its configuration, or the user it runs as
// (sqlstore.ErrWrongUser). It exits with status 2, which systemd does
// not restart (RestartPreventExitStatus in deploy/systemd/varde.service).
type refusal struct{ err error }

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

const usage = `usage: varde <command> [flags]

commands:
  serve     run a node (--config FILE)
  config    check a node's configuration and the key and secret files it names: config check --config FILE
  demo      run a self-contained demo on localhost with Demo Bank
  clients   manage relying parties: clients add|list|remove
  bench     measure complete passkey logins per second and their latency
  provider-sim  run a simulated national eID (an OpenID provider) for demos and tests
  provider  switch a simulated eID: provider fault --admin URL --token T --mode ok|down|slow|failing
  status    the public status page: incidents, notes, RCAs, maintenance, reports, static export
  store     back up the node's database, check it and its audit log: store backup|verify
  keys      the cluster's signing keys: keys list|retire (take a key out of the JWKS for good)
  upstream  Varde's client keys at an eID: upstream jwks ID (the public JWK set to register there)
  nodes     the cluster's nodes: nodes list|forget (take a node that will never come back off the status page)
  persons   the help desk: persons show|block|unblock IDENTIFIER (look a person up; block their Varde ID at once, and lift it);
            persons add-number IDENTIFIER NEW (a person's national number changed: keep them one person);
            persons remove-number IDENTIFIER NUMBER (take off a person a number that is not theirs);
            persons export IDENTIFIER (everything Varde holds about a person, for their access request)
  audit     audit events: read the audit log (clients added and removed, keys retired, blocks, ...);
            audit hold add|list|extend|release: keep the client addresses of a person's events, or of a
            window of time, past audit.address_retention, for a preservation order
  resilience  kill, slow and restart simulated eIDs under concurrent logins; measure failover
              (--nodes --postgres DSN: kill and restart one of two Varde nodes instead)
  version   print the version (also --version)
  help      this list; help COMMAND prints the command's usage

Flags go before any other argument; quote values with spaces; -h after a
command prints its flags, and after a group (clients, keys, ...) its
commands. Exit status: 0 success, 1 failure, 2 a command
called wrongly, or a node (serve) refused its configuration or the user
it runs as, which starting it again would not change.

On a node's SQLite store, run the commands that open it (config check,
clients, keys, nodes, persons, audit, status, store) as the user it belongs to
(sudo -u varde varde ...) or as root, whose files SQLite gives to that
user; serve runs only as that user, and refuses, naming them, to start
as root on their store. A PostgreSQL store has no such files.
`

const versionUsage = `usage: varde version

  print the version of this build, e.g. "varde v1.4.2"; takes no flags
`

func run(args []string, stdout, stderr io.Writer) (err error) {
	// Usage asked for with -h or --help is the command's answer, not a
	// mistake: it goes to stdout and the exit status is 0.
	defer func() {
		if h, ok := errors.AsType[*helpRequest](err); ok {
			fmt.Fprint(stdout, h.usage)
			err = nil
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	// The first SIGINT or SIGTERM asks the command to stop, which for a
	// node means draining (shutdown.drain) and finishing the requests it
	// holds. From then on the signals are Go's again, so a second one
	// (Ctrl-C pressed twice) ends the process at once.
	ctx, stop := stopOnSignal()
	defer stop()
	switch args[0] {
	case "serve":
		serverGC()
		return serve(ctx, args[1:], stderr)
	case "demo":
		serverGC()
		return demo(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "clients":
		return clients(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "provider-sim":
		serverGC()
		return providerSim(ctx, args[1:], stdout, stderr)
	case "provider":
		return provider(ctx, args[1:], stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr, time.Now)
	case "store":
		return storeCmd(ctx, args[1:], stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], stdout, stderr)
	case "upstream":
		return upstreamCmd(args[1:], stdout, stderr)
	case "nodes":
		return nodesCmd(ctx, args[1:], stdout, stderr, time.Now)
	case "persons":
		return personsCmd(ctx, args[1:], stdout, stderr, time.Now)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr, time.Now)
	case "resilience":
		return resilience(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		if len(args) > 1 {
			if err := groupHelp(versionUsage, args[1:], stderr); err != nil {
				return err // -h, --help or help: the usage, on stdout
			}
			fmt.Fprint(stderr, versionUsage)
			return usageErrorf("version: unexpected argument %q", args[1])
		}
		fmt.Fprintln(stdout, "varde", version)
		return nil
	case "help", "-h", "--help":
		if len(args) > 1 {
			// varde help status: the command's own usage, as
			// varde status --help prints it.
			return run(append(slices.Clone(args[1:]), "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageErrorf("unknown command %q", args[0])
}

// serverGC sets the garbage collector's target for the commands that
// serve requests (config.ServerGCPercent), unless GOGC is set.
func serverGC() {
	if pct, ok := config.ServerGCPercent(os.Getenv); ok {
		debug.SetGCPercent(pct)
	}
}

// stopOnSignal returns a context ended by the first SIGINT or SIGTERM.
// The signals are handed back to Go before the context ends, not after
// (as signal.NotifyContext with a stop on Done would), so nothing that
// starts when the context ends, a node's drain among them, can come
// before a second signal ends the process.
func stopOnSignal() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
		}
		signal.Stop(sigs)
		cancel()
	}()
	return ctx, cancel
}
