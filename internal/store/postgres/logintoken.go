package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// CreateLoginToken consumes the grant and stores the token, by the rule
// of store.WriteLoginToken, in one transaction.
func (db *DB) CreateLoginToken(ctx context.Context, t store.LoginToken, g store.UIAGrant) error {
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		return store.WriteLoginToken(ctx, accountTx{tx}, t, g)
	})
	if err != nil {
		return fmt.Errorf("postgres: create login token: %w", translate(err))
	}
	return nil
}

// InsertLoginToken stores a login token.
func (t accountTx) InsertLoginToken(ctx context.Context, lt store.LoginToken) error {
	_, err := t.tx.Exec(ctx,
		`INSERT INTO login_tokens (token_hash, user_id, device_id, created_at, expires_at)
		 VALUES ($1, $2, $3, $4, $5)`,
		lt.Hash[:], lt.UserID, lt.DeviceID, timestamp(lt.CreatedAt), timestamp(lt.ExpiresAt))
	return err
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
		 SELECT `+userColumnsU+`, c.expires_at
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

// DeleteLoginTokens deletes the user's login tokens inside a transaction.
func (t accountTx) DeleteLoginTokens(ctx context.Context, userID string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM login_tokens WHERE user_id = $1`, userID)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
