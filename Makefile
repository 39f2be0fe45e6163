# Quick start: `make demo`, then `make test`.
GO      ?= go
BIN     := bin/vms
PKGS    := ./...

.PHONY: all build demo test test-faults fuzz vet bench deps-demo deps-test compose-check clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vms

deps-demo:
	@scripts/ensure-deps.sh go espeak-ng

deps-test:
	@scripts/ensure-deps.sh go espeak-ng redis-server kamailio baresip sox lame

# The whole pipeline in one process: in-process Redis (unless REDIS_URL is
# set), the carrier simulator on loopback, a worker, two calls.
demo: deps-demo build
	./$(BIN) demo

# Every test, race detector on, against real Redis servers (private ones
# on Unix sockets) and real SIP/RTP on loopback.
test: deps-test
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	@$(GO) mod tidy -diff || (echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# The fault tests of the black-box e2e package alone: real processes killed,
# Redis killed and cut off, replies lost (e2e/, also part of make test).
test-faults: deps-test
	$(GO) test -run TestFaults ./e2e/

# Every Fuzz target of the repo, one at a time, FUZZTIME each (make test
# runs only their checked-in seeds, testdata/fuzz/FuzzX/). Targets are
# found with go test -list; new findings land in the package's
# testdata/fuzz/FuzzX/ and the run stops there. Minimization is capped at
# FUZZMINIMIZETIME so it does not eat the whole budget.
FUZZTIME         ?= 30s
FUZZMINIMIZETIME ?= 5s
fuzz: deps-test
	@set -e; \
	targets=$$($(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { f[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 "," f[i]; n = 0 }'); \
	test -n "$$targets" || { echo "no Fuzz targets found"; exit 1; }; \
	for t in $$targets; do \
		pkg=$${t%%,*}; fz=$${t#*,}; \
		echo "== $$fz ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	done

bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Checks docker-compose.yml (no Docker engine is needed for this).
compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf bin demo-output .cache
