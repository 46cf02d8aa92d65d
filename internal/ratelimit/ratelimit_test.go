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

func allow(tb testing.TB, l Limiter, key string) Decision {
	tb.Helper()
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestMemory_Allow(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 3, Every: 5 * time.Second}, 0, c.now)
	for i := range 3 {
		if d := allow(t, m, "a"); !d.Allowed {
			t.Fatalf("action %d denied within the burst", i+1)
		}
	}
	d := allow(t, m, "a")
	if d.Allowed || d.RetryAfter != 5*time.Second {
		t.Fatalf("4th action = %+v, want denied with RetryAfter 5s", d)
	}
	if d := allow(t, m, "b"); !d.Allowed {
		t.Fatal("another key was limited by the first")
	}
	c.advance(2 * time.Second)
	if d := allow(t, m, "a"); d.Allowed || d.RetryAfter != 3*time.Second {
		t.Fatalf("after 2s = %+v, want denied with RetryAfter 3s", d)
	}
	c.advance(3 * time.Second)
	if d := allow(t, m, "a"); !d.Allowed {
		t.Fatal("denied after the refill period")
	}
	if d := allow(t, m, "a"); d.Allowed {
		t.Fatal("a refill of one allowed two actions")
	}
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

func TestMemory_PeekAndUndo(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 2, Every: time.Minute}, 0, c.now)
	ctx := context.Background()
	if d, _ := m.Peek(ctx, "a"); !d.Allowed {
		t.Fatal("Peek on a new key denied")
	}
	allow(t, m, "a")
	allow(t, m, "a")
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", m.Len())
	}
	d, _ := m.Peek(ctx, "a")
	if d.Allowed || d.RetryAfter != time.Minute {
		t.Fatalf("Peek on an empty bucket = %+v, want denied for 1m", d)
	}
	// Peek consumes nothing: an empty bucket stays empty, a full one full.
	if d, _ := m.Peek(ctx, "b"); !d.Allowed || m.Len() != 1 {
		t.Fatalf("Peek created a bucket or denied: %+v, Len %d", d, m.Len())
	}
	if err := m.Undo(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if d := allow(t, m, "a"); !d.Allowed {
		t.Fatal("the action given back by Undo is not available")
	}
	if d := allow(t, m, "a"); d.Allowed {
		t.Fatal("Undo gave back more than one action")
	}
	// Undo of a key never seen, or twice, is harmless.
	if err := m.Undo(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
}

// Undo gives the action back on a real clock too, where time has moved on
// between the action and the undo (a bcrypt check in between), and never
// lifts the bucket above its burst.
func TestMemory_UndoAfterTimePassed(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewMemory(Rule{Burst: 5, Every: time.Minute}, 0, c.now)
	ctx := context.Background()
	for range 20 {
		if d := allow(t, m, "alice"); !d.Allowed {
			t.Fatal("an action that was undone stayed spent")
		}
		c.advance(250 * time.Millisecond)
		if err := m.Undo(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	// The bucket is full, not fuller: five actions, then a denial.
	for i := range 5 {
		if d := allow(t, m, "alice"); !d.Allowed {
			t.Fatalf("action %d of the burst denied", i+1)
		}
	}
	if d := allow(t, m, "alice"); d.Allowed {
		t.Fatal("undoing on a full bucket raised it above its burst")
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
