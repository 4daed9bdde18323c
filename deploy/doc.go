// Package deploy holds the examples an operator deploys a node from, and
// no code: systemd/ has a hardened unit (varde.service), the user it runs
// as (varde-sysusers.conf), its configuration directory
// (varde-tmpfiles.conf) and a configuration that fits them (varde.yaml);
// nginx/ has nginx ending TLS in front of the nodes (varde.conf).
//
// Its tests hold the examples to what they claim: systemd-analyze
// verifies the unit and rates its exposure, varde serve accepts the
// unit's flags, and the unit, the configuration and the proxy name the
// same paths, user and address (systemd_test.go); and a relying party
// logs a person in with a passkey through a private nginx run from the
// example, in front of a node started as the unit starts it, with its
// secrets handed over as systemd credentials (nginx_test.go). The tests
// need systemd-analyze and nginx (scripts/ensure-nginx.sh, make test),
// and fail without them.
package deploy
