package api

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// waitQueued waits until n checks are queued at g.
func waitQueued(t *testing.T, g *hashGate, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.waiting.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks queued, want %d", g.waiting.Load(), n)
		}
		runtime.Gosched()
	}
}

// A burst is queued while the expected wait is within the bound; the login
// past it is refused at once, with the wait it would have had as its
// retry-after; the queued ones get their slot in turn.
func TestHashGate_AdmitsByExpectedWait(t *testing.T) {
	// One slot, a check takes 100ms (seeded), the bound is 250ms: the
	// first two in line expect 100ms and 200ms, the third 300ms.
	g := newHashGate(1, 250*time.Millisecond)
	g.seedHashTime(100 * time.Millisecond)
	ctx := context.Background()
	held, wait, err := g.acquire(ctx)
	if err != nil || wait != 0 {
		t.Fatalf("a free slot: wait %v, err %v; want it at once", wait, err)
	}
	got := make(chan hashSlot, 2)
	for i := range 2 {
		go func() {
			s, _, err := g.acquire(ctx)
			if err != nil {
				t.Errorf("queued check %d: %v, want a slot", i+1, err)
			}
			got <- s
		}()
		waitQueued(t, g, int64(i+1))
	}
	_, _, err = g.acquire(ctx)
	var me *matrixError
	if !errors.As(err, &me) || me.Status != http.StatusTooManyRequests || me.Errcode != "M_LIMIT_EXCEEDED" || me.outcome != outcomeHashBusy {
		t.Fatalf("the third in line: %v, want 429 M_LIMIT_EXCEEDED (hash busy)", err)
	}
	if me.RetryAfter != 300*time.Millisecond {
		t.Fatalf("retry after %v, want the expected wait, 300ms", me.RetryAfter)
	}
	// Refused at once: it did not wait for a slot (released below, much
	// later than this check).
	if g.waiting.Load() != 2 {
		t.Fatalf("%d queued after the refusal, want the 2 admitted", g.waiting.Load())
	}
	g.release(held)
	g.release(<-got)
	g.release(<-got)
	if g.waiting.Load() != 0 || len(g.slots) != 0 {
		t.Fatalf("after every release: %d queued, %d slots held", g.waiting.Load(), len(g.slots))
	}
}

// The estimate follows the measured hold time: an average over releases,
// from the first measured when nothing seeded it.
func TestHashGate_MeasuresHoldTime(t *testing.T) {
	g := newHashGate(2, time.Second)
	if g.expectedWait(1) != 0 {
		t.Fatalf("unseeded: expected wait %v, want 0", g.expectedWait(1))
	}
	s, _, err := g.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.since = time.Now().Add(-80 * time.Millisecond) // as if held 80ms
	g.release(s)
	if held := time.Duration(g.heldNS.Load()); held < 80*time.Millisecond || held > 90*time.Millisecond {
		t.Fatalf("first measurement %v, want about 80ms", held)
	}
	// Two slots: the second in line waits one check's time.
	if w := g.expectedWait(2); w < 80*time.Millisecond || w > 90*time.Millisecond {
		t.Fatalf("expected wait of the second in line %v, want one check (2 slots)", w)
	}
	s, _, _ = g.acquire(context.Background())
	s.since = time.Now().Add(-160 * time.Millisecond)
	g.release(s)
	// 80 + (160-80)/8 = 90ms.
	if held := time.Duration(g.heldNS.Load()); held < 90*time.Millisecond || held > 100*time.Millisecond {
		t.Fatalf("after a 160ms check the average is %v, want about 90ms", held)
	}
}

// An admitted check whose estimate proves wrong gives up at twice the
// bound, with 429; one whose request ends stops waiting with its error.
func TestHashGate_GivesUpAndHonoursCancel(t *testing.T) {
	g := newHashGate(1, 20*time.Millisecond)
	g.seedHashTime(time.Millisecond) // far too optimistic
	held, _, _ := g.acquire(context.Background())
	defer g.release(held)
	_, wait, err := g.acquire(context.Background())
	var me *matrixError
	if !errors.As(err, &me) || me.Status != http.StatusTooManyRequests {
		t.Fatalf("a check the held slot never frees: %v, want 429", err)
	}
	if wait < 40*time.Millisecond {
		t.Fatalf("gave up after %v, want twice the bound (40ms)", wait)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := g.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled request: %v, want context.Canceled", err)
	}
}
