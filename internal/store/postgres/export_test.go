package postgres

import (
	"testing"
	"time"
)

// SetListenTimings shortens the revocation listener's idle wait and ping
// timeout until the test ends. The test must end its listeners before then
// (register this first: cleanups run last-in first-out), and must not run
// in parallel.
func SetListenTimings(tb testing.TB, idle, ping time.Duration) {
	oldIdle, oldPing := listenIdle, listenPingTimeout
	listenIdle, listenPingTimeout = idle, ping
	tb.Cleanup(func() { listenIdle, listenPingTimeout = oldIdle, oldPing })
}

// ParseRevocation is parseRevocation, for the table test.
var ParseRevocation = parseRevocation
