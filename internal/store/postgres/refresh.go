package postgres

import (
	"context"
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

// RefreshSession exchanges the refresh token r.Old for the pair in r, in one
// transaction that holds the device's row lock, so that refreshes and
// confirmations of one device run one after the other. A pending old token
// has its pair confirmed first. Without r.Immediate the new pair is pending
// and the old token stays valid until the pair is used; with it the new pair
// is confirmed at once, which revokes the old token and deletes the access
// token issued with it. It returns store.ErrNotFound for an unknown token or
// one superseded before it was exchanged, store.ErrTokenExpired for an
// expired one, and store.ErrTokenReplayed, after deleting the device, for one
// superseded after it was exchanged (by a confirmed successor, or by
// r.Immediate) and for the refresh token of a pending pair that lost to a
// sibling.
func (db *DB) RefreshSession(ctx context.Context, r store.Exchange) (store.Session, error) {
	var s store.Session
	replayed := false
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		old, err := lockRefreshToken(ctx, tx, r.Old)
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
			if _, err := tx.Exec(ctx,
				`DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, old.userID, old.deviceID,
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
		if _, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET exchanged_at = COALESCE(exchanged_at, $2) WHERE id = $1`,
			old.id, timestamp(r.Now),
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
		if s.User, err = scanUser(tx.QueryRow(ctx,
			`SELECT `+userColumns+` FROM users WHERE user_id = $1`, old.userID,
		)); err != nil {
			return err
		}
		s.AccessToken = stored(at)
		return nil
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: refresh session: %w", translate(err))
	}
	if replayed {
		// The revoked device, for the caller's cache.
		return store.Session{AccessToken: s.AccessToken}, fmt.Errorf("postgres: refresh session: %w", store.ErrTokenReplayed)
	}
	return s, nil
}

// ConfirmAccessToken records the first use of a pending access token, in
// one transaction that holds the device's row lock: its pair is confirmed,
// every other access token of the device deleted, and every other refresh
// token deleted, or revoked and kept if it was exchanged. It does nothing
// for a confirmed token and returns store.ErrNotFound for a missing one,
// such as one of a pair that lost to another.
func (db *DB) ConfirmAccessToken(ctx context.Context, h store.TokenHash, now time.Time) error {
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var userID, deviceID string
		var pending bool
		if err := tx.QueryRow(ctx,
			`SELECT user_id, device_id, pending FROM access_tokens WHERE token_hash = $1`, h[:],
		).Scan(&userID, &deviceID, &pending); err != nil {
			return err
		}
		if !pending {
			return nil // the common case: no lock, no write
		}
		if err := lockDevice(ctx, tx, userID, deviceID); err != nil {
			return err
		}
		// Read again under the lock: a confirmation that ran meanwhile has
		// confirmed this token, or deleted it.
		var id int64
		var refreshID *int64
		if err := tx.QueryRow(ctx,
			`SELECT id, pending, refresh_token_id FROM access_tokens WHERE token_hash = $1`, h[:],
		).Scan(&id, &pending, &refreshID); err != nil {
			return err
		}
		if !pending {
			return nil
		}
		var rid int64
		if refreshID != nil {
			rid = *refreshID
		}
		return confirmPair(ctx, tx, userID, deviceID, id, rid, now)
	})
	if err != nil {
		return fmt.Errorf("postgres: confirm access token: %w", translate(err))
	}
	return nil
}

// DeleteExpiredTokens deletes access and refresh tokens that expired before
// the cutoff, and refresh tokens revoked before it, and returns how many
// rows it deleted. Each statement runs on its own and uses the partial index
// on its column; rows that a login or refresh holds locked right now are
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
	} {
		tag, err := db.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("postgres: delete expired tokens: %w", translate(err))
		}
		total += int(tag.RowsAffected())
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

// lockRefreshToken finds the refresh token with hash h, locks its device's
// row and reads the token again under that lock. Every change to a device's
// tokens after a login holds the lock, so what it returns stays true until
// the transaction q belongs to ends. It returns pgx.ErrNoRows if the token, or its device, is gone.
func lockRefreshToken(ctx context.Context, q querier, h store.TokenHash) (refreshToken, error) {
	var t refreshToken
	if err := q.QueryRow(ctx,
		`SELECT user_id, device_id FROM refresh_tokens WHERE token_hash = $1`, h[:],
	).Scan(&t.userID, &t.deviceID); err != nil {
		return refreshToken{}, err
	}
	if err := lockDevice(ctx, q, t.userID, t.deviceID); err != nil {
		return refreshToken{}, err
	}
	var expiresAt *time.Time
	if err := q.QueryRow(ctx,
		`SELECT id, expires_at, pending, exchanged_at IS NOT NULL, revoked_at IS NOT NULL
		 FROM refresh_tokens WHERE token_hash = $1`, h[:],
	).Scan(&t.id, &expiresAt, &t.pending, &t.exchanged, &t.revoked); err != nil {
		return refreshToken{}, err
	}
	t.expiresAt = fromNull(expiresAt)
	return t, nil
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

// confirmPair records the first use of a pair of tokens of a device, the
// access token accessID and the refresh token refreshID (0 for either means
// none: identity columns start at 1). The pair, and an access token issued
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
// tokens, in DeleteExpiredTokens. The
// caller holds the device's row lock.
func confirmPair(ctx context.Context, q querier, userID, deviceID string, accessID, refreshID int64, now time.Time) error {
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
		if _, err := q.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			return err
		}
	}
	return nil
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
