package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// CreateSession writes a login (see store.SessionStore) in one transaction,
// whose device upsert takes the device's row lock.
func (db *DB) CreateSession(ctx context.Context, s store.NewSession) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return store.WriteLogin(ctx, tokenTx{tx}, s)
	})
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", translate(err))
	}
	return nil
}

// FindSessionByAccessToken returns the token with that hash and its user,
// expired or pending or not, or store.ErrNotFound.
func (db *DB) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	var s store.Session
	var hash []byte
	var expiresAt *time.Time
	var err error
	s.User, err = scanUserAnd(db.pool.QueryRow(ctx,
		`SELECT `+userColumnsU+`,
		        t.token_hash, t.user_id, t.device_id, t.created_at, t.expires_at, t.pending
		 FROM access_tokens t JOIN users u ON u.user_id = t.user_id
		 WHERE t.token_hash = $1`, h[:],
	), &hash, &s.AccessToken.UserID, &s.AccessToken.DeviceID, &s.AccessToken.CreatedAt, &expiresAt,
		&s.AccessToken.Pending)
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: find session: %w", translate(err))
	}
	copy(s.AccessToken.Hash[:], hash)
	s.AccessToken.CreatedAt = s.AccessToken.CreatedAt.UTC()
	s.AccessToken.ExpiresAt = fromNull(expiresAt)
	return s, nil
}

// deviceColumns are the columns scanDevice reads, in its order.
const deviceColumns = `user_id, device_id, display_name, created_at, last_seen_at, last_seen_ip`

// FindDevice returns one device of a user, or store.ErrNotFound.
func (db *DB) FindDevice(ctx context.Context, userID, deviceID string) (store.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID))
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: find device: %w", translate(err))
	}
	return d, nil
}

// ListDevices returns the devices of a user, ordered by device ID bytewise.
func (db *DB) ListDevices(ctx context.Context, userID string) ([]store.Device, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE user_id = $1 ORDER BY device_id COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list devices: %w", translate(err))
	}
	devices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Device, error) {
		return scanDevice(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list devices: %w", translate(err))
	}
	return devices, nil
}

// RenameDevice sets a device's display name.
func (db *DB) RenameDevice(ctx context.Context, userID, deviceID, displayName string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`, userID, deviceID, displayName)
	if err != nil {
		return fmt.Errorf("postgres: rename device: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: rename device: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteDevice deletes a device and, by cascade, every token of it, with
// its outbox event (store.ReasonLogout) in the same transaction. It returns
// store.ErrNotFound if the user has no such device.
//
// Concurrent calls share transactions (internal/store/internal/groupcommit):
// a logout is a small write whose cost is mostly its commit and its
// statement's triggers, migration 0003's NOTIFY among them, which makes
// the commits of transactions that send one wait for each other. Each
// batch pays those once.
func (db *DB) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	found, err := db.logouts.Do(ctx, store.DeviceKey{UserID: userID, DeviceID: deviceID})
	if err == nil && !found {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete device: %w", translate(err))
	}
	return nil
}

// deleteDevicesBatch deletes the devices of a batch of DeleteDevice calls
// in one statement and, with the outbox on, one transaction with an event
// per device deleted. found[i] says whether keys[i] was there.
func (db *DB) deleteDevicesBatch(ctx context.Context, keys []store.DeviceKey) ([]bool, error) {
	users, devices := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		users[i], devices[i] = k.UserID, k.DeviceID
	}
	deleted := map[store.DeviceKey]bool{}
	del := func(q querier) error {
		rows, err := q.Query(ctx, `DELETE FROM devices d
			USING unnest($1::text[], $2::text[]) AS gone (user_id, device_id)
			WHERE d.user_id = gone.user_id AND d.device_id = gone.device_id
			RETURNING d.user_id, d.device_id`, users, devices)
		if err != nil {
			return err
		}
		var k store.DeviceKey
		_, err = pgx.ForEachRow(rows, []any{&k.UserID, &k.DeviceID}, func() error {
			deleted[k] = true
			return nil
		})
		return err
	}
	var err error
	if !db.outbox {
		// One statement, no transaction around it: without an event
		// there is nothing to keep together.
		err = del(db.pool)
	} else {
		written := map[store.DeviceKey]bool{} // a device named twice has one event
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if err := del(tx); err != nil {
				return err
			}
			now := time.Now()
			for _, k := range keys {
				if deleted[k] && !written[k] {
					written[k] = true
					if err := db.writeEvent(ctx, tx, store.DevicesDeleted(k.UserID, []string{k.DeviceID}, store.ReasonLogout, now)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil && len(written) > 0 {
			db.eventsCommitted()
		}
	}
	if err != nil {
		return nil, err
	}
	found := make([]bool, len(keys))
	for i, k := range keys {
		found[i] = deleted[k]
	}
	return found, nil
}

// DeleteAllDevices deletes every device and token of a user, with its
// outbox event (store.ReasonLogoutAll) when there were any, in one
// transaction, and returns how many devices it deleted.
func (db *DB) DeleteAllDevices(ctx context.Context, userID string) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		ids, err := deleteDevicesReturning(ctx, tx, userID)
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		return db.writeEvent(ctx, tx, store.DevicesDeleted(userID, ids, store.ReasonLogoutAll, time.Now()))
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete all devices: %w", translate(err))
	}
	if n > 0 {
		db.eventsCommitted()
	}
	return n, nil
}

// deleteDevicesReturning deletes the user's devices, their tokens by
// cascade, and returns their IDs in byte order.
func deleteDevicesReturning(ctx context.Context, q querier, userID string) ([]string, error) {
	rows, err := q.Query(ctx, `DELETE FROM devices WHERE user_id = $1 RETURNING device_id`, userID)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// scanDevice reads the deviceColumns of one row.
func scanDevice(row pgx.Row) (store.Device, error) {
	var d store.Device
	if err := row.Scan(&d.UserID, &d.ID, &d.DisplayName, &d.CreatedAt, &d.LastSeenAt, &d.LastSeenIP); err != nil {
		return store.Device{}, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	d.LastSeenAt = d.LastSeenAt.UTC()
	return d, nil
}

// CountActiveSessions returns how many devices hold an access token that
// has not expired at now.
func (db *DB) CountActiveSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx,
		`SELECT count(*) FROM (
		   SELECT DISTINCT user_id, device_id FROM access_tokens
		   WHERE expires_at IS NULL OR expires_at > $1
		 ) active`, timestamp(now),
	).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count active sessions: %w", translate(err))
	}
	return n, nil
}
