package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	sqlitemigrate "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/store/storetest"
	"github.com/authd/authd/migrations"
)

func TestDB(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newMigratedDB(t, filepath.Join(t.TempDir(), "authd.db"))
	})
}

func TestDB_Outbox(t *testing.T) {
	storetest.RunOutbox(t, func(t *testing.T, on bool, written func()) store.Store {
		var opts []sqlite.Option
		if on {
			opts = append(opts, sqlite.Outbox(written))
		}
		db := newDB(t, filepath.Join(t.TempDir(), "authd.db"), opts...)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		return db
	})
}

// newDB opens an unmigrated store on the file at path.
func newDB(tb testing.TB, path string, opts ...sqlite.Option) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), path, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func newMigratedDB(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db := newDB(tb, path)
	if err := db.MigrateUp(tb.Context()); err != nil {
		tb.Fatalf("MigrateUp: %v", err)
	}
	return db
}

// previousMigration is the highest version among the embedded migrations
// below v, 0 if none.
func previousMigration(tb testing.TB, v uint) uint {
	tb.Helper()
	entries, err := fs.ReadDir(migrations.FS, "sqlite")
	if err != nil {
		tb.Fatal(err)
	}
	var prev uint
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		n, err := strconv.ParseUint(prefix, 10, 64)
		if err != nil {
			tb.Fatalf("migration %s: %v", e.Name(), err)
		}
		if uint(n) < v {
			prev = max(prev, uint(n))
		}
	}
	return prev
}

// latestMigration is the highest version among the embedded migrations,
// read from the file names independently of the code under test.
func latestMigration(tb testing.TB) uint {
	tb.Helper()
	entries, err := fs.ReadDir(migrations.FS, "sqlite")
	if err != nil {
		tb.Fatal(err)
	}
	var latest uint
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseUint(prefix, 10, 64)
		if err != nil {
			tb.Fatalf("migration %s: %v", e.Name(), err)
		}
		latest = max(latest, uint(v))
	}
	if latest < 1 {
		tb.Fatalf("no migrations embedded")
	}
	return latest
}

func schemaStatus(tb testing.TB, db *sqlite.DB) store.Schema {
	tb.Helper()
	s, err := db.SchemaStatus(tb.Context())
	if err != nil {
		tb.Fatalf("SchemaStatus: %v", err)
	}
	return s
}

func TestDB_SchemaStatus(t *testing.T) {
	latest := latestMigration(t)

	t.Run("Empty", func(t *testing.T) {
		db := newDB(t, filepath.Join(t.TempDir(), "authd.db"))
		got := schemaStatus(t, db)
		if want := (store.Schema{Version: 0, Latest: latest}); got != want {
			t.Fatalf("SchemaStatus = %+v, want %+v", got, want)
		}
		if got.Current() {
			t.Fatalf("empty schema reported current: %+v", got)
		}
		if again := schemaStatus(t, db); again != got {
			t.Fatalf("SchemaStatus again = %+v, want %+v", again, got)
		}
	})

	t.Run("Migrated", func(t *testing.T) {
		db := newMigratedDB(t, filepath.Join(t.TempDir(), "authd.db"))
		got := schemaStatus(t, db)
		if want := (store.Schema{Version: latest, Latest: latest}); got != want {
			t.Fatalf("SchemaStatus = %+v, want %+v", got, want)
		}
		if !got.Current() {
			t.Fatalf("migrated schema not current: %+v", got)
		}
	})

	t.Run("Dirty", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "authd.db")
		db := newMigratedDB(t, path)
		// As golang-migrate leaves it when a migration fails halfway.
		exec(t, path, `UPDATE schema_migrations SET dirty = 1`)
		got := schemaStatus(t, db)
		if want := (store.Schema{Version: latest, Latest: latest, Dirty: true}); got != want {
			t.Fatalf("SchemaStatus = %+v, want %+v", got, want)
		}
		if got.Current() {
			t.Fatalf("dirty schema reported current: %+v", got)
		}
		if err := db.MigrateUp(t.Context()); err == nil {
			t.Fatalf("MigrateUp on a dirty schema succeeded")
		}
	})
}

