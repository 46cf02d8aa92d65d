package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/internal/resubscribe"
)

var _ store.RevocationListener = (*DB)(nil)

// defaultPollInterval is how often the listener reads the revocations
// table unless PollInterval says otherwise: about how long a revocation
// committed by another process (the CLI) may go unseen by this one's token
// cache. Each poll is one read of the rowid, a few microseconds when
// nothing is new, on the store's one connection; in WAL mode it never
// waits for another process's writer.
const defaultPollInterval = 50 * time.Millisecond

// pollBackoffMin and pollBackoffMax bound the wait between two attempts to
// subscribe after a failed poll: it doubles from the first to the second.
const (
	pollBackoffMin = 100 * time.Millisecond
	pollBackoffMax = 5 * time.Second
)

// PollInterval sets how often the revocation listener reads the
// revocations table (50ms by default; zero keeps the default).
func PollInterval(d time.Duration) Option {
	return func(db *DB) {
		if d > 0 {
			db.pollInterval = d
		}
	}
}

// pollBatch is the most rows one poll reads. A full batch is a burst (an
// operator's bulk DELETE, a user with hundreds of devices deactivated):
// rather than page through it, the listener revokes every token once.
const pollBatch = 1000

// nowMicros is SQLite's clock in the schema's time representation,
// microseconds since the Unix epoch, to the millisecond SQLite keeps.
// Migration 0003's trigger writes revoked_at with the same expression.
const nowMicros = `(CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000)`

// revocationRetention is how long a row of the revocations table is kept:
// a poller reads it within its poll interval, so an hour is ample. The sweeper
// prunes older rows.
const revocationRetention = time.Hour

// ListenRevocations calls revoked for every access-token revocation that
// any process commits on the database file, until ctx ends (see
// store.RevocationListener). SQLite has no notices: migration 0003's
// trigger records each revoked device in the revocations table, and this
// polls it every poll interval for rows past the last one read. The first
// read of the newest row's id is the subscription: subscribed(nil) follows
// it. A failed read is reported with subscribed(err) and
// retried with backoff, from the then newest row: rows committed meanwhile
// are skipped, which the contract allows (the consumer dropped its cache).
func (db *DB) ListenRevocations(ctx context.Context, revoked func(store.Revocation), subscribed func(err error)) {
	resubscribe.Loop(ctx, pollBackoffMin, pollBackoffMax, func(ctx context.Context, live func()) error {
		return db.poll(ctx, revoked, live)
	}, subscribed)
}

// poll subscribes, calls live, and then passes every new revocation to
// revoked until a read fails or ctx ends. It returns why it stopped.
func (db *DB) poll(ctx context.Context, revoked func(store.Revocation), live func()) error {
	cursor, err := db.lastRevocation(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: listen: %w", translate(err))
	}
	live()
	t := time.NewTicker(db.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if cursor, err = db.pollOnce(ctx, cursor, revoked); err != nil {
			return fmt.Errorf("sqlite: listen: %w", translate(err))
		}
	}
}

// lastRevocation returns the id of the newest row of the revocations
// table, 0 when it is empty (ids start at 1).
func (db *DB) lastRevocation(ctx context.Context) (int64, error) {
	var id int64
	err := db.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM revocations`).Scan(&id)
	return id, err
}

// pollOnce reads the rows after cursor and passes each device they name to
// revoked, once and in order, and returns the new cursor. The rows are read
// before any call: the store's one connection is not held while the
// consumer works.
func (db *DB) pollOnce(ctx context.Context, cursor int64, revoked func(store.Revocation)) (int64, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT id, user_id, device_id FROM revocations WHERE id > ? ORDER BY id LIMIT ?`, cursor, pollBatch)
	if err != nil {
		return cursor, err
	}
	defer rows.Close()
	var batch []store.Revocation
	seen := make(map[store.Revocation]bool)
	last, n := cursor, 0
	for rows.Next() {
		var r store.Revocation
		if err := rows.Scan(&last, &r.UserID, &r.DeviceID); err != nil {
			return cursor, err
		}
		n++
		if !seen[r] {
			seen[r] = true
			batch = append(batch, r)
		}
	}
	if err := rows.Err(); err != nil {
		return cursor, err
	}
	rows.Close()
	if n == pollBatch {
		// Read the newest id before revoking everything: a revocation
		// committed after the read is past the new cursor and comes with
		// the next poll, and one committed before it is covered.
		newest, err := db.lastRevocation(ctx)
		if err != nil {
			return cursor, err
		}
		revoked(store.Revocation{})
		return newest, nil
	}
	for _, r := range batch {
		revoked(r)
	}
	return last, nil
}
