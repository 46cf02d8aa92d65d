package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd/authd/internal/redistest"
)

// logBuffer is a log's text output, written by the backend (from Run's
// goroutine too) and read by the test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count counts the lines at level (INFO, WARN) with message msg.
func (b *logBuffer) count(level, msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, "level="+level+" ") && strings.Contains(line, `msg="`+msg+`"`) {
			n++
		}
	}
	return n
}

// String returns the log so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines counts the lines logged.
func (b *logBuffer) lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), "\n")
}

const (
	msgLocal  = "rate limits are local: redis unreachable"
	msgShared = "rate limits are shared again"
)

// newTestBackend returns a backend on a client of srv as authd makes it,
// logging into the returned buffer.
func newTestBackend(t *testing.T, srv *redistest.Server, now func() time.Time) (*Backend, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	return NewBackend(newTestClient(t, srv), slog.New(slog.NewTextHandler(logs, nil)), now), logs
}

// wantState checks the backend's view of Redis and its log so far.
func wantState(tb testing.TB, b *Backend, logs *logBuffer, shared bool, fallbacks uint64, warns, infos int) {
	tb.Helper()
	status := "redis"
	if !shared {
		status = "local (redis unreachable)"
	}
	if b.Shared() != shared || b.Status() != status || b.Fallbacks() != fallbacks {
		tb.Fatalf("Shared, Status, Fallbacks = %v, %q, %d; want %v, %q, %d",
			b.Shared(), b.Status(), b.Fallbacks(), shared, status, fallbacks)
	}
	if w, i := logs.count("WARN", msgLocal), logs.count("INFO", msgShared); w != warns || i != infos || logs.lines() != w+i {
		tb.Fatalf("logged %d warnings, %d recoveries (%d lines); want %d, %d:\n%s", w, i, logs.lines(), warns, infos, logs)
	}
}

// Redis goes away: decisions go on locally, with no error, and the outage is
// logged once; Redis comes back: a probe shares them again, logged once.
func TestBackend_FailsOverAndBack(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	b, logs := newTestBackend(t, srv, clk.now)
	rule := Rule{Burst: 3, Every: time.Hour}
	l := b.Limiter("login_ip", rule, 0)
	ctx := context.Background()

	wantAllowed(t, allow(t, l, "a"))
	if n := keyCount(t, newTestClient(t, srv), "login_ip"); n != 1 {
		t.Fatalf("%d keys in Redis after a shared decision, want 1", n)
	}
	wantState(t, b, logs, true, 0, 0, 0)

	srv.Stop()
	allowed := 0
	for range 50 {
		d, err := l.Allow(ctx, "b")
		if err != nil {
			t.Fatalf("Allow with Redis down: %v", err)
		}
		if d.Allowed {
			allowed++
		} else {
			wantDenied(t, d, time.Hour)
		}
	}
	// A fresh local bucket: the burst, then denials.
	if allowed != 3 {
		t.Fatalf("%d of 50 actions allowed locally, want the burst of 3", allowed)
	}
	wantState(t, b, logs, false, 1, 1, 0)
	if strings.Contains(b.Status(), srv.URL()) {
		t.Fatalf("Status %q names the server", b.Status())
	}
	// Peek and Undo go to the local side too.
	wantDenied(t, peek(t, l, "b"), time.Hour)
	undo(t, l, "b")
	wantAllowed(t, allow(t, l, "b"))
	if err := b.Probe(ctx); err == nil {
		t.Fatal("Probe of a stopped Redis succeeded")
	}
	wantState(t, b, logs, false, 1, 1, 0)

	srv.Start()
	if err := b.Probe(ctx); err != nil {
		t.Fatalf("Probe of a restarted Redis: %v", err)
	}
	wantState(t, b, logs, true, 1, 1, 1)
	if err := b.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, logs, true, 1, 1, 1)

	// Shared again: another replica sees this one's actions.
	other, _ := newTestBackend(t, srv, clk.now)
	l2 := other.Limiter("login_ip", rule, 0)
	for range 3 {
		wantAllowed(t, allow(t, l, "c"))
	}
	wantDenied(t, allow(t, l2, "c"), time.Hour)
	undo(t, l2, "c")
	wantAllowed(t, allow(t, l, "c"))
	wantDenied(t, allow(t, l, "c"), time.Hour)
	wantState(t, b, logs, true, 1, 1, 1)
}

// Run notices a dead Redis without any traffic, and its return.
func TestBackend_Run(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	b, logs := newTestBackend(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx, 5*time.Millisecond)
	}()

	// The log line is the last thing a switch does.
	srv.Stop()
	waitFor(t, "the backend to log that Redis is down", func() bool { return logs.count("WARN", msgLocal) > 0 })
	wantState(t, b, logs, false, 1, 1, 0)

	srv.Start()
	// go-redis dials again at most a second after its last failed dial.
	waitFor(t, "the backend to log that Redis is back", func() bool { return logs.count("INFO", msgShared) > 0 })
	wantState(t, b, logs, true, 1, 1, 1)

	cancel()
	<-done
	wantState(t, b, logs, true, 1, 1, 1)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A caller that gave up is not an outage: its error is returned and the
