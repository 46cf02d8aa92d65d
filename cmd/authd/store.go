package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/sqlite"
)

// appStore is what cmd/authd needs of a store: the domain store and the
// schema management.
type appStore interface {
	store.Store
	store.Migrator
}

// outboxHook says whether a store writes events for the homeserver (see
// internal/outbox): on when AUTHD_OUTBOX_URL is set. written, if not nil,
// is called after each commit that wrote events.
type outboxHook struct {
	on      bool
	written func()
}

// openStore opens the store the database URL selects. It is the only place
// that names concrete store types.
func openStore(ctx context.Context, databaseURL string, outbox outboxHook) (appStore, error) {
	kind, target, err := parseDatabaseURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch kind {
	case postgresDB:
		var opts []postgres.Option
		if outbox.on {
			opts = append(opts, postgres.Outbox(outbox.written))
		}
		db, err := postgres.Open(ctx, target, opts...)
		if err != nil {
			return nil, oneLineError{"cannot reach the database: " + oneLine(err), err}
		}
		return db, nil
	default:
		var opts []sqlite.Option
		if outbox.on {
			opts = append(opts, sqlite.Outbox(outbox.written))
		}
		db, err := sqlite.Open(ctx, target, opts...)
		if err != nil {
			return nil, oneLineError{"cannot open the database: " + oneLine(err), err}
		}
		return db, nil
	}
}

// oneLineError is an error whose message was flattened to one line; it
// still unwraps to the original (store.ErrUnavailable, for one).
type oneLineError struct {
	msg string
	err error
}

func (e oneLineError) Error() string { return e.msg }
func (e oneLineError) Unwrap() error { return e.err }

// oneLine flattens a driver error (pgx lists each address it tried on a line
// of its own) so that the CLI reports one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// checkSchema returns an error unless the store's schema is current, saying
// how to migrate it.
func checkSchema(ctx context.Context, st appStore) error {
	s, err := st.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	switch {
	case s.Dirty:
		return fmt.Errorf("database schema is dirty at version %d (a migration failed halfway): repair it by hand, then run `authd migrate up`", s.Version)
	case s.Version > s.Latest:
		return fmt.Errorf("database schema is at version %d, newer than this authd knows (%d): run a newer authd", s.Version, s.Latest)
	case s.Version < s.Latest:
		return fmt.Errorf("database schema is at version %d, this authd needs %d: run `authd migrate up` or set AUTHD_MIGRATE=true", s.Version, s.Latest)
	}
	return nil
}
