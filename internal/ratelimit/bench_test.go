package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemory_Allow is one decision on a key that is always allowed
// (the rule is generous): the common case of a login.
func BenchmarkMemory_Allow(b *testing.B) {
	m := NewMemory(Rule{Burst: 1 << 30, Every: time.Nanosecond}, 0, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := m.Allow(ctx, "203.0.113.7"); !d.Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkMemory_AllowDenied is a decision on an exhausted key: what a
// flood from one address costs.
func BenchmarkMemory_AllowDenied(b *testing.B) {
	m := NewMemory(Rule{Burst: 1, Every: time.Hour}, 0, nil)
	ctx := context.Background()
	m.Allow(ctx, "203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := m.Allow(ctx, "203.0.113.7"); d.Allowed {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkMemory_AllowDistinct is a new key every time at the key bound,
// so each decision also evicts the least recently used bucket: a flood of
// distinct addresses or account names.
func BenchmarkMemory_AllowDistinct(b *testing.B) {
	m := NewMemory(Rule{Burst: 5, Every: time.Minute}, 10_000, nil)
	ctx := context.Background()
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "key" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Allow(ctx, keys[i%len(keys)])
		i++
	}
}

// BenchmarkMemory_AllowParallel is Allow from every CPU at once on
// distinct keys: the cost of the limiter's one mutex.
func BenchmarkMemory_AllowParallel(b *testing.B) {
	m := NewMemory(Rule{Burst: 1 << 30, Every: time.Nanosecond}, 0, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Allow(ctx, "203.0.113.7")
		}
	})
}
