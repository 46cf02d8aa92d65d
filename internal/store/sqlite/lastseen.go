package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/authd/authd/internal/store"
)

// RecordLastSeen writes a batch of sightings (see store.LastSeenStore) in
// one IMMEDIATE transaction, one prepared update per device.
func (db *DB) RecordLastSeen(ctx context.Context, seen []store.DeviceSeen) error {
	seen = store.LatestSightings(seen)
	if len(seen) == 0 {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx,
			`UPDATE devices SET last_seen_at = ?, last_seen_ip = ?
			 WHERE user_id = ? AND device_id = ? AND last_seen_at < ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, s := range seen {
			at := micros(s.At)
			if _, err := stmt.ExecContext(ctx, at, s.IP, s.UserID, s.DeviceID, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: record last seen: %w", translate(err))
	}
	return nil
}
