# The authd Makefile. `make help` lists the targets.

GO ?= go
BIN := bin/authd
# The Postgres the tests use. Unset, `make test` starts a throwaway cluster
# with pg_virtualenv (Debian's postgresql-common) for the length of the run.
AUTHD_TEST_DATABASE_URL ?=
PG_URL_FROM_VIRTUALENV := postgres://$$PGUSER:$$PGPASSWORD@$$PGHOST:$$PGPORT/$$PGDATABASE?sslmode=disable
# The Postgres server `make bench` creates its database on; unset, a throwaway
# cluster as for `make test`. BENCH_FLAGS go to cmd/authd-bench; SMOKE=1 adds -smoke.
AUTHD_BENCH_DATABASE_URL ?=
BENCH_FLAGS ?=
# make bench runs Postgres durable, as deployed (pg_virtualenv would turn
# fsync off); a smoke run keeps pg_virtualenv's fast mode.
BENCH_PG_OPTIONS := -o fsync=on -o synchronous_commit=on
ifneq ($(strip $(SMOKE)),)
BENCH_FLAGS += -smoke
BENCH_PG_OPTIONS :=
endif

.PHONY: help build run test test-quick redis-server test-go e2e bench bench-smoke bench-go lint fmt clean

# help: list the targets with their one-line descriptions.
help:
	@grep -E '^# [a-z0-9-]+:' Makefile | sed 's/^# //'

# build: compile the authd binary into bin/authd (static, no cgo).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/authd

# run: build and serve on :8008 with the embedded SQLite store (authd.db), migrating it.
run: build
	AUTHD_MIGRATE=true ./$(BIN) serve

# test: the whole suite with the race detector, on a real Postgres and a real Redis.
test: redis-server
ifeq ($(strip $(AUTHD_TEST_DATABASE_URL)),)
	@command -v pg_virtualenv >/dev/null || { echo "make test: needs Postgres: install postgresql and postgresql-common (pg_virtualenv), or set AUTHD_TEST_DATABASE_URL=postgres://..." >&2; exit 1; }
	pg_virtualenv -t sh -c 'AUTHD_TEST_DATABASE_URL="$(PG_URL_FROM_VIRTUALENV)" $(MAKE) --no-print-directory test-go'
else
	$(MAKE) --no-print-directory test-go
endif

# test-quick: go test ./... with whatever this machine has; tests needing an absent Postgres or redis-server skip, listed at the end with how to run them.
test-quick:
	@bash -o pipefail -c '$(GO) test -count=1 -json ./... | $(GO) run ./internal/testenv/skips'

# redis-server: make sure Debian's redis-server is installed (apt-get as root), which the Redis tests start themselves.
redis-server:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make: installing Debian's redis-server for the Redis tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 || \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }; \
		else echo "make test: needs redis-server: apt-get install redis-server" >&2; exit 1; fi; }

# test-go: go test -race ./... against the Postgres in AUTHD_TEST_DATABASE_URL; a test that cannot run fails (AUTHD_TEST_REQUIRE_ALL=1) rather than skips.
test-go:
	AUTHD_TEST_REQUIRE_ALL=1 $(GO) test -race -count=1 ./...

# e2e: matrix-js-sdk in Node and headless Chromium against bin/authd on a throwaway Postgres, directly and through nginx with deploy/nginx (e2e/run.sh).
e2e:
	bash e2e/run.sh

# bench: authd against this machine's bounds (bcrypt, /healthz, the database's commit rate) on a throwaway durable Postgres (fsync on) and on SQLite, cross-checked with wrk, and how long a revoked token lives on in another replica's cache; fails on a missed target; SMOKE=1 for seconds and no targets.
bench: build
	$(GO) build -o bin/authd-bench ./cmd/authd-bench
ifeq ($(strip $(AUTHD_BENCH_DATABASE_URL)),)
	@command -v pg_virtualenv >/dev/null || { echo "make bench: needs Postgres: install postgresql and postgresql-common (pg_virtualenv), or set AUTHD_BENCH_DATABASE_URL=postgres://..." >&2; exit 1; }
	pg_virtualenv $(BENCH_PG_OPTIONS) -t sh -c 'AUTHD_BENCH_DATABASE_URL="$(PG_URL_FROM_VIRTUALENV)" ./bin/authd-bench -authd $(BIN) $(BENCH_FLAGS)'
else
	./bin/authd-bench -authd $(BIN) $(BENCH_FLAGS)
endif

# bench-smoke: make bench SMOKE=1: every scenario for a moment, no target asserted (CI runs it).
bench-smoke:
	$(MAKE) --no-print-directory bench SMOKE=1

# bench-go: the go test micro-benchmarks with -benchmem: tokens, the rate limiter, whoami through the router.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/token ./internal/ratelimit ./internal/api

# lint: gofmt, go vet and staticcheck (pinned as a Go tool in go.mod).
lint:
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# fmt: rewrite every Go file in gofmt style.
fmt:
	gofmt -w .

# clean: remove build output.
clean:
	rm -rf bin
