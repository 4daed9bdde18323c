package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

const clientsUsage = `usage: varde clients <add|list|remove> --config FILE [flags]

  add      register a relying party in the store (see --help of add)
  list     list relying parties, each with the sector its people's subject
           identifiers are derived from (its client ID when it has none)
  remove   remove a relying party (--id ID), and revoke what was issued to it;
           one the configuration file declares only with --still-declared
`

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func clients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path, err := adminFlags("clients", clientsUsage, args, stderr)
	if err != nil {
		return err
	}
	var c config.Client
	var redirects, logouts listFlag
	var jwksFile, levels, claims, providers, components, introspect string
	var stillDeclared bool
	switch args[0] {
	case "add":
		fs.StringVar(&c.ID, "id", "", "client ID (required)")
		fs.StringVar(&c.Name, "name", "", "name shown to people (required)")
		fs.StringVar(&c.AuthMethod, "auth-method", "private_key_jwt", "private_key_jwt, client_secret_basic or none")
		fs.StringVar(&jwksFile, "jwks-file", "", "file with the client's public JWK set (private_key_jwt)")
		fs.StringVar(&c.JWKSURI, "jwks-uri", "", "URL of the client's JWK set (private_key_jwt)")
		fs.StringVar(&c.SecretFile, "secret-file", "", "file with the client secret, at least 32 characters (client_secret_basic)")
		fs.Var(&redirects, "redirect-uri", "redirect URI, matched exactly, so no '*' wildcards; https, http only to localhost (repeatable)")
		fs.Var(&logouts, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
		fs.BoolVar(&c.RequirePAR, "require-par", false, "refuse authorization requests that were not pushed first")
		fs.BoolVar(&c.LegacyEndpointAudience, "legacy-endpoint-audience", false,
			"legacy compatibility: also accept assertions whose audience is the token, PAR, revocation or introspection endpoint URL, or in a one-element array, alone (private_key_jwt; default: the issuer only, as a string)")
		fs.BoolVar(&c.DPoPBoundAccessTokens, "dpop", false,
			"require a DPoP proof at every token request, so its access tokens are bound to its key (RFC 9449)")
		fs.BoolVar(&c.RefreshTokens, "refresh-tokens", false,
			"give it refresh tokens; without offline_access in its request one ends with the person's session (default: none)")
		fs.StringVar(&c.IDTokenSignedResponseAlg, "id-token-alg", "ES256",
			"the algorithm its ID tokens and logout tokens are signed with: ES256, or RS256 for a relying party that verifies nothing else "+
				"(needs keys.rsa_signing_key_file on every node)")
		fs.StringVar(&levels, "levels", "", "allowed assurance levels, comma-separated (default all)")
		fs.StringVar(&c.SectorID, "sector", "", "pairwise subject sector (default the client ID)")
		fs.StringVar(&c.SectorIDChangeAccepted, "sector-change-accepted", "",
			"the sector a client removed before had under this ID, when people had logged in to it: they get new subject identifiers "+
				"here, which is refused unless this names it (ADR 35)")
		fs.StringVar(&claims, "claims", "", "claims it may receive, comma-separated: "+strings.Join(config.KnownClaims(), ","))
		fs.StringVar(&providers, "providers", "", "providers it accepts, comma-separated, e.g. passkey,bankid (default all)")
		fs.StringVar(&c.DegradedLevel, "degraded-level", "", "lower level it accepts when no provider meeting its level is up, the passkey aside (default: never lowered)")
		fs.StringVar(&c.StatusWebhook, "status-webhook", "", "https URL to POST signed notifications to when a component it depends on changes state (http only to localhost)")
		fs.StringVar(&c.BackchannelLogoutURI, "backchannel-logout-uri", "",
			"https URL to POST a logout token to when a session in which it got tokens ends (OpenID Connect Back-Channel Logout; http only to localhost)")
		fs.BoolVar(&c.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false,
			"it needs sid in every logout token (backchannel_logout_session_required): always met, every logout token carries sid; needs --backchannel-logout-uri")
		fs.StringVar(&introspect, "introspect-tokens-of", "",
			"clients whose access tokens it may introspect as their resource server, comma-separated (same sector only; then no --redirect-uri is needed)")
		fs.StringVar(&components, "status-components", "", "components it hears about, comma-separated, e.g. store,bankid (default the providers it accepts and store)")
	case "remove":
		fs.StringVar(&c.ID, "id", "", "client ID (required)")
		fs.BoolVar(&stillDeclared, "still-declared", false,
			"remove it now though the configuration file declares it (a compromised client, say): it stops working at once, "+
				"but a node that starts with a file declaring it adds it again, so take it out of every node's file too")
	case "list":
	default:
		return unknownSubcommand("clients", clientsUsage, args[0], stderr, "add", "list", "remove")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case args[0] == "add" && (c.ID == "" || c.Name == ""):
		return usageErrorf("clients add: --id and --name are required")
	case args[0] == "remove" && c.ID == "":
		return usageErrorf("clients remove: --id is required")
	}
	cfg, st, err := openNodeStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()

	switch args[0] {
	case "list":
		return listClients(ctx, st, stdout)
	case "remove":
		return removeClient(ctx, st, cfg, *path, c.ID, stillDeclared, stdout, stderr)
	}
	c.RedirectURIs, c.PostLogoutRedirectURIs = redirects, logouts
	c.AllowedLevels, c.Claims, c.Providers = splitList(levels), splitList(claims), splitList(providers)
	c.StatusComponents = splitList(components)
	c.IntrospectTokensOf = splitList(introspect)
	if jwksFile != "" {
		raw, err := readJWKSFile("--jwks-file", jwksFile)
		if err != nil {
			return err
		}
		c.JWKS = string(raw)
	}
	// Validate the new client the way the node validates its config file,
	// so a client added here is held to exactly the same rules.
	if err := sectorFree(ctx, st, cfg, c); err != nil {
		return err
	}
	cfg.Clients = append(cfg.Clients, c)
	if err := cfg.Validate(); err != nil {
		// The file was valid before: every problem is with the flags
		// given, a command called wrongly.
		return &usageError{addedClientErrors(err, len(cfg.Clients)-1)}
	}
	sc, err := c.ToStore(time.Now())
	if err != nil {
		return err
	}
	sc.Source = store.ClientSourceCLI
	if _, err := st.GetClient(ctx, c.ID); err == nil {
		return errClientExists(c.ID)
	}
	if err := sectorKept(ctx, st, c, stderr); err != nil {
		return err
	}
	if err := st.AddClient(ctx, sc, app.ClientAdded(ctx, sc, store.ClientSourceCLI, time.Now())); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errClientExists(c.ID)
		}
		return err
	}
	fmt.Fprintf(stdout, "added client %s\n", c.ID)
	if sc.IDTokenSigningAlg() == store.IDTokenRS256 {
		warnRSAKeyless(ctx, st, c.ID, time.Now(), stderr)
	}
	return nil
}

