#!/usr/bin/env bash
# Makes sure axe-core, the accessibility engine that internal/a11ytest
# injects into Varde's pages, is installed under third_party/axe/ at the
# exact version its package-lock.json pins. Uses the machine's npm; does
# nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../third_party/axe"

want=$(sed -n 's/^ *"axe-core": *"\([^"]*\)".*/\1/p' package.json | head -n1)
have=""
if [ -f node_modules/axe-core/package.json ]; then
	have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' node_modules/axe-core/package.json | head -n1)
fi
if [ -n "$want" ] && [ "$have" = "$want" ] && [ -f node_modules/axe-core/axe.min.js ]; then
	echo "axe-core $have"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "npm is not installed; axe-core (for the accessibility test) cannot be installed" >&2
	echo "run: sudo apt-get install -y npm" >&2
	exit 1
fi
echo "installing axe-core $want with npm ci"
npm ci --no-audit --no-fund --ignore-scripts </dev/null
test -f node_modules/axe-core/axe.min.js
echo "axe-core $want"
