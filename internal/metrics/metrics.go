// Package metrics exposes authd's Prometheus metrics: it implements
// api.Observer on a registry of its own (never the global one) and serves
// that registry in the Prometheus text format.
//
// Label values are route patterns and the fixed strings of the api package,
// never client input, a token or a password. A value outside the known sets
// is counted as "other", so a caller's mistake cannot make the number of
// series grow without bound.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authd/authd/internal/api"
)

var _ api.Observer = (*Metrics)(nil)

// namespace prefixes every authd metric.
const namespace = "authd"

// Defaults for Options.
const (
	// DefaultSessionsTimeout bounds the database query behind
	// authd_active_sessions.
	DefaultSessionsTimeout = 2 * time.Second
	// DefaultSessionsCacheTTL is how long a count of active sessions (or
	// the failure to get one) is reused: however often Prometheus, or
	// several of them, scrape, the database sees at most one count per TTL.
	DefaultSessionsCacheTTL = 5 * time.Second
)

// SessionCounter is the one store method the active-sessions gauge needs.
type SessionCounter interface {
	// CountActiveSessions returns how many devices hold an access token
	// that has not expired at now.
	CountActiveSessions(ctx context.Context, now time.Time) (int, error)
}

// SharedBackend is a rate-limit backend shared by replicas, which may fall
// back to local limits.
type SharedBackend interface {
	// Shared reports whether decisions go to the shared backend now.
	Shared() bool
	// Fallbacks counts the switches to local limits.
	Fallbacks() uint64
}

// LocalLimits are the in-process rate limiters of a process (its only
// limits, or its fallback while the shared backend is down).
type LocalLimits interface {
	// Forgiven counts the buckets still in debt dropped to stay within
	// the limiters' key bound.
	Forgiven() uint64
}

// RevocationFeed is the subscription to other processes' revocations.
type RevocationFeed interface {
	// Subscribed reports whether the subscription is live.
	Subscribed() bool
	// Received counts the revocations received.
	Received() uint64
}

// OutboxDeliverer is the delivery of the events for the homeserver.
type OutboxDeliverer interface {
	// Delivered counts the events the receiver accepted.
	Delivered() uint64
	// Failed counts the failed attempts.
	Failed() uint64
}

// Options configure New. Every field is optional.
type Options struct {
	// Sessions is asked for authd_active_sessions at scrape time; nil
	// leaves the gauge out.
	Sessions SessionCounter
	// SessionsTimeout bounds each count (DefaultSessionsTimeout when zero).
	SessionsTimeout time.Duration
	// SessionsCacheTTL is how long a count is reused
	// (DefaultSessionsCacheTTL when zero).
	SessionsCacheTTL time.Duration
	// RateLimits, when set, is read at scrape time for
	// authd_ratelimit_shared and authd_ratelimit_fallbacks_total.
	RateLimits SharedBackend
	// LocalLimits, when set, is read at scrape time for
	// authd_ratelimit_forgiven_total.
	LocalLimits LocalLimits
	// Revocations, when set, is read at scrape time for
	// authd_revocations_subscribed and authd_revocations_received_total.
	Revocations RevocationFeed
	// Outbox, when set, is read at scrape time for
	// authd_outbox_delivered_total and authd_outbox_failures_total.
	Outbox OutboxDeliverer
	// Logger receives scrape errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Metrics is an api.Observer that records into its own Prometheus registry.
// It is safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	handler      http.Handler
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	logins       *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	hashWait     prometheus.Histogram
	hashDuration prometheus.Histogram
	adminActions *prometheus.CounterVec

	outcomes map[string]bool
	rules    map[string]bool
}

