package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// Len returns the number of buckets m holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

func allow(tb testing.TB, l Limiter, key string) Decision {
	tb.Helper()
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestMemory_Disabled(t *testing.T) {
	m := NewMemory(Rule{}, 0, nil)
	for range 100 {
		if d := allow(t, m, "a"); !d.Allowed {
			t.Fatal("a disabled rule denied an action")
		}
	}
	if m.Len() != 0 {
		t.Fatalf("a disabled rule kept %d buckets", m.Len())
	}
}

func TestMemory_DropsRefilledBuckets(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 2, Every: time.Second}, 0, c.now)
	for i := range 1000 {
		allow(t, m, fmt.Sprint("k", i))
	}
	if m.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", m.Len())
	}
	c.advance(2 * time.Second)
	allow(t, m, "fresh")
	if m.Len() != 1 {
		t.Fatalf("after a full refill Len = %d, want 1 (only the fresh key)", m.Len())
	}
}

// A million distinct keys (a spray from a botnet, say) leave the limiter at
// its bound, and the most recent keys keep their state.
func TestMemory_BoundedUnderMillionKeys(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	const maxKeys = 10_000
	m := NewMemory(Rule{Burst: 1, Every: time.Hour}, maxKeys, c.now)
	for i := range 1_000_000 {
		allow(t, m, strconv.Itoa(i))
	}
	if m.Len() != maxKeys {
		t.Fatalf("Len after 1,000,000 keys = %d, want the bound %d", m.Len(), maxKeys)
	}
	if d := allow(t, m, "999999"); d.Allowed {
		t.Fatal("a recent key lost its state")
	}
}

// A key in debt keeps its debt however many other keys arrive: a million
// distinct keys, each spending one action (a flood of account names or
// addresses), neither let the locked key act nor grow the limiter past its
// default bound.
func TestMemory_DebtSurvivesKeyFlood(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 3, Every: time.Minute}, 0, c.now)
	const victim = "@alice:example.org"
	for range 3 {
		wantAllowed(t, allow(t, m, victim))
	}
	wantDenied(t, allow(t, m, victim), time.Minute)

	const flood, batch = 1_000_000, 50_000
	for i := 0; i < flood; i += batch {
		for j := i; j < i+batch; j++ {
			wantAllowed(t, allow(t, m, strconv.Itoa(j)))
		}
		if n := m.Len(); n > DefaultMaxKeys {
			t.Fatalf("after %d other keys Len = %d, over the bound %d", i+batch, n, DefaultMaxKeys)
		}
		wantDenied(t, peek(t, m, victim), time.Minute)
	}
	wantDenied(t, allow(t, m, victim), time.Minute)
	if n := m.Len(); n != DefaultMaxKeys {
		t.Fatalf("Len = %d, want the bound %d", n, DefaultMaxKeys)
	}
	// Each flood key past the bound pushed out a flood key with one action
	// of debt, the least in the table.
	if got, want := m.Forgiven(), uint64(flood+1-DefaultMaxKeys); got != want {
		t.Fatalf("Forgiven = %d, want %d", got, want)
	}
	// The debt runs out on time, not sooner.
	c.advance(time.Minute - time.Millisecond)
	wantDenied(t, allow(t, m, victim), time.Millisecond)
	c.advance(time.Millisecond)
	wantAllowed(t, allow(t, m, victim))
}

// With every slot in debt, a new key pushes out the bucket closest to full
// (not the least recently used) and counts it as forgiven; buckets that have
// refilled go before any in debt, and forgive nothing.
func TestMemory_EvictsLeastDebtFirst(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 1, Every: time.Minute}, 3, c.now)
	for _, k := range []string{"a", "b", "c"} {
		wantAllowed(t, allow(t, m, k)) // full again 60s, 70s, 80s from the start
		c.advance(10 * time.Second)
	}
	// Now 30s: a owes 30s, b 40s, c 50s. A denied attempt on a makes it the
	// most recently used, not the most indebted.
	wantDenied(t, allow(t, m, "a"), 30*time.Second)
	wantAllowed(t, allow(t, m, "d")) // full again at 90s
	if got := m.Forgiven(); got != 1 {
		t.Fatalf("Forgiven = %d, want 1", got)
	}
	if n := m.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	wantAllowed(t, peek(t, m, "a")) // a, the least in debt, went
	wantDenied(t, peek(t, m, "b"), 40*time.Second)
	wantDenied(t, peek(t, m, "c"), 50*time.Second)
	wantDenied(t, peek(t, m, "d"), time.Minute)

	// At 75s b has refilled; c (80s) and d (90s) have not. A new key takes
	// b's slot, and no debt is forgiven.
	c.advance(45 * time.Second)
	wantAllowed(t, allow(t, m, "e"))
	if got := m.Forgiven(); got != 1 {
		t.Fatalf("Forgiven = %d after dropping a refilled bucket, want still 1", got)
	}
	if n := m.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	wantDenied(t, peek(t, m, "c"), 5*time.Second)
	wantDenied(t, peek(t, m, "d"), 15*time.Second)
	wantDenied(t, peek(t, m, "e"), time.Minute)
}

func TestParseRule(t *testing.T) {
	for in, want := range map[string]Rule{"10/5s": {10, 5 * time.Second}, "5/1m": {5, time.Minute}, "off": {}} {
		got, err := ParseRule(in)
		if err != nil || got != want {
			t.Fatalf("ParseRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in && in != "5/1m" {
			t.Fatalf("String() = %q, want %q", got.String(), in)
		}
	}
	for _, bad := range []string{"", "10", "0/5s", "-1/5s", "10/0s", "10/soon", "ten/5s", "on"} {
		if _, err := ParseRule(bad); err == nil {
			t.Fatalf("ParseRule(%q) accepted", bad)
		}
	}
}
