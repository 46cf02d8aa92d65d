package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/internal/store"
)

// Retries of a database that is unreachable at start: the wait doubles from
// the first to the last, then stays.
const (
	connectRetryFirst = 500 * time.Millisecond
	connectRetryMax   = 10 * time.Second
)

// connect opens the store, migrates it when configured, and checks that its
// schema is current. While the database is unreachable (store.ErrUnavailable:
// refused, starting up, lost) it logs one line and tries again, waiting
// longer each time up to connectRetryMax, until ctx ends. Any other failure
// (a bad URL, a wrong password, a missing database, a schema that is behind)
// is returned at once: waiting will not fix it.
func connect(ctx context.Context, cfg config, outbox outboxHook, log *slog.Logger) (appStore, error) {
	delay := connectRetryFirst
	for attempt := 1; ; attempt++ {
		st, err := openCurrent(ctx, cfg, outbox)
		if err == nil {
			if attempt > 1 {
				log.LogAttrs(ctx, slog.LevelInfo, "database reachable", slog.Int("attempt", attempt))
			}
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		// The driver's message names the host, user and database, never
		// the password (and never the URL, which may hold it).
		log.LogAttrs(ctx, slog.LevelWarn, "database unreachable, retrying",
			slog.Int("attempt", attempt), slog.Duration("retry_in", delay), slog.String("err", oneLine(err)))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, connectRetryMax)
	}
}

// openCurrent opens the store, migrating it if configured, and returns it
// only if its schema is current.
func openCurrent(ctx context.Context, cfg config, outbox outboxHook) (appStore, error) {
	st, err := openStore(ctx, cfg.DatabaseURL, outbox)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		if err := st.MigrateUp(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	if err := checkSchema(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// storeSlot holds the store once serve has opened it. Until then it is
// empty, and it counts no sessions.
type storeSlot struct{ p atomic.Pointer[appStore] }

func (s *storeSlot) set(st appStore) { s.p.Store(&st) }

// get returns the store, or nil before it is open.
func (s *storeSlot) get() appStore {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return nil
}

// CountActiveSessions asks the store, once it is open (for the metrics).
func (s *storeSlot) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	st := s.get()
	if st == nil {
		return 0, fmt.Errorf("store not open yet: %w", store.ErrUnavailable)
	}
	return st.CountActiveSessions(ctx, now)
}

// swapHandler serves with whichever handler was set last: the one that
// answers 503 while the store opens, then the API.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// server is an HTTP server and the listener it serves.
type server struct {
	srv *http.Server
	ln  net.Listener
}

// newHTTPServer returns a server of h with every timeout set.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// shutdown stops the servers: /readyz says no at once; on a signal, the
// servers go on serving for delay (AUTHD_SHUTDOWN_DELAY), so that a load
// balancer that polls /readyz, or a Kubernetes endpoint update, stops
// sending requests before the listeners close; then the listeners close,
// requests in flight get up to shutdownTimeout to finish, and the serving
// goroutines are waited for. It returns the error of a server that had
// stopped by itself (runCtx's cause when parent, the signal context, is
// still live; no delay then), and any shutdown failure.
func shutdown(parent, runCtx context.Context, servers []server, serving *sync.WaitGroup, draining *atomic.Bool, delay time.Duration, log *slog.Logger) error {
	draining.Store(true)
	var errs []error
	if runCtx.Err() != nil && parent.Err() == nil {
		errs = append(errs, fmt.Errorf("serve: %w", context.Cause(runCtx)))
		delay = 0
	}
	if delay > 0 {
		log.Info("draining: /readyz says unavailable, still serving", slog.String("for", delay.String()))
		time.Sleep(delay)
	}
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	serving.Wait()
	return errors.Join(errs...)
}
