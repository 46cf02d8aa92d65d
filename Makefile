# The authd Makefile. `make help` lists the targets.

GO ?= go
BIN := bin/authd
# The Postgres the tests use. Unset, `make test` starts a throwaway cluster
# with pg_virtualenv (Debian's postgresql-common) for the length of the run.
AUTHD_TEST_DATABASE_URL ?=
PG_URL_FROM_VIRTUALENV := postgres://$$PGUSER:$$PGPASSWORD@$$PGHOST:$$PGPORT/$$PGDATABASE?sslmode=disable

.PHONY: help build run test test-go e2e lint fmt clean

# help: list the targets with their one-line descriptions.
help:
	@grep -E '^# [a-z0-9-]+:' Makefile | sed 's/^# //'

# build: compile the authd binary into bin/authd (static, no cgo).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/authd

# run: build and serve on :8008 with the embedded SQLite store (authd.db), migrating it.
run: build
	AUTHD_MIGRATE=true ./$(BIN) serve

# test: the whole suite with the race detector, Postgres tests on a real Postgres.
test:
ifeq ($(strip $(AUTHD_TEST_DATABASE_URL)),)
	@command -v pg_virtualenv >/dev/null || { echo "make test: needs Postgres: install postgresql and postgresql-common (pg_virtualenv), or set AUTHD_TEST_DATABASE_URL=postgres://..." >&2; exit 1; }
	pg_virtualenv -t sh -c 'AUTHD_TEST_DATABASE_URL="$(PG_URL_FROM_VIRTUALENV)" $(MAKE) --no-print-directory test-go'
else
	$(MAKE) --no-print-directory test-go
endif

# test-go: go test -race ./... against the Postgres in AUTHD_TEST_DATABASE_URL.
test-go:
	$(GO) test -race -count=1 ./...

# e2e: matrix-js-sdk in Node and headless Chromium against bin/authd on a throwaway Postgres, directly and through nginx with deploy/nginx (e2e/run.sh).
e2e:
	bash e2e/run.sh

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