// New returns the metrics of one authd process: the authd_* families, the
// Go runtime's and the process's.
func New(o Options) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "login_attempts_total",
			Help: "POST /login requests, by outcome.",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "ratelimit_rejections_total",
			Help: "Requests refused by a rate limit, by rule.",
		}, []string{"rule"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "hash_wait_seconds",
			Help:    "Time a password check waited for a hashing slot.",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		hashDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "hash_duration_seconds",
			Help: "Time one password check (or dummy check) took.",
			// bcrypt's cost doubles the time per step: cost 12 is about
			// a quarter of a second on a server core.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		adminActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "admin_actions_total",
			Help: "Admin API requests, by route pattern and outcome (ok, refused, forbidden, error).",
		}, []string{"route", "outcome"}),
		outcomes: set(api.LoginOutcomes()),
		rules:    set(api.RateLimitRules()),
	}
	// Known label values start at zero, so that rate() and alerts see a
	// series from the first scrape, not from the first event.
	for _, o := range slices.Concat(api.LoginOutcomes(), []string{"other"}) {
		m.logins.WithLabelValues(o)
	}
	for _, r := range slices.Concat(api.RateLimitRules(), []string{"other"}) {
		m.rateLimited.WithLabelValues(r)
	}
	m.reg.MustRegister(
		m.requests, m.duration, m.logins, m.rateLimited, m.hashWait, m.hashDuration, m.adminActions,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	if o.Sessions != nil {
		m.reg.MustRegister(newSessionsCollector(o))
	}
	if b := o.RateLimits; b != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Name: "ratelimit_shared",
				Help: "1 while rate limits are decided by the shared backend (Redis), 0 while this process falls back to local limits.",
			}, func() float64 { return boolValue(b.Shared()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "ratelimit_fallbacks_total",
				Help: "Times this process lost the shared rate-limit backend and fell back to local limits.",
			}, func() float64 { return float64(b.Fallbacks()) }),
		)
	}
	if l := o.LocalLimits; l != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "ratelimit_forgiven_total",
			Help: "Rate-limit buckets still in debt that this process's in-process limiter dropped because every one of its key slots was in debt (each let a key act sooner than its rule allows).",
		}, func() float64 { return float64(l.Forgiven()) }))
	}
	if f := o.Revocations; f != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Name: "revocations_subscribed",
				Help: "1 while this process receives other processes' revocations, 0 while it does not (its token cache is bypassed then).",
			}, func() float64 { return boolValue(f.Subscribed()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "revocations_received_total",
				Help: "Revocations received from the database (from any process, this one included).",
			}, func() float64 { return float64(f.Received()) }),
		)
	}
	if f := o.Outbox; f != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "outbox_delivered_total",
				Help: "Events for the homeserver this process delivered (the receiver answered 2xx).",
			}, func() float64 { return float64(f.Delivered()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "outbox_failures_total",
				Help: "Attempts of this process to deliver an event that failed (a non-2xx answer, a timeout, no connection); each is retried.",
			}, func() float64 { return float64(f.Failed()) }),
		)
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failed count of sessions drops that gauge from the scrape,
		// not the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      errorLog{o.Logger},
		// promhttp_metric_handler_errors_total, on this registry.
		Registry: m.reg,
	})
	return m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func set(values []string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// known returns v if it is in the set, else "other".
func known(set map[string]bool, v string) string {
	if set[v] {
		return v
	}
	return "other"
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Request records one answered request.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	// api reports only known methods; a label is bounded all the same.
	method = api.MethodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// LoginAttempt counts a POST /login by outcome.
func (m *Metrics) LoginAttempt(outcome string) {
	m.logins.WithLabelValues(known(m.outcomes, outcome)).Inc()
}

// AdminAction counts an admin API request by route pattern and outcome.
func (m *Metrics) AdminAction(route, outcome string) {
	switch outcome {
	case "ok", "refused", "forbidden", "error":
	default:
		outcome = "other"
	}
	m.adminActions.WithLabelValues(route, outcome).Inc()
}

// RateLimited counts a request refused by a rate-limit rule.
func (m *Metrics) RateLimited(rule string) {
	m.rateLimited.WithLabelValues(known(m.rules, rule)).Inc()
}

// HashWait records how long a password check waited for a hashing slot.
func (m *Metrics) HashWait(d time.Duration) { m.hashWait.Observe(d.Seconds()) }

// HashDuration records how long one password check took.
func (m *Metrics) HashDuration(d time.Duration) { m.hashDuration.Observe(d.Seconds()) }

// sessionsCollector reports authd_active_sessions, counted by the store at
// scrape time and cached for a few seconds.
type sessionsCollector struct {
	desc    *prometheus.Desc
	counter SessionCounter
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time

	// mu is held across the count, so that concurrent scrapes wait for
	// one query instead of each sending their own.
	mu      sync.Mutex
	counted bool      // n and err hold a count
	at      time.Time // when they were read
	n       int
	err     error
}

func newSessionsCollector(o Options) *sessionsCollector {
	c := &sessionsCollector{
		desc: prometheus.NewDesc(namespace+"_active_sessions",
			"Devices holding an access token that has not expired.", nil, nil),
		counter: o.Sessions,
		timeout: o.SessionsTimeout,
		ttl:     o.SessionsCacheTTL,
		now:     o.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultSessionsTimeout
	}
	if c.ttl <= 0 {
		c.ttl = DefaultSessionsCacheTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func (c *sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	n, err := c.count()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}

// count returns the cached count, or asks the store when the cache is
// older than the TTL. A failure is cached too: a database that is down
// is not asked again on every scrape.
func (c *sessionsCollector) count() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.counted && now.Sub(c.at) < c.ttl && !now.Before(c.at) {
		return c.n, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := c.counter.CountActiveSessions(ctx, now)
	if err != nil {
		err = fmt.Errorf("count active sessions: %w", err)
	}
	c.at, c.n, c.err, c.counted = now, n, err, true
	return n, err
}

// errorLog adapts a slog.Logger to promhttp's Println logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "metrics scrape error", slog.String("err", fmt.Sprint(v...)))
}
