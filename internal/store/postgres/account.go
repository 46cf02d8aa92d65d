package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// uiaSessionColumns are the columns FindUIASession reads, in its order.
const uiaSessionColumns = `session_hash, user_id, device_id, method, path, body_hash, created_at, expires_at`

// CreateUIASession stores a new UIA session. It returns store.ErrConflict
// if the hash is taken and store.ErrNotFound if the user, or its device,
// does not exist.
func (db *DB) CreateUIASession(ctx context.Context, s store.UIASession) error {
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO uia_sessions (`+uiaSessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			s.IDHash[:], s.UserID, s.DeviceID, s.Method, s.Path, s.BodyHash[:],
			timestamp(s.CreatedAt), timestamp(s.ExpiresAt)); err != nil {
			return err
		}
		// The device's oldest sessions beyond the bound (ties by hash).
		_, err := tx.Exec(ctx,
			`DELETE FROM uia_sessions WHERE session_hash IN (
			   SELECT session_hash FROM uia_sessions WHERE user_id = $1 AND device_id = $2
			   ORDER BY created_at DESC, session_hash DESC OFFSET $3)`,
			s.UserID, s.DeviceID, store.MaxUIASessionsPerDevice)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create uia session: %w", translate(err))
	}
	return nil
}

// FindUIASession returns the session with that hash if it expires after
// now, or store.ErrNotFound.
func (db *DB) FindUIASession(ctx context.Context, h store.TokenHash, now time.Time) (store.UIASession, error) {
	var s store.UIASession
	var idHash, bodyHash []byte
	err := db.pool.QueryRow(ctx,
		`SELECT `+uiaSessionColumns+` FROM uia_sessions WHERE session_hash = $1 AND expires_at > $2`,
		h[:], timestamp(now),
	).Scan(&idHash, &s.UserID, &s.DeviceID, &s.Method, &s.Path, &bodyHash, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return store.UIASession{}, fmt.Errorf("postgres: find uia session: %w", translate(err))
	}
	copy(s.IDHash[:], idHash)
	copy(s.BodyHash[:], bodyHash)
	s.CreatedAt = s.CreatedAt.UTC()
	s.ExpiresAt = s.ExpiresAt.UTC()
	return s, nil
}

// DeleteDevices consumes the grant and deletes the listed devices of the
// user, by the rules of store.DeleteUserDevices, in one READ COMMITTED
// transaction: a second transaction consuming the same session waits for
// the first's row lock and then finds the row gone.
func (db *DB) DeleteDevices(ctx context.Context, userID string, deviceIDs []string, g store.UIAGrant) ([]string, error) {
	var deleted []string
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var err error
		deleted, err = store.DeleteUserDevices(ctx, accountTx{tx}, userID, deviceIDs, g)
		if err != nil || len(deleted) == 0 {
			return err
		}
		return db.writeEvent(ctx, tx, store.DevicesDeleted(userID, deleted, store.ReasonDeleted, time.Now()))
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete devices: %w", translate(err))
	}
	if len(deleted) > 0 {
		// Wake the deliverer (a no-op with the outbox off).
		db.eventsCommitted()
	}
	return deleted, nil
}

// ChangePassword consumes the grant and writes the password change, by the
// rules of store.WritePasswordChange, in one READ COMMITTED transaction.
func (db *DB) ChangePassword(ctx context.Context, c store.PasswordChange) ([]string, error) {
	var deleted []string
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var err error
		deleted, err = store.WritePasswordChange(ctx, accountTx{tx}, c)
		if err != nil || len(deleted) == 0 {
			return err
		}
		return db.writeEvent(ctx, tx, store.DevicesDeleted(c.UserID, deleted, store.ReasonPasswordChange, time.Now()))
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: change password: %w", translate(err))
	}
	if len(deleted) > 0 {
		// Wake the deliverer (a no-op with the outbox off).
		db.eventsCommitted()
	}
	return deleted, nil
}

// DeactivateUser consumes the grant and deactivates the user, by the rules
// of store.WriteDeactivation, in one READ COMMITTED transaction.
func (db *DB) DeactivateUser(ctx context.Context, userID string, at time.Time, erase bool, g store.UIAGrant) error {
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		deleted, err := store.WriteDeactivation(ctx, accountTx{tx}, userID, at, g)
		if err != nil {
			return err
		}
		if len(deleted) > 0 {
			if err := db.writeEvent(ctx, tx, store.DevicesDeleted(userID, deleted, store.ReasonDeactivated, time.Now())); err != nil {
				return err
			}
		}
		return db.writeEvent(ctx, tx, store.UserDeactivated(userID, erase, time.Now()))
	})
	if err != nil {
		return fmt.Errorf("postgres: deactivate user: %w", translate(err))
	}
	db.eventsCommitted()
	return nil
}

// accountTx is store.AccountTx over a pgx transaction.
type accountTx struct{ tx pgx.Tx }

var _ store.AccountTx = accountTx{}

// ConsumeUIASession deletes the session if every binding matches and it
// has not expired. A concurrent consumer of the same row waits for this
// transaction and, once it commits, deletes nothing.
func (t accountTx) ConsumeUIASession(ctx context.Context, h store.TokenHash, b store.UIABinding, now time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx,
		`DELETE FROM uia_sessions WHERE session_hash = $1 AND user_id = $2 AND device_id = $3
		   AND method = $4 AND path = $5 AND body_hash = $6 AND expires_at > $7`,
		h[:], b.UserID, b.DeviceID, b.Method, b.Path, b.BodyHash[:], timestamp(now))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteUserDevice deletes the device; its tokens and UIA sessions go with
// it (ON DELETE CASCADE).
func (t accountTx) DeleteUserDevice(ctx context.Context, userID, deviceID string) (bool, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteOtherDevices deletes the user's devices but keepDeviceID; their
// tokens and UIA sessions go with them.
func (t accountTx) DeleteOtherDevices(ctx context.Context, userID, keepDeviceID string) ([]string, error) {
	var keep any // NULL keeps nothing
	if keepDeviceID != "" {
		keep = keepDeviceID
	}
	rows, err := t.tx.Query(ctx,
		`DELETE FROM devices WHERE user_id = $1 AND device_id IS DISTINCT FROM $2 RETURNING device_id`,
		userID, keep)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DeleteDeviceTokensExcept deletes the device's access tokens but keep,
// then its refresh tokens but keep's pair, holding the device's row lock
// as every other change to a device's tokens does.
func (t accountTx) DeleteDeviceTokensExcept(ctx context.Context, userID, deviceID string, keep store.TokenHash) error {
	if err := lockDevice(ctx, t.tx, userID, deviceID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // no device, no tokens
		}
		return err
	}
	if _, err := t.tx.Exec(ctx,
		`DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2 AND token_hash <> $3`,
		userID, deviceID, keep[:]); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx,
		`DELETE FROM refresh_tokens r WHERE r.user_id = $1 AND r.device_id = $2
		   AND NOT EXISTS (SELECT 1 FROM access_tokens a
		                   WHERE a.token_hash = $3 AND a.user_id = $1 AND a.device_id = $2
		                     AND a.refresh_token_id = r.id)`,
		userID, deviceID, keep[:])
	return err
}

// UpdatePasswordHash replaces the user's password hash.
func (t accountTx) UpdatePasswordHash(ctx context.Context, userID, hash string) (bool, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE user_id = $1`, userID, hash)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// MarkDeactivated sets deactivated_at unless it is set.
func (t accountTx) MarkDeactivated(ctx context.Context, userID string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx,
		`UPDATE users SET deactivated_at = COALESCE(deactivated_at, $2) WHERE user_id = $1`,
		userID, timestamp(at))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteUIASessions deletes the user's UIA sessions.
func (t accountTx) DeleteUIASessions(ctx context.Context, userID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM uia_sessions WHERE user_id = $1`, userID)
	return err
}

// DeleteThreePIDs unbinds the user's third-party IDs.
func (t accountTx) DeleteThreePIDs(ctx context.Context, userID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM user_threepids WHERE user_id = $1`, userID)
	return err
}
