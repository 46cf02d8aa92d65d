package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// pendingLen waits until n keys wait for the next batch.
func pendingLen(t *testing.T, b *Batcher[int], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.pending)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys pending, want %d", got, n)
		}
		runtime.Gosched()
	}
}

// While a batch is written, the keys that arrive gather into the next one,
// which is written in one call; each caller gets its own key's answer.
func TestBatcher_GathersWhileWriting(t *testing.T) {
	var mu sync.Mutex
	var batches [][]int
	first := make(chan struct{})
	b := New(100, time.Second, func(ctx context.Context, keys []int) ([]bool, error) {
		mu.Lock()
		batches = append(batches, slices.Clone(keys))
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			<-first
		}
		found := make([]bool, len(keys))
		for i, k := range keys {
			found[i] = k%2 == 0 // even keys "exist"
		}
		return found, nil
	})
	results := make(chan [2]int, 6)
	do := func(k int) {
		found, err := b.Do(context.Background(), k)
		if err != nil {
			t.Errorf("key %d: %v", k, err)
		}
		f := 0
		if found {
			f = 1
		}
		results <- [2]int{k, f}
	}
	go do(0)
	// Wait for the first batch to be in its write.
	for {
		mu.Lock()
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	for k := 1; k <= 5; k++ {
		go do(k)
	}
	pendingLen(t, b, 5)
	close(first)
	got := map[int]int{}
	for range 6 {
		r := <-results
		got[r[0]] = r[1]
	}
	for k := range 6 {
		if want := 1 - k%2; got[k] != want {
			t.Errorf("key %d found %d, want %d", k, got[k], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[0]) != 1 || len(batches[1]) != 5 {
		t.Fatalf("batches %v, want [0] then the 5 that arrived during it", batches)
	}
}

// A batch's error reaches each of its callers; a batch is at most maxKeys;
// a caller whose context ends stops waiting.
func TestBatcher_ErrorsLimitsAndCancel(t *testing.T) {
	boom := errors.New("boom")
	release := make(chan struct{})
	var sizes []int
	var mu sync.Mutex
	b := New(2, time.Second, func(ctx context.Context, keys []int) ([]bool, error) {
		mu.Lock()
		sizes = append(sizes, len(keys))
		mu.Unlock()
		<-release
		return nil, boom
	})
	errs := make(chan error, 5)
	go func() { _, err := b.Do(context.Background(), 0); errs <- err }()
	for {
		mu.Lock()
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	for k := 1; k <= 3; k++ {
		go func() { _, err := b.Do(context.Background(), k); errs <- err }()
	}
	pendingLen(t, b, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Do(ctx, 9); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v, want context.Canceled", err)
	}
	close(release)
	for range 4 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("a caller got %v, want the batch's error", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// 1, then the 3 that waited plus the cancelled one, 2 at a time.
	if !slices.Equal(sizes, []int{1, 2, 2}) {
		t.Fatalf("batch sizes %v, want [1 2 2]", sizes)
	}
}
