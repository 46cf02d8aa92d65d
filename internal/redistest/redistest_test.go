package redistest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd/authd/internal/testenv"
)

// client returns a go-redis client of s that does not retry, so that a
// stopped server shows at once.
func client(t *testing.T, s *Server) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.ReadTimeout = time.Second
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServer_StopStart(t *testing.T) {
	t.Parallel()
	s := New(t)
	if !strings.HasPrefix(s.URL(), "unix:///") || !strings.HasSuffix(s.URL(), "/redis.sock") {
		t.Fatalf("URL = %q, want unix:///.../redis.sock", s.URL())
	}
	c := client(t, s)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered by a stopped server")
	}
	s.Stop() // a no-op

	s.Start()
	if err := ping(s.sock); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	// The restarted server kept nothing: no snapshot, no append-only file.
	n, err := c.Exists(ctx, "k").Result()
	if err != nil || n != 0 {
		t.Fatalf("EXISTS k after a restart = %d, %v; want 0, nil", n, err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "redis.sock" {
			t.Fatalf("the server wrote %s", e.Name())
		}
	}
}

func TestServer_Freeze(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := client(t, s)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s.Freeze()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a frozen server answered PING")
	}
	s.Thaw()
	if err := ping(s.sock); err != nil {
		t.Fatalf("PING after Thaw: %v", err)
	}
}

// Each server is its own: parallel tests do not see each other's keys.
func TestNew_Isolated(t *testing.T) {
	t.Parallel()
	a, b := New(t), New(t)
	if a.URL() == b.URL() {
		t.Fatalf("two servers share %s", a.URL())
	}
	ctx := context.Background()
	if err := client(t, a).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := client(t, b).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k on the other server = %d, %v; want 0, nil", n, err)
	}
}

// Without redis-server on the PATH, New skips the test with the how-to, or
// fails it under AUTHD_TEST_REQUIRE_ALL=1.
func TestNew_NoServer(t *testing.T) {
	for _, tt := range []struct {
		requireAll  string
		wantSkipped bool
	}{
		{"", true},
		{"1", false},
	} {
		t.Run("RequireAll="+tt.requireAll, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv(testenv.RequireAllVar, tt.requireAll)
			ft := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				New(ft)
			}()
			<-done
			if !strings.Contains(ft.msg, "apt-get install redis-server") {
				t.Fatalf("New without redis-server: %q, want the how-to", ft.msg)
			}
			if ft.skipped != tt.wantSkipped {
				t.Fatalf("New without redis-server: skipped %v, want %v", ft.skipped, tt.wantSkipped)
			}
		})
	}
}

// fatalTB records Fatalf and Skip and ends the goroutine as testing.T does,
// without failing or skipping the test that uses it.
type fatalTB struct {
	testing.TB
	msg     string
	skipped bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Skip(args ...any)      { f.msg, f.skipped = fmt.Sprint(args...), true; runtime.Goexit() }
func (f *fatalTB) Skipf(string, ...any)  { f.skipped = true; runtime.Goexit() }
func (f *fatalTB) SkipNow()              { f.skipped = true; runtime.Goexit() }
func (f *fatalTB) Cleanup(fn func())     { f.TB.Cleanup(fn) }
func (f *fatalTB) Fatal(args ...any)     { f.msg = fmt.Sprint(args...); runtime.Goexit() }
func (f *fatalTB) FailNow()              { runtime.Goexit() }
func (f *fatalTB) Errorf(string, ...any) {}
