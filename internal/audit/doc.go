// Package audit records decisions in Varde's append-only, hash-chained
// audit log and verifies the chain.
//
// Every event is sealed by the store: its hash covers its sequence number,
// the previous event's hash and every field (an address kept apart by
// its digest, see below), so Verify finds an edited,
// removed or reordered event and names the sequence number where the
// chain breaks. Verify cannot see events cut off the end of the log;
// operators who need that anchor the head (last seq and hash) elsewhere.
//
// Events never hold secrets or national identifiers: persons appear by
// their Varde ID. As a guard against mistakes, Append replaces any value
// that looks like a national identity number of a scheme Varde takes in
// (a Norwegian fødselsnummer or D-number by its shape alone, 11 digits;
// a Danish CPR number, a Swedish personnummer or a Finnish HETU, in the
// forms people write them, when its date and check digit are right; see
// LooksLikeNationalID) and any Details value whose key names a secret
// (password, client secret, code verifier, token, …) with Redacted, and
// logs which fields it blanked.
//
// An event prepared with a request's context holds the address of the
// client it came from (httpx.ClientAddr) under Details["addr"]: where a
// login or a change came from is what a person, or the help desk, needs
// to look into one they do not recognise (docs/adr/0033). The store
// keeps it apart from the hashed event, which covers a salted digest of
// it instead, and deletes it after audit.address_retention; Verify
// checks each address still kept against its digest (docs/adr/0038).
//
// What to record (which decisions, with which reason) is the business of
// the broker, session and oidc packages; the storage is the store's.
package audit
