package ratelimit

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd/authd/internal/redistest"
)

// newTestClient returns a client of srv, as authd makes it, closed when the
// test ends.
func newTestClient(tb testing.TB, srv *redistest.Server) *redis.Client {
	tb.Helper()
	c, err := NewClient(srv.URL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// keyCount counts the keys of the rule named name.
func keyCount(tb testing.TB, c redis.UniversalClient, name string) int {
	tb.Helper()
	keys, err := c.Keys(context.Background(), keyPrefix+name+":*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return len(keys)
}

func TestRedis_Conformance(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, redistest.New(t))
	var rules atomic.Int64
	testLimiter(t, func(t *testing.T, rule Rule, now func() time.Time) (Limiter, func() int) {
		// One server for all: each limiter a rule of its own.
		name := "rule" + strconv.FormatInt(rules.Add(1), 10)
		return NewRedis(c, name, rule, now), func() int { return keyCount(t, c, name) }
	})
}

// The key holds the theoretical arrival time in whole microseconds, written
// as an integer (not as a double's 1.7e+15), and expires when it passes.
func TestRedis_StoresIntegerMicroseconds(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, redistest.New(t))
	clk := &clock{t: time.Unix(1_700_000_000, 123_456_789)}
	r := NewRedis(c, "login_ip", Rule{Burst: 2, Every: 1500 * time.Millisecond}, clk.now)
	ctx := context.Background()
	const key = "authd:rl:login_ip:203.0.113.7"

	wantAllowed(t, allow(t, r, "203.0.113.7"))
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "1700000001623456" {
		t.Fatalf("GET %s = %q, %v; want 1700000001623456 (now + 1.5s in µs)", key, got, err)
	}
	wantPTTL(t, c, key, 1500*time.Millisecond)

	wantAllowed(t, allow(t, r, "203.0.113.7"))
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "1700000003123456" {
		t.Fatalf("GET %s = %q, %v; want 1700000003123456 (now + 3s in µs)", key, got, err)
	}
	// At most burst × every: the time the bucket takes to refill.
	wantPTTL(t, c, key, 3*time.Second)
	wantDenied(t, allow(t, r, "203.0.113.7"), 1500*time.Millisecond)
}

// wantPTTL checks that key expires within max, and not much sooner: the
// test's own time passes on the server's clock.
func wantPTTL(tb testing.TB, c redis.UniversalClient, key string, max time.Duration) {
	tb.Helper()
	got, err := c.PTTL(context.Background(), key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	if got <= max-time.Second || got > max {
		tb.Fatalf("PTTL %s = %v, want in (%v, %v]", key, got, max-time.Second, max)
	}
}

// A bucket that is full again holds no key: after Undo gives back its only
// action, and once its time passes on the server's clock.
func TestRedis_FullBucketHasNoKey(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, redistest.New(t))
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r := NewRedis(c, "login_failed", Rule{Burst: 2, Every: time.Minute}, clk.now)
	wantAllowed(t, allow(t, r, "alice"))
	if n := keyCount(t, c, "login_failed"); n != 1 {
		t.Fatalf("%d keys after an action, want 1", n)
	}
	undo(t, r, "alice")
	if n := keyCount(t, c, "login_failed"); n != 0 {
		t.Fatalf("%d keys after its undo, want none", n)
	}

	// On the server's clock, the key expires once the bucket has refilled.
	r = NewRedis(c, "refresh_ip", Rule{Burst: 1, Every: 20 * time.Millisecond}, nil)
	wantAllowed(t, allow(t, r, "k"))
	deadline := time.Now().Add(5 * time.Second)
	for keyCount(t, c, "refresh_ip") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the key of a refilled bucket did not expire")
		}
		time.Sleep(5 * time.Millisecond) // polling Redis's expiry, not synchronising
	}
	wantAllowed(t, allow(t, r, "k"))
}

