package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/metrics"
	"github.com/authd/authd/internal/ratelimit"
)

// exposition is one parsed scrape of /metrics.
type exposition map[string]*dto.MetricFamily

// scrape GETs /metrics through the router and parses the text exposition.
func (h *harness) scrape() (exposition, string) {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		h.t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		h.t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	raw := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(raw))
	if err != nil {
		h.t.Fatalf("GET /metrics: %v\n%s", err, raw)
	}
	return fams, raw
}

// value is the value of the series of family name with exactly these
// labels (for a histogram, its count of observations), and whether the
// series exists.
func (e exposition) value(name string, labels ...string) (float64, bool) {
	f := e[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		want[k] = v
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetrics logs in, fails a login, hits the per-IP limit and scrapes:
// each counter moved by exactly what the requests did.
func TestMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		m := metrics.New(metrics.Options{Sessions: st, Now: func() time.Time { return h.clock.t }})
		h = newHarness(t, st, func(d *api.Deps) {
			d.Observer = m
			d.Metrics = m.Handler()
			// Three logins, then 429.
			d.LoginIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 3, Every: time.Hour}, 0, func() time.Time { return h.clock.t })
		})
		h.addUser("@alice:example.org", "pw")

		before, raw := h.scrape()
		// Known label values are there from the start, at zero.
		for _, o := range api.LoginOutcomes() {
			if v, ok := before.value("authd_login_attempts_total", "outcome="+o); !ok || v != 0 {
				t.Fatalf("authd_login_attempts_total{outcome=%q} = %v (present %t), want 0", o, v, ok)
			}
		}
		for _, r := range api.RateLimitRules() {
			if v, ok := before.value("authd_ratelimit_rejections_total", "rule="+r); !ok || v != 0 {
				t.Fatalf("authd_ratelimit_rejections_total{rule=%q} = %v (present %t), want 0", r, v, ok)
			}
		}
		for _, name := range []string{"authd_hash_wait_seconds", "authd_hash_duration_seconds", "authd_active_sessions",
			"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_open_fds", "go_build_info"} {
			if before[name] == nil {
				t.Fatalf("no %s in the exposition:\n%s", name, raw)
			}
		}
		if v, _ := before.value("authd_active_sessions"); v != 0 {
			t.Fatalf("authd_active_sessions = %v before any login", v)
		}

		const login = "/_matrix/client/v3/login"
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		wantError(t, h.do("POST", login, `{"type":"m.login.password","user":"alice","password":"wrong"}`), 403, "M_FORBIDDEN")
		h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
		wantError(t, h.do("POST", login, `{"type":"m.login.password","user":"alice","password":"pw"}`), 429, "M_LIMIT_EXCEEDED")
		if r := h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)); r.status != 200 {
			t.Fatalf("whoami = %d %s", r.status, r.raw)
		}
		// Neither a raw path, nor its query, nor an odd method becomes a label.
		wantError(t, h.do("GET", "/_matrix/client/v3/nope?access_token="+tok, ""), 404, "M_UNRECOGNIZED")
		wantError(t, h.do("BREW", login, ""), 405, "M_UNRECOGNIZED")
		// A new count of sessions, not the one cached at the first scrape.
		h.clock.t = h.clock.t.Add(metrics.DefaultSessionsCacheTTL)

		after, raw := h.scrape()
		delta := func(name string, labels ...string) float64 {
			t.Helper()
			a, ok := after.value(name, labels...)
			if !ok {
				t.Fatalf("no %s%v in the exposition:\n%s", name, labels, raw)
			}
			b, _ := before.value(name, labels...)
			return a - b
		}
		want := []struct {
			name   string
			labels []string
			delta  float64
		}{
			{"authd_login_attempts_total", []string{"outcome=success"}, 2},
			{"authd_login_attempts_total", []string{"outcome=forbidden"}, 1},
			{"authd_login_attempts_total", []string{"outcome=rate_limited"}, 1},
			{"authd_login_attempts_total", []string{"outcome=bad_request"}, 0},
			{"authd_login_attempts_total", []string{"outcome=error"}, 0},
			{"authd_ratelimit_rejections_total", []string{"rule=ip"}, 1},
			{"authd_ratelimit_rejections_total", []string{"rule=account_failed"}, 0},
			// The rate-limited login never reached the hash.
			{"authd_hash_duration_seconds", nil, 3},
			{"authd_hash_wait_seconds", nil, 3},
			{"authd_http_requests_total", []string{"route=" + login, "method=POST", "status=200"}, 2},
			{"authd_http_requests_total", []string{"route=" + login, "method=POST", "status=403"}, 1},
			{"authd_http_requests_total", []string{"route=" + login, "method=POST", "status=429"}, 1},
			{"authd_http_requests_total", []string{"route=/_matrix/client/v3/account/whoami", "method=GET", "status=200"}, 1},
			// An unknown path under a prefix is named by the prefix's pattern.
			{"authd_http_requests_total", []string{"route=/_matrix/client/v3/*", "method=GET", "status=404"}, 1},
			{"authd_http_requests_total", []string{"route=unmatched", "method=other", "status=405"}, 1},
			{"authd_http_request_duration_seconds", []string{"route=" + login, "method=POST"}, 4},
			{"authd_active_sessions", nil, 2},
		}
		for _, w := range want {
			if got := delta(w.name, w.labels...); got != w.delta {
				t.Errorf("%s%v moved by %v, want %v", w.name, w.labels, got, w.delta)
			}
		}
		for _, bad := range []string{tok, "/nope", "BREW", "pw"} {
			if strings.Contains(raw, `"`+bad) || strings.Contains(raw, bad+`"`) {
				t.Errorf("the exposition holds %q in a label", bad)
			}
		}
	})
}
