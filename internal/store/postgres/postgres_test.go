package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for golang-migrate

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/storetest"
	"github.com/authd/authd/migrations"
)

func TestDB(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := newDB(t)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		return db
	})
}

func TestDB_Outbox(t *testing.T) {
	storetest.RunOutbox(t, func(t *testing.T, on bool, written func()) store.Store {
		var opts []postgres.Option
		if on {
			opts = append(opts, postgres.Outbox(written))
		}
		db, _ := newDB(t, opts...)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		return db
	})
}

// TestDB_LinguisticCollation runs the suite with the text columns in a
// linguistic collation, as in a database created with a locale such as
// en_US.UTF-8 (the test cluster's C.UTF-8 already orders bytewise). The
// ordering contracts must still hold.
func TestDB_LinguisticCollation(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, url := newDB(t)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		exec(t, url, `
			ALTER TABLE users ALTER COLUMN user_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE users ALTER COLUMN user_id_folded TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE user_threepids ALTER COLUMN medium TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE user_threepids ALTER COLUMN address TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE user_threepids ALTER COLUMN user_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE devices ALTER COLUMN user_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE devices ALTER COLUMN device_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE access_tokens ALTER COLUMN user_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE access_tokens ALTER COLUMN device_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE refresh_tokens ALTER COLUMN user_id TYPE text COLLATE "en-US-x-icu";
			ALTER TABLE refresh_tokens ALTER COLUMN device_id TYPE text COLLATE "en-US-x-icu";`)
		return db
	})
}