// errClientExists refuses to add client id over one stored.
func errClientExists(id string) error {
	return fmt.Errorf("a client with ID %q already exists; remove it first", id)
}

// sectorKept refuses client c, about to be added, if its ID was a
// client's that people logged in to under another sector, unless
// --sector-change-accepted names that sector: then the change is
// recorded in the audit log before the client is added
// (app.SectorChanges). What cannot be told is said on stderr.
func sectorKept(ctx context.Context, st store.Store, c config.Client, stderr io.Writer) error {
	changes, warnings, err := app.SectorChanges(ctx, st, []config.Client{c}, store.ClientSourceCLI)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "WARNING: %s\n", w)
	}
	for _, ch := range changes {
		if err := app.RecordSectorChange(ctx, st, ch, store.ClientSourceCLI, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// warnRSAKeyless names the nodes whose key set publishes a signing key
// but no RSA key: they refuse id, which wants RS256 ID tokens, its
// tokens (server_error) until restarted with keys.rsa_signing_key_file,
// and refuse to start without it (ADR 32).
func warnRSAKeyless(ctx context.Context, st store.PublicKeys, id string, now time.Time, w io.Writer) {
	ks, err := st.ListPublicKeys(ctx, now)
	if err != nil {
		fmt.Fprintf(w, "WARNING: could not read which nodes have an RSA key: %v\n", err)
		return
	}
	nodes := map[string]bool{}
	for _, k := range ks {
		if !k.RetiredAt.IsZero() {
			continue
		}
		nodes[k.Node] = nodes[k.Node] || keyAlg(k) == store.IDTokenRS256
	}
	var without []string
	for node, rsa := range nodes {
		if !rsa {
			without = append(without, node)
		}
	}
	slices.Sort(without)
	if len(without) > 0 {
		fmt.Fprintf(w, "WARNING: node(s) %s publish no RSA key: they refuse client %s its tokens until they are restarted "+
			"with keys.rsa_signing_key_file, and a node without one refuses to start now that %s is registered\n",
			strings.Join(without, ", "), id, id)
	}
}

// clientFlags are the flags of clients add by the configuration file's
// name for the setting.
var clientFlags = map[string]string{
	"id": "--id", "name": "--name", "auth_method": "--auth-method", "secret_file": "--secret-file",
	"jwks": "--jwks-file", "jwks_uri": "--jwks-uri", "redirect_uris": "--redirect-uri",
	"post_logout_redirect_uris": "--post-logout-redirect-uri", "require_par": "--require-par",
	"allowed_levels": "--levels", "sector_id": "--sector", "claims": "--claims", "providers": "--providers",
	"degraded_level": "--degraded-level", "legacy_endpoint_audience": "--legacy-endpoint-audience",
	"dpop_bound_access_tokens": "--dpop", "refresh_tokens": "--refresh-tokens", "id_token_signed_response_alg": "--id-token-alg", "status_webhook": "--status-webhook", "status_components": "--status-components",
	"backchannel_logout_uri": "--backchannel-logout-uri", "backchannel_logout_session_required": "--backchannel-logout-session-required",
	"introspect_tokens_of":      "--introspect-tokens-of",
	"sector_id_change_accepted": "--sector-change-accepted",
}

// settingName matches a setting's name in the configuration file in a
// problem's text.
var settingName = regexp.MustCompile(`\b[a-z_]+\b`)

// addedClientErrors turns the problems config.Validate found with the
// client being added, clients[n] of the configuration, into what the
// operator typed: a problem with one of its settings names the flag
// (--redirect-uri, not clients[n].redirect_uris[0]), and a problem with
// a client of the file that mentions it says "the client being added".
func addedClientErrors(err error, n int) error {
	self := fmt.Sprintf("clients[%d]", n)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			out = append(out, e)
			continue
		}
		field, msg := fe.Field, strings.ReplaceAll(fe.Msg, self, "the client being added")
		if rest, mine := strings.CutPrefix(field, self); mine && (rest == "" || rest[0] == '.') {
			name, _, _ := strings.Cut(strings.TrimPrefix(rest, "."), "[")
			field = "clients add"
			if flag, ok := clientFlags[name]; ok {
				field = flag
			}
			if !strings.Contains(msg, "clients[") {
				// Only this client's settings are named; a message about a
				// client of the file keeps the file's names.
				msg = settingName.ReplaceAllStringFunc(msg, func(w string) string {
					if flag, ok := clientFlags[w]; ok && (strings.Contains(w, "_") || w == "jwks") {
						return flag
					}
					return w
				})
			}
		}
		out = append(out, &config.FieldError{Field: field, Msg: msg})
	}
	return errors.Join(out...)
}

