package postgres

import (
	"context"
	"errors"
	"fmt"

	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/migrations"
)

// migrationsTable is where golang-migrate's pgx driver records the applied
// version (its default, in the connection's current schema).
const migrationsTable = "schema_migrations"

// MigrateUp applies every pending migration. golang-migrate holds a Postgres
// advisory lock while it runs, so replicas starting together migrate once.
// Cancelling ctx stops it between two migrations.
func (db *DB) MigrateUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: migrate up: %w", err)
	}
	// Closing this *sql.DB leaves the pool open.
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	drv, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{MigrationsTable: migrationsTable})
	if err != nil {
		err = errors.Join(err, sqlDB.Close())
		return fmt.Errorf("postgres: migrate up: open database: %w", err)
	}
	if err := migrations.Up(ctx, "postgres", "pgx5", drv); err != nil {
		return fmt.Errorf("postgres: migrate up: %w", err)
	}
	return nil
}

// SchemaStatus reports the applied and the newest schema version. It reads
// golang-migrate's table directly rather than through migrate.Migrate, whose
// database driver takes the advisory lock (and so would wait out another
// replica's migration, ignoring ctx) and creates the table if it is missing:
// a status check, such as /readyz, must neither block nor write.
func (db *DB) SchemaStatus(ctx context.Context) (store.Schema, error) {
	latest, err := migrations.Latest("postgres")
	if err != nil {
		return store.Schema{}, fmt.Errorf("postgres: schema status: %w", translate(err))
	}
	s := store.Schema{Latest: latest}
	var version int64
	err = db.pool.QueryRow(ctx, `SELECT version, dirty FROM `+migrationsTable+` LIMIT 1`).Scan(&version, &s.Dirty)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == codeUndefinedTable:
		return s, nil // nothing applied yet: migrate.ErrNilVersion
	case err != nil:
		return store.Schema{}, fmt.Errorf("postgres: schema status: %w", translate(err))
	}
	// golang-migrate records -1 (its NilVersion) when the first migration
	// failed halfway: dirty, with no version applied.
	if version > 0 {
		s.Version = uint(version)
	}
	return s, nil
}
