package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// CreateLoginToken stores a new login token. It returns store.ErrConflict if
// the hash is taken and store.ErrNotFound if the user does not exist.
func (db *DB) CreateLoginToken(ctx context.Context, t store.LoginToken) error {
	if _, err := db.db.ExecContext(ctx,
		`INSERT INTO login_tokens (token_hash, user_id, device_id, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?)`,
		t.Hash[:], t.UserID, t.DeviceID, micros(t.CreatedAt), micros(t.ExpiresAt),
	); err != nil {
		return fmt.Errorf("sqlite: create login token: %w", translate(err))
	}
	return nil
}

// ConsumeLoginToken deletes the token and reads its user in one transaction,
// which holds the database's write lock from its start: a concurrent
// consumer of the same token runs after it and finds the row gone. An
// expired token is deleted too, but not returned.
func (db *DB) ConsumeLoginToken(ctx context.Context, h store.TokenHash, now time.Time) (store.User, error) {
	var u store.User
	var expiresAt int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var userID string
		if err := tx.QueryRowContext(ctx,
			`DELETE FROM login_tokens WHERE token_hash = ? RETURNING user_id, expires_at`, h[:],
		).Scan(&userID, &expiresAt); err != nil {
			return err
		}
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: consume login token: %w", translate(err))
	}
	if !fromMicros(expiresAt).After(now) {
		return store.User{}, fmt.Errorf("sqlite: consume login token: expired: %w", store.ErrNotFound)
	}
	return u, nil
}

// DeleteLoginTokens deletes every login token of the user.
func (db *DB) DeleteLoginTokens(ctx context.Context, userID string) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM login_tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete login tokens: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete login tokens: %w", translate(err))
	}
	return n, nil
}
