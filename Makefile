# Varde's developer and CI targets. `make test` is what CI runs.

GO ?= go
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s
# How many workers fuzz a target at once (go test -parallel).
FUZZPARALLEL ?= 1
# How long go test minimizes each input that finds new coverage.
FUZZMINIMIZETIME ?= 3s
# Packages also tested under the race detector: the ones whose tests run
# concurrent code (store conformance, audit appends, token redemption,
# broker failover, incidents opened by two nodes, webhook leases). The
# whole suite under -race would take several times as long on CI's two
# cores; these keep it to a few minutes.
RACE_PKGS ?= ./internal/store/... ./internal/audit/... ./internal/session/... \
	./internal/oidc/... ./internal/broker/... ./internal/status/... ./internal/webhook/...

.PHONY: all test chromium axe openid-client postgres nginx systemd-analyze vet race unit bench fuzz demo lint resilience

all: lint test

## test: vet, race-detector tests of RACE_PKGS, then every test once.
test: chromium axe openid-client postgres nginx systemd-analyze vet race unit

chromium:
	@bash scripts/ensure-chromium.sh

## axe: install axe-core for the accessibility test (internal/a11ytest).
axe:
	@bash scripts/ensure-axe.sh

## openid-client: install openid-client, the independent relying party
## of the interoperability test (internal/app, TestOpenIDClientInterop).
openid-client:
	@bash scripts/ensure-openid-client.sh

## postgres: install PostgreSQL's server programs for the tests that run
## a throwaway server (internal/pgtest).
postgres:
	@bash scripts/ensure-postgres.sh

## nginx: install nginx for the test that runs a private one from the
## reverse proxy example (deploy, TestLoginThroughNginx).
nginx:
	@bash scripts/ensure-nginx.sh

## systemd-analyze: install systemd-analyze for the test of the example
## unit (deploy, TestUnitVerifies and TestUnitExposure).
systemd-analyze:
	@bash scripts/ensure-systemd-analyze.sh

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

unit:
	$(GO) test -count=1 ./...

## bench: complete passkey logins per second and their latency at
## BENCH_CONCURRENCY (a throwaway node in a child process, SQLite; see
## docs/PERFORMANCE.md); then, briefly, logins brokered through a
## simulated upstream eID compared with logins straight at it (what the
## broker adds per login); then the Go micro-benchmarks, briefly.
BENCH_CONCURRENCY ?= 1,16,64
BENCH_DURATION ?= 10s
BENCH_FLAGS ?=
BENCH_BROKERED_CONCURRENCY ?= 1,16
BENCH_BROKERED_DURATION ?= 5s
bench: postgres
	$(GO) run ./cmd/varde bench --concurrency $(BENCH_CONCURRENCY) --duration $(BENCH_DURATION) $(BENCH_FLAGS)
	$(GO) run ./cmd/varde bench --flow brokered --concurrency $(BENCH_BROKERED_CONCURRENCY) --duration $(BENCH_BROKERED_DURATION) $(BENCH_FLAGS)
	$(GO) test -bench . -skip SweepUnderLoad -benchmem -benchtime 200x -run '^$$' ./internal/...

## resilience: Varde and two simulated eIDs as separate processes under
## concurrent logins; SIGKILL one eID, slow the other, restart the first;
## print success rates, detection and recovery times and latency (see
## docs/RESILIENCE.md). RESILIENCE_FLAGS="--nodes --postgres DSN" kills
## and restarts one of two Varde nodes over that PostgreSQL database
## instead, behind a load balancer in the command; adding --gently stops
## that node with SIGTERM, as a rolling upgrade does; adding
## --kill-primary CMD kills the database's primary with CMD instead
## (e.g. RESILIENCE_FLAGS='--nodes --postgres DSN --kill-primary
## "scripts/ha-postgres.sh kill-primary /tmp/ha"').
RESILIENCE_FLAGS ?=
resilience:
	$(GO) run ./cmd/varde resilience $(RESILIENCE_FLAGS)

## fuzz: run every native fuzz target (each func Fuzz* in every
## package) for FUZZTIME, one target at a time with FUZZPARALLEL workers
## (default 1), each new input minimized for at most FUZZMINIMIZETIME
## (default 3s); a failing input is kept in the package's testdata/fuzz/,
## and the run goes on to the other targets. Not part of `make test`.
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) bash scripts/fuzz.sh

## demo: a local demo node with seeded relying parties.
demo:
	$(GO) run ./cmd/varde demo

## lint: gofmt must have nothing to say; go vet must pass.
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l reports:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
