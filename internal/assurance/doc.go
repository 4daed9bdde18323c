// Package assurance is the vocabulary of assurance: eIDAS levels of
// assurance (Commission Implementing Regulation (EU) 2015/1502), their acr
// URIs, amr values (RFC 8176), and the rule that computes a login's level
// from evidence — how the person was proofed and which authenticator they
// used — never from the kind of identifier they hold.
//
// It holds values and pure functions only, so protocol packages may import
// it to enforce the constraints policy hands them.
package assurance
