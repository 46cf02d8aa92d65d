package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/authd/authd/internal/store"
)

const (
	// sweepInterval is how often serve deletes tokens nobody can use.
	sweepInterval = 10 * time.Minute
	// tokenRetention is how long an expired token, or a revoked refresh
	// token, is kept after it stopped working. Until then an expired access
	// token still gets M_UNKNOWN_TOKEN with soft_logout true (so the client
	// keeps its encryption state and logs in again to the same device) and
	// can still log out, and a replayed refresh token is still recognised
	// and revokes its session. After it, they are unknown tokens.
	tokenRetention = 7 * 24 * time.Hour
)

// sweep deletes, every interval until ctx ends, the tokens that expired
// or were revoked more than retention ago. It needs one store method.
func sweep(ctx context.Context, s store.TokenSweeper, log *slog.Logger, interval, retention time.Duration, now func() time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sweepOnce(ctx, s, log, retention, now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepOnce runs one sweep and logs what it did.
func sweepOnce(ctx context.Context, s store.TokenSweeper, log *slog.Logger, retention time.Duration, now func() time.Time) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := s.DeleteExpiredTokens(ctx, now().UTC().Add(-retention))
	switch {
	case err != nil && ctx.Err() == nil:
		log.LogAttrs(ctx, slog.LevelWarn, "token sweep failed", slog.Any("err", err))
	case n > 0:
		log.LogAttrs(ctx, slog.LevelInfo, "token sweep", slog.Int("deleted", n))
	}
}
