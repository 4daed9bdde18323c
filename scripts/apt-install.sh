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

# apt_ensure PACKAGE FIND prints the program that the function FIND
# finds (it prints its path, or nothing), installing PACKAGE with
# apt_install first if FIND finds nothing, and exits 1 if it still finds
# nothing. An apt-get that failed but left the program installed (most
# likely the package's own service could not start, as on a machine
# without an init system; the tests do not need it) is let be, and said.
# apt-get's output goes to stderr.
apt_ensure() {
	local package=$1 find=$2 program status=0
	program=$("$find")
	if [ -n "$program" ]; then
		printf '%s\n' "$program"
		return
	fi
	apt_install "$package" >&2 || status=$?
	program=$("$find")
	if [ -z "$program" ]; then
		echo "apt-get install $package (status $status) left no program for $find" >&2
		exit 1
	fi
	if [ "$status" -ne 0 ]; then
		echo "apt-get install $package returned $status, but $program is installed; going on" >&2
	fi
	printf '%s\n' "$program"
}
