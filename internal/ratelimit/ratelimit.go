// Package ratelimit decides whether a keyed action may happen now. The
// Limiter interface is what the API depends on; Memory is the in-process
// implementation, a generic cell rate algorithm (GCRA) of bounded memory
// that no traffic on other keys makes forget a key's debt (see Memory).
// Redis is the implementation
// shared by several replicas, deciding alike; a Backend puts Redis in front
// of Memory, which decides while Redis is unreachable.
package ratelimit

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// Memory is an in-process Limiter. It keeps each bucket as one number, the
// time at which the bucket is full again (GCRA's theoretical arrival time,
// as in Redis), and the amount by which that time is past now is the
// bucket's debt.
//
// Its memory is bounded without forgiving debt to traffic on other keys. A
// bucket that has refilled holds no information and is dropped. A new key
// takes a slot only once every refilled bucket is gone; past MaxKeys
// buckets all in debt, the bucket closest to refilled (the least debt) is
// dropped, and Forgiven counts it. So no traffic on other keys shortens a
// key's debt unless every one of MaxKeys other buckets owes more than it
// does: an attacker must have spent more than the victim owes on each of
// MaxKeys keys, and then the victim is forgiven the least debt in the
// table. A shared backend (Redis) has no such bound.
type Memory struct {
	rule    Rule
	now     func() time.Time
	maxKeys int
	// every and tau (the burst times every, capped) are the rule in
	// nanoseconds; times are nanoseconds since epoch (limiterEpoch).
	every, tau int64
	epoch      time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	byTAT   tatHeap // every bucket, the earliest to be full again first

	forgiven atomic.Uint64
}

type bucket struct {
	key string
	tat int64 // when the bucket is full again, in ns since Memory.epoch
	i   int   // index in Memory.byTAT
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
	m := &Memory{rule: rule, now: now, maxKeys: maxKeys, buckets: make(map[string]*bucket)}
	if rule.Enabled() {
		m.every = int64(rule.Every)
		// A burst over about 146 years' worth of refills is as good as
		// unlimited; capping keeps the sums below from overflowing.
		m.tau = math.MaxInt64 / 64
		if int64(rule.Burst) < m.tau/m.every {
			m.tau = int64(rule.Burst) * m.every
		}
		m.epoch = limiterEpoch
	}
	return m
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string) (Decision, error) {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[key]
	if !ok {
		// A new key's bucket is full: its first action is allowed.
		m.makeRoom(now)
		b = &bucket{key: key, tat: now + m.every}
		m.buckets[key] = b
		heap.Push(&m.byTAT, b)
		return Decision{Allowed: true}, nil
	}
	tat := max(b.tat, now)
	if wait := tat + m.every - m.tau - now; wait > 0 {
		return Decision{RetryAfter: roundUp(time.Duration(wait))}, nil
	}
	b.tat = tat + m.every
	heap.Fix(&m.byTAT, b.i)
	return Decision{Allowed: true}, nil
}

// Peek implements Limiter.
func (m *Memory) Peek(_ context.Context, key string) (Decision, error) {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[key]
	if !ok {
		return Decision{Allowed: true}, nil
	}
	if wait := max(b.tat, now) + m.every - m.tau - now; wait > 0 {
		return Decision{RetryAfter: roundUp(time.Duration(wait))}, nil
	}
	return Decision{Allowed: true}, nil
}

// Undo implements Limiter. It moves the bucket's full-again time back by
// one refill, never before now: a bucket is never above its burst, and a
// bucket that is full again is dropped.
func (m *Memory) Undo(_ context.Context, key string) error {
	if !m.rule.Enabled() {
		return nil
	}
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.buckets[key]
	if !ok {
		return nil
	}
	b.tat -= m.every
	if b.tat <= now {
		heap.Remove(&m.byTAT, b.i)
		delete(m.buckets, key)
		return nil
	}
	heap.Fix(&m.byTAT, b.i)
	return nil
}

// Forgiven returns the number of buckets dropped while still in debt, to
// make room for other keys with every slot taken by a bucket in debt (see
// Memory). Each such drop let a key act sooner than its rule allows.
func (m *Memory) Forgiven() uint64 { return m.forgiven.Load() }

// limiterEpoch is the time bucket times count from: the process's start,
// read with a monotonic clock reading, so that time.Now's differences from
// it are monotonic. (It is not the clock's first reading: a limiter may be
// made before a test's clock is set.) A test clock of another year is fine:
// int64 nanoseconds span 292 years either way.
var limiterEpoch = time.Now()

// clock returns now in nanoseconds since m.epoch.
func (m *Memory) clock() int64 { return int64(m.now().Sub(m.epoch)) }

// makeRoom makes room for one more bucket at now: it drops every bucket
// that has refilled, then, if the table is still full, the bucket with the
// least debt, counting it as forgiven.
func (m *Memory) makeRoom(now int64) {
	for len(m.byTAT) > 0 && m.byTAT[0].tat <= now {
		delete(m.buckets, heap.Pop(&m.byTAT).(*bucket).key)
	}
	if len(m.byTAT) < m.maxKeys {
		return
	}
	delete(m.buckets, heap.Pop(&m.byTAT).(*bucket).key)
	m.forgiven.Add(1)
}

// tatHeap is a container/heap of buckets, the earliest full-again time
// first.
type tatHeap []*bucket

func (h tatHeap) Len() int           { return len(h) }
func (h tatHeap) Less(i, j int) bool { return h[i].tat < h[j].tat }
func (h tatHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i = i
	h[j].i = j
}
func (h *tatHeap) Push(x any) {
	b := x.(*bucket)
	b.i = len(*h)
	*h = append(*h, b)
}
func (h *tatHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}

// roundUp rounds d up to the millisecond: clients are told retry_after_ms.
func roundUp(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}
