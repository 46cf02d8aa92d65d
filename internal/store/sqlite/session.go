package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/authd/authd/internal/store"
)

// CreateSession writes a login (see store.SessionStore) in one IMMEDIATE
// transaction.
func (db *DB) CreateSession(ctx context.Context, s store.NewSession) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return store.WriteLogin(ctx, tokenTx{tx}, s)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", translate(err))
	}
	return nil
}

// FindSessionByAccessToken returns the token with that hash and its user,
// expired or pending or not, or store.ErrNotFound.
func (db *DB) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	var s store.Session
	var hash []byte
	var tokenCreatedAt int64
	var expiresAt sql.NullInt64
	var err error
	s.User, err = scanUserAnd(db.reads().QueryRowContext(ctx,
		`SELECT `+userColumnsU+`,
		        t.token_hash, t.user_id, t.device_id, t.created_at, t.expires_at, t.pending
		 FROM access_tokens t JOIN users u ON u.user_id = t.user_id
		 WHERE t.token_hash = ?`, h[:],
	), &hash, &s.AccessToken.UserID, &s.AccessToken.DeviceID, &tokenCreatedAt, &expiresAt, &s.AccessToken.Pending)
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: find session: %w", translate(err))
	}
	copy(s.AccessToken.Hash[:], hash)
	s.AccessToken.CreatedAt = fromMicros(tokenCreatedAt)
	s.AccessToken.ExpiresAt = fromNullMicros(expiresAt)
	return s, nil
}

// deviceColumns are the columns scanDevice reads, in its order.
const deviceColumns = `user_id, device_id, display_name, created_at, last_seen_at, last_seen_ip`

// FindDevice returns one device of a user, or store.ErrNotFound.
func (db *DB) FindDevice(ctx context.Context, userID, deviceID string) (store.Device, error) {
	d, err := scanDevice(db.reads().QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = ? AND device_id = ?`, userID, deviceID))
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: find device: %w", translate(err))
	}
	return d, nil
}

// ListDevices returns the devices of a user, ordered by device ID bytewise.
func (db *DB) ListDevices(ctx context.Context, userID string) ([]store.Device, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = ? ORDER BY device_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list devices: %w", translate(err))
	}
	defer rows.Close()
	devices := []store.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list devices: %w", translate(err))
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list devices: %w", translate(err))
	}
	return devices, nil
}

// RenameDevice sets a device's display name.
func (db *DB) RenameDevice(ctx context.Context, userID, deviceID, displayName string) error {
	res, err := db.db.ExecContext(ctx, `UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?`, displayName, userID, deviceID)
	if err != nil {
		return fmt.Errorf("sqlite: rename device: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("sqlite: rename device: %w", translate(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: rename device: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteDevice deletes a device and, by cascade, every token of it, with
// its outbox event (store.ReasonLogout) in the same transaction. It returns
// store.ErrNotFound if the user has no such device.
//
// Concurrent calls share transactions (internal/store/internal/groupcommit):
// SQLite has one writer and syncs its log at each commit, which a logout
// would otherwise pay alone.
func (db *DB) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	found, err := db.logouts.Do(ctx, store.DeviceKey{UserID: userID, DeviceID: deviceID})
	if err == nil && !found {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete device: %w", translate(err))
	}
	return nil
}

// deleteDevicesBatch deletes the devices of a batch of DeleteDevice calls
// in one transaction, with an event per device deleted when the outbox is
// on. found[i] says whether keys[i] was there.
func (db *DB) deleteDevicesBatch(ctx context.Context, keys []store.DeviceKey) ([]bool, error) {
	found := make([]bool, len(keys))
	wrote := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM devices WHERE user_id = ? AND device_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := time.Now()
		for i, k := range keys {
			res, err := stmt.ExecContext(ctx, k.UserID, k.DeviceID)
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			if n == 0 {
				// Not there, or deleted for a call earlier in the batch.
				if j := slices.Index(keys[:i], k); j >= 0 {
					found[i] = found[j]
				}
				continue
			}
			found[i] = true
			if err := db.writeEvent(ctx, tx, store.DevicesDeleted(k.UserID, []string{k.DeviceID}, store.ReasonLogout, now)); err != nil {
				return err
			}
			wrote = wrote || db.outbox
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if wrote {
		db.eventsCommitted()
	}
	return found, nil
}

// DeleteAllDevices deletes every device and token of a user, with its
// outbox event (store.ReasonLogoutAll) when there were any, in one
// transaction, and returns how many devices it deleted.
func (db *DB) DeleteAllDevices(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := deleteDevicesReturning(ctx, tx, userID)
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		return db.writeEvent(ctx, tx, store.DevicesDeleted(userID, ids, store.ReasonLogoutAll, time.Now()))
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete all devices: %w", translate(err))
	}
	if n > 0 {
		db.eventsCommitted()
	}
	return n, nil
}

// deleteDevicesReturning deletes the user's devices, their tokens by
// cascade, and returns their IDs in byte order.
func deleteDevicesReturning(ctx context.Context, q querier, userID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `DELETE FROM devices WHERE user_id = ? RETURNING device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// scanDevice reads the deviceColumns of one row.
func scanDevice(row scanner) (store.Device, error) {
	var d store.Device
	var createdAt, lastSeenAt int64
	if err := row.Scan(&d.UserID, &d.ID, &d.DisplayName, &createdAt, &lastSeenAt, &d.LastSeenIP); err != nil {
		return store.Device{}, err
	}
	d.CreatedAt = fromMicros(createdAt)
	d.LastSeenAt = fromMicros(lastSeenAt)
	return d, nil
}

// CountActiveSessions returns how many devices hold an access token that
// has not expired at now.
func (db *DB) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx,
		`SELECT count(*) FROM (
		   SELECT DISTINCT user_id, device_id FROM access_tokens
		   WHERE expires_at IS NULL OR expires_at > ?
		 )`, micros(now),
	).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count active sessions: %w", translate(err))
	}
	return n, nil
}
