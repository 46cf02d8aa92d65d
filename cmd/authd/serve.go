package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/lastseen"
	"github.com/authd/authd/internal/metrics"
	"github.com/authd/authd/internal/outbox"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/tokencache"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGTERM.
const shutdownTimeout = 10 * time.Second

func runServe(ctx context.Context, env *environment, args []string) error {
	var cfg config
	fs := newFlagSet("serve", env.stderr)
	validate := cfg.flags(fs, env.getenv, forServe)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	if err := validate(); err != nil {
		return err
	}
	log := newLogger(env.stderr, cfg.LogFormat, cfg.LogLevel)

	hasher, err := password.NewHasher(cfg.BcryptCost, cfg.Pepper)
	if err != nil {
		return err
	}
	hasher.SetImportedPepper(cfg.ImportedPepper)
	hasher.Warm()
	// The store is opened after the listeners, and may take a while (the
	// database is still starting, or down): until then the process answers
	// /healthz, says not ready on /readyz, serves /metrics and answers
	// every Matrix request 503. draining makes /readyz say no from the
	// moment shutdown starts.
	var db storeSlot
	var draining atomic.Bool
	limits, watchRedis, err := newRateLimits(cfg, log)
	if err != nil {
		return err
	}
	// The token cache is shared with the revocation feed, which suspends
	// it until the database's broadcast of revocations is received.
	cache := tokencache.New(cfg.TokenCacheTTL, 0)
	feed := &revocationFeed{cache: cache, log: log}
	var hasFeed atomic.Bool
	mopts := metrics.Options{Sessions: &db, Logger: log}
	if limits.shared != nil {
		mopts.RateLimits = limits.shared
	}
	if cfg.RateLimit {
		mopts.LocalLimits = limits
	}
	if cache != nil { // both stores broadcast revocations
		mopts.Revocations = feed
	}
	// The deliverer of the outbox starts once the store is open; the
	// store kicks it after each commit that wrote events.
	var delivering atomic.Pointer[outbox.Deliverer]
	hook := outboxHook{on: cfg.Outbox.URL != "", written: func() {
		if d := delivering.Load(); d != nil {
			d.Kick()
		}
	}}
	if hook.on {
		mopts.Outbox = outboxCounts{&delivering}
	}
	m := metrics.New(mopts)
	deps := api.Deps{
		Hasher:        hasher,
		ServerName:    cfg.ServerName,
		Tokens:        cfg.Tokens,
		PublicBaseURL: cfg.PublicBaseURL,
		ServeVersions: cfg.ServeVersions,
		Logger:        log,
		Observer:      m,
		StoreTimeout:  cfg.DBTimeout,
		TokenCache:    cache,
		Checks: func() map[string]string {
			c := map[string]string{"ratelimit": limits.status(cfg.RateLimit)}
			if hasFeed.Load() {
				c["revocations"] = feed.status()
			}
			return c
		},
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			st := db.get()
			if st == nil {
				return errors.New("database unreachable")
			}
			if err := st.Ping(ctx); err != nil {
				log.LogAttrs(ctx, slog.LevelWarn, "database ping failed", slog.Any("err", err))
				return errors.New("database unreachable")
			}
			return checkSchema(ctx, st)
		},
	}
	if cfg.MetricsListen == "" {
		deps.Metrics = m.Handler()
	}
	deps.TrustedProxies = cfg.Limits.TrustedProxies
	deps.LastSeenIP = cfg.LastSeenIP
	var restoreProcs func()
	deps.HashConcurrency, restoreProcs = reserveProc(cfg.Limits.HashConcurrency)
	defer restoreProcs()
	deps.HashQueueTimeout = cfg.Limits.HashQueueTimeout
	deps.KnownNetworkTTL = cfg.Limits.KnownNetworkTTL
	deps.UIASessionTTL = cfg.UIASessionTTL
	deps.LoginIPLimiter, deps.LoginFailedLimiter = limits.loginIP, limits.loginFailed
	deps.LoginSuccessLimiter, deps.RefreshIPLimiter = limits.loginSuccess, limits.refreshIP
	deps.TokenFailureLimiter = limits.tokenFailures
	deps.LoginTokens, deps.LoginTokenTTL = cfg.LoginTokens, cfg.LoginTokenTTL
	deps.AdminAPI, deps.Version = cfg.AdminAPI, version()
	deps.RegistrationSharedSecret = cfg.RegistrationSecret
	deps.LoginTokenLimiter = limits.loginTokens
	var handler swapHandler
	handler.set(api.NewUnavailable(deps))

	// Listen first, so that a bind error is reported before anything runs
	// and tests can listen on :0.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	servers := []server{{newHTTPServer(&handler, log), ln}}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("AUTHD_METRICS_LISTEN: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		servers = append(servers, server{newHTTPServer(mux, log), mln})
	}
	if cfg.PprofListen != "" {
		pln, err := net.Listen("tcp", cfg.PprofListen)
		if err != nil {
			for _, s := range servers {
				s.ln.Close()
			}
			return fmt.Errorf("AUTHD_PPROF_LISTEN: %w", err)
		}
		log.Info("profiler listening", slog.String("addr", pln.Addr().String()))
		servers = append(servers, server{newHTTPServer(pprofHandler(), log), pln})
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("server_name", cfg.ServerName),
		slog.String("database", databaseKindName(cfg.DatabaseURL)))
	if cfg.MetricsListen != "" {
		log.Info("metrics listening", slog.String("addr", servers[1].ln.Addr().String()))
	}
	// runCtx ends on SIGTERM, or when a server stops by itself (its
	// listener failed), with that error as its cause.
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var serving sync.WaitGroup
	for _, s := range servers {
		serving.Go(func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				fail(err)
			}
		})
	}

	if watchRedis != nil {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		var watching sync.WaitGroup
		watching.Go(func() { watchRedis(watchCtx) })
		defer func() {
			stopWatch()
			watching.Wait()
		}()
	}

	err = func() error {
		st, err := connect(runCtx, cfg, hook, log)
		if err != nil {
			if runCtx.Err() != nil {
				return nil // stopped while waiting: shutdown says why
			}
			return err
		}
		defer st.Close() // after the servers are shut down: the deferred call runs last
		if w, ok := st.(interface{ FileModeWarning() error }); ok && w.FileModeWarning() != nil {
			log.LogAttrs(runCtx, slog.LevelWarn, "database file readable by others", slog.Any("err", w.FileModeWarning()))
		}
		db.set(st)
		deps.Store = st
		if err := surveyPasswordCosts(runCtx, st, hasher, log); err != nil {
			return err
		}
		if l, ok := st.(store.RevocationListener); ok && cache != nil {
			cache.Suspend()
			hasFeed.Store(true)
			feedCtx, stopFeed := context.WithCancel(context.Background())
			var feeding sync.WaitGroup
			feeding.Go(func() { feed.run(feedCtx, l) })
			defer func() { // before st.Close
				stopFeed()
				feeding.Wait()
			}()
		}
		if cfg.LastSeenInterval > 0 {
			rec := lastseen.New(st, lastseen.Options{Interval: cfg.LastSeenInterval, Logger: log})
			deps.LastSeen = rec
			recordCtx, stopRecording := context.WithCancel(context.Background())
			var recording sync.WaitGroup
			recording.Go(func() { rec.Run(recordCtx) })
			// Deferred after st.Close, so run before it, and after
			// shutdown has drained the requests: the last write has
			// every sighting.
			defer func() {
				stopRecording()
				recording.Wait()
			}()
		}
		if hook.on {
			d := outbox.New(st, outbox.Config{
				URL: cfg.Outbox.URL, Secret: cfg.Outbox.Secret, MaxBackoff: cfg.Outbox.MaxBackoff, Logger: log,
			})
			delivering.Store(d)
			deliverCtx, stopDelivery := context.WithCancel(context.Background())
			var delivery sync.WaitGroup
			delivery.Go(func() { _ = d.Run(deliverCtx) })
			defer func() { // before st.Close
				stopDelivery()
				delivery.Wait()
			}()
		}
		handler.set(api.New(deps))
		log.Info("ready")

		sweepCtx, stopSweep := context.WithCancel(context.Background())
		var sweeping sync.WaitGroup
		sweeping.Go(func() { sweep(sweepCtx, st, log, sweepInterval, tokenRetention, time.Now) })
		defer func() {
			stopSweep()
			sweeping.Wait()
		}()

		<-runCtx.Done()
		return shutdown(ctx, runCtx, servers, &serving, &draining, cfg.ShutdownDelay, log)
	}()
	if db.get() == nil {
		// Stopped, or failed, before the store was open: nothing is in
		// flight but 503s.
		err = errors.Join(err, shutdown(ctx, runCtx, servers, &serving, &draining, cfg.ShutdownDelay, log))
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger returns the process logger, writing text or JSON to w. The
// format "auto" is text when w is a terminal, JSON otherwise (a container's
// log, a file, a pipe).
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated with the config
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// databaseKindName names the store for the log, never the URL itself,
// which may hold a password.
func databaseKindName(u string) string {
	kind, path, _ := parseDatabaseURL(u)
	if kind == postgresDB {
		return "postgres"
	}
	return "sqlite:" + path
}

// surveyPasswordCosts tells the hasher every bcrypt cost stored hashes have,
// so that an unknown user costs what the most expensive account costs (see
// password.Hasher), and makes the dummy hashes that takes.
func surveyPasswordCosts(ctx context.Context, st store.UserStore, hasher *password.Hasher, log *slog.Logger) error {
	prefixes, err := st.FindPasswordHashPrefixes(ctx)
	if err != nil {
		return fmt.Errorf("survey password hash costs: %w", err)
	}
	for _, p := range prefixes {
		if cost, ok := password.StoredCost(p); ok {
			hasher.NoteStoredCost(cost)
		}
	}
	if w := hasher.WorkCost(); w != hasher.Cost() {
		log.Warn("stored password hashes have a higher bcrypt cost than AUTHD_BCRYPT_COST: every login costs that much until their users log in again",
			slog.Int("work_cost", w), slog.Int("bcrypt_cost", hasher.Cost()))
	}
	hasher.Warm()
	return nil
}

// outboxCounts reads the deliverer's counters for the metrics, zero until
// it has started.
type outboxCounts struct {
	d *atomic.Pointer[outbox.Deliverer]
}

func (c outboxCounts) Delivered() uint64 {
	if d := c.d.Load(); d != nil {
		return d.Delivered()
	}
	return 0
}

func (c outboxCounts) Failed() uint64 {
	if d := c.d.Load(); d != nil {
		return d.Failed()
	}
	return 0
}
