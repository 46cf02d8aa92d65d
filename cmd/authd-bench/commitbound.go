package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/internal/bench"
	"github.com/authd/authd/internal/store/sqlite"
)

// commitRows is how many rows the commit bound's table starts with: more
// than the fastest database here deletes in a warm-up and a window.
const commitRows = 400_000

// commitBound measures the database's own rate of one-row deletes, each
// its own transaction, from conns concurrent clients: the physical bound
// of logout and of any request that writes. It runs in this process on a
// table of its own, in authd's Postgres database or in a SQLite file
// opened as authd opens its own (the same pragmas, one connection), while
// authd is idle.
func commitBound(ctx context.Context, db *database, dir string, conns int, o options) (scenarioResult, error) {
	name := fmt.Sprintf("commit-bound-c%d", conns)
	var next atomic.Int64
	var call func(int) error
	switch db.kind {
	case "postgres":
		pool, err := pgxpool.New(ctx, withParam(db.url, fmt.Sprintf("pool_max_conns=%d", conns)))
		if err != nil {
			return scenarioResult{}, err
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS bench_commit;
CREATE TABLE bench_commit (id bigint PRIMARY KEY, user_id text NOT NULL, device_id text NOT NULL);
INSERT INTO bench_commit SELECT i, '@bench' || i %% 64 || ':localhost', 'DEVICE' || i FROM generate_series(1, %d) i`, commitRows)); err != nil {
			return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE bench_commit`); err != nil {
			return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
		}
		call = func(int) error {
			_, err := pool.Exec(ctx, `DELETE FROM bench_commit WHERE id = $1`, next.Add(1))
			return err
		}
		// Gone before the next rows, or autovacuum would clean it up
		// under them.
		defer pool.Exec(context.WithoutCancel(ctx), `DROP TABLE bench_commit`)
	default:
		sdb, err := sqlite.OpenRaw(ctx, filepath.Join(dir, fmt.Sprintf("commit-c%d.db", conns)))
		if err != nil {
			return scenarioResult{}, err
		}
		defer sdb.Close()
		if _, err := sdb.ExecContext(ctx, `CREATE TABLE bench_commit (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, device_id TEXT NOT NULL)`); err != nil {
			return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := sdb.ExecContext(ctx, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
INSERT INTO bench_commit SELECT i, '@bench' || (i %% 64) || ':localhost', 'DEVICE' || i FROM n`, commitRows)); err != nil {
			return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
		}
		call = func(int) error {
			_, err := sdb.ExecContext(ctx, `DELETE FROM bench_commit WHERE id = ?`, next.Add(1))
			return err
		}
	}
	r := bench.Calls{Workers: conns, Warmup: o.warmup, Duration: o.duration, Call: call}.Run()
	if next.Load() >= commitRows {
		return scenarioResult{}, errors.New(name + ": ran out of rows; raise commitRows")
	}
	s := fromClosed(name, conns, r)
	s.Note = "the database alone: one-row DELETE per transaction from this process, authd idle"
	return s, nil
}

// settle vacuums the Postgres database after the logout rows deleted
// their devices, and then asks for a checkpoint, so that neither
// autovacuum nor the checkpoint of the logouts' WAL runs under the login
// rows that follow (they took 0.1 to 0.18 CPU from them here). A role
// that may not CHECKPOINT skips it. SQLite has no such background work.
func settle(ctx context.Context, db *database) error {
	if db.kind != "postgres" {
		return nil
	}
	conn, err := pgx.Connect(ctx, db.url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return err
	}
	conn.Exec(ctx, `CHECKPOINT`) // pg_checkpoint's or a superuser's only
	return nil
}

// withParam adds a query parameter to a database URL.
func withParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return url + "&" + kv
	}
	return url + "?" + kv
}

// durability reads how the database commits, for the figures' label: on
// Postgres fsync, synchronous_commit and wal_sync_method; on SQLite the
// journal mode and synchronous level a file opened as authd opens its own
// gets. durable is false when a commit can be lost on a crash or power
// failure after it was acknowledged.
func durability(ctx context.Context, db *database, dir string) (label string, durable bool, err error) {
	if db.kind == "postgres" {
		pool, err := pgxpool.New(ctx, db.url)
		if err != nil {
			return "", false, err
		}
		defer pool.Close()
		var fsync, syncCommit, method string
		if err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('wal_sync_method')`).Scan(&fsync, &syncCommit, &method); err != nil {
			return "", false, err
		}
		return fmt.Sprintf("fsync=%s synchronous_commit=%s wal_sync_method=%s", fsync, syncCommit, method),
			fsync == "on" && syncCommit != "off", nil
	}
	sdb, err := sqlite.OpenRaw(ctx, filepath.Join(dir, "pragmas.db"))
	if err != nil {
		return "", false, err
	}
	defer sdb.Close()
	var mode string
	var level int
	if err := sdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return "", false, err
	}
	if err := sdb.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
		return "", false, err
	}
	names := []string{"OFF", "NORMAL", "FULL", "EXTRA"}
	name := fmt.Sprint(level)
	if level >= 0 && level < len(names) {
		name = names[level]
	}
	return fmt.Sprintf("journal_mode=%s synchronous=%s", mode, name), level >= 2, nil
}
