package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// MinSecretLength is the shortest client secret accepted, in characters.
const MinSecretLength = 32

// ClientSecret reads c's secret from c.SecretFile. Surrounding white
// space (such as a final newline) is not part of the secret. A secret
// shorter than MinSecretLength, or in a file that others may read
// (ReadSecretFile), is an error.
func ClientSecret(c Client) ([]byte, error) {
	if c.SecretFile == "" {
		return nil, fmt.Errorf("client %s: no secret_file", c.ID)
	}
	b, err := ReadSecretFile("client "+c.ID+" secret_file", c.SecretFile)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretLength {
		return nil, fmt.Errorf("client %s secret in %s: shorter than %d characters", c.ID, c.SecretFile, MinSecretLength)
	}
	return b, nil
}

// ToStore converts a validated configured client into the stored record,
// created at now with Source store.ClientSourceConfig. For client_secret_basic it reads
// the secret file and stores only the secret's SHA-256.
func (c Client) ToStore(now time.Time) (*store.Client, error) {
	sc := &store.Client{
		ID:                     c.ID,
		Name:                   c.Name,
		AuthMethod:             c.AuthMethod,
		JWKSURI:                c.JWKSURI,
		RedirectURIs:           slices.Clone(c.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(c.PostLogoutRedirectURIs),
		RequirePAR:             c.RequirePAR,
		AllowedLevels:          slices.Clone(c.AllowedLevels),
		SectorID:               c.SectorID,
		Claims:                 slices.Clone(c.Claims),
		Providers:              slices.Clone(c.Providers),
		DegradedLevel:          c.DegradedLevel,
		StatusWebhook:          c.StatusWebhook,
		StatusComponents:       slices.Clone(c.StatusComponents),
		LegacyEndpointAudience: c.LegacyEndpointAudience,
		DPoPBoundAccessTokens:  c.DPoPBoundAccessTokens,
		RefreshTokens:          c.RefreshTokens,
		IDTokenAlg:             c.IDTokenSignedResponseAlg,
		BackchannelLogoutURI:   c.BackchannelLogoutURI,
		IntrospectTokensOf:     slices.Clone(c.IntrospectTokensOf),
		Source:                 store.ClientSourceConfig,
		CreatedAt:              now,
	}
	if c.JWKS != "" {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(c.JWKS)); err != nil {
			return nil, fmt.Errorf("client %s jwks: %w", c.ID, err)
		}
		sc.JWKS = json.RawMessage(buf.Bytes())
	}
	if c.AuthMethod == store.AuthClientSecretBasic {
		secret, err := ClientSecret(c)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(secret)
		sc.SecretHash = sum[:]
	} else if c.SecretFile != "" {
		return nil, errors.New("client " + c.ID + ": secret_file is only for client_secret_basic")
	}
	return sc, nil
}

// SectorClash reports whether a client with ID id and sector_id sector
// would get the same pairwise subject identifiers (OIDC Core §8.1) as
// another client, otherID with otherSector, without both naming the
// sector: the first has no sector_id, so its sector is its ID (ADR 4),
// and the other's sector_id is that ID. Subjects are derived from the
// sector alone, and changing how would change every relying party's
// identifiers, so such a registration is refused instead. Setting
// sector_id to its own ID on the first client keeps its subjects and
// says that the two share them.
func SectorClash(id, sector, otherID, otherSector string) bool {
	return id != "" && id != otherID && sector == "" && otherSector == id
}

// validateClientSectors refuses clients that would share pairwise
// subjects without saying so (SectorClash).
func (c *Config) validateClientSectors(p *problems) {
	for i, cl := range c.Clients {
		for j, other := range c.Clients {
			if SectorClash(cl.ID, cl.SectorID, other.ID, other.SectorID) {
				p.add(fmt.Sprintf("clients[%d].id", i), "%q is the sector_id of clients[%d] (%q), so the two would get the same subject "+
					"identifiers: set sector_id: %q here if they belong to one organisation, or else give one of them another sector_id",
					cl.ID, j, other.ID, cl.ID)
			}
		}
	}
}

// validateSectorChanges refuses a sector_id_change_accepted that names
// the sector the client has now: it names the one it had before.
func (c *Config) validateSectorChanges(p *problems) {
	for i, cl := range c.Clients {
		if cl.SectorIDChangeAccepted != "" && cl.SectorIDChangeAccepted == store.SectorOf(cl.ID, cl.SectorID) {
			p.add(fmt.Sprintf("clients[%d].sector_id_change_accepted", i), "%q is the sector client %q has now; "+
				"name the sector it had before the change (its earlier sector_id, or its ID if it had none), or leave this out",
				cl.SectorIDChangeAccepted, cl.ID)
		}
	}
}

