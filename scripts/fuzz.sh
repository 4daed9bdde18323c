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
failed=()
count=0
while read -r dir pkg; do
	targets=$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' "$dir"/*_test.go 2>/dev/null |
		sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort -u || true)
	for name in $targets; do
		count=$((count + 1))
		echo "== $pkg $name ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -parallel "$parallel" "$pkg"; then
			failed+=("$pkg $name")
		fi
	done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' "${@:-./...}")

echo "ran $count fuzz targets"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'FAIL %s\n' "${failed[@]}"
	exit 1
fi
