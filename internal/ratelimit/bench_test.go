package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/authd/authd/internal/redistest"
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
// every bucket in debt, so each decision also evicts the bucket with the
// least debt: a flood of distinct addresses or account names.
func BenchmarkMemory_AllowDistinct(b *testing.B) {
	benchmarkDistinct(b, 10_000)
}

// BenchmarkMemory_AllowDistinctDefaultBound is AllowDistinct at the default
// bound: the deepest heap a process holds per rule.
func BenchmarkMemory_AllowDistinctDefaultBound(b *testing.B) {
	benchmarkDistinct(b, DefaultMaxKeys)
}

func benchmarkDistinct(b *testing.B, maxKeys int) {
	m := NewMemory(Rule{Burst: 5, Every: time.Minute}, maxKeys, nil)
	ctx := context.Background()
	keys := make([]string, 10*maxKeys)
	for i := range keys {
		keys[i] = "key" + strconv.Itoa(i)
	}
	for _, k := range keys[:maxKeys] {
		m.Allow(ctx, k)
	}
	b.ReportAllocs()
	i := maxKeys
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

// BenchmarkRedis_Allow is one decision on a key that is always allowed, on
// a Redis of the benchmark's own over a Unix socket: one EVALSHA round trip,
// the least a shared decision costs.
func BenchmarkRedis_Allow(b *testing.B) {
	r := NewRedis(newTestClient(b, redistest.New(b)), "login_ip", Rule{Burst: 1 << 30, Every: time.Microsecond}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := r.Allow(ctx, "203.0.113.7"); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkRedis_AllowParallel is Allow from every CPU at once on one key:
// the client's pool and Redis's single thread under load.
func BenchmarkRedis_AllowParallel(b *testing.B) {
	r := NewRedis(newTestClient(b, redistest.New(b)), "login_ip", Rule{Burst: 1 << 30, Every: time.Microsecond}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Allow(ctx, "203.0.113.7"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