// SameSector reports whether two clients, each given by ID and
// sector_id, get the same pairwise subject identifiers: a client without
// a sector_id is its own sector (ADR 4).
func SameSector(id, sector, otherID, otherSector string) bool {
	return store.SectorOf(id, sector) == store.SectorOf(otherID, otherSector)
}

// ForeignResourceServer reports whether a client (id, sector_id) is named
// in the introspect_tokens_of of a resource server (rsID, rsSector,
// rsNames) of another pairwise sector, which would let the resource
// server learn its subject identifiers.
func ForeignResourceServer(rsID, rsSector string, rsNames []string, id, sector string) bool {
	return rsID != id && slices.Contains(rsNames, id) && !SameSector(rsID, rsSector, id, sector)
}

// validateClientIntrospection checks every client's introspect_tokens_of:
// client IDs, not its own (every client may introspect its own tokens),
// each once. A resource server must authenticate, since RFC 7662 §2.1
// requires the endpoint to be protected. A named client in this file
// must share the resource server's pairwise sector, as introspection
// tells it their subject identifiers; one registered with the CLI is
// checked there and when tokens are introspected.
func (c *Config) validateClientIntrospection(p *problems) {
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d].introspect_tokens_of", i)
		if len(cl.IntrospectTokensOf) > 0 && cl.AuthMethod == store.AuthNone {
			p.add(path, "needs a client that authenticates (private_key_jwt or client_secret_basic), not auth_method none")
		}
		for j, id := range cl.IntrospectTokensOf {
			field := fmt.Sprintf("%s[%d]", path, j)
			switch {
			case id == "":
				p.add(field, "is empty")
				continue
			case id == cl.ID:
				p.add(field, "names the client itself, which may always introspect its own tokens")
				continue
			case slices.Index(cl.IntrospectTokensOf, id) < j:
				p.add(field, "%q is named twice", id)
				continue
			}
			for _, other := range c.Clients {
				if other.ID == id && ForeignResourceServer(cl.ID, cl.SectorID, cl.IntrospectTokensOf, other.ID, other.SectorID) {
					p.add(field, "%q has another pairwise sector, so this client would learn subject identifiers of another organisation: "+
						"give both the same sector_id if they belong to one", id)
				}
			}
		}
	}
}

// StatusComponents returns the components whose state changes a client
// may subscribe to on this node: "store", the built-in "passkey"
// provider and every configured upstream.
func (c *Config) StatusComponents() []string {
	out := []string{"store", "passkey"}
	for _, u := range c.Upstreams {
		out = append(out, u.ID)
	}
	return out
}

// validateClientWebhooks checks the status notification settings of
// every client. The webhook URL follows the rule for redirect URIs
// (absolute, https, http only on localhost or a loopback address, no
// fragment, no user information): the node POSTs to it on its own
// initiative, so a plain-http URL to another host would expose the
// notifications and invite requests into networks the node can reach.
// Components must be ones this node tracks. The back-channel logout URI
// follows the same rule.
func (c *Config) validateClientWebhooks(p *problems) {
	known := c.StatusComponents()
	for i, cl := range c.Clients {
		path := fmt.Sprintf("clients[%d]", i)
		if cl.StatusWebhook != "" {
			checkURL(p, path+".status_webhook", cl.StatusWebhook)
		}
		// Back-Channel Logout 1.0 §2.2: the URI must not have a fragment;
		// it is POSTed to on the node's initiative like the webhook.
		if cl.BackchannelLogoutURI != "" {
			checkURL(p, path+".backchannel_logout_uri", cl.BackchannelLogoutURI)
		}
		if cl.BackchannelLogoutSessionRequired && cl.BackchannelLogoutURI == "" {
			p.add(path+".backchannel_logout_session_required", "needs backchannel_logout_uri")
		}
		if len(cl.StatusComponents) > 0 && cl.StatusWebhook == "" {
			p.add(path+".status_components", "needs status_webhook")
		}
		for j, id := range cl.StatusComponents {
			if !slices.Contains(known, id) {
				p.add(fmt.Sprintf("%s.status_components[%d]", path, j), "%q is not a component of this node (%s)", id, strings.Join(known, ", "))
			}
		}
	}
}
