#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests. CI
# machines are fresh Debian machines without it. Installs with apt-get as
# root, or through sudo without a password; otherwise says what to do.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	chromium --version 2>/dev/null || true
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	echo "chromium is not installed and this user cannot install it;" >&2
	echo "run: sudo apt-get install -y chromium" >&2
	exit 1
fi

apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q)
echo "installing chromium with apt-get"
"${apt[@]}" update </dev/null
"${apt[@]}" install chromium </dev/null
chromium --version
