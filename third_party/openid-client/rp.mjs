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
//   RP_ID_TOKEN_ALG  the client's id_token_signed_response_alg: the one
//                    algorithm its ID tokens must be signed with
//                    (optional; absent: openid-client's default, any
//                    that discovery lists)
//   RP_POST_LOGOUT_REDIRECT_URI
//                    its registered post-logout redirect URI: the result
//                    has the RP-initiated logout URL openid-client builds
//                    for the login, with the ID token as id_token_hint
//                    and a state (optional)
//
// Varde requires DPoP nonces (RFC 9449 §8, §9): openid-client's first
// proof at an endpoint, without one, is refused with use_dpop_nonce,
// and openid-client retries with the nonce of the DPoP-Nonce header.
// Every request to the PAR, token and UserInfo endpoints is reported,
// as it went on the wire, for the test to see those retries.
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

// exchange describes one request to the PAR, token or UserInfo
// endpoint and its answer: whether the request's DPoP proof carried a
// nonce, the answer's status, its error code (from the JSON body) and
// WWW-Authenticate challenge, and whether it carried a DPoP-Nonce.
async function exchange(options, res) {
  const proof = new Headers(options?.headers).get("dpop");
  let nonceSent = false;
  if (proof) {
    const claims = JSON.parse(Buffer.from(proof.split(".")[1], "base64url").toString());
    nonceSent = typeof claims.nonce === "string";
  }
  let error;
  if (!res.ok) {
    try {
      error = (await res.clone().json()).error;
    } catch {}
  }
  return {
    proof: proof !== null,
    nonce_sent: nonceSent,
    status: res.status,
    error,
    challenge: res.headers.get("www-authenticate") ?? undefined,
    nonce_header: res.headers.has("dpop-nonce"),
  };
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
  const idTokenAlg = env("RP_ID_TOKEN_ALG", false);
  const postLogoutRedirectUri = env("RP_POST_LOGOUT_REDIRECT_URI", false);
  const metadata = { redirect_uris: [redirectUri] };
  if (idTokenAlg) metadata.id_token_signed_response_alg = idTokenAlg;

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
  // The requests to the PAR, token and UserInfo endpoints, in order.
  const endpoints = new Set();
  const exchanges = [];
  const config = await client.discovery(issuer, clientId, metadata, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    [client.customFetch]: async (url, options) => {
      const res = await fetch(url, options);
      if (endpoints.has(url.split("?")[0])) {
        exchanges.push(await exchange(options, res));
      }
      if (res.ok && url === tokenEndpoint) {
        wireTokenTypes.push((await res.clone().json()).token_type);
      }
      return res;
    },
  });
  const meta = config.serverMetadata();
  tokenEndpoint = meta.token_endpoint;
  for (const e of [meta.pushed_authorization_request_endpoint, meta.token_endpoint, meta.userinfo_endpoint]) {
    endpoints.add(e);
  }
  // phase runs fn and returns its result with the exchanges it made.
  const phase = async (fn) => {
    const from = exchanges.length;
    const result = await fn();
    return [result, exchanges.slice(from)];
  };

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
  const [authorizationURL, parExchanges] = await phase(async () => {
    if (pushed) {
      // RFC 9449 §10.1: the proof sent with the pushed request binds the
      // code. It is openid-client's first, so it has no nonce yet.
      return client.buildAuthorizationUrlWithPAR(config, params, { DPoP });
    }
    // RFC 9449 §10: dpop_jkt binds the code.
    return client.buildAuthorizationUrl(config, { ...params, dpop_jkt: jkt });
  });
  out({ authorization_url: authorizationURL.href });

  const callback = new URL(await readLine());
  // Checks iss (RFC 9207, advertised in discovery), state, the PKCE
  // verifier, the ID token's signature and claims, and the nonce. With
  // PAR, the handle holds the nonce the PAR endpoint gave it.
  const [tokens, codeExchanges] = await phase(() =>
    client.authorizationCodeGrant(
      config,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
      undefined,
      { DPoP },
    ),
  );
  const claims = tokens.claims();
  // UserInfo from a new handle over the same keys, as a relying party
  // that asks it from another process than the one that redeemed the
  // code would make: it holds the key but no nonce (RFC 9449 §9).
  const userinfoDPoP = client.getDPoPHandle(config, dpopKeys);
  const [userinfo, userinfoExchanges] = await phase(() =>
    client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: userinfoDPoP }),
  );

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

  const [refreshed, refreshExchanges] = await phase(() =>
    client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP }),
  );
  const refreshedClaims = refreshed.claims();
  const [refreshedUserinfo, refreshedUserinfoExchanges] = await phase(() =>
    client.fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP }),
  );

  // RFC 7662: the relying party asks about its own access token, as
  // its resource server would; a public client is refused (§2.1).
  const introspect = async (token) => {
    try {
      const r = await client.tokenIntrospection(config, token, { token_type_hint: "access_token" });
      return { status: 200, active: r.active, sub: r.sub, client_id: r.client_id, token_type: r.token_type, acr: r.acr, scope: r.scope, jkt: r.cnf?.jkt };
    } catch (err) {
      // A 401 with a challenge is reported as the challenge; the error
      // code is in the body.
      const r = refusal(err);
      const body = await err?.response?.json().catch(() => undefined);
      return { ...r, error: body?.error ?? r.error };
    }
  };
  const introspected = await introspect(refreshed.access_token);

  // RFC 7009: the relying party ends the login by revoking its refresh
  // token; the grant goes with it, so the refresh token is refused after,
  // and the access token is no longer active.
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: "refresh_token" });
  const afterRevocation = await refreshRefusal({ DPoP }, refreshed.refresh_token);
  const introspectedAfterRevocation = await introspect(refreshed.access_token);

  // RP-Initiated Logout 1.0: where the relying party sends the browser
  // to log the person out, and back to it.
  let endSession;
  if (postLogoutRedirectUri) {
    const logoutState = client.randomState();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: postLogoutRedirectUri,
      state: logoutState,
    });
    endSession = { url: url.href, state: logoutState };
  }

  out({
    dpop_jwk: await crypto.subtle.exportKey("jwk", dpopKeys.publicKey),
    dpop_jkt: jkt,
    sub: claims.sub,
    acr: claims.acr,
    amr: claims.amr,
    token_types: wireTokenTypes,
    id_token_algs: [tokens.id_token, refreshed.id_token].map(
      (t) => JSON.parse(Buffer.from(t.split(".")[0], "base64url").toString()).alg,
    ),
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
    introspected,
    introspected_after_revocation: introspectedAfterRevocation,
    end_session: endSession,
    exchanges: {
      par: parExchanges,
      code: codeExchanges,
      userinfo: userinfoExchanges,
      refresh: refreshExchanges,
      refreshed_userinfo: refreshedUserinfoExchanges,
    },
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
