// Package sqlite implements store.Store, store.Migrator and
// store.RevocationListener on an embedded SQLite database
// (modernc.org/sqlite: pure Go, no cgo). It is the default store when authd
// runs standalone.
//
// The database runs in WAL mode with foreign keys on. The pool holds a single
// connection, so this process never contends with itself for SQLite's one
// writer; another process on the same file (the authd CLI next to a running
// server) waits up to the busy timeout. Times are INTEGER microseconds since
// the Unix epoch and are returned in UTC; a zero time.Time is NULL where the
// column allows it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/internal/groupcommit"
)

var (
	_ store.Store    = (*DB)(nil)
	_ store.Migrator = (*DB)(nil)
)

// DB is a store.Store on a SQLite database file. It is safe for concurrent
// use.
type DB struct {
	db *sql.DB
	// read is a pool of read-only connections for the lookups on every
	// request's path (a token, a user, a device): in WAL mode they read
	// the last commit while db's one connection writes, instead of
	// queueing behind its transactions and their syncs. nil for an
	// in-memory database, whose other connections would be other
	// databases; reads then use db.
	read         *sql.DB
	path         string
	modeWarn     error
	pollInterval time.Duration
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

// Open opens the database file at path and pings it. A missing file is
// created first with mode 0600, before the driver opens it, so that it and
// the -wal and -shm files SQLite creates next to it (with the database
// file's mode) are readable by the owner only, whatever the umask. The mode
// of an existing file is left alone; FileModeWarning reports it if group or
// others may read it. Open does not migrate the schema; see MigrateUp and
// SchemaStatus.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	modeWarn, err := prepareFile(path)
	if err != nil {
		return nil, err
	}
	db, err := openDB(ctx, path)
	if err != nil {
		return nil, err
	}
	d := &DB{db: db, path: path, modeWarn: modeWarn, pollInterval: defaultPollInterval}
	if path != "" && path != ":memory:" {
		if d.read, err = openReader(ctx, path); err != nil {
			db.Close()
			return nil, err
		}
	}
	for _, opt := range opts {
		opt(d)
	}
	d.logouts = groupcommit.New(store.MaxDevicesPerBatch, store.BatchTimeout, d.deleteDevicesBatch)
	return d, nil
}

// FileModeWarning returns an error naming the database file and its mode if,
// when Open found it, group or others had any access to it, and nil
// otherwise. The file holds password hashes and token digests.
func (db *DB) FileModeWarning() error { return db.modeWarn }

// prepareFile creates the file at path with mode 0600 if it does not exist
// and, if it does, returns a warning when its mode grants group or others
// any access.
func prepareFile(path string) (modeWarn error, err error) {
	if path == "" || path == ":memory:" {
		return nil, nil // SQLite's temporary and in-memory databases: no file
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
		}
		return nil, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("sqlite: database file %s has mode %04o: group or others may read it (and its -wal and -shm files); chmod 600 them", path, perm), nil
	}
	return nil, nil
}

// dsn is the modernc.org/sqlite data source name for the file at path.
func dsn(path string) string {
	// The path is a URI path: escape it, or a '?', '#' or '%' in a file name
	// would be read as URI syntax.
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=busy_timeout(5000)" +
		// BEGIN IMMEDIATE takes the write lock up front, where a busy
		// database is waited for; a deferred transaction that reads and then
		// writes can fail with SQLITE_BUSY at once when another process wrote
		// in between.
		"&_txlock=immediate"
}

// openDB opens a pool of one connection on the file at path and checks that
// the pragmas took: without foreign keys, deleting a device would leave its
// tokens valid.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer at a time, and a second
	// connection of ours would only wait for the first (or fail with
	// SQLITE_BUSY). Transactions therefore must use only their *sql.Tx.
	db.SetMaxOpenConns(1)
	var fk int
	if err := db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if fk != 1 {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: foreign keys are off", path)
	}
	return db, nil
}

// readers is the size of the read-only pool.
const readers = 4

// openReader opens the read-only pool on the file at path.
func openReader(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path)+"&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(readers)
	db.SetMaxIdleConns(readers)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// reads is the pool for a lookup outside any transaction.
func (db *DB) reads() *sql.DB {
	if db.read != nil {
		return db.read
	}
	return db.db
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", translate(err))
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.read != nil {
		db.read.Close()
	}
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// querier is what the helpers need; *sql.DB and *sql.Tx both have it.
// Inside a transaction pass the *sql.Tx only: the pool's one connection is
// the transaction's, so a query on the *sql.DB would wait forever.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// Also on a panic in fn: an open transaction would hold the only
	// connection. After Commit this is a no-op.
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// translate maps a driver error to the store's sentinel errors by SQLite's
// extended result code, keeping the driver error in the chain for the log.
// Every foreign key in the schema points at a user or a device, or at the
// refresh token an access token is paired with (written in the same
// transaction), so a violation means the user or device the row belongs to
// does not exist.
//
// A database that is locked past the busy timeout, unreadable or full is
// store.ErrUnavailable: another process may let go of it, or an operator
// free the disk.
func translate(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		switch code := sqlErr.Code(); code {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		default:
			// The primary result code is the low byte of the extended one.
			switch code & 0xff {
			case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL:
				return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
			}
		}
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// rowsAffected is the number of rows an UPDATE or DELETE changed.
func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}

// micros is t as stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros is micros(t), or NULL for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros is the UTC time stored as us.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// fromNullMicros is fromMicros, or the zero time for NULL.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// OpenRaw opens a *sql.DB on the file at path exactly as Open opens the
// store's (the same pragmas and durability, one connection), for tools that
// measure what that configuration can do, such as the commit bound of
// authd-bench. It creates the file like Open and does not migrate.
func OpenRaw(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := prepareFile(path); err != nil {
		return nil, err
	}
	return openDB(ctx, path)
}
