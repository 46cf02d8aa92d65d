package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/internal/store"
)

var _ store.RevocationListener = (*DB)(nil)

// revocationChannel is the channel migration 0003's triggers notify of
// every revoked access token (see its comment for the payloads).
const revocationChannel = "authd_revoked"

// ListenerApplicationName is the application_name of the listener's
// connection, by which an operator finds it in pg_stat_activity.
const ListenerApplicationName = "authd-revocations"

// Listener timings. Variables, not constants, so that tests can shorten
// them.
var (
	// listenIdle is how long the listener waits for a notice before it
	// checks that the server still answers. A connection can die without a
	// word (the server frozen, a network partition): waiting on it would
	// then look like a quiet channel forever.
	listenIdle = 10 * time.Second
	// listenPingTimeout bounds that check.
	listenPingTimeout = 2 * time.Second
	// listenStatementTimeout bounds the LISTEN statement.
	listenStatementTimeout = 5 * time.Second
	// listenBackoffMin and listenBackoffMax bound the wait between two
	// attempts to subscribe: it doubles from the first to the second.
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// ListenRevocations calls revoked for every revocation notice that any
// process commits on the database, until ctx ends (see
// store.RevocationListener). It holds a connection of its own, outside the
// pool, since a LISTEN belongs to its session: a pooled connection would go
// back to the pool, and its notices with it. subscribed(true, nil) follows
// each successful LISTEN; subscribed(false, err) follows each failed attempt
// and each loss, including a server that stopped answering (noticed within
// listenIdle+listenPingTimeout).
func (db *DB) ListenRevocations(ctx context.Context, revoked func(store.Revocation), subscribed func(ok bool, err error)) {
	cfg := db.pool.Config().ConnConfig // a copy: changing it leaves the pool's alone
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = make(map[string]string)
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	store.KeepSubscribed(ctx, listenBackoffMin, listenBackoffMax, func(ctx context.Context, live func()) error {
		return listen(ctx, cfg, revoked, live)
	}, subscribed)
}

// listen connects with cfg, subscribes, calls live, and then passes every
// notice to revoked until the connection fails or ctx ends. It returns why
// it stopped.
func listen(ctx context.Context, cfg *pgx.ConnConfig, revoked func(store.Revocation), live func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", translate(err))
	}
	defer func() {
		// Close sends Terminate; bound it, for a server that stopped
		// reading.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	lctx, cancel := context.WithTimeout(ctx, listenStatementTimeout)
	_, err = conn.Exec(lctx, "LISTEN "+revocationChannel)
	cancel()
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", translate(err))
	}
	live()
	for {
		// A deadline that interrupts WaitForNotification leaves the
		// connection open and usable: pgx's default context handler sets
		// a deadline on the socket, a read timeout is the one read error
		// that does not close the connection, and a message half read is
		// finished by the next read. (A deadline during a query, as in
		// Ping, does close it.)
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n != nil && n.Channel == revocationChannel {
				revoked(parseRevocation(n.Payload))
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err) || conn.IsClosed():
			return fmt.Errorf("postgres: listen: %w", translate(err))
		}
		// Idle for listenIdle: a quiet channel, or a dead connection.
		// Notices that arrive during the ping are queued by pgx and
		// returned by the next WaitForNotification.
		pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("postgres: listen: ping: %w", translate(err))
		}
	}
}

// parseRevocation reads a notice's payload: [user, device], [user], or
// anything else, which names every token. A payload authd cannot read
// (written by a newer version, or by hand) must not be ignored: the tokens
// it names are unknown, so all of them are.
func parseRevocation(payload string) store.Revocation {
	var ids []string
	if err := json.Unmarshal([]byte(payload), &ids); err != nil || len(ids) == 0 || ids[0] == "" {
		return store.Revocation{}
	}
	switch len(ids) {
	case 1:
		return store.Revocation{UserID: ids[0]}
	case 2:
		return store.Revocation{UserID: ids[0], DeviceID: ids[1]}
	}
	return store.Revocation{}
}