// removeClient removes client id (app.RemoveClient). A client the
// configuration file at path declares would come back when a node
// starts with that file (app.New stores every declared client), so
// removing one is refused unless stillDeclared: then it is removed,
// since cutting a compromised client off must not wait for a file to be
// edited and a node restarted, and stderr says that the file must
// change too.
func removeClient(ctx context.Context, st store.Clients, cfg *config.Config, path, id string, stillDeclared bool, stdout, stderr io.Writer) error {
	declared := slices.ContainsFunc(cfg.Clients, func(c config.Client) bool { return c.ID == id })
	if declared && !stillDeclared {
		return fmt.Errorf("client %s is declared in the configuration file %s, and a node that starts with it adds the client again: "+
			"take it out of that file (and every node's), then run this again; "+
			"or, to cut it off now and edit the files next, add --still-declared", id, path)
	}
	n, err := app.RemoveClient(ctx, st, id, store.ClientSourceCLI, time.Now())
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "removed client %s; grants revoked: %d (their refresh and access tokens no longer work)\n", id, n)
	if declared {
		fmt.Fprintf(stderr, "WARNING: client %s is still declared in %s: take it out of that file and every node's now, "+
			"or the next node to start with it adds the client again\n", id, path)
	}
	return nil
}

// sectorFree refuses client c if it would share pairwise subject
// identifiers with a client of the configuration file or the store
// without both naming the sector (config.SectorClash), or would learn
// another sector's subject identifiers by introspection, or let another
// learn its own (config.ForeignResourceServer). It is checked before the
// file's own rules, so a clash names the flags the operator typed
// (--sector), not the file's settings.
func sectorFree(ctx context.Context, st store.Clients, cfg *config.Config, c config.Client) error {
	stored, err := st.ListClients(ctx)
	if err != nil {
		return err
	}
	others := make([]otherClient, 0, len(cfg.Clients)+len(stored))
	seen := map[string]bool{}
	for _, o := range cfg.Clients {
		others = append(others, otherClient{o.ID, o.SectorID, o.IntrospectTokensOf})
		seen[o.ID] = true
	}
	for _, o := range stored {
		if !seen[o.ID] { // a node stores the file's clients too
			others = append(others, otherClient{o.ID, o.SectorID, o.IntrospectTokensOf})
		}
	}
	return sectorClashes(c, others)
}

