package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// defaultHashQueueTimeout is the longest a login queues for a hashing slot
// when Deps names no bound.
const defaultHashQueueTimeout = 5 * time.Second

// hashGate bounds the password checks that run at once. bcrypt is the one
// expensive thing authd does; with a bound, a burst of logins queues, and
// a flood beyond what the CPUs can hash is shed at once with 429, instead
// of taking every CPU from logout, refresh and whoami, which never pass
// through the gate.
//
// A login that finds every slot busy queues when the wait it can expect,
// (logins queued, itself included) × the measured time a slot is held ÷
// slots, is within the bound; beyond it the login is refused at once with
// that expected wait as its retry_after_ms, so that a client knows when to
// come back, and no refused login costs anyone a wait. Admitted logins
// normally get a slot within the bound; one whose estimate was wrong (the
// machine slowed down) gives up at twice the bound.
type hashGate struct {
	slots   chan struct{}
	maxWait time.Duration
	// waiting counts the password checks queued for a slot.
	waiting atomic.Int64
	// heldNS is the moving average of how long a slot is held, in
	// nanoseconds: one password check. 0 until the first is measured
	// (seedHashTime gives it a start).
	heldNS atomic.Int64
}

func newHashGate(concurrency int, maxWait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, concurrency), maxWait: maxWait}
}

// hashSlot is a slot held; give it back with release.
type hashSlot struct{ since time.Time }

// seedHashTime gives the average its first value, before any check ran.
func (g *hashGate) seedHashTime(d time.Duration) {
	g.heldNS.CompareAndSwap(0, int64(d))
}

// expectedWait is how long the queued-th check in line can expect to wait
// for a slot.
func (g *hashGate) expectedWait(queued int64) time.Duration {
	return time.Duration(queued * g.heldNS.Load() / int64(cap(g.slots)))
}

// acquire takes a slot at once if one is free, or queues for one when the
// expected wait is within the bound. It returns the slot, how long it
// waited, and an error: errHashBusy's kind with the expected wait as
// retry-after when it was refused, or ctx's error.
func (g *hashGate) acquire(ctx context.Context) (hashSlot, time.Duration, error) {
	start := time.Now()
	select {
	case g.slots <- struct{}{}:
		return hashSlot{start}, 0, nil
	default:
	}
	queued := g.waiting.Add(1)
	defer g.waiting.Add(-1)
	if expected := g.expectedWait(queued); expected > g.maxWait {
		return hashSlot{}, time.Since(start), hashBusy(expected)
	}
	t := time.NewTimer(2 * g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		now := time.Now()
		return hashSlot{now}, now.Sub(start), nil
	case <-t.C:
		return hashSlot{}, time.Since(start), hashBusy(max(g.expectedWait(g.waiting.Load()), g.maxWait))
	case <-ctx.Done():
		return hashSlot{}, time.Since(start), ctx.Err()
	}
}

// acquireUntilDone waits for a slot as long as ctx lasts: for passwords an
// admin sets, which queue rather than being shed. It returns the slot, how
// long it waited, and ctx's error when it ended first.
func (g *hashGate) acquireUntilDone(ctx context.Context) (hashSlot, time.Duration, error) {
	start := time.Now()
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		now := time.Now()
		return hashSlot{now}, now.Sub(start), nil
	case <-ctx.Done():
		return hashSlot{}, time.Since(start), ctx.Err()
	}
}

// release gives the slot back and adds how long it was held to the
// average (weight 1/8: a few checks follow a change of machine speed).
func (g *hashGate) release(s hashSlot) {
	held := int64(time.Since(s.since))
	<-g.slots
	for {
		old := g.heldNS.Load()
		next := held
		if old > 0 {
			next = old + (held-old)/8
		}
		if g.heldNS.CompareAndSwap(old, next) {
			return
		}
	}
}

// hashBusy is the 429 of a password check refused a hashing slot; the
// client may retry after the wait it would have had.
func hashBusy(retryAfter time.Duration) *matrixError {
	return &matrixError{Status: http.StatusTooManyRequests, Errcode: "M_LIMIT_EXCEEDED", Message: "Too Many Requests",
		RetryAfter: max(retryAfter, time.Millisecond), outcome: outcomeHashBusy}
}

// acquireHashSlot is acquire with the wait observed.
func (a *api) acquireHashSlot(ctx context.Context) (hashSlot, error) {
	slot, wait, err := a.gate.acquire(ctx)
	a.Observer.HashWait(wait)
	return slot, err
}
