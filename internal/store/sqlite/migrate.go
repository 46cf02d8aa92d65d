package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlitemigrate "github.com/golang-migrate/migrate/v4/database/sqlite"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/migrations"
)

// migrationsTable is where golang-migrate's sqlite driver records the
// applied version.
const migrationsTable = "schema_migrations"

// MigrateUp applies every pending migration, each in a transaction.
// Cancelling ctx stops it between two migrations. golang-migrate's sqlite
// lock is per process: run one migrating process at a time.
func (db *DB) MigrateUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: migrate up: %w", err)
	}
	// The driver closes the *sql.DB it is given and runs outside ctx, so it
	// gets a connection of its own rather than the store's only one.
	sqlDB, err := openDB(ctx, db.path)
	if err != nil {
		return fmt.Errorf("sqlite: migrate up: %w", err)
	}
	drv, err := sqlitemigrate.WithInstance(sqlDB, &sqlitemigrate.Config{MigrationsTable: migrationsTable})
	if err != nil {
		err = errors.Join(err, sqlDB.Close())
		return fmt.Errorf("sqlite: migrate up: open database: %w", err)
	}
	if err := migrations.Up(ctx, "sqlite", "sqlite", drv); err != nil {
		return fmt.Errorf("sqlite: migrate up: %w", err)
	}
	return nil
}

// SchemaStatus reports the applied and the newest schema version. It reads
// golang-migrate's table directly: the driver would create the table, a
// write, and a status check should only read.
func (db *DB) SchemaStatus(ctx context.Context) (store.Schema, error) {
	latest, err := migrations.Latest("sqlite")
	if err != nil {
		return store.Schema{}, fmt.Errorf("sqlite: schema status: %w", translate(err))
	}
	s := store.Schema{Latest: latest}
	// A missing table is SQLITE_ERROR, like any other bad query, so look
	// for it first.
	var tables int
	if err := db.db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, migrationsTable,
	).Scan(&tables); err != nil {
		return store.Schema{}, fmt.Errorf("sqlite: schema status: %w", translate(err))
	}
	if tables == 0 {
		return s, nil // nothing applied yet: migrate.ErrNilVersion
	}
	var version int64
	err = db.db.QueryRowContext(ctx, `SELECT version, dirty FROM `+migrationsTable+` LIMIT 1`).Scan(&version, &s.Dirty)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.Schema{}, fmt.Errorf("sqlite: schema status: %w", translate(err))
	}
	// golang-migrate records -1 (its NilVersion) when the first migration
	// failed halfway: dirty, with no version applied.
	if version > 0 {
		s.Version = uint(version)
	}
	return s, nil
}
