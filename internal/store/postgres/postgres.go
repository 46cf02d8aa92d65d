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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/internal/store"
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
	pool *pgxpool.Pool
}

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword/value string) and pings it. It does not migrate the schema; see
// MigrateUp and SchemaStatus.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	// The pool connects lazily; ping so that a wrong URL or an unreachable
	// server fails here rather than at the first request.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
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
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case codeForeignKeyViolation:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
	}
	return err
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
