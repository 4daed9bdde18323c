#!/usr/bin/env bash
# Makes sure Debian's nginx is installed for the test of the reverse
# proxy example in deploy/nginx: deploy's test starts a private nginx as
# the test's user, from the example configuration, with its own prefix,
# ports and certificate. CI machines are fresh Debian machines without
# it. Installs the nginx package with apt-get as root, or through sudo
# without a password; otherwise says what to do. The tests never use the
# package's own server, which installing it may try to start.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

# find_nginx prints where nginx is: in /usr/sbin, which an ordinary
# user's PATH may lack.
find_nginx() {
	PATH="$PATH:/usr/sbin:/sbin" command -v nginx || true
}

nginx=$(apt_ensure nginx find_nginx)
"$nginx" -v
