package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// RecordLastSeen writes a batch of sightings (see store.LastSeenStore) in
// one transaction: the rows are locked in key order first, so that two
// replicas flushing overlapping batches wait for each other instead of
// deadlocking, then updated in one statement.
func (db *DB) RecordLastSeen(ctx context.Context, seen []store.DeviceSeen) error {
	seen = store.LatestSightings(seen)
	if len(seen) == 0 {
		return nil
	}
	users := make([]string, len(seen))
	devices := make([]string, len(seen))
	ips := make([]string, len(seen))
	ats := make([]time.Time, len(seen))
	for i, s := range seen {
		users[i], devices[i], ips[i], ats[i] = s.UserID, s.DeviceID, s.IP, timestamp(s.At)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`SELECT 1 FROM devices d
			 JOIN unnest($1::text[], $2::text[]) AS v(user_id, device_id)
			   ON d.user_id = v.user_id AND d.device_id = v.device_id
			 ORDER BY d.user_id COLLATE "C", d.device_id COLLATE "C"
			 FOR UPDATE OF d`, users, devices); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`UPDATE devices d SET last_seen_at = v.at, last_seen_ip = v.ip
			 FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(user_id, device_id, ip, at)
			 WHERE d.user_id = v.user_id AND d.device_id = v.device_id AND d.last_seen_at < v.at`,
			users, devices, ips, ats)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record last seen: %w", translate(err))
	}
	return nil
}
