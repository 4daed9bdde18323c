#!/usr/bin/env bash
# Runs every native fuzz target in the given packages (default ./...),
# one at a time, for FUZZTIME each (default 10s), with FUZZPARALLEL
# workers (default 1), minimizing each new input for at most
# FUZZMINIMIZETIME (default 3s). A failing input is saved under the
# package's testdata/fuzz/ by go test; the script goes on with the other
# targets and exits non-zero at the end if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${FUZZTIME:-10s}"
# One worker unless asked for more: go test would otherwise take every
# core, and a run beside other work should leave it some.
parallel="${FUZZPARALLEL:-1}"
# go test minimizes every input that finds new coverage, for up to 60 s
# by default, and counts no executions meanwhile: a target with large
# seeds (a whole configuration file) spent a 30 s run minimizing one.
minimizetime="${FUZZMINIMIZETIME:-3s}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# inputs counts the inputs kept for target $2 in package directory $1.
inputs() {
	find "$1/testdata/fuzz/$2" -type f 2>/dev/null | wc -l
}

# fuzz runs target $3 of package $2 (directory $1). Go 1.26's fuzzing
# coordinator can fail a run with "context deadline exceeded" as
# FUZZTIME ends, having found nothing (go.dev/issue/75804, fixed in Go
# 1.27): such a run, which keeps no input, is run once more.
fuzz() {
	local before
	for try in 1 2; do
		before=$(inputs "$1" "$3")
		if go test -run '^$' -fuzz "^${3}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -parallel "$parallel" "$2" 2>&1 | tee "$out"; then
			return 0
		fi
		if [ "$try" = 2 ] || [ "$(inputs "$1" "$3")" != "$before" ] || ! grep -q 'context deadline exceeded' <(tail -n 5 "$out"); then
			return 1
		fi
		echo "== $2 $3: the run ended on the coordinator's deadline with nothing found; once more"
	done
}

failed=()
count=0
while read -r dir pkg; do
	targets=$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' "$dir"/*_test.go 2>/dev/null |
		sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort -u || true)
	for name in $targets; do
		count=$((count + 1))
		echo "== $pkg $name ($fuzztime)"
		if ! fuzz "$dir" "$pkg" "$name"; then
			failed+=("$pkg $name")
		fi
	done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' "${@:-./...}")

echo "ran $count fuzz targets"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'FAIL %s\n' "${failed[@]}"
	exit 1
fi
