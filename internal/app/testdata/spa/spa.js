// A browser-based client (a single-page app) on another origin than
// Varde's, calling Varde's endpoints with fetch() as such a client does.
// The page's query names the issuer and the client. What each call let
// the page read is put in #result as JSON, and <body data-done> says it
// is there. A call the browser refuses (no CORS) throws a TypeError,
// recorded as "blocked".
"use strict";

const b64u = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64uJSON = (v) => b64u(new TextEncoder().encode(JSON.stringify(v)));

// dpopProof makes a DPoP proof (RFC 9449 §4.2) with the page's key, as
// a browser-based client does with a non-extractable WebCrypto key.
async function dpopProof(keys, htm, htu, nonce) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const claims = { jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
  if (nonce) {
    claims.nonce = nonce;
  }
  const input = b64uJSON({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }) + "." + b64uJSON(claims);
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, new TextEncoder().encode(input));
  return input + "." + b64u(sig);
}

// read fetches and returns what the page may read of the answer.
async function read(url, init) {
  let r;
  try {
    r = await fetch(url, init);
  } catch (e) {
    return { blocked: e.name };
  }
  const text = await r.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { notJSON: text.slice(0, 200) };
  }
  return {
    status: r.status,
    body,
    dpopNonce: r.headers.get("DPoP-Nonce"),
    challenge: r.headers.get("WWW-Authenticate"),
    requestID: r.headers.get("X-Request-Id"),
  };
}

async function run() {
  const params = new URLSearchParams(location.search);
  const issuer = params.get("issuer");
  const clientID = params.get("client_id");
  const redirectURI = location.origin + "/cb";
  const out = {};

  // Discovery: a simple GET, no preflight.
  out.discovery = await read(issuer + "/.well-known/openid-configuration");
  // Where discovery could not be read, the endpoints at their paths, so
  // that each call below is tried whatever happened to the others.
  const meta = {
    token_endpoint: issuer + "/token", userinfo_endpoint: issuer + "/userinfo",
    authorization_endpoint: issuer + "/authorize", ...out.discovery.body,
  };

  // A token request with a code the page never got: a simple POST (form
  // body, no preflight), refused with invalid_grant.
  const redeem = () => new URLSearchParams({
    grant_type: "authorization_code", code: "not-a-code", client_id: clientID,
    redirect_uri: redirectURI, code_verifier: "v".repeat(43),
  });
  out.token = await read(meta.token_endpoint, { method: "POST", body: redeem() });

  // The same with a DPoP proof: the DPoP header needs a preflight. The
  // first proof has no nonce and is refused with use_dpop_nonce; the
  // page reads the nonce from DPoP-Nonce and tries again.
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  out.dpopFirst = await read(meta.token_endpoint, {
    method: "POST", body: redeem(),
    headers: { DPoP: await dpopProof(keys, "POST", meta.token_endpoint) },
  });
  out.dpopRetry = await read(meta.token_endpoint, {
    method: "POST", body: redeem(),
    headers: { DPoP: await dpopProof(keys, "POST", meta.token_endpoint, out.dpopFirst.dpopNonce) },
  });

  // UserInfo with an access token in Authorization (a preflight).
  out.userinfo = await read(meta.userinfo_endpoint, { headers: { Authorization: "Bearer not-a-token" } });

  // The authorization endpoint is for navigations: the browser must not
  // let the page read it.
  const authz = new URLSearchParams({
    client_id: clientID, response_type: "code", redirect_uri: redirectURI, scope: "openid",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
  });
  out.authorize = await read(meta.authorization_endpoint + "?" + authz);
  return out;
}

run()
  .catch((e) => ({ failure: String(e) }))
  .then((out) => {
    document.getElementById("result").textContent = JSON.stringify(out);
    document.body.dataset.done = "true";
  });
