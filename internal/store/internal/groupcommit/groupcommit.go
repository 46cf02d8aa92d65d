// Package groupcommit runs many callers' small writes as one transaction.
//
// A durable database flushes its log at each commit, and each statement
// pays its own triggers and round trip: a thousand logouts a second, each
// its own transaction, spend most of the database's time on what they do
// not share. A Batcher lets each caller wait for its key to be written
// while it writes the keys of everyone who arrived during the previous
// write in one transaction: with one caller at a time it adds nothing (the
// write starts at once), and under load each commit serves many callers.
package groupcommit

import (
	"context"
	"sync"
	"time"
)

// Batcher writes the keys its callers give to Do in batches, one batch at
// a time, each with one call of its write function.
type Batcher[K any] struct {
	// write writes the keys in one transaction and says, for each, whether
	// it changed anything (a key already gone says false).
	write func(ctx context.Context, keys []K) ([]bool, error)
	// max bounds a batch; the rest waits for the next one.
	max int
	// timeout bounds a batch that no caller's deadline bounds.
	timeout time.Duration

	mu      sync.Mutex
	pending []*call[K]
	writing bool // a batch is being written
}

type call[K any] struct {
	key      K
	deadline time.Time // zero: none
	found    bool
	err      error
	done     chan struct{}
}

// New returns a Batcher that writes at most maxKeys keys per call of write,
// one call at a time: on Postgres a second writer's commit would wait for
// the first's NOTIFY lock anyway (measured: three writers made logouts
// slower), and SQLite has one writer. A batch runs under the earliest deadline of its callers' contexts, or
// under timeout when none has one; a caller that leaves early does not
// cancel the batch its key is in, which others wait for.
func New[K any](maxKeys int, timeout time.Duration, write func(ctx context.Context, keys []K) ([]bool, error)) *Batcher[K] {
	return &Batcher[K]{write: write, max: maxKeys, timeout: timeout}
}

// Do writes key, in a batch with the keys of other callers, and returns
// whether the write changed anything for it, or the batch's error. It
// returns ctx's error if ctx ends first; the key may then still be
// written.
func (b *Batcher[K]) Do(ctx context.Context, key K) (bool, error) {
	c := &call[K]{key: key, done: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok {
		c.deadline = d
	}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	start := !b.writing
	b.writing = true
	b.mu.Unlock()
	if start {
		go b.writeAll()
	}
	select {
	case <-c.done:
		return c.found, c.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// writeAll writes batches until no key is pending.
func (b *Batcher[K]) writeAll() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.max)
		if n == 0 {
			b.writing = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = append([]*call[K](nil), b.pending[n:]...)
		b.mu.Unlock()
		b.writeBatch(batch)
	}
}

func (b *Batcher[K]) writeBatch(batch []*call[K]) {
	var deadline time.Time
	for _, c := range batch {
		if !c.deadline.IsZero() && (deadline.IsZero() || c.deadline.Before(deadline)) {
			deadline = c.deadline
		}
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(b.timeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	keys := make([]K, len(batch))
	for i, c := range batch {
		keys[i] = c.key
	}
	found, err := b.write(ctx, keys)
	for i, c := range batch {
		c.err = err
		if err == nil && i < len(found) {
			c.found = found[i]
		}
		close(c.done)
	}
}