// newDB opens an unmigrated store on a fresh database and returns it with
// the database's URL.
func newDB(tb testing.TB, opts ...postgres.Option) (*postgres.DB, string) {
	tb.Helper()
	url := pgtest.NewDatabase(tb)
	db, err := postgres.Open(tb.Context(), url, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db, url
}

// previousMigration is the highest version among the embedded migrations
// below v, 0 if none.
func previousMigration(tb testing.TB, v uint) uint {
	tb.Helper()
	entries, err := fs.ReadDir(migrations.FS, "postgres")
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
	entries, err := fs.ReadDir(migrations.FS, "postgres")
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

func schemaStatus(tb testing.TB, db *postgres.DB) store.Schema {
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
		db, _ := newDB(t)
		got := schemaStatus(t, db)
		if want := (store.Schema{Version: 0, Latest: latest}); got != want {
			t.Fatalf("SchemaStatus = %+v, want %+v", got, want)
		}
		if got.Current() {
			t.Fatalf("empty schema reported current: %+v", got)
		}
		// Reading the status writes nothing, so a second read is the same.
		if again := schemaStatus(t, db); again != got {
			t.Fatalf("SchemaStatus again = %+v, want %+v", again, got)
		}
	})

	t.Run("Migrated", func(t *testing.T) {
		db, _ := newDB(t)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		got := schemaStatus(t, db)
		if want := (store.Schema{Version: latest, Latest: latest}); got != want {
			t.Fatalf("SchemaStatus = %+v, want %+v", got, want)
		}
		if !got.Current() {
			t.Fatalf("migrated schema not current: %+v", got)
		}
	})

	t.Run("Dirty", func(t *testing.T) {
		db, url := newDB(t)
		if err := db.MigrateUp(t.Context()); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
		// As golang-migrate leaves it when a migration fails halfway.
		exec(t, url, `UPDATE schema_migrations SET dirty = true`)
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

// exec runs a statement on the database at url outside the store.
func exec(tb testing.TB, url, sql string) {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(tb.Context(), sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func TestDB_MigrateUp(t *testing.T) {
	t.Run("Twice", func(t *testing.T) {
		db, _ := newDB(t)
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
		db, _ := newDB(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := db.MigrateUp(ctx); err == nil {
			t.Fatalf("MigrateUp with a cancelled context succeeded")
		}
		if got := schemaStatus(t, db); got.Version != 0 {
			t.Fatalf("SchemaStatus = %+v, want nothing applied", got)
		}
	})
}

// queryInt returns the single integer a query on the database at url selects.
func queryInt(tb testing.TB, url, query string) int {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(tb.Context(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestMigrations_Down(t *testing.T) {
	db, url := newDB(t)
	if err := db.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
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

	src, err := iofs.New(migrations.FS, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{MigrationsTable: "schema_migrations"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// Down one version at a time, checking what each migration's down
	// removed and kept.
	reverted := map[uint]func(){
		8: func() {
			// The outbox and its lease go; the sessions stay.
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname IN ('outbox_events', 'outbox_lease')`); n != 0 {
				t.Fatalf("%d of 0008's tables left after its down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0008 down: %d, want 2", n)
			}
		},
		3: func() {
			// The revocation notices go; the tokens stay, and can be
			// deleted without them.
			if n := queryInt(t, url, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'access_tokens_notify%'`); n != 0 {
				t.Fatalf("%d of 0003's triggers left after its down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'authd_notify%'`); n != 0 {
				t.Fatalf("%d of 0003's functions left after its down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0003 down: %d, want 2", n)
			}
		},
		4: func() {
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname LIKE 'login_networks%'`); n != 0 {
				t.Fatalf("%d login_networks relations left after 0004 down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0004 down: %d, want 2", n)
			}
		},
		5: func() {
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname LIKE 'uia_sessions%'`); n != 0 {
				t.Fatalf("%d uia_sessions relations left after 0005 down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0005 down: %d, want 2", n)
			}
		},
		9: func() {
			// The admin tables, columns and the lock notice go; the users
			// and their sessions stay.
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname LIKE 'admin_tokens%' OR relname LIKE 'registration_nonces%'`); n != 0 {
				t.Fatalf("%d of 0009's relations left after its down", n)
			}
			if n := queryInt(t, url,
				`SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name IN ('admin', 'locked_at')`,
			); n != 0 {
				t.Fatalf("users keeps %d of 0009's columns", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM pg_proc WHERE proname = 'authd_notify_locked'`); n != 0 {
				t.Fatalf("0009's function left after its down")
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0009 down: %d, want 2", n)
			}
		},
		7: func() {
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname LIKE 'login_tokens%'`); n != 0 {
				t.Fatalf("%d login_tokens relations left after 0007 down", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0007 down: %d, want 2", n)
			}
		},
		6: func() {
			// The devices keep everything but the address.
			if n := queryInt(t, url,
				`SELECT count(*) FROM information_schema.columns WHERE table_name = 'devices' AND column_name = 'last_seen_ip'`,
			); n != 0 {
				t.Fatalf("devices keeps last_seen_ip after 0006 down")
			}
			if n := queryInt(t, url, `SELECT count(*) FROM devices`); n != 2 {
				t.Fatalf("devices after 0006 down: %d, want 2", n)
			}
		},
		2: func() {
			// Back at 0001: the access tokens survive, their new columns
			// and the refresh tokens do not.
			if n := queryInt(t, url, `SELECT count(*) FROM access_tokens`); n != 2 {
				t.Fatalf("access tokens after 0002 down: %d, want 2", n)
			}
			if n := queryInt(t, url,
				`SELECT count(*) FROM information_schema.columns
				 WHERE table_name = 'access_tokens' AND column_name IN ('pending', 'refresh_token_id')`,
			); n != 0 {
				t.Fatalf("access_tokens keeps %d of 0002's columns", n)
			}
			if n := queryInt(t, url, `SELECT count(*) FROM pg_class WHERE relname LIKE 'refresh_tokens%'`); n != 0 {
				t.Fatalf("%d refresh_tokens relations left after 0002 down", n)
			}
		},
	}
	// Versions are assigned ahead of time, so the one below v may not be
	// v-1 yet.
	for v := latest; v > 1; v = previousMigration(t, v) {
		if err := m.Steps(-1); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
		if got, want := schemaStatus(t, db), previousMigration(t, v); got.Version != want || got.Dirty {
			t.Fatalf("SchemaStatus after down from %d = %+v, want version %d", v, got, want)
		}
		check, ok := reverted[v]
		if !ok {
			t.Fatalf("no check of migration %d's down", v)
		}
		check()
	}
	if err := m.Down(); err != nil {
		t.Fatalf("down to nothing: %v", err)
	}
	if err := db.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp after down: %v", err)
	}
	if got := schemaStatus(t, db); !got.Current() {
		t.Fatalf("SchemaStatus after up again = %+v, want current", got)
	}
}

func TestOpen(t *testing.T) {
	t.Run("Unreachable", func(t *testing.T) {
		// Nothing listens on port 1; the timeout only keeps a broken
		// environment from hanging the test.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		db, err := postgres.Open(ctx, "postgres://authd:secret@127.0.0.1:1/authd?sslmode=disable")
		if err == nil {
			db.Close()
			t.Fatalf("Open of an unreachable server succeeded")
		}
		if !strings.HasPrefix(err.Error(), "postgres: ping: ") {
			t.Fatalf("Open error = %q, want it to start with %q", err, "postgres: ping: ")
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("Open error leaks the password: %q", err)
		}
		// serve retries an unreachable database at start.
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Open error = %q, want store.ErrUnavailable", err)
		}
	})

	t.Run("NoSuchDatabase", func(t *testing.T) {
		// The server answers, and waiting will not create the database:
		// not ErrUnavailable, so serve stops with the message.
		u, err := url.Parse(pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/authd_no_such_database"
		db, err := postgres.Open(t.Context(), u.String())
		if err == nil {
			db.Close()
			t.Fatalf("Open of a missing database succeeded")
		}
		if errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Open of a missing database = %q, want an error other than ErrUnavailable", err)
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), "postgres://authd@127.0.0.1:notaport/authd")
		if err == nil || !strings.HasPrefix(err.Error(), "postgres: parse url: ") {
			t.Fatalf("Open error = %v, want a parse error", err)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		db, _ := newDB(t)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}
