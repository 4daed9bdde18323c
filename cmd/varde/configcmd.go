package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const configUsage = `usage: varde config check --config FILE

  check    read the configuration as varde serve does (the file, then the
           VARDE_* environment), then read every key and secret file it
           names (signing key, RSA signing key, subject salt, each
           client's secret_file, each upstream's client_key_file,
           client_next_key_file and client_previous_key_file, or its
           client_secret_file) and check them as a node does at start,
           printing none of them: the next and previous client keys
           must each be a key of their own that can sign client
           assertions (varde upstream jwks prints their public keys).
           It names every problem at once, each with its setting: the
           settings' own, and those of the files that the valid settings
           name. Exit status 0 if there is none, 1 otherwise (2 without
           --config, when the environment alone is no configuration).
           The files are read with the rights of whoever runs it: run
           it as the node's user (sudo -u varde varde config check ...),
           which also checks that the node can read them, or, where the
           files it names are root's and the node gets copies of them
           (systemd's LoadCredential=), as root. If the store exists
           (the SQLite file, or the PostgreSQL database answers), the
           subject salt is compared with the one the store was first
           used with, and the clients the file declares with those
           added with varde clients add and with the sectors they were
           stored with (a changed sector_id of a client people have
           logged in to stops a node, unless sector_id_change_accepted
           names the old sector; none of them may want RS256 ID tokens
           from a node without an RSA key), and the signing keys with
           those the store publishes (another node's key, while that
           node has not left, as when two nodes were given one key
           file, or a retired key, stops a node), reading the store only (a
           SQLite store as its owner or as root: see varde help); a
           declared client removed, with people who had logged in to
           it, before removals recorded its sector gets on stderr the
           warning a node logs at start (its old sector is unknown),
           which does not change the exit status. A store that
           answers and whose subject salt or clients cannot be read
           (the role may not read them) fails the check, exit status
           1, as it would stop a node, and so does a store that cannot
           be opened for a reason a node does not wait out (a database
           or role that does not exist, a wrong password); where the store cannot be
           reached, cannot answer in time, or has a schema other than
           this version's (a node of this version upgrades an older
           one), it says the store, the clients or the keys were not checked,
           and why, and the node checks at start. It also says whom the node believes the
           client's address from (X-Forwarded-For, from the proxies
           server.trusted_proxies lists), or that it believes no one,
           and after how long those addresses are deleted from the
           audit log (audit.address_retention), unless a hold for a
           preservation order keeps them longer (varde help audit);
           and, for each upstream with private_key_jwt, the kid of the
           key its client assertions are signed with and of the next
           and previous keys published beside it (ADR 56).
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
	cfg, err := loadNodeConfig(*path)
	if err != nil {
		return err
	}
	from := "the environment"
	if *path != "" {
		from = *path
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
	defer cancel()
	where := sqlstore.DescribeDSN(cfg.Store.Driver, cfg.Store.DSN)
	pinned, err := checkSalt(ctx, cfg, where)
	if err != nil && !errors.Is(err, app.ErrNoStore) && !checkedAtStart(err) {
		return err
	}
	var clientsErr, keysErr error
	if err == nil {
		// The store answered: the clients the file declares must not
		// clash with those added with varde clients add, or the node
		// refuses to start. What a start would warn of is said here
		// too, as varde clients add says it, and stops nothing.
		if clientsErr = checkClients(ctx, cfg, where, stderr); clientsErr != nil && !checkedAtStart(clientsErr) {
			return clientsErr
		}
		// A key file copied from another node, or a retired key,
		// stops the node at its first publish.
		if keysErr = checkKeys(ctx, cfg, where); keysErr != nil && !checkedAtStart(keysErr) {
			return keysErr
		}
	}
	fmt.Fprintf(stdout, "%s: the configuration, and every key and secret file it names, can serve\n", from)
	fmt.Fprintln(stdout, trustedProxiesLine(cfg.Server))
	fmt.Fprintln(stdout, addressRetentionLine(cfg.Audit))
	for _, u := range cfg.Upstreams {
		if line := upstreamKeysLine(cfg, u); line != "" {
			fmt.Fprintln(stdout, line)
		}
	}
	switch {
	case errors.Is(err, app.ErrNoStore):
		fmt.Fprintf(stdout, "the store was not checked: %s yet; the first node to start creates it and keeps its subject salt\n", storeMissing(cfg.Store))
	case err != nil:
		fmt.Fprintf(stdout, "the store was not checked (%v): the node compares the subject salt with the store's when it starts\n", err)
	case pinned:
		fmt.Fprintf(stdout, "the subject salt is the one the store at %s was first used with\n", where)
	default:
		fmt.Fprintf(stdout, "the store at %s holds no subject salt yet: the first node to start keeps its own\n", where)
	}
	if clientsErr != nil {
		fmt.Fprintf(stdout, "the clients the file declares were not checked against those of the store (%v): the node checks them when it starts\n", clientsErr)
	}
	switch {
	case keysErr != nil:
		fmt.Fprintf(stdout, "the signing keys were not checked against those the store publishes (%v): the node checks them when it starts\n", keysErr)
	case err == nil:
		fmt.Fprintf(stdout, "the signing keys are no other running node's, and none was retired\n")
	}
	return nil
}

// checkSalt compares the subject salt cfg names with the one its store
// at where was first used with (app.CheckStoreSalt). An error that is
// neither ErrNoStore nor checkedAtStart fails the check: a changed
// salt, which stops a node, or a store that answered and whose salt
// could not be read, which a node reads at start too.
func checkSalt(ctx context.Context, cfg *config.Config, where string) (pinned bool, err error) {
	pinned, err = app.CheckStoreSalt(ctx, cfg)
	if err == nil || errors.Is(err, app.ErrSaltChanged) || errors.Is(err, app.ErrNoStore) || checkedAtStart(err) {
		return pinned, err
	}
	// A store that cannot be opened for a reason a node does not wait
	// out (no such database or role, a wrong password, a certificate
	// that does not verify) stops a node at start.
	if open := (*app.OpenError)(nil); errors.As(err, &open) {
		return pinned, fmt.Errorf("the store at %s cannot be opened, and a node started now would stop the same way "+
			"(it waits only for a server that cannot be reached or cannot take writes yet): %w", where, open.Err)
	}
	return pinned, storeRefused("the subject salt could not be compared with the one the store at "+where+" was first used with", err)
}

// checkClients checks the clients cfg declares against those of its
// store at where (app.CheckStoreClients), writing what a start would
// warn of to stderr. An error that is not checkedAtStart fails the
// check: a clash, which stops a node, or a store that answered and
// whose clients could not be read, which a node reads at start too.
func checkClients(ctx context.Context, cfg *config.Config, where string, stderr io.Writer) error {
	warnings, err := app.CheckStoreClients(ctx, cfg)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "WARNING: %s\n", w)
	}
	if err == nil || errors.Is(err, app.ErrClientsClash) || checkedAtStart(err) {
		return err
	}
	return storeRefused("the clients the file declares could not be checked against those of the store at "+where, err)
}

// checkKeys checks the signing keys cfg names against those its store
// at where publishes (app.CheckStoreKeys). An error that is not
// checkedAtStart fails the check: a key another running node publishes
// or one that was retired, which stops a node, or a store that
// answered and whose keys could not be read.
func checkKeys(ctx context.Context, cfg *config.Config, where string) error {
	err := app.CheckStoreKeys(ctx, cfg, time.Now())
	if err == nil || errors.Is(err, app.ErrKeyRefused) || checkedAtStart(err) {
		return err
	}
	return storeRefused("the signing keys could not be compared with those the store at "+where+" publishes", err)
}

// storeRefused is config check's failure when a store answered and
// what it was asked for could not be read from it (say, the role may
// not read the table): a node reading it at start fails the same way,
// so the check must not pass.
func storeRefused(what string, err error) error {
	return fmt.Errorf("%s, which a node reads when it starts: %w", what, err)
}

// checkedAtStart reports whether err means that config check could not
// check against the store now, but a node starting can: the store
// could not be reached or did not answer in time, the server's
// (store.Unavailable: gone, overloaded, a statement timeout) or config
// check's own (storeCheckTimeout), and a node waits for it or finds
// it; or its schema is not exactly this build's (*sqlstore.SchemaError),
// which config check does not read and a node of this version upgrades
// (an older one) or serves on (a newer one). Config check then says
// what was not checked, and why, and does not fail.
func checkedAtStart(err error) bool {
	var schema *sqlstore.SchemaError
	return store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &schema)
}

// trustedProxiesLine says whom a node with s believes X-Forwarded-For
// from: every address in the access and audit logs comes from it.
func trustedProxiesLine(s config.Server) string {
	prefixes, err := s.TrustedPrefixes()
	switch {
	case err != nil:
		return err.Error() // config.Validate refused it before
	case len(prefixes) == 0:
		return "X-Forwarded-For is believed from no one (server.trusted_proxies is empty): each request's client is its TCP peer"
	}
	names := make([]string, len(prefixes))
	for i, p := range prefixes {
		names[i] = p.String()
		if p.IsSingleIP() {
			names[i] = p.Addr().String()
		}
	}
	return "X-Forwarded-For is believed only from " + strings.Join(names, ", ") +
		" (server.trusted_proxies): a request from there has the client address it names, read from the right"
}

// addressRetentionLine says how long the client addresses in the audit
// log are kept (ADR 38), in days, which the setting cannot be written in,
// and that a hold keeps some longer (ADR 45).
func addressRetentionLine(a config.Audit) string {
	return fmt.Sprintf("client addresses in the audit log are deleted %s (%v, audit.address_retention) after their event, "+
		"unless a hold keeps them longer (varde audit hold list); "+
		"the events stay, and those sealed before schema 0031 keep theirs", retentionDays(a.AddressRetention), a.AddressRetention)
}

// upstreamKeysLine says which client key a node signs with towards
// upstream u, by kid, and which others it publishes (ADR 56), so that an
// operator in the middle of a rotation can compare them with what the
// eID holds; "" for an upstream with a client secret.
func upstreamKeysLine(cfg *config.Config, u config.Upstream) string {
	if u.AuthMethod != store.AuthPrivateKeyJWT {
		return ""
	}
	set, err := app.UpstreamJWKS(cfg, u.ID)
	if err != nil || len(set.Keys) == 0 {
		return "" // app.CheckFiles reported it already
	}
	line := fmt.Sprintf("upstream %s: client assertions are signed with the key %s (client_key_file)", u.ID, set.Keys[0].KeyID)
	var also []string
	rest := set.Keys[1:]
	for _, role := range []struct{ file, name string }{
		{u.ClientNextKeyFile, "the next key %s (client_next_key_file)"},
		{u.ClientPreviousKeyFile, "the previous key %s (client_previous_key_file)"},
	} {
		if role.file != "" && len(rest) > 0 {
			also = append(also, fmt.Sprintf(role.name, rest[0].KeyID))
			rest = rest[1:]
		}
	}
	if len(also) > 0 {
		line += "; " + oidcup.JWKSPath(u.ID) + " also publishes, never signing, " + strings.Join(also, " and ")
	}
	return line
}

// retentionDays is d in days ("180 days", "1.5 days", "1 day"), which a
// duration setting cannot be written in.
func retentionDays(d time.Duration) string {
	days := strconv.FormatFloat(d.Hours()/24, 'f', -1, 64)
	if days == "1" {
		return "1 day"
	}
	return days + " days"
}

// storeCheckTimeout bounds config check's read of the store, which may
// be a PostgreSQL server that does not answer.
const storeCheckTimeout = 10 * time.Second

// loadNodeConfig reads a node's configuration from the file at path and
// the environment, and every key and secret file it names
// (app.CheckFiles): what varde serve starts from, and all that varde
// config check checks, so that the two cannot disagree.
// When the settings are not valid, it reports their problems with those
// of the files that the valid settings name.
func loadNodeConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadEnvironAsRead(path, os.Environ)
	if err != nil {
		if cfg != nil {
			err = errors.Join(err, app.CheckFiles(cfg.WithValidFiles(err)))
		}
		return nil, withoutConfigHint(path, err)
	}
	if err := app.CheckFiles(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