// otherClient is what sectorClashes needs of a client already there.
type otherClient struct {
	id, sector string
	introspect []string
}

// sectorClashes refuses client c beside others, naming every client it
// clashes with, grouped by the kind of clash, so that one run shows all
// there is to resolve.
func sectorClashes(c config.Client, others []otherClient) error {
	var ownSector, sectorOwner, foreign, introspectors []string
	for _, o := range others {
		switch {
		case config.SectorClash(c.ID, c.SectorID, o.id, o.sector):
			ownSector = append(ownSector, o.id)
		case config.SectorClash(o.id, o.sector, c.ID, c.SectorID):
			sectorOwner = append(sectorOwner, o.id)
		case config.ForeignResourceServer(c.ID, c.SectorID, c.IntrospectTokensOf, o.id, o.sector):
			foreign = append(foreign, o.id)
		case config.ForeignResourceServer(o.id, o.sector, o.introspect, c.ID, c.SectorID):
			introspectors = append(introspectors, o.id)
		}
	}
	var errs []error
	if len(ownSector) > 0 {
		errs = append(errs, fmt.Errorf("client ID %q is the sector of %s, so %s would get the same subject identifiers: "+
			"add --sector %s if they belong to one organisation, or else choose another client ID", c.ID, clientNames(ownSector), both(ownSector), c.ID))
	}
	if len(sectorOwner) > 0 {
		errs = append(errs, fmt.Errorf("sector %q is the ID of %s, which has no sector of its own, so %s would get "+
			"the same subject identifiers: choose another --sector", c.SectorID, clientNames(sectorOwner), both(sectorOwner)))
	}
	if len(foreign) > 0 {
		errs = append(errs, fmt.Errorf("%s %s another pairwise sector, so introspecting its tokens would reveal its subject identifiers: "+
			"a resource server needs the --sector of the clients it serves", clientNames(foreign), has(foreign)))
	}
	if len(introspectors) > 0 {
		errs = append(errs, fmt.Errorf("%s may introspect this client's tokens but %s another pairwise sector: "+
			"give this client its --sector, or remove %s first", clientNames(introspectors), has(introspectors), strings.Join(introspectors, ", ")))
	}
	return errors.Join(errs...)
}

