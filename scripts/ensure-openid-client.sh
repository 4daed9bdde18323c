#!/usr/bin/env bash
# Makes sure openid-client, the independent relying-party library that
# internal/app's TestOpenIDClientInterop drives against a real node
# (through third_party/openid-client/rp.mjs), is installed under
# third_party/openid-client/ at the exact version its package-lock.json
# pins. Uses the machine's npm; does nothing when the pinned version is
# already there. Also makes sure of openssl, which the README's
# relying-party example (TestReadmeRelyingPartyExample) runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
if ! command -v openssl >/dev/null 2>&1; then
	apt_install openssl
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../third_party/openid-client"

want=$(sed -n 's/^ *"openid-client": *"\([^"]*\)".*/\1/p' package.json | head -n1)
have=""
if [ -f node_modules/openid-client/package.json ]; then
	have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' node_modules/openid-client/package.json | head -n1)
fi
if [ -n "$want" ] && [ "$have" = "$want" ] && [ -f node_modules/openid-client/build/index.js ]; then
	echo "openid-client $have"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "npm is not installed; openid-client (for the interoperability test) cannot be installed" >&2
	echo "run: sudo apt-get install -y npm" >&2
	exit 1
fi
echo "installing openid-client $want with npm ci"
npm ci --no-audit --no-fund --ignore-scripts </dev/null
test -f node_modules/openid-client/build/index.js
echo "openid-client $want"
