package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// RefreshSession exchanges a refresh token for a new pair, by the rules of
// store.ExchangeRefreshToken, in one transaction. Transactions begin
// IMMEDIATE, holding SQLite's write lock from their first statement, so
// refreshes and confirmations run one after the other.
func (db *DB) RefreshSession(ctx context.Context, e store.Exchange) (store.Session, error) {
	var s store.Session
	replayed := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
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
		return store.Session{}, fmt.Errorf("sqlite: refresh session: %w", translate(err))
	}
	if replayed {
		db.eventsCommitted()
		return s, fmt.Errorf("sqlite: refresh session: %w", store.ErrTokenReplayed)
	}
	s.AccessToken = stored(s.AccessToken)
	return s, nil
}

// ConfirmAccessToken records the first use of a pending access token, by
// the rule of store.ConfirmPendingAccessToken, in one IMMEDIATE
// transaction.
func (db *DB) ConfirmAccessToken(ctx context.Context, h store.TokenHash, now time.Time) error {
	// Most calls find a confirmed token: answer those without the write lock.
	var pending bool
	if err := db.db.QueryRowContext(ctx,
		`SELECT pending FROM access_tokens WHERE token_hash = ?`, h[:],
	).Scan(&pending); err != nil {
		return fmt.Errorf("sqlite: confirm access token: %w", translate(err))
	}
	if !pending {
		return nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return store.ConfirmPendingAccessToken(ctx, tokenTx{tx}, h, now)
	})
	if err != nil {
		return fmt.Errorf("sqlite: confirm access token: %w", translate(err))
	}
	return nil
}

// DeleteExpiredTokens deletes access, refresh and login tokens and UIA
// sessions that expired before the cutoff, and refresh tokens revoked before
// it, in one transaction, and returns how many rows it deleted. Each
// statement uses the index on its column. It also prunes the revocations
// table of rows older than
// revocationRetention by SQLite's clock, the one that wrote them, whatever
// the cutoff; those are not counted.
func (db *DB) DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error) {
	cutoff := micros(before)
	total := 0
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM access_tokens WHERE expires_at < ?`,
			`DELETE FROM refresh_tokens WHERE expires_at < ?`,
			`DELETE FROM refresh_tokens WHERE revoked_at < ?`,
			`DELETE FROM uia_sessions WHERE expires_at < ?`,
			`DELETE FROM login_tokens WHERE expires_at < ?`,
			`DELETE FROM admin_tokens WHERE expires_at < ?`,
			`DELETE FROM registration_nonces WHERE expires_at < ?`,
		} {
			res, err := tx.ExecContext(ctx, q, cutoff)
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			total += n
		}
		// No index on revoked_at: the table holds about an hour of
		// revocations, so a scan every sweep costs less than an index
		// written by every logout.
		_, err := tx.ExecContext(ctx,
			`DELETE FROM revocations WHERE revoked_at < `+nowMicros+` - ?`, revocationRetention.Microseconds())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired tokens: %w", translate(err))
	}
	return total, nil
}

// tokenTx is store.TokenTx over an IMMEDIATE transaction, which holds the
// database's write lock: every read in it is already serialised.
type tokenTx struct{ tx *sql.Tx }

var _ store.TokenTx = tokenTx{}

// LockRefreshToken reads the refresh token, or returns sql.ErrNoRows.
func (t tokenTx) LockRefreshToken(ctx context.Context, h store.TokenHash) (store.RefreshTokenState, error) {
	var r store.RefreshTokenState
	var expiresAt sql.NullInt64
	if err := t.tx.QueryRowContext(ctx,
		`SELECT id, user_id, device_id, expires_at, pending, exchanged_at IS NOT NULL, revoked_at IS NOT NULL
		 FROM refresh_tokens WHERE token_hash = ?`, h[:],
	).Scan(&r.ID, &r.UserID, &r.DeviceID, &expiresAt, &r.Pending, &r.Exchanged, &r.Revoked); err != nil {
		return store.RefreshTokenState{}, err
	}
	r.ExpiresAt = fromNullMicros(expiresAt)
	return r, nil
}

// LockAccessToken reads the access token, or returns sql.ErrNoRows.
func (t tokenTx) LockAccessToken(ctx context.Context, h store.TokenHash) (store.AccessTokenState, error) {
	var a store.AccessTokenState
	var refreshID sql.NullInt64
	if err := t.tx.QueryRowContext(ctx,
		`SELECT id, user_id, device_id, pending, refresh_token_id FROM access_tokens WHERE token_hash = ?`, h[:],
	).Scan(&a.ID, &a.UserID, &a.DeviceID, &a.Pending, &refreshID); err != nil {
		return store.AccessTokenState{}, err
	}
	a.RefreshID = refreshID.Int64
	return a, nil
}

// UpsertDevice inserts or touches the device.
func (t tokenTx) UpsertDevice(ctx context.Context, d store.Device) error {
	_, err := t.tx.ExecContext(ctx,
		`INSERT INTO devices (user_id, device_id, display_name, created_at, last_seen_at, last_seen_ip)
		 VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (user_id, device_id) DO UPDATE
		 SET last_seen_at = excluded.last_seen_at, last_seen_ip = excluded.last_seen_ip`,
		d.UserID, d.ID, d.DisplayName, micros(d.CreatedAt), micros(d.LastSeenAt), d.LastSeenIP)
	return err
}

// DeleteDeviceTokens deletes the device's access tokens, then its refresh
// tokens.
func (t tokenTx) DeleteDeviceTokens(ctx context.Context, userID, deviceID string) error {
	for _, table := range []string{"access_tokens", "refresh_tokens"} {
		if _, err := t.tx.ExecContext(ctx,
			`DELETE FROM `+table+` WHERE user_id = ? AND device_id = ?`, userID, deviceID,
		); err != nil {
			return err
		}
	}
	return nil
}

// DeleteDevice deletes the device; its tokens go with it (ON DELETE CASCADE).
func (t tokenTx) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ? AND device_id = ?`, userID, deviceID)
	return err
}

