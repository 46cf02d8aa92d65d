package ratelimit

import (
	"context"
	"fmt"
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
	m := NewMemory(Rule{Burst: 3, Every: 5 * time.Second}, c.now)
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
	m := NewMemory(Rule{}, nil)
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
	m := NewMemory(Rule{Burst: 2, Every: time.Second}, c.now)
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