// backend stays on Redis.
func TestBackend_CallerCancelled(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	b, logs := newTestBackend(t, srv, clk.now)
	l := b.Limiter("login_ip", Rule{Burst: 1, Every: time.Hour}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := l.Allow(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow on a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := l.Peek(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek on a cancelled context: %v, want context.Canceled", err)
	}
	if err := l.Undo(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Undo on a cancelled context: %v, want context.Canceled", err)
	}
	if err := b.Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Probe on a cancelled context: %v, want context.Canceled", err)
	}
	wantState(t, b, logs, true, 0, 0, 0)
	// Nothing was consumed.
	wantAllowed(t, allow(t, l, "a"))
	wantDenied(t, allow(t, l, "a"), time.Hour)
}

// A Redis that hangs costs one call the client's read timeout, then
// decisions are local: no further command goes to Redis.
func TestBackend_HungRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	client := newTestClient(t, srv)
	sent := &commandCounter{}
	client.AddHook(sent)
	logs := &logBuffer{}
	b := NewBackend(client, slog.New(slog.NewTextHandler(logs, nil)), clk.now)
	l := b.Limiter("login_ip", Rule{Burst: 1, Every: time.Hour}, 0)
	wantAllowed(t, allow(t, l, "a"))

	srv.Freeze()
	before, start := sent.n.Load(), time.Now()
	wantAllowed(t, allow(t, l, "b"))
	// A lower bound only: it waited for the client's read timeout.
	if d := time.Since(start); d < clientReadTimeout {
		t.Fatalf("the call that met the hung Redis took %v, less than the read timeout %v", d, clientReadTimeout)
	}
	if sent.n.Load() == before {
		t.Fatal("the call that met the hung Redis sent it nothing")
	}
	wantState(t, b, logs, false, 1, 1, 0)
	before = sent.n.Load()
	wantDenied(t, allow(t, l, "b"), time.Hour)
	if n := sent.n.Load() - before; n != 0 {
		t.Fatalf("a call after the fallback sent %d commands to Redis", n)
	}

	srv.Thaw()
	waitFor(t, "a probe to reach the thawed Redis", func() bool { return b.Probe(context.Background()) == nil })
	wantState(t, b, logs, true, 1, 1, 1)
}

// A disabled rule allows everything without a word to Redis.
func TestBackend_DisabledRule(t *testing.T) {
	t.Parallel()
	c, err := NewClient("unix://" + t.TempDir() + "/no.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logs := &logBuffer{}
	b := NewBackend(c, slog.New(slog.NewTextHandler(logs, nil)), nil)
	l := b.Limiter("login_ip", Rule{}, 0)
	if l == nil {
		t.Fatal("Limiter of a disabled rule is nil")
	}
	for range 100 {
		wantAllowed(t, allow(t, l, "a"))
		wantAllowed(t, peek(t, l, "a"))
		undo(t, l, "a")
	}
	wantState(t, b, logs, true, 0, 0, 0)
}

func TestNewClient(t *testing.T) {
	c, err := NewClient("redis://localhost:6379/2")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	o := c.Options()
	if o.DialTimeout != 250*time.Millisecond || o.ReadTimeout != 250*time.Millisecond ||
		o.WriteTimeout != 250*time.Millisecond || o.MaxRetries != 0 || o.DialerRetries != 1 || o.DB != 2 {
		t.Fatalf("options: dial %v, read %v, write %v, retries %d, dial attempts %d, db %d; want 250ms, 250ms, 250ms, 0, 1, 2",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries, o.DialerRetries, o.DB)
	}

	// The URL's settings win.
	c, err = NewClient("redis://localhost:6379?dial_timeout=1s&read_timeout=2s&write_timeout=3s&max_retries=4")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	o = c.Options()
	if o.DialTimeout != time.Second || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 3*time.Second || o.MaxRetries != 4 {
		t.Fatalf("options: dial %v, read %v, write %v, retries %d; want the URL's 1s, 2s, 3s, 4",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries)
	}

	// An error never shows the password.
	for _, bad := range []string{
		"redis://user:s3cret@bad host:6379",
		"http://user:s3cret@localhost:6379",
		"redis://user:s3cret@localhost:6379/x",
		"redis://user:s3cret@localhost:6379?read_timeout=soon",
	} {
		_, err := NewClient(bad)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.HasPrefix(err.Error(), "ratelimit: redis URL: ") {
			t.Fatalf("NewClient(%q) error = %v, want one without the password", bad, err)
		}
	}
}

// The local fallbacks of every rule count the debts they forgive to stay
// within their bound, on the backend.
func TestBackend_Forgiven(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	b, _ := newTestBackend(t, srv, clk.now)
	ip := b.Limiter("login_ip", Rule{Burst: 1, Every: time.Hour}, 2)
	failed := b.Limiter("login_failed", Rule{Burst: 1, Every: time.Hour}, 1)
	srv.Stop()
	for _, k := range []string{"a", "b", "c", "d"} {
		wantAllowed(t, allow(t, ip, k))     // two slots: c and d each push one out
		wantAllowed(t, allow(t, failed, k)) // one slot: b, c and d each push one out
	}
	if got := b.Forgiven(); got != 5 {
		t.Fatalf("Forgiven = %d, want 5", got)
	}
}

// commandCounter is a go-redis hook counting the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
