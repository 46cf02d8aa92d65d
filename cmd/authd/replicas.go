package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/tokencache"
)

// What several replicas share: rate-limit state (in Redis, with AUTHD_RATELIMIT_BACKEND=redis)
// and revocations (through the database, when it broadcasts them).

// redisProbeInterval is how often a process checks its Redis: while Redis is
// down, how soon shared limits resume once it is back.
const redisProbeInterval = time.Second

// rateLimits is the limiter of each rule, and the shared backend behind
// them when there is one.
type rateLimits struct {
	loginIP, loginFailed, loginSuccess, refreshIP, tokenFailures ratelimit.Limiter
	// loginTokens limits the login tokens issued per user, by the fixed
	// loginTokenRule.
	loginTokens ratelimit.Limiter
	shared      *ratelimit.Backend // nil: in-process limits
}

// loginTokenRule allows one login token per user a minute, the spec's
// suggestion: each token is a new session, asked for with the password.
var loginTokenRule = ratelimit.Rule{Burst: 1, Every: time.Minute}

// newRateLimits builds the limiters the configuration asks for. With the
// Redis backend it also returns the function that watches Redis, to run
// for the life of the process.
func newRateLimits(cfg config, log *slog.Logger) (rateLimits, func(context.Context), error) {
	if !cfg.RateLimit {
		return rateLimits{}, nil, nil
	}
	l := cfg.Limits
	if l.Backend != "redis" {
		return rateLimits{
			loginIP: newLimiter(l.LoginIP), loginFailed: newLimiter(l.LoginFailed),
			loginSuccess: newLimiter(l.LoginSuccess), refreshIP: newLimiter(l.RefreshIP),
			tokenFailures: newLimiter(l.TokenFailures), loginTokens: newLimiter(loginTokenRule),
		}, nil, nil
	}
	client, err := ratelimit.NewClient(l.RedisURL)
	if err != nil {
		// Never the URL: it may hold a password.
		return rateLimits{}, nil, fmt.Errorf("AUTHD_REDIS_URL: %w", err)
	}
	// go-redis reports dial failures through a logger of its own, on
	// stderr by default: into the process log instead, at debug (the
	// backend logs each outage once, at warn). It is a global of
	// go-redis's, so set once per process.
	setRedisLogger.Do(func() { redis.SetLogger(redisLog{log}) })
	b := ratelimit.NewBackend(client, log, nil)
	rl := rateLimits{
		loginIP:       b.Limiter("login_ip", l.LoginIP, 0),
		loginFailed:   b.Limiter("login_failed", l.LoginFailed, 0),
		loginSuccess:  b.Limiter("login_success", l.LoginSuccess, 0),
		refreshIP:     b.Limiter("refresh_ip", l.RefreshIP, 0),
		tokenFailures: b.Limiter("token_failures", l.TokenFailures, 0),
		loginTokens:   b.Limiter("login_tokens", loginTokenRule, 0),
		shared:        b,
	}
	watch := func(ctx context.Context) {
		b.Run(ctx, redisProbeInterval)
		client.Close()
	}
	return rl, watch, nil
}

var setRedisLogger sync.Once

// redisLog writes go-redis's own messages to the process log.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// status is what /readyz says of the rate limits.
func (rl rateLimits) status(on bool) string {
	switch {
	case !on:
		return "off"
	case rl.shared != nil:
		return rl.shared.Status()
	default:
		return "memory"
	}
}

// Forgiven counts the buckets in debt that the in-process limiters (the
// only ones, or Redis's fallbacks) dropped to stay within their key bound.
func (rl rateLimits) Forgiven() uint64 {
	if rl.shared != nil {
		return rl.shared.Forgiven()
	}
	var n uint64
	for _, l := range []ratelimit.Limiter{rl.loginIP, rl.loginFailed, rl.loginSuccess, rl.refreshIP, rl.loginTokens} {
		if m, ok := l.(*ratelimit.Memory); ok {
			n += m.Forgiven()
		}
	}
	return n
}

// newLimiter returns the in-process limiter for a rule; nil (no limit) for
// a rule switched off.
func newLimiter(r ratelimit.Rule) ratelimit.Limiter {
	if !r.Enabled() {
		return nil
	}
	return ratelimit.NewMemory(r, 0, nil)
}

// revocationFeed keeps the token cache in step with revocations made by
// other processes (other replicas, the CLI, an operator's SQL), which the
// database broadcasts. While the feed is down the cache is suspended: every
// token is checked against the database, as without a cache.
type revocationFeed struct {
	cache      *tokencache.Cache
	log        *slog.Logger
	subscribed atomic.Bool
	received   atomic.Uint64
	warned     atomic.Bool // the current outage was logged
}

// run listens until ctx ends.
func (f *revocationFeed) run(ctx context.Context, l store.RevocationListener) {
	l.ListenRevocations(ctx, f.revoked, f.state)
}

func (f *revocationFeed) revoked(r store.Revocation) {
	f.cache.Revoked(r)
	// Counted once the cache has dropped the tokens: whoever reads the
	// count may rely on them being refused.
	f.received.Add(1)
}

func (f *revocationFeed) state(err error) {
	if err == nil {
		// Trust the cache only once every later revocation reaches it;
		// Resume drops what it held, which may have missed some.
		f.cache.Resume()
		f.subscribed.Store(true)
		if f.warned.Swap(false) {
			f.log.Info("receiving revocations again; token cache back on")
		}
		return
	}
	f.subscribed.Store(false)
	f.cache.Suspend()
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	// Once per outage, not once per reconnection attempt.
	if !f.warned.Swap(true) {
		f.log.Warn("not receiving revocations; token cache bypassed until resubscribed", slog.Any("err", err))
	}
}

// Subscribed implements metrics.RevocationFeed.
func (f *revocationFeed) Subscribed() bool { return f.subscribed.Load() }

// Received implements metrics.RevocationFeed.
func (f *revocationFeed) Received() uint64 { return f.received.Load() }

// status is what /readyz says of the feed.
func (f *revocationFeed) status() string {
	if f.Subscribed() {
		return "subscribed"
	}
	return "not subscribed (token cache bypassed)"
}
