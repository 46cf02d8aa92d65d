package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// uiaSessionColumns are the columns FindUIASession reads, in its order.
const uiaSessionColumns = `session_hash, user_id, device_id, method, path, body_hash, created_at, expires_at`

// CreateUIASession stores a new UIA session. It returns store.ErrConflict
// if the hash is taken and store.ErrNotFound if the user, or its device,
// does not exist.
func (db *DB) CreateUIASession(ctx context.Context, s store.UIASession) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO uia_sessions (`+uiaSessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			s.IDHash[:], s.UserID, s.DeviceID, s.Method, s.Path, s.BodyHash[:],
			micros(s.CreatedAt), micros(s.ExpiresAt)); err != nil {
			return err
		}
		// The device's oldest sessions beyond the bound (ties by hash).
		_, err := tx.ExecContext(ctx,
			`DELETE FROM uia_sessions WHERE session_hash IN (
			   SELECT session_hash FROM uia_sessions WHERE user_id = ? AND device_id = ?
			   ORDER BY created_at DESC, session_hash DESC LIMIT -1 OFFSET ?)`,
			s.UserID, s.DeviceID, store.MaxUIASessionsPerDevice)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create uia session: %w", translate(err))
	}
	return nil
}

// FindUIASession returns the session with that hash if it expires after
// now, or store.ErrNotFound.
func (db *DB) FindUIASession(ctx context.Context, h store.TokenHash, now time.Time) (store.UIASession, error) {
	var s store.UIASession
	var idHash, bodyHash []byte
	var createdAt, expiresAt int64
	err := db.db.QueryRowContext(ctx,
		`SELECT `+uiaSessionColumns+` FROM uia_sessions WHERE session_hash = ? AND expires_at > ?`,
		h[:], micros(now),
	).Scan(&idHash, &s.UserID, &s.DeviceID, &s.Method, &s.Path, &bodyHash, &createdAt, &expiresAt)
	if err != nil {
		return store.UIASession{}, fmt.Errorf("sqlite: find uia session: %w", translate(err))
	}
	copy(s.IDHash[:], idHash)
	copy(s.BodyHash[:], bodyHash)
	s.CreatedAt = fromMicros(createdAt)
	s.ExpiresAt = fromMicros(expiresAt)
	return s, nil
}

// DeleteDevices consumes the grant and deletes the listed devices of the
// user, by the rules of store.DeleteUserDevices, in one IMMEDIATE
// transaction: it holds the database's write lock, so two consumers of one
// session run one after the other and the second finds the row gone.
func (db *DB) DeleteDevices(ctx context.Context, userID string, deviceIDs []string, g store.UIAGrant) ([]string, error) {
	var deleted []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		deleted, err = store.DeleteUserDevices(ctx, accountTx{tx}, userID, deviceIDs, g)
		if err != nil || len(deleted) == 0 {
			return err
		}
		return db.writeEvent(ctx, tx, store.DevicesDeleted(userID, deleted, store.ReasonDeleted, time.Now()))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete devices: %w", translate(err))
	}
	if len(deleted) > 0 {
		// Wake the deliverer (a no-op with the outbox off).
		db.eventsCommitted()
	}
	return deleted, nil
}

// ChangePassword consumes the grant and writes the password change, by the
// rules of store.WritePasswordChange, in one IMMEDIATE transaction.
func (db *DB) ChangePassword(ctx context.Context, c store.PasswordChange) ([]string, error) {
	var deleted []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		deleted, err = store.WritePasswordChange(ctx, accountTx{tx}, c)
		if err != nil || len(deleted) == 0 {
			return err
		}
		return db.writeEvent(ctx, tx, store.DevicesDeleted(c.UserID, deleted, store.ReasonPasswordChange, time.Now()))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: change password: %w", translate(err))
	}
	if len(deleted) > 0 {
		// Wake the deliverer (a no-op with the outbox off).
		db.eventsCommitted()
	}
	return deleted, nil
}

// DeactivateUser consumes the grant and deactivates the user, by the rules
// of store.WriteDeactivation, in one IMMEDIATE transaction.
func (db *DB) DeactivateUser(ctx context.Context, userID string, at time.Time, erase bool, g store.UIAGrant) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
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
		return fmt.Errorf("sqlite: deactivate user: %w", translate(err))
	}
	db.eventsCommitted()
	return nil
}

// accountTx is store.AccountTx over an IMMEDIATE transaction, which holds
// the database's write lock.
type accountTx struct{ tx *sql.Tx }

var _ store.AccountTx = accountTx{}

// ConsumeUIASession deletes the session if every binding matches and it
// has not expired.
func (t accountTx) ConsumeUIASession(ctx context.Context, h store.TokenHash, b store.UIABinding, now time.Time) (bool, error) {
	return t.changed(t.tx.ExecContext(ctx,
		`DELETE FROM uia_sessions WHERE session_hash = ? AND user_id = ? AND device_id = ?
		   AND method = ? AND path = ? AND body_hash = ? AND expires_at > ?`,
		h[:], b.UserID, b.DeviceID, b.Method, b.Path, b.BodyHash[:], micros(now)))
}

// DeleteUserDevice deletes the device; its tokens and UIA sessions go with
// it (ON DELETE CASCADE).
func (t accountTx) DeleteUserDevice(ctx context.Context, userID, deviceID string) (bool, error) {
	return t.changed(t.tx.ExecContext(ctx,
		`DELETE FROM devices WHERE user_id = ? AND device_id = ?`, userID, deviceID))
}

// DeleteOtherDevices deletes the user's devices but keepDeviceID; their
// tokens and UIA sessions go with them.
func (t accountTx) DeleteOtherDevices(ctx context.Context, userID, keepDeviceID string) ([]string, error) {
	keep := sql.NullString{String: keepDeviceID, Valid: keepDeviceID != ""} // NULL keeps nothing
	// IS NOT is SQLite's IS DISTINCT FROM.
	rows, err := t.tx.QueryContext(ctx,
		`DELETE FROM devices WHERE user_id = ? AND device_id IS NOT ? RETURNING device_id`, userID, keep)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var deleted []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		deleted = append(deleted, id)
	}
	return deleted, rows.Err()
}

// DeleteDeviceTokensExcept deletes the device's access tokens but keep,
// then its refresh tokens but keep's pair.
func (t accountTx) DeleteDeviceTokensExcept(ctx context.Context, userID, deviceID string, keep store.TokenHash) error {
	if _, err := t.tx.ExecContext(ctx,
		`DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? AND token_hash <> ?`,
		userID, deviceID, keep[:]); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx,
		`DELETE FROM refresh_tokens WHERE user_id = ?1 AND device_id = ?2
		   AND NOT EXISTS (SELECT 1 FROM access_tokens a
		                   WHERE a.token_hash = ?3 AND a.user_id = ?1 AND a.device_id = ?2
		                     AND a.refresh_token_id = refresh_tokens.id)`,
		userID, deviceID, keep[:])
	return err
}

// UpdatePasswordHash replaces the user's password hash.
func (t accountTx) UpdatePasswordHash(ctx context.Context, userID, hash string) (bool, error) {
	return t.changed(t.tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE user_id = ?`, hash, userID))
}

// MarkDeactivated sets deactivated_at unless it is set.
func (t accountTx) MarkDeactivated(ctx context.Context, userID string, at time.Time) (bool, error) {
	return t.changed(t.tx.ExecContext(ctx,
		`UPDATE users SET deactivated_at = COALESCE(deactivated_at, ?) WHERE user_id = ?`, micros(at), userID))
}

// DeleteUIASessions deletes the user's UIA sessions.
func (t accountTx) DeleteUIASessions(ctx context.Context, userID string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM uia_sessions WHERE user_id = ?`, userID)
	return err
}

// DeleteThreePIDs unbinds the user's third-party IDs.
func (t accountTx) DeleteThreePIDs(ctx context.Context, userID string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM user_threepids WHERE user_id = ?`, userID)
	return err
}

// changed reports whether a statement's result changed a row.
func (accountTx) changed(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := rowsAffected(res)
	return n > 0, err
}
