package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeCounter counts the store's calls and answers with n, err, or waits
// for the context when block is set.
type fakeCounter struct {
	calls atomic.Int32
	n     int
	err   error
	block bool
}

func (f *fakeCounter) CountActiveSessions(ctx context.Context, _ time.Time) (int, error) {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return f.n, f.err
}

// scrape GETs the handler and returns the exposition text.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape = %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestActiveSessions_Cached(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &fakeCounter{n: 7}
	m := New(Options{Sessions: c, SessionsCacheTTL: 5 * time.Second, Now: func() time.Time { return now }})
	for range 3 {
		if out := scrape(t, m); !strings.Contains(out, "\nauthd_active_sessions 7\n") {
			t.Fatalf("no authd_active_sessions 7 in\n%s", out)
		}
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("three scrapes within the TTL asked the store %d times, want 1", n)
	}
	c.n = 8
	now = now.Add(5 * time.Second)
	if out := scrape(t, m); !strings.Contains(out, "\nauthd_active_sessions 8\n") {
		t.Fatalf("no authd_active_sessions 8 after the TTL in\n%s", out)
	}
	if n := c.calls.Load(); n != 2 {
		t.Fatalf("the store was asked %d times, want 2", n)
	}
}

func TestActiveSessions_Failure(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &fakeCounter{err: errors.New("database unavailable")}
	m := New(Options{Sessions: c, Now: func() time.Time { return now }})
	for range 2 {
		out := scrape(t, m)
		// The gauge is left out; the rest of the scrape is served.
		if strings.Contains(out, "\nauthd_active_sessions ") || !strings.Contains(out, "authd_login_attempts_total") {
			t.Fatalf("a failed count: exposition\n%s", out)
		}
	}
	// The failure is cached too: a database that is down is not asked
	// again on every scrape.
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("two scrapes asked a failing store %d times, want 1", n)
	}
}

func TestActiveSessions_Timeout(t *testing.T) {
	c := &fakeCounter{block: true}
	m := New(Options{Sessions: c, SessionsTimeout: 10 * time.Millisecond})
	// The store never answers; the scrape still does, without the gauge.
	if out := scrape(t, m); strings.Contains(out, "\nauthd_active_sessions ") {
		t.Fatalf("a count that timed out was reported:\n%s", out)
	}
}

func TestLabels_Bounded(t *testing.T) {
	m := New(Options{})
	m.LoginAttempt("success")
	m.LoginAttempt("@alice:example.org") // a caller's mistake
	m.RateLimited("ip")
	m.RateLimited("/_matrix/client/v3/login?access_token=x")
	m.Request("/healthz", "BREW", 405, time.Millisecond)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"login success", testutil.ToFloat64(m.logins.WithLabelValues("success")), 1},
		{"login other", testutil.ToFloat64(m.logins.WithLabelValues("other")), 1},
		{"rule ip", testutil.ToFloat64(m.rateLimited.WithLabelValues("ip")), 1},
		{"rule other", testutil.ToFloat64(m.rateLimited.WithLabelValues("other")), 1},
		{"method other", testutil.ToFloat64(m.requests.WithLabelValues("/healthz", "other", "405")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	out := scrape(t, m)
	for _, bad := range []string{"alice", "access_token", "BREW"} {
		if strings.Contains(out, bad) {
			t.Errorf("the exposition holds %q", bad)
		}
	}
	// Without a session counter there is no gauge, and no error.
	if strings.Contains(out, "authd_active_sessions") {
		t.Errorf("authd_active_sessions without a counter")
	}
}

type fakeLocalLimits uint64

func (f fakeLocalLimits) Forgiven() uint64 { return uint64(f) }

func TestLocalLimits_Forgiven(t *testing.T) {
	if out := scrape(t, New(Options{})); strings.Contains(out, "authd_ratelimit_forgiven_total") {
		t.Fatalf("authd_ratelimit_forgiven_total without local limits:\n%s", out)
	}
	out := scrape(t, New(Options{LocalLimits: fakeLocalLimits(3)}))
	if !strings.Contains(out, "\nauthd_ratelimit_forgiven_total 3\n") {
		t.Fatalf("no authd_ratelimit_forgiven_total 3 in\n%s", out)
	}
}
