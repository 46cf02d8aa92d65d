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

// SendProbesTo makes the revocation listener send its probes to channel,
// where it never hears them: a database that accepts LISTEN and delivers
// nothing. Restored when the test ends, or by SendProbesTo(tb, "").
func SendProbesTo(tb testing.TB, channel string) {
	old := probeSendChannel.Load()
	if channel == "" {
		c := probeChannel
		probeSendChannel.Store(&c)
		return
	}
	probeSendChannel.Store(&channel)
	tb.Cleanup(func() { probeSendChannel.Store(old) })
}