// clientNames names the clients ids: `client "a"`, or `3 clients ("a",
// "b", "c")`.
func clientNames(ids []string) string {
	if len(ids) == 1 {
		return fmt.Sprintf("client %q", ids[0])
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = strconv.Quote(id)
	}
	return fmt.Sprintf("%d clients (%s)", len(ids), strings.Join(quoted, ", "))
}

func both(ids []string) string {
	if len(ids) == 1 {
		return "the two"
	}
	return "all of them"
}

func has(ids []string) string {
	if len(ids) == 1 {
		return "has"
	}
	return "have"
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// quoteControl returns s as clients list prints it: as it is, or quoted as a
// Go string ("Shop\nBank") if it holds a control character. A client
// stored before names with them were refused may hold a line break,
// which would show as a client of its own, or a tab, which would shift
// the columns after it.
func quoteControl(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// listURIs returns uris as clients list prints them, separated by
// spaces: a URI stored before white space in URIs was refused is
// quoted, so that it does not read as two.
func listURIs(uris []string) string {
	out := make([]string, len(uris))
	for i, u := range uris {
		out[i] = u
		if strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			out[i] = strconv.Quote(u)
		}
	}
	return strings.Join(out, " ")
}

// listSector is the sector c's subject identifiers are derived from
// (ADR 4, 35): its sector ID, or its client ID, marked as such, when it
// has none, so that an operator sees which one a change of sector_id
// would leave.
func listSector(c *store.Client) string {
	if c.SectorID == "" {
		return quoteControl(c.ID) + " (client ID)"
	}
	return quoteControl(c.SectorID)
}

func listClients(ctx context.Context, st store.Clients, w io.Writer) error {
	cs, err := st.ListClients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSECTOR\tAUTH\tPAR\tREFRESH\tID TOKEN\tLEVELS\tPROVIDERS\tSOURCE\tREDIRECT URIS\tSTATUS WEBHOOK\tBACK-CHANNEL LOGOUT\tINTROSPECTS")
	for _, c := range cs {
		levels := strings.Join(c.AllowedLevels, ",")
		if levels == "" {
			levels = "all"
		}
		provs := strings.Join(c.Providers, ",")
		if provs == "" {
			provs = "all"
		}
		if c.DegradedLevel != "" {
			levels += " (degraded: " + c.DegradedLevel + ")"
		}
		auth := c.AuthMethod
		if c.LegacyEndpointAudience {
			auth += " (endpoint aud)"
		}
		if c.DPoPBoundAccessTokens {
			auth += " (DPoP)"
		}
		// A secret a relying party keeps in its receivers' query or user
		// information is not printed.
		hook := httpx.RedactURL(c.StatusWebhook)
		if hook == "" {
			hook = "-"
		} else if len(c.StatusComponents) > 0 {
			hook += " (" + strings.Join(c.StatusComponents, ",") + ")"
		}
		bcl := httpx.RedactURL(c.BackchannelLogoutURI)
		if bcl == "" {
			bcl = "-"
		}
		introspects := strings.Join(c.IntrospectTokensOf, ",")
		if introspects == "" {
			introspects = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", quoteControl(c.ID), quoteControl(c.Name), listSector(c),
			auth, c.RequirePAR, c.RefreshTokens,
			c.IDTokenSigningAlg(), levels, provs, c.Source,
			listURIs(c.RedirectURIs), hook, bcl, introspects)
	}
	return tw.Flush()
}
