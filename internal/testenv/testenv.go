// Package testenv decides what a test does when the machine lacks something
// it needs, such as a Postgres server or redis-server. By default the test
// skips, saying how to run it, so that `go test ./...` passes on a fresh
// checkout. With AUTHD_TEST_REQUIRE_ALL=1, which `make test` and CI set, it
// fails instead: there a missing server must not pass for a green suite.
package testenv

import (
	"os"
	"testing"
)

// RequireAllVar names the variable that turns a missing prerequisite from a
// skip into a failure.
const RequireAllVar = "AUTHD_TEST_REQUIRE_ALL"

// Missing ends the test for want of a prerequisite. reason says what is
// missing and how to provide it, in one line.
func Missing(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv(RequireAllVar) == "1" {
		tb.Fatalf("%s (%s=1: required)", reason, RequireAllVar)
	}
	tb.Skip(reason)
}
