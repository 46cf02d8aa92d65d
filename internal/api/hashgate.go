package api

import (
	"context"
	"time"
)

// defaultHashQueueTimeout is how long a login waits for a hashing slot
// when Deps names no timeout.
const defaultHashQueueTimeout = time.Second

// hashGate bounds the password checks that run at once. bcrypt is the one
// expensive thing authd does; with a bound, a login flood queues briefly
// and is then shed with 429, instead of taking every CPU from logout,
// refresh and whoami, which never pass through the gate.
type hashGate struct {
	slots   chan struct{}
	timeout time.Duration
}

func newHashGate(concurrency int, timeout time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, concurrency), timeout: timeout}
}

// acquire waits up to the queue timeout for a slot. It returns how long it
// waited and whether it got one; the caller must release a slot it got.
func (g *hashGate) acquire(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	select {
	case g.slots <- struct{}{}:
		return time.Since(start), true
	default:
	}
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return time.Since(start), true
	case <-t.C:
	case <-ctx.Done():
	}
	return time.Since(start), false
}

// acquireUntilDone waits for a slot as long as ctx lasts: for passwords an
// admin sets, which queue rather than being shed. It returns how long it
// waited and whether it got one.
func (g *hashGate) acquireUntilDone(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	select {
	case g.slots <- struct{}{}:
		return time.Since(start), true
	case <-ctx.Done():
		return time.Since(start), false
	}
}

func (g *hashGate) release() { <-g.slots }
