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
