package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// RefreshSession exchanges the refresh token r.Old for the pair in r, in one
// transaction. Transactions begin IMMEDIATE, holding SQLite's write lock
// from their first statement, so refreshes and confirmations run one after
// the other. A pending old token has its pair confirmed first. Without
// r.Immediate the new pair is pending and the old token stays valid until
// the pair is used; with it the new pair is confirmed at once, which revokes
// the old token and deletes the access token issued with it. It returns
// store.ErrNotFound for an unknown token or one superseded before it was
// exchanged, store.ErrTokenExpired for an expired one, and
// store.ErrTokenReplayed, after deleting the device, for one superseded
// after it was exchanged (by a confirmed successor, or by r.Immediate) and
// for the refresh token of a pending pair that lost to a sibling.
func (db *DB) RefreshSession(ctx context.Context, r store.Exchange) (store.Session, error) {
	var s store.Session
	replayed := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		old, err := findRefreshToken(ctx, tx, r.Old)
		if err != nil {
			return err
		}
		switch {
		case old.revoked && (old.exchanged || old.pending):
			// Someone holds a token that was exchanged and superseded, or
			// the tombstone of a pending pair that lost to another: the
			// client or a thief used it after its successor, or the pair
			// that won was a thief's. Revoke the whole session, successor
			// included, and commit that before failing.
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM devices WHERE user_id = ? AND device_id = ?`, old.userID, old.deviceID,
			); err != nil {
				return err
			}
			replayed = true
			s.AccessToken = store.AccessToken{UserID: old.userID, DeviceID: old.deviceID}
			return nil
		case old.revoked:
			return store.ErrNotFound
		case old.expired(r.Now):
			return store.ErrTokenExpired
		}
		if old.pending {
			// Using the new refresh token is a first use of its pair
			// (spec, Refreshing access tokens).
			if err := confirmPair(ctx, tx, old.userID, old.deviceID, 0, old.id, r.Now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET exchanged_at = COALESCE(exchanged_at, ?) WHERE id = ?`,
			micros(r.Now), old.id,
		); err != nil {
			return err
		}
		pending := !r.Immediate
		rt := r.Refresh
		rt.UserID, rt.DeviceID = old.userID, old.deviceID
		refreshID, err := insertRefreshToken(ctx, tx, rt, pending)
		if err != nil {
			return err
		}
		at := r.Access
		at.UserID, at.DeviceID, at.Pending = old.userID, old.deviceID, pending
		accessID, err := insertAccessToken(ctx, tx, at, refreshID)
		if err != nil {
			return err
		}
		if r.Immediate {
			// Confirmed from the start, as if first used now: the old token,
			// just exchanged, is revoked (and kept for replay detection), and
			// every other access token of the device, the one issued with it
			// included, is deleted.
			if err := confirmPair(ctx, tx, old.userID, old.deviceID, accessID, refreshID, r.Now); err != nil {
				return err
			}
		}
		if s.User, err = scanUser(tx.QueryRowContext(ctx,
			`SELECT `+userColumns+` FROM users WHERE user_id = ?`, old.userID,
		)); err != nil {
			return err
		}
		s.AccessToken = stored(at)
		return nil
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: refresh session: %w", translate(err))
	}
	if replayed {
		// The revoked device, for the caller's cache.
		return store.Session{AccessToken: s.AccessToken}, fmt.Errorf("sqlite: refresh session: %w", store.ErrTokenReplayed)
	}
	return s, nil
}

// ConfirmAccessToken records the first use of a pending access token, in
// one transaction: its pair is confirmed, every other access token of the
// device deleted, and every other refresh token deleted, or revoked and kept
// if it was exchanged. It does nothing for a confirmed token and returns
// store.ErrNotFound for a missing one, such as one of a pair that lost to
// another.
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
		// Read again in the transaction: a confirmation that ran meanwhile
		// has confirmed this token, or deleted it.
		var id int64
		var userID, deviceID string
		var refreshID sql.NullInt64
		if err := tx.QueryRowContext(ctx,
			`SELECT id, user_id, device_id, pending, refresh_token_id FROM access_tokens WHERE token_hash = ?`, h[:],
		).Scan(&id, &userID, &deviceID, &pending, &refreshID); err != nil {
			return err
		}
		if !pending {
			return nil
		}
		return confirmPair(ctx, tx, userID, deviceID, id, refreshID.Int64, now)
	})
	if err != nil {
		return fmt.Errorf("sqlite: confirm access token: %w", translate(err))
	}
	return nil
}

// DeleteExpiredTokens deletes access and refresh tokens that expired before
// the cutoff, and refresh tokens revoked before it, in one transaction, and
// returns how many tokens it deleted. Each statement uses the partial index
// on its column. It also prunes the revocations table of rows older than
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

// refreshToken is the state of a stored refresh token.
type refreshToken struct {
	id                 int64
	userID, deviceID   string
	expiresAt          time.Time
	pending            bool
	exchanged, revoked bool
}

// expired reports whether the token has expired at now.
func (t refreshToken) expired(now time.Time) bool {
	return !t.expiresAt.IsZero() && !now.Before(t.expiresAt)
}

// findRefreshToken returns the refresh token with hash h, or sql.ErrNoRows.
func findRefreshToken(ctx context.Context, q querier, h store.TokenHash) (refreshToken, error) {
	var t refreshToken
	var expiresAt sql.NullInt64
	if err := q.QueryRowContext(ctx,
		`SELECT id, user_id, device_id, expires_at, pending, exchanged_at IS NOT NULL, revoked_at IS NOT NULL
		 FROM refresh_tokens WHERE token_hash = ?`, h[:],
	).Scan(&t.id, &t.userID, &t.deviceID, &expiresAt, &t.pending, &t.exchanged, &t.revoked); err != nil {
		return refreshToken{}, err
	}
	t.expiresAt = fromNullMicros(expiresAt)
	return t, nil
}

// confirmPair records the first use of a pair of tokens of a device, the
// access token accessID and the refresh token refreshID (0 for either means
// none: AUTOINCREMENT ids start at 1). The pair, and an access token issued
// with refreshID, is confirmed; every other access token of the device is
// deleted; every other refresh token is revoked at now, and kept to
// recognise a replay, if it was ever exchanged or is still pending, and
// deleted if not.
//
// A pending sibling is kept as a tombstone (revoked, still pending) because
// two exchanges of one refresh token are either a client that retried after
// losing the response, or a client and a thief holding a stolen copy. The
// retrying client never received the pair that lost, so it never presents
// it; a refresh token of a losing pair that is presented all the same was
// received by someone, and when the winner was the thief's, it is the
// client's. RefreshSession treats it as a replay and revokes the device.
// The cost: a client that itself sent two refreshes concurrently and read
// both answers, then used the later one's pair and the earlier one's
// refresh token, is logged out. The access tokens of losing pairs are
// deleted, not kept: a client refused one refreshes with its refresh
// token, which finds the tombstone. Tombstones go with the other revoked
// tokens, in DeleteExpiredTokens. It runs
// in the caller's transaction.
func confirmPair(ctx context.Context, q querier, userID, deviceID string, accessID, refreshID int64, now time.Time) error {
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
		if _, err := q.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			return err
		}
	}
	return nil
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
