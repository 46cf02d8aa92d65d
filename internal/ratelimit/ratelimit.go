// Package ratelimit decides whether a keyed action may happen now. The
// Limiter interface is what the API depends on; Memory is the in-process
// implementation on golang.org/x/time/rate. Redis is the implementation
// shared by several replicas, deciding alike; a Backend puts Redis in front
// of Memory, which decides while Redis is unreachable.
package ratelimit

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"strings"
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

// String writes the rule as ParseRule reads it.
func (r Rule) String() string {
	if !r.Enabled() {
		return "off"
	}
	return strconv.Itoa(r.Burst) + "/" + r.Every.String()
}

// ParseRule reads "BURST/EVERY" (e.g. "10/5s": ten at once, then one every
// five seconds) or "off".
func ParseRule(s string) (Rule, error) {
	if s == "off" {
		return Rule{}, nil
	}
	b, e, ok := strings.Cut(s, "/")
	burst, err1 := strconv.Atoi(b)
	every, err2 := time.ParseDuration(e)
	if !ok || err1 != nil || err2 != nil || burst < 1 || every <= 0 {
		return Rule{}, fmt.Errorf("%q is not off or BURST/PERIOD such as 10/5s", s)
	}
	return Rule{Burst: burst, Every: every}, nil
}

// Decision is the answer of a Limiter.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the action would be allowed, in whole
	// milliseconds; zero when Allowed.
	RetryAfter time.Duration
}

// Limiter rate-limits actions by key under one Rule. Every method errs only
// when the limiter's backend fails.
type Limiter interface {
	// Allow consumes one action for key if the rule allows it now, and
	// otherwise says how long to wait.
	Allow(ctx context.Context, key string) (Decision, error)
	// Peek says whether Allow would allow an action for key now, without
	// consuming it.
	Peek(ctx context.Context, key string) (Decision, error)
	// Undo gives back one action that Allow consumed for key, as when a
	// rule on failed attempts learns that the attempt succeeded, or that it
	// never ran.
	Undo(ctx context.Context, key string) error
}

// DefaultMaxKeys bounds the keys a Memory limiter tracks.
const DefaultMaxKeys = 100_000

// Memory is an in-process Limiter. Its memory is bounded: buckets that have
// refilled completely hold no information and are dropped, and past
// MaxKeys buckets the least recently used one is dropped (which forgives
// that key's debt: a flood of a million distinct keys can reset old ones,
// which is the price of a bounded in-process limiter; a shared backend has
// no such limit).
type Memory struct {
	rule    Rule
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket, most recently used first
	lru     *list.List
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter for rule that tracks at most
// maxKeys keys (DefaultMaxKeys when maxKeys <= 0). now is the clock; nil
// means time.Now. A rule that is not Enabled allows everything.
func NewMemory(rule Rule, maxKeys int, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{rule: rule, now: now, maxKeys: maxKeys, buckets: make(map[string]*list.Element), lru: list.New()}
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.bucket(key, now)
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Decision{RetryAfter: roundUp(d)}, nil
	}
	return Decision{Allowed: true}, nil
}

// Peek implements Limiter.
func (m *Memory) Peek(_ context.Context, key string) (Decision, error) {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.buckets[key]
	if !ok {
		return Decision{Allowed: true}, nil
	}
	// Float residue can leave a bucket refilled on the dot a hair short of
	// a token; Allow allows it (its wait is under a nanosecond), and so
	// must Peek, rather than deny with a RetryAfter of zero.
	wait := time.Duration((1 - e.Value.(*bucket).lim.TokensAt(now)) * float64(m.rule.Every))
	if wait <= 0 {
		return Decision{Allowed: true}, nil
	}
	return Decision{RetryAfter: roundUp(wait)}, nil
}

// Undo implements Limiter.
func (m *Memory) Undo(_ context.Context, key string) error {
	if !m.rule.Enabled() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.buckets[key]; ok {
		b := e.Value.(*bucket)
		now := m.now()
		// Reservation.CancelAt gives nothing back once the reservation's
		// time has passed, which it has for any action already allowed. A
		// reservation of -1 adds the action back instead; x/time/rate caps
		// the bucket at its burst again on its next use, so a full bucket
		// gains nothing.
		if b.lim.TokensAt(now) < float64(m.rule.Burst) {
			b.lim.AllowN(now, -1)
		}
	}
	return nil
}

// Len returns the number of buckets held, for tests and metrics.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

// bucket returns key's bucket, creating it, and marks it used now. It drops
// refilled buckets from the old end, then the oldest if still too many.
func (m *Memory) bucket(key string, now time.Time) *bucket {
	if e, ok := m.buckets[key]; ok {
		b := e.Value.(*bucket)
		b.last = now
		m.lru.MoveToFront(e)
		return b
	}
	full := time.Duration(m.rule.Burst) * m.rule.Every
	for e := m.lru.Back(); e != nil; e = m.lru.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.last) < full && m.lru.Len() < m.maxKeys {
			break
		}
		m.lru.Remove(e)
		delete(m.buckets, b.key)
	}
	b := &bucket{key: key, lim: rate.NewLimiter(rate.Every(m.rule.Every), m.rule.Burst), last: now}
	m.buckets[key] = m.lru.PushFront(b)
	return b
}

// roundUp rounds d up to the millisecond: clients are told retry_after_ms,
// and x/time/rate's float arithmetic leaves nanosecond residue.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
