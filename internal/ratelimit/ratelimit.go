// Package ratelimit decides whether a keyed action may happen now. The
// Limiter interface is what the API depends on; Memory is the in-process
// implementation on golang.org/x/time/rate. A shared implementation for
// several replicas plugs in behind the same interface.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rule is a token bucket: up to Burst actions at once, refilled by one every
// Every.
type Rule struct {
	Burst int
	Every time.Duration
}

// Enabled reports whether the rule limits anything; a zero rule does not.
func (r Rule) Enabled() bool { return r.Burst > 0 && r.Every > 0 }

// Decision is the answer of a Limiter.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the action would be allowed, in whole
	// milliseconds; zero when Allowed.
	RetryAfter time.Duration
}

// Limiter rate-limits actions by key under one Rule.
type Limiter interface {
	// Allow consumes one action for key if the rule allows it now, and
	// otherwise says how long to wait. It errs only when the limiter's
	// backend fails.
	Allow(ctx context.Context, key string) (Decision, error)
}

// Memory is an in-process Limiter. Buckets that have refilled completely
// hold no information and are dropped, so memory follows the number of keys
// seen recently, not ever.
type Memory struct {
	rule Rule
	now  func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter for rule. now is the clock; nil
// means time.Now. A rule that is not Enabled allows everything.
func NewMemory(rule Rule, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{rule: rule, now: now, buckets: make(map[string]*bucket)}
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	b, ok := m.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Every(m.rule.Every), m.rule.Burst)}
		m.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		// Round up to the millisecond: clients are told retry_after_ms,
		// and x/time/rate's float arithmetic leaves nanosecond residue.
		return Decision{RetryAfter: (d + time.Millisecond - 1).Truncate(time.Millisecond)}, nil
	}
	return Decision{Allowed: true}, nil
}

// Len returns the number of buckets held, for tests and metrics.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

// sweep drops buckets untouched for long enough to have refilled: forgetting
// them changes no decision. It runs at most once per refill period.
func (m *Memory) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	full := time.Duration(m.rule.Burst) * m.rule.Every
	for k, b := range m.buckets {
		if now.Sub(b.last) >= full {
			delete(m.buckets, k)
		}
	}
	m.nextSweep = now.Add(m.rule.Every)
}