// exec runs a statement on the database file at path outside the store,
// foreign keys on as in the store.
func exec(tb testing.TB, path, query string) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(tb.Context(), query); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func TestDB_MigrateUp(t *testing.T) {
	t.Run("Twice", func(t *testing.T) {
		db := newDB(t, filepath.Join(t.TempDir(), "authd.db"))
		for i := range 2 {
			if err := db.MigrateUp(t.Context()); err != nil {
				t.Fatalf("MigrateUp #%d: %v", i+1, err)
			}
		}
		if got := schemaStatus(t, db); !got.Current() {
			t.Fatalf("SchemaStatus = %+v, want current", got)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		db := newDB(t, filepath.Join(t.TempDir(), "authd.db"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := db.MigrateUp(ctx); err == nil {
			t.Fatalf("MigrateUp with a cancelled context succeeded")
		}
		if got := schemaStatus(t, db); got.Version != 0 {
			t.Fatalf("SchemaStatus = %+v, want nothing applied", got)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		// The schema and the data live in the file.
		path := filepath.Join(t.TempDir(), "authd.db")
		first := newMigratedDB(t, path)
		u := store.User{ID: "@alice:example.org", PasswordHash: "$h$", CreatedAt: time.Unix(1700000000, 0).UTC()}
		if err := first.CreateUser(t.Context(), u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if err := first.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		second, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open again: %v", err)
		}
		defer second.Close()
		if got := schemaStatus(t, second); !got.Current() {
			t.Fatalf("SchemaStatus after reopening = %+v, want current", got)
		}
		if _, err := second.FindUserByID(t.Context(), u.ID); err != nil {
			t.Fatalf("FindUserByID after reopening: %v", err)
		}
	})
}

// newMigrate is a golang-migrate instance on the file at path, foreign
// keys on as in the store, for the down migrations the store does not run.
func newMigrate(tb testing.TB, path string) *migrate.Migrate {
	tb.Helper()
	src, err := iofs.New(migrations.FS, "sqlite")
	if err != nil {
		tb.Fatal(err)
	}
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	drv, err := sqlitemigrate.WithInstance(sqlDB, &sqlitemigrate.Config{MigrationsTable: "schema_migrations"})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// query returns the single integer a query on the file at path selects.
func queryInt(tb testing.TB, path, query string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(tb.Context(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestMigrations_Down(t *testing.T) {
	// Down migrations run with foreign keys on, as the store opens the
	// file, and in golang-migrate's transaction. 0002's down drops a column
	// with a REFERENCES clause, which SQLite allows only while the clause is
	// in the column's definition.
	path := filepath.Join(t.TempDir(), "authd.db")
	db := newMigratedDB(t, path)
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	const user = "@alice:example.org"
	if err := db.CreateUser(t.Context(), store.User{ID: user, PasswordHash: "$h$", CreatedAt: now}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	for i, device := range []string{"PHONE", "LAPTOP"} {
		var access, refresh store.TokenHash
		access[0], refresh[0] = byte(i), byte(i)
		refresh[1] = 1
		if err := db.CreateSession(t.Context(), store.NewSession{
			Device:       store.Device{UserID: user, ID: device, CreatedAt: now, LastSeenAt: now},
			AccessToken:  store.AccessToken{Hash: access, CreatedAt: now},
			RefreshToken: &store.RefreshToken{Hash: refresh, CreatedAt: now},
		}); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	latest := latestMigration(t)

	m := newMigrate(t, path)
	if err := m.Steps(-1); err != nil {
		t.Fatalf("down one step: %v", err)
	}
	// Versions are assigned ahead of time, so the one below the latest
	// may not be latest-1 yet.
	prev := previousMigration(t, latest)
	if got := schemaStatus(t, db); got.Version != prev || got.Dirty {
		t.Fatalf("SchemaStatus after one step down = %+v, want version %d", got, prev)
	}
	if latest == 9 {
		// Without 0009: the users keep everything but the admin flag and
		// the lock.
		if n := queryInt(t, path, `SELECT count(*) FROM pragma_table_info('users') WHERE name IN ('admin', 'locked_at')`); n != 0 {
			t.Fatalf("users keeps %d of 0009's columns", n)
		}
		if n := queryInt(t, path, `SELECT count(*) FROM sqlite_master WHERE name IN ('admin_tokens', 'registration_nonces', 'users_locked')`); n != 0 {
			t.Fatalf("%d of 0009's tables and trigger left after its down", n)
		}
		if n := queryInt(t, path, `SELECT count(*) FROM access_tokens`); n != 2 {
			t.Fatalf("access tokens after 0009 down: %d, want 2", n)
		}
	}
	if latest == 6 {
		// Without 0006: the devices keep everything but the address.
		if n := queryInt(t, path, `SELECT count(*) FROM pragma_table_info('devices') WHERE name = 'last_seen_ip'`); n != 0 {
			t.Fatalf("devices keeps last_seen_ip after 0006 down")
		}
		if n := queryInt(t, path, `SELECT count(*) FROM devices`); n != 2 {
			t.Fatalf("devices after 0006 down: %d, want 2", n)
		}
	}
	if latest == 3 {
		// Back at 0002: the revocations table and its trigger are gone, and
		// deleting a device still cascades to its tokens.
		if n := queryInt(t, path,
			`SELECT count(*) FROM sqlite_master WHERE name IN ('revocations', 'access_tokens_revoked')`,
		); n != 0 {
			t.Fatalf("%d of 0003's table and trigger left after 0003 down", n)
		}
		if err := db.DeleteDevice(t.Context(), user, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice after 0003 down: %v", err)
		}
		if n := queryInt(t, path, `SELECT count(*) FROM access_tokens`); n != 1 {
			t.Fatalf("access tokens after deleting a device: %d, want 1", n)
		}
	}
	if latest == 2 {
		// Back at 0001: the access tokens survive, their new columns and
		// the refresh tokens do not, and the foreign key still cascades.
		if n := queryInt(t, path, `SELECT count(*) FROM access_tokens`); n != 2 {
			t.Fatalf("access tokens after 0002 down: %d, want 2", n)
		}
		if n := queryInt(t, path,
			`SELECT count(*) FROM pragma_table_info('access_tokens') WHERE name IN ('pending', 'refresh_token_id')`,
		); n != 0 {
			t.Fatalf("access_tokens keeps %d of 0002's columns", n)
		}
		if n := queryInt(t, path,
			`SELECT count(*) FROM sqlite_master WHERE name IN ('refresh_tokens', 'access_tokens_device_idx', 'access_tokens_expires_at_idx')`,
		); n != 2 {
			t.Fatalf("tables and indexes after 0002 down: %d of the expected 2 (indexes, no refresh_tokens)", n)
		}
		if err := db.DeleteDevice(t.Context(), user, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice after 0002 down: %v", err)
		}
		if n := queryInt(t, path, `SELECT count(*) FROM access_tokens`); n != 1 {
			t.Fatalf("access tokens after deleting a device: %d, want 1", n)
		}
	}
	if err := m.Down(); err != nil {
		t.Fatalf("down to nothing: %v", err)
	}
	if n := queryInt(t, path, `SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'schema_migrations'`); n != 0 {
		t.Fatalf("%d tables or indexes left after migrating all the way down", n)
	}
	if err := db.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp after down: %v", err)
	}
	if got := schemaStatus(t, db); !got.Current() {
		t.Fatalf("SchemaStatus after up again = %+v, want current", got)
	}
}

func TestOpen(t *testing.T) {
	t.Run("MissingDirectory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "authd.db")
		db, err := sqlite.Open(t.Context(), path)
		if err == nil {
			db.Close()
			t.Fatalf("Open in a missing directory succeeded")
		}
		if !strings.HasPrefix(err.Error(), "sqlite: ") {
			t.Fatalf("Open error = %q, want the sqlite: prefix", err)
		}
	})

	t.Run("URISyntaxInPath", func(t *testing.T) {
		// '?', '#' and '%' in a file name are not URI syntax to Open.
		dir := t.TempDir()
		path := filepath.Join(dir, "a?b#c%20d.db")
		db := newMigratedDB(t, path)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		matches, err := filepath.Glob(filepath.Join(dir, "*.db"))
		if err != nil {
			t.Fatal(err)
		}
		if len(matches) != 1 || matches[0] != path {
			t.Fatalf("database files = %q, want exactly %q", matches, path)
		}
	})
}

// createSessions has n goroutines log in at once, one device each, spread
// over the given stores (all on one file), and fails the test on any error.
func createSessions(t *testing.T, stores []*sqlite.DB, n int) {
	t.Helper()
	const user = "@alice:example.org"
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := stores[0].CreateUser(t.Context(), store.User{ID: user, PasswordHash: "$h$", CreatedAt: now}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			device := fmt.Sprintf("DEVICE%02d", i)
			var hash store.TokenHash
			copy(hash[:], device)
			errs[i] = stores[i%len(stores)].CreateSession(t.Context(), store.NewSession{
				Device:      store.Device{UserID: user, ID: device, CreatedAt: now, LastSeenAt: now},
				AccessToken: store.AccessToken{Hash: hash, UserID: user, DeviceID: device, CreatedAt: now},
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateSession #%d: %v", i, err)
		}
	}
	devices, err := stores[0].ListDevices(t.Context(), user)
	if err != nil {
		t.Fatalf("ListDevices: %v", err)
	}
	if len(devices) != n {
		t.Fatalf("ListDevices: %d devices, want %d", len(devices), n)
	}
}

func TestDB_Concurrency(t *testing.T) {
	t.Run("OneStore", func(t *testing.T) {
		db := newMigratedDB(t, filepath.Join(t.TempDir(), "authd.db"))
		createSessions(t, []*sqlite.DB{db}, 20)
	})

	t.Run("TwoStores", func(t *testing.T) {
		// Two stores on one file stand for two processes, such as the CLI
		// next to a running server: they wait for each other, not fail.
		path := filepath.Join(t.TempDir(), "authd.db")
		first := newMigratedDB(t, path)
		second := newDB(t, path)
		createSessions(t, []*sqlite.DB{first, second}, 20)
	})
}

func TestOpen_FileMode(t *testing.T) {
	// Under the common umask 022 the driver alone would create the database
	// and its -wal and -shm files readable by everyone.
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	t.Run("Fresh", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "authd.db")
		db := newMigratedDB(t, path)
		// A write through the open store: the -wal and -shm files exist.
		if err := db.CreateUser(t.Context(), store.User{ID: "@alice:example.org", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := db.FileModeWarning(); err != nil {
			t.Fatalf("FileModeWarning of a fresh file: %v", err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), perm)
			}
		}
	})
	t.Run("Existing", func(t *testing.T) {
		for _, tc := range []struct {
			mode os.FileMode
			warn bool
		}{{0o600, false}, {0o644, true}, {0o640, true}, {0o604, true}} {
			// An empty file is an empty database.
			path := filepath.Join(t.TempDir(), "authd.db")
			if err := os.WriteFile(path, nil, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := newDB(t, path).FileModeWarning()
			if (err != nil) != tc.warn {
				t.Errorf("FileModeWarning of a %04o file: %v, want a warning: %t", tc.mode, err, tc.warn)
			}
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%04o", tc.mode)) {
				t.Errorf("FileModeWarning = %q, want the mode in it", err)
			}
		}
	})
}
