#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests. CI
# machines are fresh Debian machines without it. Installs with apt-get as
# root, or through sudo without a password; otherwise says what to do.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

if command -v chromium >/dev/null 2>&1; then
	chromium --version 2>/dev/null || true
	exit 0
fi

apt_install chromium
chromium --version
