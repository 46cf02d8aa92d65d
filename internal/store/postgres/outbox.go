package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

var _ store.OutboxStore = (*DB)(nil)

// Outbox turns the outbox on: the operations that delete devices write an
// event for the homeserver in their transaction (see store.OutboxStore),
// and call written, if not nil, once it is committed, so that a deliverer
// in this process can wake at once. Without it, no event is written.
func Outbox(written func()) Option {
	return func(db *DB) {
		db.outbox = true
		db.outboxWritten = written
	}
}

// outboxLockClass is the first key of the transaction-scoped advisory lock
// that writeEvent takes per user ("auth" in ASCII), so that it shares no
// key with any other advisory lock.
const outboxLockClass = 0x61757468

// writeEvent inserts e into the outbox inside the caller's transaction tx,
// if the outbox is on, and does nothing if it is off. Call it last in the
// transaction, after the change it reports, and db.eventsCommitted after the
// commit.
//
// Identity values are handed out at insert, not at commit, so two
// transactions of one user could commit in the opposite order of their
// IDs, and the deliverer, which goes by ID, could send the later event
// first. The per-user lock, held until commit, makes a user's events
// commit one after the other, in ID order. It is taken last, when the
// transaction holds every other lock it needs, so it cannot deadlock.
func (db *DB) writeEvent(ctx context.Context, tx pgx.Tx, e store.OutboxEvent) error {
	if !db.outbox {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(outboxLockClass), e.UserID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO outbox_events (event_id, type, user_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)`,
		e.EventID, e.Type, e.UserID, string(e.Payload), timestamp(e.CreatedAt))
	return err
}

// eventsCommitted tells the deliverer, if the outbox is on, that a
// committed transaction wrote events.
func (db *DB) eventsCommitted() {
	if db.outbox && db.outboxWritten != nil {
		db.outboxWritten()
	}
}

// ClaimOutbox takes or renews the one row of outbox_lease for holder,
// unless another holder's lease lasts past now.
func (db *DB) ClaimOutbox(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error) {
	tag, err := db.pool.Exec(ctx,
		`INSERT INTO outbox_lease (holder, expires_at) VALUES ($1, $2)
		 ON CONFLICT (singleton) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		 WHERE outbox_lease.holder = EXCLUDED.holder OR outbox_lease.expires_at <= $3`,
		holder, timestamp(now.Add(ttl)), timestamp(now))
	if err != nil {
		return false, fmt.Errorf("postgres: claim outbox: %w", translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseOutbox deletes holder's lease.
func (db *DB) ReleaseOutbox(ctx context.Context, holder string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM outbox_lease WHERE holder = $1`, holder); err != nil {
		return fmt.Errorf("postgres: release outbox: %w", translate(err))
	}
	return nil
}

// FindOutboxEvents returns the oldest events, in ID order.
func (db *DB) FindOutboxEvents(ctx context.Context, limit int) ([]store.OutboxEvent, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT id, event_id, type, user_id, payload, created_at, attempts, next_attempt_at, last_error
		 FROM outbox_events ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: find outbox events: %w", translate(err))
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.OutboxEvent, error) {
		var e store.OutboxEvent
		var payload string
		var nextAttemptAt *time.Time
		var lastError *string
		if err := row.Scan(&e.ID, &e.EventID, &e.Type, &e.UserID, &payload, &e.CreatedAt,
			&e.Attempts, &nextAttemptAt, &lastError); err != nil {
			return store.OutboxEvent{}, err
		}
		e.Payload = []byte(payload)
		e.CreatedAt = e.CreatedAt.UTC()
		e.NextAttemptAt = fromNull(nextAttemptAt)
		if lastError != nil {
			e.LastError = *lastError
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: find outbox events: %w", translate(err))
	}
	return events, nil
}

// DeleteOutboxEvent deletes a delivered event.
func (db *DB) DeleteOutboxEvent(ctx context.Context, id int64) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM outbox_events WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete outbox event: %w", translate(err))
	}
	return nil
}

// RecordOutboxFailure counts a failed delivery of the event.
func (db *DB) RecordOutboxFailure(ctx context.Context, id int64, errKind string, nextAttemptAt time.Time) error {
	if _, err := db.pool.Exec(ctx,
		`UPDATE outbox_events SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1`,
		id, errKind, timestamp(nextAttemptAt)); err != nil {
		return fmt.Errorf("postgres: record outbox failure: %w", translate(err))
	}
	return nil
}

// CountOutboxEvents returns how many events wait for delivery.
func (db *DB) CountOutboxEvents(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count outbox events: %w", translate(err))
	}
	return n, nil
}
