package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/ratelimit"
)

// Login attempts per client IP: a burst of 10, then one every 5 seconds
// (DESIGN.md, security defaults).
var loginIPRule = ratelimit.Rule{Burst: 10, Every: 5 * time.Second}

// shutdownTimeout bounds how long in-flight requests may take to finish
// after SIGTERM.
const shutdownTimeout = 10 * time.Second

func runServe(ctx context.Context, env *environment, args []string) error {
	var cfg config
	fs := newFlagSet("serve", env.stderr)
	validate := cfg.flags(fs, env.getenv, "AUTHD_SERVER_NAME", "AUTHD_LISTEN", "AUTHD_DATABASE_URL",
		"AUTHD_MIGRATE", "AUTHD_BCRYPT_COST", "AUTHD_RATELIMIT", "AUTHD_PUBLIC_BASEURL", "AUTHD_SERVE_VERSIONS",
		"AUTHD_REFRESH_TOKENS", "AUTHD_ACCESS_TOKEN_TTL", "AUTHD_REFRESH_TOKEN_TTL", "AUTHD_NON_REFRESHABLE_TOKEN_TTL",
		"AUTHD_LOG_FORMAT", "AUTHD_LOG_LEVEL")
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

	st, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Migrate {
		if err := st.MigrateUp(ctx); err != nil {
			return err
		}
	}
	if err := checkSchema(ctx, st); err != nil {
		return err
	}
	hasher, err := password.NewHasher(cfg.BcryptCost, nil)
	if err != nil {
		return err
	}
	hasher.Warm()
	deps := api.Deps{
		Store:         st,
		Hasher:        hasher,
		ServerName:    cfg.ServerName,
		Tokens:        cfg.Tokens,
		PublicBaseURL: cfg.PublicBase,
		ServeVersions: cfg.Versions,
		Logger:        log,
		Ready: func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				log.LogAttrs(ctx, slog.LevelWarn, "database ping failed", slog.Any("err", err))
				return errors.New("database unreachable")
			}
			return checkSchema(ctx, st)
		},
	}
	if cfg.RateLimit {
		deps.LoginIPLimiter = ratelimit.NewMemory(loginIPRule, nil)
	}

	// Listen first, so that a bind error is reported before anything runs
	// and tests can listen on :0.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.New(deps),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("server_name", cfg.ServerName),
		slog.String("database", databaseKindName(cfg.DatabaseURL)))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sweepDone := make(chan struct{})
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	go func() {
		defer close(sweepDone)
		sweep(sweepCtx, st, log, sweepInterval, tokenRetention, time.Now)
	}()
	defer func() {
		stopSweep()
		<-sweepDone
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger returns the process logger, writing text or JSON to w.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated with the config
	opts := &slog.HandlerOptions{Level: lv}
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
