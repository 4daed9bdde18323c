// A relying party built on openid-client, driven by internal/app's
// TestOpenIDClientInterop against a real Varde node.
//
// Settings come from the environment:
//   RP_ISSUER        Varde's issuer (http://localhost:PORT)
//   RP_CLIENT_ID     the client's ID
//   RP_REDIRECT_URI  its registered redirect URI (nobody serves it)
//   RP_CLIENT_JWK    the client's private key as a JWK (ES256, with kid):
//                    private_key_jwt; absent: a public client (none)
//   RP_PAR           "1": push the request (PAR, with a DPoP proof, which
//                    binds the code); else a plain authorization request
//                    with dpop_jkt
//   RP_ACR_VALUES    acr_values to ask for (optional)
//
// The exchange is line by line, JSON on stdout: this prints
// {"authorization_url": …}, reads the URL the browser was sent back to
// (the redirect URI with code, state and iss) from stdin, finishes the
// flow and prints the result. On any failure it writes the error to
// stderr and exits 1.
import { createInterface } from "node:readline";
import * as client from "openid-client";

const env = (name, required = true) => {
  const v = process.env[name];
  if (required && !v) throw new Error(`${name} is not set`);
  return v;
};

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// The first line of stdin, once it comes.
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function readLine() {
  const { value, done } = await lines.next();
  if (done) throw new Error("stdin closed before the callback URL came");
  return value.trim();
}

// refusal describes how a request openid-client made was refused: the
// HTTP status, the error code, and the WWW-Authenticate challenges.
function refusal(err) {
  const res = err?.response;
  const challenges = (err?.cause instanceof Array ? err.cause : []).map((c) => ({
    scheme: c.scheme,
    error: c.parameters?.error,
  }));
  return {
    status: res?.status ?? err?.status ?? 0,
    error: err?.error ?? challenges.find((c) => c.error)?.error ?? err?.code ?? String(err),
    challenges,
  };
}

async function main() {
  const issuer = new URL(env("RP_ISSUER"));
  const clientId = env("RP_CLIENT_ID");
  const redirectUri = env("RP_REDIRECT_URI");
  const jwk = env("RP_CLIENT_JWK", false);
  const pushed = env("RP_PAR", false) === "1";
  const acrValues = env("RP_ACR_VALUES", false);

  let auth = client.None();
  if (jwk) {
    const priv = JSON.parse(jwk);
    const key = await crypto.subtle.importKey("jwk", priv, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    auth = client.PrivateKeyJwt({ key, kid: priv.kid });
  }
  // The node under test listens on loopback over plain HTTP (a WebAuthn
  // RP ID cannot be an IP address, so the issuer is http://localhost:PORT);
  // openid-client refuses http:// unless told to allow it.
  // enableNonRepudiationChecks has it verify every ID token's signature
  // against the issuer's JWKS, not only its claims.
  //
  // openid-client lowercases token_type as it reads it (RFC 6749 §5.1:
  // the value is case-insensitive), so the fetch it uses keeps the
  // token_type of every token response as it came on the wire.
  const wireTokenTypes = [];
  let tokenEndpoint;
  const config = await client.discovery(issuer, clientId, { redirect_uris: [redirectUri] }, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    [client.customFetch]: async (url, options) => {
      const res = await fetch(url, options);
      if (res.ok && url === tokenEndpoint) {
        wireTokenTypes.push((await res.clone().json()).token_type);
      }
      return res;
    },
  });
  tokenEndpoint = config.serverMetadata().token_endpoint;

  const dpopKeys = await client.randomDPoPKeyPair("ES256");
  const DPoP = client.getDPoPHandle(config, dpopKeys);
  const jkt = await DPoP.calculateThumbprint();

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: redirectUri,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  };
  if (acrValues) params.acr_values = acrValues;
  let authorizationURL;
  if (pushed) {
    // RFC 9449 §10.1: the proof sent with the pushed request binds the code.
    authorizationURL = await client.buildAuthorizationUrlWithPAR(config, params, { DPoP });
  } else {
    // RFC 9449 §10: dpop_jkt binds the code.
    authorizationURL = client.buildAuthorizationUrl(config, { ...params, dpop_jkt: jkt });
  }
  out({ authorization_url: authorizationURL.href });

  const callback = new URL(await readLine());
  // Checks iss (RFC 9207, advertised in discovery), state, the PKCE
  // verifier, the ID token's signature and claims, and the nonce.
  const tokens = await client.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
    undefined,
    { DPoP },
  );
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });

  // The bound access token as a plain bearer token: refused (§7.2).
  let bearer;
  try {
    const res = await client.fetchProtectedResource(config, tokens.access_token, new URL(config.serverMetadata().userinfo_endpoint), "GET");
    bearer = { status: res.status, error: "accepted" };
  } catch (err) {
    bearer = refusal(err);
  }

  // The refresh token without a proof, and with a proof by another key:
  // a public client's is bound to the key and refused (§5); either way
  // the refusal must not spend it.
  const refreshRefusal = async (opts, token = tokens.refresh_token) => {
    try {
      await client.refreshTokenGrant(config, token, undefined, opts);
      return { status: 200, error: "accepted" };
    } catch (err) {
      return refusal(err);
    }
  };
  let refreshWithoutProof, refreshOtherKey;
  if (!jwk) {
    refreshWithoutProof = await refreshRefusal(undefined);
    const otherKey = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
    refreshOtherKey = await refreshRefusal({ DPoP: otherKey });
  }

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  const refreshedClaims = refreshed.claims();
  const refreshedUserinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP });

  // RFC 7009: the relying party ends the login by revoking its refresh
  // token; the grant goes with it, so the refresh token is refused after.
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: "refresh_token" });
  const afterRevocation = await refreshRefusal({ DPoP }, refreshed.refresh_token);

  out({
    dpop_jwk: await crypto.subtle.exportKey("jwk", dpopKeys.publicKey),
    dpop_jkt: jkt,
    sub: claims.sub,
    acr: claims.acr,
    amr: claims.amr,
    token_types: wireTokenTypes,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    userinfo_sub: userinfo.sub,
    bearer,
    refresh_without_proof: refreshWithoutProof,
    refresh_other_key: refreshOtherKey,
    refreshed: {
      access_token: refreshed.access_token,
      refresh_token: refreshed.refresh_token,
      id_token_sub: refreshedClaims?.sub,
      userinfo_sub: refreshedUserinfo.sub,
    },
    refresh_after_revocation: afterRevocation,
  });
}

// describe is an error and its causes, one after the other.
function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e !== undefined && depth < 5; e = e.cause, depth++) {
    if (!(e instanceof Error)) {
      parts.push(JSON.stringify(e));
      break;
    }
    let part = `${e.name}: ${e.message}`;
    if (e.code) part += ` (${e.code})`;
    if (e.error) part += ` [${e.error}: ${e.error_description}]`;
    parts.push(part);
  }
  return parts.join(" <- ");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(describe(err) + "\n");
    process.exit(1);
  },
);
