package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// readCommitted is the isolation of the transactions that lock a device row
// and then re-read its tokens: each statement must see what the transaction
// it waited for committed, which a snapshot taken at the first statement
// (REPEATABLE READ, a server default some operators set) would not.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// RefreshSession exchanges a refresh token for a new pair, by the rules of
// store.ExchangeRefreshToken, in one READ COMMITTED transaction that holds
// the device's row lock (FOR UPDATE), so that refreshes and confirmations
// of one device run one after the other.
func (db *DB) RefreshSession(ctx context.Context, e store.Exchange) (store.Session, error) {
	var s store.Session
	replayed := false
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var err error
		s, err = store.ExchangeRefreshToken(ctx, tokenTx{tx}, e)
		if errors.Is(err, store.ErrTokenReplayed) {
			replayed = true
			// Commit the device's deletion, and its event, then fail.
			return db.writeEvent(ctx, tx, store.DevicesDeleted(s.AccessToken.UserID,
				[]string{s.AccessToken.DeviceID}, store.ReasonRefreshReplay, e.Now))
		}
		return err
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: refresh session: %w", translate(err))
	}
	if replayed {
		db.eventsCommitted()
		return s, fmt.Errorf("postgres: refresh session: %w", store.ErrTokenReplayed)
	}
	s.AccessToken = stored(s.AccessToken)
	return s, nil
}

// ConfirmAccessToken records the first use of a pending access token, by
// the rule of store.ConfirmPendingAccessToken, in one READ COMMITTED
// transaction that holds the device's row lock when the token is pending.
func (db *DB) ConfirmAccessToken(ctx context.Context, h store.TokenHash, now time.Time) error {
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		return store.ConfirmPendingAccessToken(ctx, tokenTx{tx}, h, now)
	})
	if err != nil {
		return fmt.Errorf("postgres: confirm access token: %w", translate(err))
	}
	return nil
}

// DeleteExpiredTokens deletes access, refresh and login tokens and UIA
// sessions that expired before the cutoff, and refresh tokens revoked before
// it, and returns how many rows it deleted. Each statement runs on its own
// and uses the index on its column; rows that a login or refresh holds
// locked right now are
// skipped, left for the next sweep, so that the sweep never waits for (or
// deadlocks with) a request. On error the count is of the rows deleted
// before it.
func (db *DB) DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error) {
	cutoff := timestamp(before)
	total := 0
	for _, q := range []string{
		`DELETE FROM access_tokens WHERE id IN
		 (SELECT id FROM access_tokens WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM refresh_tokens WHERE id IN
		 (SELECT id FROM refresh_tokens WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM refresh_tokens WHERE id IN
		 (SELECT id FROM refresh_tokens WHERE revoked_at < $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM uia_sessions WHERE session_hash IN
		 (SELECT session_hash FROM uia_sessions WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM login_tokens WHERE token_hash IN
		 (SELECT token_hash FROM login_tokens WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM admin_tokens WHERE expires_at < $1`,
		`DELETE FROM registration_nonces WHERE expires_at < $1`,
	} {
		tag, err := db.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("postgres: delete expired tokens: %w", translate(err))
		}
		total += int(tag.RowsAffected())
	}
	return total, nil
}

// tokenTx is store.TokenTx over a pgx transaction. Every change to a
// device's tokens after a login holds the device's row lock, which is how
// it serialises.
type tokenTx struct{ tx pgx.Tx }

var _ store.TokenTx = tokenTx{}

// LockRefreshToken finds the refresh token, locks its device's row and
// reads the token again under that lock. It returns pgx.ErrNoRows if the
// token, or its device, is gone.
func (t tokenTx) LockRefreshToken(ctx context.Context, h store.TokenHash) (store.RefreshTokenState, error) {
	var r store.RefreshTokenState
	if err := t.tx.QueryRow(ctx,
		`SELECT user_id, device_id FROM refresh_tokens WHERE token_hash = $1`, h[:],
	).Scan(&r.UserID, &r.DeviceID); err != nil {
		return store.RefreshTokenState{}, err
	}
	if err := lockDevice(ctx, t.tx, r.UserID, r.DeviceID); err != nil {
		return store.RefreshTokenState{}, err
	}
	var expiresAt *time.Time
	if err := t.tx.QueryRow(ctx,
		`SELECT id, expires_at, pending, exchanged_at IS NOT NULL, revoked_at IS NOT NULL
		 FROM refresh_tokens WHERE token_hash = $1`, h[:],
	).Scan(&r.ID, &expiresAt, &r.Pending, &r.Exchanged, &r.Revoked); err != nil {
		return store.RefreshTokenState{}, err
	}
	r.ExpiresAt = fromNull(expiresAt)
	return r, nil
}

// LockAccessToken reads the access token; a pending one is read again
// under its device's row lock: a confirmation that ran meanwhile has
// confirmed it, or deleted it. A confirmed one, the common case, takes no
// lock.
func (t tokenTx) LockAccessToken(ctx context.Context, h store.TokenHash) (store.AccessTokenState, error) {
	var a store.AccessTokenState
	if err := t.tx.QueryRow(ctx,
		`SELECT user_id, device_id, pending FROM access_tokens WHERE token_hash = $1`, h[:],
	).Scan(&a.UserID, &a.DeviceID, &a.Pending); err != nil {
		return store.AccessTokenState{}, err
	}
	if !a.Pending {
		return a, nil
	}
	if err := lockDevice(ctx, t.tx, a.UserID, a.DeviceID); err != nil {
		return store.AccessTokenState{}, err
	}
	var refreshID *int64
	if err := t.tx.QueryRow(ctx,
		`SELECT id, pending, refresh_token_id FROM access_tokens WHERE token_hash = $1`, h[:],
	).Scan(&a.ID, &a.Pending, &refreshID); err != nil {
		return store.AccessTokenState{}, err
	}
	if refreshID != nil {
		a.RefreshID = *refreshID
	}
	return a, nil
}

