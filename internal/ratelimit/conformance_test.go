package ratelimit

import (
	"context"
	"testing"
	"time"
)

// newLimiterFunc returns a limiter of one implementation for rule on the
// clock now, and a function that counts the keys it holds state for.
type newLimiterFunc func(t *testing.T, rule Rule, now func() time.Time) (l Limiter, held func() int)

// testLimiter is the behaviour every Limiter shares, whatever its backend:
// each implementation's test runs it, so that Memory and Redis decide
// alike, to the millisecond.
func testLimiter(t *testing.T, newLimiter newLimiterFunc) {
	start := time.Unix(1_700_000_000, 0)

	// setup returns a fresh limiter for rule on a fake clock at start.
	setup := func(t *testing.T, rule Rule) (Limiter, func() int, *clock) {
		c := &clock{t: start}
		l, held := newLimiter(t, rule, c.now)
		return l, held, c
	}

	t.Run("BurstThenRetryAfter", func(t *testing.T) {
		l, _, c := setup(t, Rule{Burst: 3, Every: 5 * time.Second})
		for i := range 3 {
			if d := allow(t, l, "a"); d != (Decision{Allowed: true}) {
				t.Fatalf("action %d = %+v, want allowed within the burst", i+1, d)
			}
		}
		wantDenied(t, allow(t, l, "a"), 5*time.Second)
		c.advance(2 * time.Second)
		wantDenied(t, allow(t, l, "a"), 3*time.Second)
		c.advance(3 * time.Second)
		wantAllowed(t, allow(t, l, "a"))
		// A refill of one allows one.
		wantDenied(t, allow(t, l, "a"), 5*time.Second)
	})

	// RetryAfter is rounded up to the millisecond, never down: a client that
	// waits that long is allowed.
	t.Run("RetryAfterRoundsUp", func(t *testing.T) {
		l, _, c := setup(t, Rule{Burst: 1, Every: time.Second})
		wantAllowed(t, allow(t, l, "a"))
		c.advance(250*time.Millisecond + 500*time.Microsecond)
		wantDenied(t, allow(t, l, "a"), 750*time.Millisecond)
		wantDenied(t, peek(t, l, "a"), 750*time.Millisecond)
		c.advance(749 * time.Millisecond)
		wantDenied(t, allow(t, l, "a"), time.Millisecond) // 500µs
		c.advance(time.Millisecond)
		wantAllowed(t, allow(t, l, "a"))
	})

	t.Run("RefillNeverAboveBurst", func(t *testing.T) {
		l, _, c := setup(t, Rule{Burst: 2, Every: time.Minute})
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
		c.advance(time.Minute)
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
		// Ten minutes refill the bucket to its burst of two, not to ten.
		c.advance(10 * time.Minute)
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		l, held, _ := setup(t, Rule{Burst: 1, Every: time.Hour})
		// "a:b" must not be the bucket of "a" under some other name.
		keys := []string{"a", "a:b", "b", "203.0.113.7", "@alice:example.org", ""}
		for _, k := range keys {
			wantAllowed(t, allow(t, l, k))
		}
		for _, k := range keys {
			wantDenied(t, allow(t, l, k), time.Hour)
		}
		if n := held(); n != len(keys) {
			t.Fatalf("held %d keys, want %d", n, len(keys))
		}
	})

	t.Run("PeekNewKey", func(t *testing.T) {
		l, held, _ := setup(t, Rule{Burst: 1, Every: time.Minute})
		for range 10 {
			wantAllowed(t, peek(t, l, "a"))
		}
		if n := held(); n != 0 {
			t.Fatalf("Peek on a new key left state for %d keys", n)
		}
		// Ten peeks consumed nothing: the burst of one is whole.
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	t.Run("PeekEmptyBucket", func(t *testing.T) {
		l, held, c := setup(t, Rule{Burst: 2, Every: time.Minute})
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, peek(t, l, "a"), time.Minute)
		c.advance(20 * time.Second)
		wantDenied(t, peek(t, l, "a"), 40*time.Second)
		wantDenied(t, peek(t, l, "a"), 40*time.Second)
		wantDenied(t, allow(t, l, "a"), 40*time.Second)
		// Peek on another key creates nothing.
		wantAllowed(t, peek(t, l, "b"))
		if n := held(); n != 1 {
			t.Fatalf("held %d keys, want 1", n)
		}
		c.advance(40 * time.Second)
		wantAllowed(t, peek(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	t.Run("PeekPartialBucket", func(t *testing.T) {
		l, _, _ := setup(t, Rule{Burst: 3, Every: time.Minute})
		wantAllowed(t, allow(t, l, "a"))
		for range 5 {
			wantAllowed(t, peek(t, l, "a"))
		}
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	t.Run("UndoGivesBackOne", func(t *testing.T) {
		l, _, _ := setup(t, Rule{Burst: 2, Every: time.Minute})
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
		undo(t, l, "a")
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	t.Run("UndoNeverAboveBurst", func(t *testing.T) {
		l, held, _ := setup(t, Rule{Burst: 2, Every: time.Minute})
		// A key never seen: nothing to give back, and nothing stored.
		for range 3 {
			undo(t, l, "nobody")
		}
		if n := held(); n != 0 {
			t.Fatalf("Undo on an unknown key left state for %d keys", n)
		}
		wantAllowed(t, allow(t, l, "a"))
		for range 3 {
			undo(t, l, "a")
		}
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), time.Minute)
	})

	// Undo gives the action back on a real clock too, where time has moved
	// on between the action and the undo (a bcrypt check in between), and
	// never lifts the bucket above its burst.
	t.Run("UndoAfterTimePassed", func(t *testing.T) {
		l, _, c := setup(t, Rule{Burst: 5, Every: time.Minute})
		for range 20 {
			wantAllowed(t, allow(t, l, "alice"))
			c.advance(250 * time.Millisecond)
			undo(t, l, "alice")
		}
		// The bucket is full, not fuller: five actions, then a denial.
		for range 5 {
			wantAllowed(t, allow(t, l, "alice"))
		}
		wantDenied(t, allow(t, l, "alice"), time.Minute)
	})

	// Undo on a bucket part refilled gives back exactly one action: half a
	// token plus one is one and a half.
	t.Run("UndoPartlyRefilled", func(t *testing.T) {
		l, _, c := setup(t, Rule{Burst: 2, Every: time.Minute})
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, allow(t, l, "a"))
		c.advance(30 * time.Second)
		wantDenied(t, peek(t, l, "a"), 30*time.Second)
		undo(t, l, "a")
		wantAllowed(t, allow(t, l, "a"))
		wantDenied(t, allow(t, l, "a"), 30*time.Second)
	})

	t.Run("Disabled", func(t *testing.T) {
		for _, rule := range []Rule{{}, {Burst: 0, Every: time.Second}, {Burst: 3, Every: 0}} {
			l, held, _ := setup(t, rule)
			for range 100 {
				wantAllowed(t, allow(t, l, "a"))
				wantAllowed(t, peek(t, l, "a"))
				undo(t, l, "a")
			}
			if n := held(); n != 0 {
				t.Fatalf("the disabled rule %+v kept state for %d keys", rule, n)
			}
		}
	})
}

func TestMemory_Conformance(t *testing.T) {
	testLimiter(t, func(t *testing.T, rule Rule, now func() time.Time) (Limiter, func() int) {
		m := NewMemory(rule, 0, now)
		return m, m.Len
	})
}

func peek(tb testing.TB, l Limiter, key string) Decision {
	tb.Helper()
	d, err := l.Peek(context.Background(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func undo(tb testing.TB, l Limiter, key string) {
	tb.Helper()
	if err := l.Undo(context.Background(), key); err != nil {
		tb.Fatal(err)
	}
}

func wantAllowed(tb testing.TB, d Decision) {
	tb.Helper()
	if d != (Decision{Allowed: true}) {
		tb.Fatalf("decision = %+v, want allowed", d)
	}
}

func wantDenied(tb testing.TB, d Decision, retryAfter time.Duration) {
	tb.Helper()
	if d != (Decision{RetryAfter: retryAfter}) {
		tb.Fatalf("decision = %+v, want denied with RetryAfter %v", d, retryAfter)
	}
}
