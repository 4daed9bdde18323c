#!/usr/bin/env bash
# Makes sure systemd-analyze, systemd-sysusers and systemd-tmpfiles are
# installed for the test of the systemd unit in deploy/systemd, which
# runs them offline, in directories of its own: no systemd needs to be
# running. Some fresh Debian machines (containers) lack them. Installs
# the systemd package with apt-get as root, or through sudo without a
# password; otherwise says what to do.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

# find_analyze prints where systemd-analyze is, or nothing.
find_analyze() {
	command -v systemd-analyze || true
}

analyze=$(apt_ensure systemd find_analyze)
"$analyze" --version | sed -n 1p
