# Quick start: `make demo`, then `make test`.
GO      ?= go
BIN     := bin/vms
PKGS    := ./...

.PHONY: all build demo test test-faults vet bench deps-demo deps-test compose-check clean

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
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# The fault tests of the black-box e2e package alone: real processes killed,
# Redis killed and cut off, replies lost (e2e/, also part of make test).
test-faults: deps-test
	$(GO) test -run TestFaults ./e2e/

bench: deps-test
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Checks docker-compose.yml (no Docker engine is needed for this).
compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf bin demo-output .cache
