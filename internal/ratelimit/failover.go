package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client defaults of NewClient. A rate-limit decision sits in front of every
// login: it must fail fast and fall back to the local limiter rather than
// wait on a sick Redis.
const (
	clientDialTimeout  = 250 * time.Millisecond
	clientReadTimeout  = 250 * time.Millisecond
	clientWriteTimeout = 250 * time.Millisecond
)

// defaultProbeInterval is Run's interval when it is given none.
const defaultProbeInterval = time.Second

// NewClient returns a go-redis client for rawURL (redis://, rediss:// or
// unix://, as redis.ParseURL reads it) tuned for rate limiting: unless the
// URL's query sets them (dial_timeout, read_timeout, write_timeout,
// max_retries), dialling, reading and writing time out after 250ms and a
// failed command is not retried; a dial is tried once. The read timeout is
// what bounds a call to a Redis that hangs rather than refuses. The pool
// keeps go-redis's default size. The error never holds the URL, which may
// hold a password.
func NewClient(rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Parse's errors quote the whole URL.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("ratelimit: redis URL: %w", err)
	}
	// ParseURL parsed it; this cannot fail.
	u, _ := url.Parse(rawURL)
	q := u.Query()
	if !q.Has("dial_timeout") {
		opt.DialTimeout = clientDialTimeout
	}
	if !q.Has("read_timeout") {
		opt.ReadTimeout = clientReadTimeout
	}
	if !q.Has("write_timeout") {
		opt.WriteTimeout = clientWriteTimeout
	}
	if !q.Has("max_retries") {
		opt.MaxRetries = -1 // go-redis's "none"; 0 means its default of 3
	}
	// go-redis dials up to five times, 100ms apart, before a command fails:
	// half a second of every login while Redis is away. Once is enough; the
	// Backend's probe is the retry.
	opt.DialerRetries = 1
	return redis.NewClient(opt), nil
}

// Backend is a Redis connection shared by several rules' limiters, with
// local fallback. While Redis answers, every decision is Redis's, shared
// by every replica; when a call to Redis fails, the backend is down: that
// call and every later one are answered by an in-process Memory limiter
// per rule (each replica then limits on its own), without touching Redis,
// so a dead Redis costs no latency per request. Only a probe (Run, or
// Probe) switches back to Redis once it answers again. The outage and the
// recovery are logged once each, not once per request.
//
// A call to a Redis that hangs rather than refuses takes as long as the
// client's ReadTimeout (250ms with NewClient) before it falls back; the
// calls after it do not wait.
type Backend struct {
	client redis.UniversalClient
	log    *slog.Logger
	now    func() time.Time

	down      atomic.Bool
	fallbacks atomic.Uint64

	mu     sync.Mutex
	locals []*Memory // every rule's fallback
}

// NewBackend returns a backend on client, up until a call fails. log
// receives the switches between Redis and local limits (nil:
// slog.Default()). now is the clock of every limiter: nil means Redis's
// clock for shared decisions and time.Now for local ones; a fake clock is
// for tests.
func NewBackend(client redis.UniversalClient, log *slog.Logger, now func() time.Time) *Backend {
	if log == nil {
		log = slog.Default()
	}
	return &Backend{client: client, log: log, now: now}
}

// Limiter returns the limiter of rule, named name (such as "login_ip"; it
// names the rule's keys in Redis), which falls back to an in-process Memory
// limiter of at most maxKeys keys (see NewMemory) while Redis is down. Each
// call builds a new limiter, with its own local state: call it once per
// rule. A rule that is not Enabled gets a limiter that allows everything
// and touches nothing.
func (b *Backend) Limiter(name string, rule Rule, maxKeys int) Limiter {
	if !rule.Enabled() {
		return NewMemory(rule, maxKeys, b.now)
	}
	local := NewMemory(rule, maxKeys, b.now)
	b.mu.Lock()
	b.locals = append(b.locals, local)
	b.mu.Unlock()
	return &failover{
		b:      b,
		shared: NewRedis(b.client, name, rule, b.now),
		local:  local,
	}
}

// Run probes Redis every interval (a second when interval <= 0) until ctx
// ends. While the backend is down, a probe that Redis answers switches it
// back; while it is up, a probe that fails switches it to local limits, so
// that an outage is noticed, and logged, even without traffic. After many
// failed dials go-redis itself dials again only once a second, so a long
// outage may end up to a second before a probe notices.
func (b *Backend) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultProbeInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		b.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe pings Redis once and switches the backend to Redis if it answers,
// to local limits if not. It returns the ping's error. A ping cut short by
// the end of ctx changes nothing.
func (b *Backend) Probe(ctx context.Context) error {
	err := b.client.Ping(ctx).Err()
	switch {
	case err == nil:
		b.up()
		return nil
	case ctx.Err() == nil:
		b.fail(err)
	}
	return fmt.Errorf("ratelimit: redis: %w", err)
}

// Shared reports whether decisions go to Redis.
func (b *Backend) Shared() bool { return !b.down.Load() }

// Status says where decisions go, for a readiness report: "redis", or
// "local (redis unreachable)". It never names the server: its URL may hold
// a password.
func (b *Backend) Status() string {
	if b.Shared() {
		return "redis"
	}
	return "local (redis unreachable)"
}

// Fallbacks returns the number of times the backend switched from Redis to
// local limits.
func (b *Backend) Fallbacks() uint64 { return b.fallbacks.Load() }

// Forgiven returns the number of buckets still in debt that the local
// limiters of every rule dropped to stay within their key bound (see
// Memory.Forgiven).
func (b *Backend) Forgiven() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n uint64
	for _, m := range b.locals {
		n += m.Forgiven()
	}
	return n
}

// fail marks the backend down after err from Redis, logging the first
// failure of an outage only.
func (b *Backend) fail(err error) {
	if b.down.CompareAndSwap(false, true) {
		b.fallbacks.Add(1)
		b.log.Warn("rate limits are local: redis unreachable", slog.Any("err", err))
	}
}

// up marks the backend up, logging the end of an outage.
func (b *Backend) up() {
	if b.down.CompareAndSwap(true, false) {
		b.log.Info("rate limits are shared again")
	}
}

// failover is a rule's limiter on a Backend: Redis while the backend is up,
// local while it is down.
type failover struct {
	b      *Backend
	shared *Redis
	local  *Memory
}

var _ Limiter = (*failover)(nil)

// Allow implements Limiter.
func (f *failover) Allow(ctx context.Context, key string) (Decision, error) {
	if f.b.Shared() {
		d, err := f.shared.Allow(ctx, key)
		if !f.fellBack(ctx, err) {
			return d, err
		}
	}
	return f.local.Allow(ctx, key)
}

// Peek implements Limiter.
func (f *failover) Peek(ctx context.Context, key string) (Decision, error) {
	if f.b.Shared() {
		d, err := f.shared.Peek(ctx, key)
		if !f.fellBack(ctx, err) {
			return d, err
		}
	}
	return f.local.Peek(ctx, key)
}

// Undo implements Limiter. It gives the action back on whichever side
// decides now; an action allowed on the other side before a switch stays
// spent, which errs on the safe side.
func (f *failover) Undo(ctx context.Context, key string) error {
	if f.b.Shared() {
		err := f.shared.Undo(ctx, key)
		if !f.fellBack(ctx, err) {
			return err
		}
	}
	return f.local.Undo(ctx, key)
}

// fellBack reports whether the call that returned err must be answered
// locally, marking the backend down if so. An error after the caller's ctx
// ended is the caller's, not Redis's: it is returned, and the backend
// stays up.
func (f *failover) fellBack(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	f.b.fail(err)
	return true
}
