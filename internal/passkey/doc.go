// Package passkey runs WebAuthn ceremonies (registration and discoverable
// login) over github.com/go-webauthn/webauthn and the Varde store. It is
// protocol glue: it checks what WebAuthn Level 3 requires of a relying
// party and reports typed errors, and makes no product decisions.
//
// What it enforces, whatever the caller wants (section numbers are those
// of WebAuthn Level 3):
//   - user verification is required in both ceremonies (§7.1 and §7.2,
//     "verify that the UV bit of the flags in authData is set");
//   - discoverable credentials: registration requires a resident key,
//     login sends an empty allowCredentials and identifies the person by
//     the user handle (§7.2, "identify the user being authenticated");
//   - the client data origin must be one of the configured origins,
//     byte for byte as a browser serialises it (§13.4.9), and
//     the authenticator data must carry the hash of the RP ID (§7.1, §7.2:
//     C.origin, rpIdHash); cross-origin (iframe) ceremonies are refused;
//   - every ceremony is single use: its state is taken from the store, so
//     a replayed response finds nothing (§13.4.3 cryptographic challenges);
//   - a signature counter that does not increase signals a cloned
//     authenticator (§7.2 signCount step, §6.1.1); the login fails,
//     nothing stored changes, and the error (CredentialError) names the
//     passkey and its person, since its signature did verify;
//   - the backup eligibility flag is fixed at registration (§6.1.3,
//     §7.2 "compare currentBe with credentialRecord.backupEligible") and a
//     change fails the login in the same way.
//
// Which assurance level a login reaches, and what to do with a person
// after a ceremony, is decided elsewhere (assurance, broker,
// provider/passkeyidp).
package passkey
