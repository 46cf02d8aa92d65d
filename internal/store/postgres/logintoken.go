package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// CreateLoginToken stores a new login token. It returns store.ErrConflict if
// the hash is taken and store.ErrNotFound if the user does not exist.
func (db *DB) CreateLoginToken(ctx context.Context, t store.LoginToken) error {
	if _, err := db.pool.Exec(ctx,
		`INSERT INTO login_tokens (token_hash, user_id, device_id, created_at, expires_at)
		 VALUES ($1, $2, $3, $4, $5)`,
		t.Hash[:], t.UserID, t.DeviceID, timestamp(t.CreatedAt), timestamp(t.ExpiresAt),
	); err != nil {
		return fmt.Errorf("postgres: create login token: %w", translate(err))
	}
	return nil
}

// ConsumeLoginToken deletes the token and reads its user in one statement.
// A concurrent consumer of the same token waits for the row lock of the
// first, then finds the row gone: exactly one gets the user. An expired
// token is deleted too, but not returned.
func (db *DB) ConsumeLoginToken(ctx context.Context, h store.TokenHash, now time.Time) (store.User, error) {
	var expiresAt time.Time
	u, err := scanUserAnd(db.pool.QueryRow(ctx,
		`WITH consumed AS (
		   DELETE FROM login_tokens WHERE token_hash = $1 RETURNING user_id, expires_at
		 )
		 SELECT u.user_id, u.password_hash, u.created_at, u.deactivated_at, c.expires_at
		 FROM consumed c JOIN users u ON u.user_id = c.user_id`, h[:]), &expiresAt)
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: consume login token: %w", translate(err))
	}
	if !expiresAt.After(now) {
		return store.User{}, fmt.Errorf("postgres: consume login token: expired: %w", store.ErrNotFound)
	}
	return u, nil
}

// DeleteLoginTokens deletes every login token of the user.
func (db *DB) DeleteLoginTokens(ctx context.Context, userID string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM login_tokens WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete login tokens: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}