// UpsertDevice inserts or touches the device. The upsert locks the device
// row, so concurrent logins on one device run one after the other and the
// last one's token is the only one left.
func (t tokenTx) UpsertDevice(ctx context.Context, d store.Device) error {
	_, err := t.tx.Exec(ctx,
		`INSERT INTO devices (user_id, device_id, display_name, created_at, last_seen_at, last_seen_ip)
		 VALUES ($1, $2, $3, $4, $5, $6)
		 ON CONFLICT (user_id, device_id) DO UPDATE
		 SET last_seen_at = EXCLUDED.last_seen_at, last_seen_ip = EXCLUDED.last_seen_ip`,
		d.UserID, d.ID, d.DisplayName, timestamp(d.CreatedAt), timestamp(d.LastSeenAt), d.LastSeenIP)
	return err
}

// DeleteDeviceTokens deletes the device's access tokens, then its refresh
// tokens.
func (t tokenTx) DeleteDeviceTokens(ctx context.Context, userID, deviceID string) error {
	for _, table := range []string{"access_tokens", "refresh_tokens"} {
		if _, err := t.tx.Exec(ctx,
			`DELETE FROM `+table+` WHERE user_id = $1 AND device_id = $2`, userID, deviceID,
		); err != nil {
			return err
		}
	}
	return nil
}

// DeleteDevice deletes the device; its tokens go with it (ON DELETE CASCADE).
func (t tokenTx) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID)
	return err
}

// MarkExchanged sets exchanged_at unless it is set.
func (t tokenTx) MarkExchanged(ctx context.Context, id int64, at time.Time) error {
	_, err := t.tx.Exec(ctx,
		`UPDATE refresh_tokens SET exchanged_at = COALESCE(exchanged_at, $2) WHERE id = $1`, id, timestamp(at))
	return err
}

// InsertPair stores the refresh token, if any, then the access token
// paired with it.
func (t tokenTx) InsertPair(ctx context.Context, access store.AccessToken, refresh *store.RefreshToken) (int64, int64, error) {
	var refreshID int64
	if refresh != nil {
		var err error
		if refreshID, err = insertRefreshToken(ctx, t.tx, *refresh, access.Pending); err != nil {
			return 0, 0, err
		}
	}
	accessID, err := insertAccessToken(ctx, t.tx, access, refreshID)
	return accessID, refreshID, err
}

// ConfirmPair runs the five statements of a confirmation; the caller holds
// the device's row lock.
func (t tokenTx) ConfirmPair(ctx context.Context, userID, deviceID string, accessID, refreshID int64, now time.Time) error {
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE access_tokens SET pending = FALSE WHERE (id = $1 OR refresh_token_id = $2) AND pending`,
			[]any{accessID, refreshID}},
		{`UPDATE refresh_tokens SET pending = FALSE WHERE id = $1 AND pending`,
			[]any{refreshID}},
		{`DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2
		   AND id <> $3 AND refresh_token_id IS DISTINCT FROM $4`,
			[]any{userID, deviceID, accessID, refreshID}},
		{`UPDATE refresh_tokens SET revoked_at = $4 WHERE user_id = $1 AND device_id = $2
		   AND id <> $3 AND (exchanged_at IS NOT NULL OR pending) AND revoked_at IS NULL`,
			[]any{userID, deviceID, refreshID, timestamp(now)}},
		{`DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2
		   AND id <> $3 AND exchanged_at IS NULL AND NOT pending`,
			[]any{userID, deviceID, refreshID}},
	} {
		if _, err := t.tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			return err
		}
	}
	return nil
}

// FindUser reads the user in the transaction.
func (t tokenTx) FindUser(ctx context.Context, userID string) (store.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
}

// lockDevice takes the row lock of a device, waiting for the transaction
// holding it, or returns pgx.ErrNoRows if the device does not exist (any
// more). CreateSession's upsert and device deletes take the same lock.
func lockDevice(ctx context.Context, q querier, userID, deviceID string) error {
	var one int
	return q.QueryRow(ctx,
		`SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2 FOR UPDATE`, userID, deviceID,
	).Scan(&one)
}

// insertRefreshToken stores t, pending or not, and returns its id.
func insertRefreshToken(ctx context.Context, q querier, t store.RefreshToken, pending bool) (int64, error) {
	var id int64
	err := q.QueryRow(ctx,
		`INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_at, expires_at, pending)
		 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		t.Hash[:], t.UserID, t.DeviceID, timestamp(t.CreatedAt), nullTimestamp(t.ExpiresAt), pending,
	).Scan(&id)
	return id, err
}

// insertAccessToken stores t paired with the refresh token refreshID (0 for
// none) and returns its id.
func insertAccessToken(ctx context.Context, q querier, t store.AccessToken, refreshID int64) (int64, error) {
	var rid any
	if refreshID != 0 {
		rid = refreshID
	}
	var id int64
	err := q.QueryRow(ctx,
		`INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, expires_at, pending, refresh_token_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		t.Hash[:], t.UserID, t.DeviceID, timestamp(t.CreatedAt), nullTimestamp(t.ExpiresAt), t.Pending, rid,
	).Scan(&id)
	return id, err
}

// stored is t as insertAccessToken writes it and FindSessionByAccessToken
// reads it back.
func stored(t store.AccessToken) store.AccessToken {
	t.CreatedAt = timestamp(t.CreatedAt)
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = timestamp(t.ExpiresAt)
	}
	return t
}
