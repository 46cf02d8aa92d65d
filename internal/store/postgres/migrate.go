package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
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
func (db *DB) MigrateUp(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: migrate up: %w", err)
	}
	src, err := iofs.New(migrations.FS, "postgres")
	if err != nil {
		return fmt.Errorf("postgres: migrate up: open source: %w", err)
	}
	// Closing this *sql.DB leaves the pool open.
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	drv, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{MigrationsTable: migrationsTable})
	if err != nil {
		err = errors.Join(err, sqlDB.Close(), src.Close())
		return fmt.Errorf("postgres: migrate up: open database: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		err = errors.Join(err, drv.Close(), src.Close())
		return fmt.Errorf("postgres: migrate up: %w", err)
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if cerr := errors.Join(srcErr, dbErr); cerr != nil && err == nil {
			err = fmt.Errorf("postgres: migrate up: close: %w", cerr)
		}
	}()

	// golang-migrate takes no context; its graceful stop finishes the
	// migration under way and applies no more.
	stop := context.AfterFunc(ctx, func() { m.GracefulStop <- true })
	defer stop()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("postgres: migrate up: %w", err)
	}
	if err := ctx.Err(); err != nil {
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
	latest, err := latestVersion(migrations.FS, "postgres")
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

// latestVersion returns the highest migration version in dir of fsys, or
// 0 if it holds none.
func latestVersion(fsys fs.FS, dir string) (uint, error) {
	src, err := iofs.New(fsys, dir)
	if err != nil {
		return 0, fmt.Errorf("open migrations: %w", err)
	}
	defer src.Close()
	v, err := src.First()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("first migration: %w", err)
	}
	for {
		next, err := src.Next(v)
		if errors.Is(err, fs.ErrNotExist) {
			return v, nil
		}
		if err != nil {
			return 0, fmt.Errorf("migration after %d: %w", v, err)
		}
		v = next
	}
}
