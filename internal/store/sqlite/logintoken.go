package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// CreateLoginToken consumes the grant and stores the token, by the rule
// of store.WriteLoginToken, in one transaction.
func (db *DB) CreateLoginToken(ctx context.Context, t store.LoginToken, g store.UIAGrant) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return store.WriteLoginToken(ctx, accountTx{tx}, t, g)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create login token: %w", translate(err))
	}
	return nil
}

// InsertLoginToken stores a login token.
func (t accountTx) InsertLoginToken(ctx context.Context, lt store.LoginToken) error {
	_, err := t.tx.ExecContext(ctx,
		`INSERT INTO login_tokens (token_hash, user_id, device_id, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?)`,
		lt.Hash[:], lt.UserID, lt.DeviceID, micros(lt.CreatedAt), micros(lt.ExpiresAt))
	return err
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

// DeleteLoginTokens deletes the user's login tokens inside a transaction.
func (t accountTx) DeleteLoginTokens(ctx context.Context, userID string) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM login_tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, err
	}
	return rowsAffected(res)
}
