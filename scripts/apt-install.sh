# Sourced by the ensure-*.sh scripts, not run.

# apt_install PACKAGE installs one Debian package with apt-get, as root
# or through sudo without a password; a user who can do neither is told
# what to run, and the script exits 1. Returns apt-get's status.
apt_install() {
	local package=$1
	local -a as_root=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			as_root=(sudo -n)
		else
			echo "$package is not installed and this user cannot install it;" >&2
			echo "run: sudo apt-get install -y $package" >&2
			exit 1
		fi
	fi
	local -a apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q)
	echo "installing $package with apt-get"
	"${apt[@]}" update </dev/null || return
	"${apt[@]}" install "$package" </dev/null
}
