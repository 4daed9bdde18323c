#!/usr/bin/env bash
# Makes sure Debian's PostgreSQL server programs (initdb, postgres) are
# installed for the tests that need a database: internal/pgtest starts a
# private, throwaway server from them. CI machines are fresh Debian
# machines without them. Installs the postgresql package with apt-get as
# root, or through sudo without a password; otherwise says what to do.
# The tests never use the package's own "main" cluster, which installing
# it may create and try to start.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

# newest_initdb prints the initdb of the newest PostgreSQL under
# /usr/lib/postgresql (where Debian puts it), or nothing.
newest_initdb() {
	local found
	shopt -s nullglob
	found=(/usr/lib/postgresql/*/bin/initdb)
	shopt -u nullglob
	if [ "${#found[@]}" -gt 0 ]; then
		printf '%s\n' "${found[@]}" | sort -V | tail -n 1
	fi
}

initdb=$(newest_initdb)
if [ -n "$initdb" ]; then
	"$initdb" --version
	exit 0
fi

status=0
apt_install postgresql || status=$?
initdb=$(newest_initdb)
if [ -z "$initdb" ]; then
	echo "apt-get install postgresql (status $status) left no initdb under /usr/lib/postgresql" >&2
	exit 1
fi
if [ "$status" -ne 0 ]; then
	# Most likely the package's main cluster failed to start, as it can
	# on a machine without an init system; the tests do not need it.
	echo "apt-get install postgresql returned $status, but the server programs are installed; going on" >&2
fi
"$initdb" --version
