// Package migrations embeds authd's schema migrations, plain SQL per
// dialect in golang-migrate's file naming (NNNN_name.up.sql / .down.sql),
// and runs them: each store supplies its golang-migrate database driver.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// FS holds the migrations: postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS

// Up applies every pending migration of dialect ("postgres" or "sqlite")
// through drv, registered under driverName, and closes drv. golang-migrate
// takes no context: cancelling ctx makes it finish the migration under way
// and apply no more, and Up then returns ctx's error.
func Up(ctx context.Context, dialect, driverName string, drv database.Driver) (err error) {
	src, err := iofs.New(FS, dialect)
	if err != nil {
		return errors.Join(fmt.Errorf("open source: %w", err), drv.Close())
	}
	m, err := migrate.NewWithInstance("iofs", src, driverName, drv)
	if err != nil {
		return errors.Join(err, drv.Close(), src.Close())
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if cerr := errors.Join(srcErr, dbErr); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	stop := context.AfterFunc(ctx, func() { m.GracefulStop <- true })
	defer stop()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return ctx.Err()
}

var latest = map[string]func() (uint, error){
	"postgres": sync.OnceValues(func() (uint, error) { return latestVersion(FS, "postgres") }),
	"sqlite":   sync.OnceValues(func() (uint, error) { return latestVersion(FS, "sqlite") }),
}

// Latest returns the newest migration version shipped for dialect, or 0 if
// it has none. It reads the embedded files once.
func Latest(dialect string) (uint, error) {
	f, ok := latest[dialect]
	if !ok {
		return 0, fmt.Errorf("unknown dialect %q", dialect)
	}
	return f()
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