// MarkExchanged sets exchanged_at unless it is set.
func (t tokenTx) MarkExchanged(ctx context.Context, id int64, at time.Time) error {
	_, err := t.tx.ExecContext(ctx,
		`UPDATE refresh_tokens SET exchanged_at = COALESCE(exchanged_at, ?) WHERE id = ?`, micros(at), id)
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

// ConfirmPair runs the five statements of a confirmation.
func (t tokenTx) ConfirmPair(ctx context.Context, userID, deviceID string, accessID, refreshID int64, now time.Time) error {
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE access_tokens SET pending = 0 WHERE (id = ? OR refresh_token_id = ?) AND pending`,
			[]any{accessID, refreshID}},
		{`UPDATE refresh_tokens SET pending = 0 WHERE id = ? AND pending`,
			[]any{refreshID}},
		// IS NOT is SQLite's IS DISTINCT FROM: it keeps no token issued
		// without a refresh token.
		{`DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?
		   AND id <> ? AND refresh_token_id IS NOT ?`,
			[]any{userID, deviceID, accessID, refreshID}},
		{`UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND device_id = ?
		   AND id <> ? AND (exchanged_at IS NOT NULL OR pending) AND revoked_at IS NULL`,
			[]any{micros(now), userID, deviceID, refreshID}},
		{`DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?
		   AND id <> ? AND exchanged_at IS NULL AND NOT pending`,
			[]any{userID, deviceID, refreshID}},
	} {
		if _, err := t.tx.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			return err
		}
	}
	return nil
}

// FindUser reads the user in the transaction.
func (t tokenTx) FindUser(ctx context.Context, userID string) (store.User, error) {
	return scanUser(t.tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
}

// insertRefreshToken stores t, pending or not, and returns its id.
func insertRefreshToken(ctx context.Context, q querier, t store.RefreshToken, pending bool) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx,
		`INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_at, expires_at, pending)
		 VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		t.Hash[:], t.UserID, t.DeviceID, micros(t.CreatedAt), nullMicros(t.ExpiresAt), pending,
	).Scan(&id)
	return id, err
}

// insertAccessToken stores t paired with the refresh token refreshID (0 for
// none) and returns its id.
func insertAccessToken(ctx context.Context, q querier, t store.AccessToken, refreshID int64) (int64, error) {
	rid := sql.NullInt64{Int64: refreshID, Valid: refreshID != 0}
	var id int64
	err := q.QueryRowContext(ctx,
		`INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, expires_at, pending, refresh_token_id)
		 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		t.Hash[:], t.UserID, t.DeviceID, micros(t.CreatedAt), nullMicros(t.ExpiresAt), t.Pending, rid,
	).Scan(&id)
	return id, err
}

// stored is t as insertAccessToken writes it and FindSessionByAccessToken
// reads it back: in UTC, to the microsecond.
func stored(t store.AccessToken) store.AccessToken {
	t.CreatedAt = fromMicros(micros(t.CreatedAt))
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = fromMicros(micros(t.ExpiresAt))
	}
	return t
}