// Two replicas (a client each) on one Redis share one budget.
func TestRedis_SharedBudget(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	rule := Rule{Burst: 10, Every: time.Hour}
	var ls []*Redis
	for range 3 {
		ls = append(ls, NewRedis(newTestClient(t, srv), "login_ip", rule, clk.now))
	}

	allowed := 0
	for i := range 100 {
		d := allow(t, ls[i%len(ls)], "203.0.113.7")
		if d.Allowed {
			allowed++
		} else {
			wantDenied(t, d, time.Hour)
		}
	}
	if allowed != 10 {
		t.Fatalf("%d of 100 actions allowed across 3 replicas, want the burst of 10", allowed)
	}

	// At once, too: each decision is atomic.
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
		for range 4 {
			wg.Go(func() {
				for range 25 {
					d, err := l.Allow(context.Background(), "198.51.100.1")
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						n.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if n.Load() != 10 {
		t.Fatalf("%d of 300 concurrent actions allowed, want the burst of 10", n.Load())
	}
}

// With no clock given, the script reads Redis's.
func TestRedis_ServerClock(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, redistest.New(t))
	ctx := context.Background()
	r := NewRedis(c, "login_ip", Rule{Burst: 3, Every: time.Hour}, nil)
	for range 3 {
		wantAllowed(t, allow(t, r, "a"))
	}
	for _, d := range []Decision{allow(t, r, "a"), peek(t, r, "a")} {
		if d.Allowed || d.RetryAfter <= time.Hour-10*time.Second || d.RetryAfter > time.Hour {
			t.Fatalf("after the burst: %+v, want denied for just under 1h", d)
		}
	}
	// The stored time is three hours ahead of the server's.
	tat, err := c.Get(ctx, keyPrefix+"login_ip:a").Int64()
	if err != nil {
		t.Fatal(err)
	}
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ahead := time.UnixMicro(tat).Sub(now); ahead <= 3*time.Hour-10*time.Second || ahead > 3*time.Hour {
		t.Fatalf("stored time is %v ahead of the server's clock, want just under 3h", ahead)
	}
	undo(t, r, "a")
	wantAllowed(t, allow(t, r, "a"))
}

// A disabled rule never reaches Redis; an enabled one reports Redis's
// errors, wrapped.
func TestRedis_Errors(t *testing.T) {
	t.Parallel()
	c, err := NewClient("unix://" + t.TempDir() + "/no.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	off := NewRedis(c, "login_ip", Rule{}, nil)
	if d, err := off.Allow(ctx, "a"); err != nil || !d.Allowed {
		t.Fatalf("disabled Allow = %+v, %v; want allowed", d, err)
	}
	if d, err := off.Peek(ctx, "a"); err != nil || !d.Allowed {
		t.Fatalf("disabled Peek = %+v, %v; want allowed", d, err)
	}
	if err := off.Undo(ctx, "a"); err != nil {
		t.Fatalf("disabled Undo = %v", err)
	}

	on := NewRedis(c, "login_ip", Rule{Burst: 1, Every: time.Second}, nil)
	_, errAllow := on.Allow(ctx, "a")
	_, errPeek := on.Peek(ctx, "a")
	errUndo := on.Undo(ctx, "a")
	for _, err := range []error{errAllow, errPeek, errUndo} {
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || !strings.HasPrefix(err.Error(), "ratelimit: redis: ") {
			t.Fatalf("error = %v, want ratelimit: redis: wrapping the dial error", err)
		}
	}
}

// Redis may lose its script cache (a restart, SCRIPT FLUSH): the script is
// sent again, and the buckets are unaffected.
func TestRedis_ScriptCacheFlushed(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, redistest.New(t))
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r := NewRedis(c, "login_ip", Rule{Burst: 2, Every: time.Minute}, clk.now)
	wantAllowed(t, allow(t, r, "a"))
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, allow(t, r, "a"))
	wantDenied(t, allow(t, r, "a"), time.Minute)
}
