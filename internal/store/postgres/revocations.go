package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/internal/resubscribe"
)

var _ store.RevocationListener = (*DB)(nil)

// revocationChannel is the channel migration 0003's triggers notify of
// every revoked access token (see its comment for the payloads).
const revocationChannel = "authd_revoked"

// probeChannel carries the listener's own probes: a notice it sends
// through the pool and must hear on its own connection.
const probeChannel = "authd_listener_probe"

// ErrNotDelivering is reported (wrapped) when the listener's connection
// accepted LISTEN but a probe notice sent through the pool did not arrive
// in time: notices are not delivered, as behind a connection pooler in
// transaction mode, or over a connection that died without a word.
var ErrNotDelivering = errors.New("a probe notice sent through the pool did not arrive: notices are not delivered (a connection pooler in transaction mode?)")

// ListenerApplicationName is the application_name of the listener's
// connection, by which an operator finds it in pg_stat_activity.
const ListenerApplicationName = "authd-revocations"

// Listener timings that no option changes.
const (
	// listenStatementTimeout bounds the LISTEN statement.
	listenStatementTimeout = 5 * time.Second
	// listenBackoffMin and listenBackoffMax bound the wait between two
	// attempts to subscribe: it doubles from the first to the second.
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// listenConfig is the revocation listener's settings, fixed at Open.
type listenConfig struct {
	// idle is how long the listener waits for a notice before it checks
	// that the server still answers. A connection can die without a word
	// (the server frozen, a network partition): waiting on it would then
	// look like a quiet channel forever.
	idle time.Duration
	// pingTimeout bounds that check, and each probe.
	pingTimeout time.Duration
	// probeTo is where probes are sent: probeChannel, except in a test
	// that plays a database that accepts LISTEN and delivers nothing,
	// which may change it while the listener runs.
	probeTo *atomic.Pointer[string]
}

// defaultListenConfig is the listener's settings without options.
func defaultListenConfig() listenConfig {
	c := listenConfig{idle: 10 * time.Second, pingTimeout: 2 * time.Second, probeTo: new(atomic.Pointer[string])}
	ch := probeChannel
	c.probeTo.Store(&ch)
	return c
}

// ListenTimings sets how long the revocation listener waits on a quiet
// connection before it checks that the server still answers (idle, 10s by
// default) and how long that check and each probe may take (ping, 2s by
// default). A zero duration keeps the default.
func ListenTimings(idle, ping time.Duration) Option {
	return func(db *DB) {
		if idle > 0 {
			db.listener.idle = idle
		}
		if ping > 0 {
			db.listener.pingTimeout = ping
		}
	}
}

// ListenRevocations calls revoked for every revocation notice that any
// process commits on the database, until ctx ends (see
// store.RevocationListener). It holds a connection of its own, outside the
// pool, since a LISTEN belongs to its session: a pooled connection would go
// back to the pool, and its notices with it. subscribed(nil) follows each
// LISTEN proven by a probe; subscribed(err) follows each failed attempt and
// each loss, including a server that stopped answering (noticed within
// the idle wait plus the ping timeout).
func (db *DB) ListenRevocations(ctx context.Context, revoked func(store.Revocation), subscribed func(err error)) {
	cfg := db.pool.Config().ConnConfig // a copy: changing it leaves the pool's alone
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = make(map[string]string)
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	resubscribe.Loop(ctx, listenBackoffMin, listenBackoffMax, func(ctx context.Context, live func()) error {
		return db.listen(ctx, cfg, revoked, live)
	}, subscribed)
}

// listen connects with cfg, subscribes, proves that notices arrive (probe),
// calls live, and then passes every notice to revoked until the connection
// fails, stops delivering, or ctx ends. It returns why it stopped.
func (db *DB) listen(ctx context.Context, cfg *pgx.ConnConfig, revoked func(store.Revocation), live func()) error {
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
	_, err = conn.Exec(lctx, "LISTEN "+revocationChannel+"; LISTEN "+probeChannel)
	cancel()
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", translate(err))
	}
	// A LISTEN the server accepted proves nothing: a pooler in transaction
	// mode accepts it and delivers nothing. Live only once a notice sent
	// the way revocations are sent has come back.
	if err := db.probe(ctx, conn, revoked); err != nil {
		return err
	}
	live()
	for {
		// A deadline that interrupts WaitForNotification leaves the
		// connection open and usable: pgx's default context handler sets
		// a deadline on the socket, a read timeout is the one read error
		// that does not close the connection, and a message half read is
		// finished by the next read. (A deadline during a query, as in
		// Ping, does close it.)
		wctx, cancel := context.WithTimeout(ctx, db.listener.idle)
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
		// Idle for the idle wait: a quiet channel, or a dead connection.
		// Notices that arrive during the ping are queued by pgx and
		// returned by the next WaitForNotification.
		pctx, cancel := context.WithTimeout(ctx, db.listener.pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("postgres: listen: ping: %w", translate(err))
		}
		// The server answers; check that it still delivers, too.
		if err := db.probe(ctx, conn, revoked); err != nil {
			return err
		}
	}
}

// probe sends a notice of a fresh nonce on the probe channel through the
// pool, as a revocation's commit would, and waits for it on the listener's
// connection for at most the ping timeout, passing on the revocations that
// arrive meanwhile. It fails with ErrNotDelivering when the notice does not
// come back.
func (db *DB) probe(ctx context.Context, conn *pgx.Conn, revoked func(store.Revocation)) error {
	nonce := rand.Text()
	pctx, cancel := context.WithTimeout(ctx, db.listener.pingTimeout)
	defer cancel()
	if _, err := db.pool.Exec(pctx, "SELECT pg_notify($1, $2)", *db.listener.probeTo.Load(), nonce); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("postgres: listen: probe: %w", translate(err))
	}
	for {
		n, err := conn.WaitForNotification(pctx)
		switch {
		case err == nil:
			switch {
			case n.Channel == revocationChannel:
				revoked(parseRevocation(n.Payload))
			case n.Channel == probeChannel && n.Payload == nonce:
				return nil
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			return fmt.Errorf("postgres: listen: %w", ErrNotDelivering)
		default:
			return fmt.Errorf("postgres: listen: probe: %w", translate(err))
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
