package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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

// writeEvent inserts e into the outbox inside the caller's transaction tx,
// if the outbox is on, and does nothing if it is off. Call
// db.eventsCommitted after the commit. Transactions hold the database's
// one write lock from their start, so events commit in ID order.
func (db *DB) writeEvent(ctx context.Context, tx *sql.Tx, e store.OutboxEvent) error {
	if !db.outbox {
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO outbox_events (event_id, type, user_id, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.EventID, e.Type, e.UserID, string(e.Payload), micros(e.CreatedAt))
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
	res, err := db.db.ExecContext(ctx,
		`INSERT INTO outbox_lease (singleton, holder, expires_at) VALUES (1, ?1, ?2)
		 ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		 WHERE outbox_lease.holder = excluded.holder OR outbox_lease.expires_at <= ?3`,
		holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: claim outbox: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return false, fmt.Errorf("sqlite: claim outbox: %w", translate(err))
	}
	return n == 1, nil
}

// ReleaseOutbox deletes holder's lease.
func (db *DB) ReleaseOutbox(ctx context.Context, holder string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM outbox_lease WHERE holder = ?`, holder); err != nil {
		return fmt.Errorf("sqlite: release outbox: %w", translate(err))
	}
	return nil
}

// FindOutboxEvents returns the oldest events, in ID order.
func (db *DB) FindOutboxEvents(ctx context.Context, limit int) ([]store.OutboxEvent, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT id, event_id, type, user_id, payload, created_at, attempts, next_attempt_at, last_error
		 FROM outbox_events ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find outbox events: %w", translate(err))
	}
	defer rows.Close()
	events := []store.OutboxEvent{}
	for rows.Next() {
		var e store.OutboxEvent
		var payload string
		var createdAt int64
		var nextAttemptAt sql.NullInt64
		var lastError sql.NullString
		if err := rows.Scan(&e.ID, &e.EventID, &e.Type, &e.UserID, &payload, &createdAt,
			&e.Attempts, &nextAttemptAt, &lastError); err != nil {
			return nil, fmt.Errorf("sqlite: find outbox events: %w", translate(err))
		}
		e.Payload = []byte(payload)
		e.CreatedAt = fromMicros(createdAt)
		e.NextAttemptAt = fromNullMicros(nextAttemptAt)
		e.LastError = lastError.String
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: find outbox events: %w", translate(err))
	}
	return events, nil
}

// DeleteOutboxEvent deletes a delivered event.
func (db *DB) DeleteOutboxEvent(ctx context.Context, id int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM outbox_events WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete outbox event: %w", translate(err))
	}
	return nil
}

// RecordOutboxFailure counts a failed delivery of the event.
func (db *DB) RecordOutboxFailure(ctx context.Context, id int64, errKind string, nextAttemptAt time.Time) error {
	if _, err := db.db.ExecContext(ctx,
		`UPDATE outbox_events SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?`,
		errKind, micros(nextAttemptAt), id); err != nil {
		return fmt.Errorf("sqlite: record outbox failure: %w", translate(err))
	}
	return nil
}

// CountOutboxEvents returns how many events wait for delivery.
func (db *DB) CountOutboxEvents(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count outbox events: %w", translate(err))
	}
	return n, nil
}
