// Package postgres implements store.Store and store.Migrator on PostgreSQL
// through a pgx v5 connection pool. It is authd's production store.
//
// Times are stored as timestamptz at microsecond precision and returned in
// UTC; a zero time.Time is stored as NULL where the column allows it.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/internal/groupcommit"
)

var (
	_ store.Store    = (*DB)(nil)
	_ store.Migrator = (*DB)(nil)
)

// SQLSTATE codes this package maps to the store's sentinel errors
// (PostgreSQL manual, appendix A).
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeUndefinedTable      = "42P01"
)

// DB is a store.Store on a PostgreSQL database. It is safe for concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	listener listenConfig
	// outbox is on when events for the homeserver are written (Outbox);
	// outboxWritten, if not nil, is called after a commit that wrote one.
	outbox        bool
	outboxWritten func()
	// logouts batches DeleteDevice's writes (see DeleteDevice).
	logouts *groupcommit.Batcher[store.DeviceKey]
}

// Option tunes a DB at Open. Without options, Open uses the defaults each
// option names.
type Option func(*DB)

// Pool settings, unless the URL sets them (connect_timeout,
// pool_health_check_period).
const (
	// defaultConnectTimeout bounds one connection attempt, so that a server
	// that does not answer (a dropped packet, not a refusal) fails the
	// attempt rather than waiting for TCP to give up.
	defaultConnectTimeout = 5 * time.Second
	// defaultHealthCheckPeriod is how often the pool drops idle connections
	// past their idle time or lifetime and tops up its minimum. (A dead idle
	// connection is found sooner: the pool pings one idle for over a second
	// before handing it out, and replaces it if the ping fails.)
	defaultHealthCheckPeriod = 15 * time.Second
)

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword/value string) and pings it. It does not migrate the schema; see
// MigrateUp and SchemaStatus. An unreachable server is store.ErrUnavailable.
//
// The pool reconnects by itself: after the server was lost and came back,
// the next calls get fresh connections, with no call to Open.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if !strings.Contains(url, "pool_health_check_period") {
		cfg.HealthCheckPeriod = defaultHealthCheckPeriod
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	// The pool connects lazily; ping so that a wrong URL or an unreachable
	// server fails here rather than at the first request.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", translate(err))
	}
	db := &DB{pool: pool, listener: defaultListenConfig()}
	for _, opt := range opts {
		opt(db)
	}
	db.logouts = groupcommit.New(store.MaxDevicesPerBatch, store.BatchTimeout, db.deleteDevicesBatch)
	return db, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", translate(err))
	}
	return nil
}

// Close closes every connection of the pool, waiting for those in use.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// querier is what the helpers need; *pgxpool.Pool and pgx.Tx both have it.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// translate maps a driver error to the store's sentinel errors, keeping the
// driver error in the chain for the log. Every foreign key in the schema
// points at a user or a device, or at the refresh token an access token is
// paired with (written in the same transaction, under the device's lock), so
// a violation means the user or device the row belongs to does not exist.
//
// An error that says the server cannot be reached or cannot serve now
// becomes store.ErrUnavailable: a connection that could not be made or was
// lost, or one of the SQLSTATEs of a server that is starting, stopping or
// full. A query whose context ended stays the context's error, which
// callers already tell apart.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == codeUniqueViolation:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case pgErr.Code == codeForeignKeyViolation:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		// Any other server error (a failed password, a missing database)
		// is not cured by waiting.
		return err
	}
	// A connection that could not be made, for whatever reason short of
	// the server's refusal above (a refused dial, a connect timeout), is
	// unavailability; a context error in it stays in the chain.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unavailableCode reports whether a SQLSTATE says the server cannot serve
// now (PostgreSQL manual, appendix A): class 08 (connection exception),
// admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in
// recovery) and too_many_connections.
func unavailableCode(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// timestamp is t as written: UTC, truncated to the microsecond that
// timestamptz keeps (Postgres would round; the sqlite store truncates).
func timestamp(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// nullTimestamp is timestamp(t), or NULL for the zero time.
func nullTimestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timestamp(t)
}

// fromNull is the time read from a nullable column: zero for NULL, else UTC.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
