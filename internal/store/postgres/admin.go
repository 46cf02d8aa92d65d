package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
)

// userOrderColumns are the SQL expressions of the sort orders of
// ListUsersPage. The user ID sorts bytewise, as in the sqlite store.
var userOrderColumns = map[store.UserOrder]string{
	store.UserOrderName:        `u.user_id COLLATE "C"`,
	store.UserOrderCreated:     `u.created_at`,
	store.UserOrderLastSeen:    `last_seen`,
	store.UserOrderAdmin:       `u.admin`,
	store.UserOrderDeactivated: `(u.deactivated_at IS NOT NULL)`,
	store.UserOrderLocked:      `(u.locked_at IS NOT NULL)`,
}

// ListUsersPage counts the matching users and reads one page of them, in
// one REPEATABLE READ transaction so that the total and the page agree.
// Each user's last-seen time is the latest of its devices'.
func (db *DB) ListUsersPage(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	where, args := userFilters(q)
	order, ok := userOrderColumns[q.OrderBy]
	if !ok {
		order = userOrderColumns[store.UserOrderName]
	}
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	page := store.UserPage{Users: []store.UserSummary{}}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users u WHERE `+where, args...).Scan(&page.Total); err != nil {
			return err
		}
		n := len(args)
		rows, err := tx.Query(ctx,
			`SELECT `+userColumnsU+`, COALESCE(d.last_seen, 'epoch'::timestamptz) AS last_seen
			 FROM users u
			 LEFT JOIN (SELECT user_id, max(last_seen_at) AS last_seen FROM devices GROUP BY user_id) d
			   ON d.user_id = u.user_id
			 WHERE `+where+`
			 ORDER BY `+order+` `+dir+`, u.user_id COLLATE "C" ASC
			 LIMIT $`+fmt.Sprint(n+1)+` OFFSET $`+fmt.Sprint(n+2),
			append(args, q.Limit, q.From)...)
		if err != nil {
			return err
		}
		page.Users, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.UserSummary, error) {
			var s store.UserSummary
			var err error
			s.User, err = scanUserAnd(row, &s.LastSeenAt)
			if s.LastSeenAt.Unix() == 0 {
				s.LastSeenAt = time.Time{}
			} else {
				s.LastSeenAt = s.LastSeenAt.UTC()
			}
			return s, err
		})
		return err
	})
	if err != nil {
		return store.UserPage{}, fmt.Errorf("postgres: list users page: %w", translate(err))
	}
	return page, nil
}

// userFilters is the WHERE clause of q's filters on users aliased u, with
// its arguments.
func userFilters(q store.UserQuery) (string, []any) {
	where := "true"
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Name != "" {
		where += ` AND lower(split_part(substr(u.user_id, 2), ':', 1)) LIKE ` + arg(store.LikePattern(q.Name)) + ` ESCAPE '\'`
	}
	if q.UserID != "" {
		where += ` AND lower(u.user_id) LIKE ` + arg(store.LikePattern(q.UserID)) + ` ESCAPE '\'`
	}
	tri := func(t store.Tri, isTrue string) {
		switch t {
		case store.TriTrue:
			where += " AND " + isTrue
		case store.TriFalse:
			where += " AND NOT " + isTrue
		}
	}
	tri(q.Deactivated, "(u.deactivated_at IS NOT NULL)")
	tri(q.Admin, "u.admin")
	tri(q.Locked, "(u.locked_at IS NOT NULL)")
	return where, args
}

// ModifyUser applies the change by the rules of store.WriteUserChange in
// one READ COMMITTED transaction, which holds the user's row lock from its
// first read.
func (db *DB) ModifyUser(ctx context.Context, c store.UserChange) (store.UserChangeResult, error) {
	var res store.UserChangeResult
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var err error
		if res, err = store.WriteUserChange(ctx, accountTx{tx}, c); err != nil {
			return err
		}
		return db.writeUserChangeEvents(ctx, tx, c.UserID, res)
	})
	if err != nil {
		return store.UserChangeResult{}, fmt.Errorf("postgres: modify user: %w", translate(err))
	}
	if len(res.LoggedOut) > 0 || res.Deactivated {
		db.eventsCommitted()
	}
	return res, nil
}

// writeUserChangeEvents writes the outbox events of what a user change
// did (nothing with the outbox off).
func (db *DB) writeUserChangeEvents(ctx context.Context, tx pgx.Tx, userID string, res store.UserChangeResult) error {
	if len(res.LoggedOut) > 0 {
		if err := db.writeEvent(ctx, tx, store.DevicesDeleted(userID, res.LoggedOut, store.ReasonPasswordChange, time.Now())); err != nil {
			return err
		}
	}
	if len(res.DeactivatedDevices) > 0 {
		if err := db.writeEvent(ctx, tx, store.DevicesDeleted(userID, res.DeactivatedDevices, store.ReasonDeactivated, time.Now())); err != nil {
			return err
		}
	}
	if res.Deactivated {
		return db.writeEvent(ctx, tx, store.UserDeactivated(userID, false, time.Now()))
	}
	return nil
}

var _ store.UserAdminTx = accountTx{}

// LockUser reads the user with a row lock held to the end of the
// transaction, so that two changes of one user run one after the other.
func (t accountTx) LockUser(ctx context.Context, userID string) (store.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1 FOR UPDATE`, userID))
	if err != nil {
		return store.User{}, translate(err)
	}
	return u, nil
}

// InsertUser stores a new user.
func (t accountTx) InsertUser(ctx context.Context, u store.User) error {
	_, err := t.tx.Exec(ctx,
		`INSERT INTO users (user_id, user_id_folded, password_hash, created_at, deactivated_at, admin, locked_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, store.FoldUserID(u.ID), u.PasswordHash, timestamp(u.CreatedAt), nullTimestamp(u.DeactivatedAt),
		u.Admin, nullTimestamp(u.LockedAt))
	return err
}

// SetAdmin sets the admin flag.
func (t accountTx) SetAdmin(ctx context.Context, userID string, admin bool) error {
	_, err := t.tx.Exec(ctx, `UPDATE users SET admin = $2 WHERE user_id = $1`, userID, admin)
	return err
}

// SetLocked locks (keeping an earlier lock's time) or unlocks the user.
// A lock fires users_notify_locked, which announces it to every replica.
func (t accountTx) SetLocked(ctx context.Context, userID string, at time.Time) error {
	_, err := t.tx.Exec(ctx,
		`UPDATE users SET locked_at = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE COALESCE(locked_at, $2) END
		 WHERE user_id = $1`, userID, nullTimestamp(at))
	return err
}

// ClearDeactivated lifts the deactivated mark.
func (t accountTx) ClearDeactivated(ctx context.Context, userID string) error {
	_, err := t.tx.Exec(ctx, `UPDATE users SET deactivated_at = NULL WHERE user_id = $1`, userID)
	return err
}

// ListThreePIDs returns the user's third-party IDs.
func (t accountTx) ListThreePIDs(ctx context.Context, userID string) ([]store.ThreePID, error) {
	return listThreePIDs(ctx, t.tx, userID)
}

// AddThreePID binds an address.
func (t accountTx) AddThreePID(ctx context.Context, tp store.ThreePID) error {
	return addThreePID(ctx, t.tx, tp)
}

// ImportUsers plans the batch (store.PlanImport) from two set queries and
// copies the new users and their addresses in with COPY, all in one READ
// COMMITTED transaction. A user or address created by someone else between
// the queries and the copy fails the batch with store.ErrConflict; running
// it again then skips what exists.
func (db *DB) ImportUsers(ctx context.Context, users []store.ImportedUser) ([]store.ImportOutcome, error) {
	var outcomes []store.ImportOutcome
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		ids := make([]string, 0, len(users))
		var media, addresses []string
		for _, u := range users {
			ids = append(ids, u.User.ID)
			for _, t := range u.ThreePIDs {
				media, addresses = append(media, string(t.Medium)), append(addresses, t.Address)
			}
		}
		exists := map[string]bool{}
		rows, err := tx.Query(ctx, `SELECT user_id FROM users WHERE user_id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range found {
			exists[id] = true
		}
		bound := map[store.ThreePIDKey]bool{}
		rows, err = tx.Query(ctx,
			`SELECT t.medium, t.address FROM user_threepids t
			 JOIN unnest($1::text[], $2::text[]) AS w(medium, address) ON w.medium = t.medium AND w.address = t.address`,
			media, addresses)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.ThreePIDKey, error) {
			var k store.ThreePIDKey
			var medium string
			err := row.Scan(&medium, &k.Address)
			k.Medium = store.Medium(medium)
			return k, err
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			bound[k] = true
		}
		var create []store.ImportedUser
		outcomes, create = store.PlanImport(users, exists, bound)
		userRows := make([][]any, 0, len(create))
		var tpRows [][]any
		for _, c := range create {
			u := c.User
			userRows = append(userRows, []any{u.ID, store.FoldUserID(u.ID), u.PasswordHash, timestamp(u.CreatedAt),
				nullTimestamp(u.DeactivatedAt), u.Admin, nullTimestamp(u.LockedAt)})
			for _, t := range c.ThreePIDs {
				tpRows = append(tpRows, []any{string(t.Medium), t.Address, u.ID, timestamp(t.AddedAt)})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"},
			[]string{"user_id", "user_id_folded", "password_hash", "created_at", "deactivated_at", "admin", "locked_at"},
			pgx.CopyFromRows(userRows)); err != nil {
			return err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"user_threepids"},
			[]string{"medium", "address", "user_id", "added_at"}, pgx.CopyFromRows(tpRows))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: import users: %w", translate(err))
	}
	return outcomes, nil
}

// CreateAdminToken stores an admin token.
func (db *DB) CreateAdminToken(ctx context.Context, t store.AdminToken) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO admin_tokens (id, token_hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.Hash[:], t.Name, timestamp(t.CreatedAt), nullTimestamp(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("postgres: create admin token: %w", translate(err))
	}
	return nil
}

const adminTokenColumns = `id, token_hash, name, created_at, expires_at`

func scanAdminToken(row pgx.Row) (store.AdminToken, error) {
	var t store.AdminToken
	var hash []byte
	var expiresAt *time.Time
	if err := row.Scan(&t.ID, &hash, &t.Name, &t.CreatedAt, &expiresAt); err != nil {
		return store.AdminToken{}, err
	}
	copy(t.Hash[:], hash)
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt = fromNull(expiresAt)
	return t, nil
}

// FindAdminToken returns the admin token with that hash, or
// store.ErrNotFound.
func (db *DB) FindAdminToken(ctx context.Context, h store.TokenHash) (store.AdminToken, error) {
	t, err := scanAdminToken(db.pool.QueryRow(ctx, `SELECT `+adminTokenColumns+` FROM admin_tokens WHERE token_hash = $1`, h[:]))
	if err != nil {
		return store.AdminToken{}, fmt.Errorf("postgres: find admin token: %w", translate(err))
	}
	return t, nil
}

// ListAdminTokens returns every admin token, oldest first.
func (db *DB) ListAdminTokens(ctx context.Context) ([]store.AdminToken, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+adminTokenColumns+` FROM admin_tokens ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list admin tokens: %w", translate(err))
	}
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AdminToken, error) { return scanAdminToken(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list admin tokens: %w", translate(err))
	}
	return tokens, nil
}

// DeleteAdminToken revokes an admin token by ID.
func (db *DB) DeleteAdminToken(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM admin_tokens WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete admin token: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete admin token: %w", store.ErrNotFound)
	}
	return nil
}

// CreateRegistrationNonce stores a registration nonce.
func (db *DB) CreateRegistrationNonce(ctx context.Context, nonce string, expiresAt time.Time) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO registration_nonces (nonce, expires_at) VALUES ($1, $2)`, nonce, timestamp(expiresAt)); err != nil {
		return fmt.Errorf("postgres: create registration nonce: %w", translate(err))
	}
	return nil
}

// ConsumeRegistrationNonce deletes the nonce; one statement, so two
// requests with the same nonce cannot both consume it.
func (db *DB) ConsumeRegistrationNonce(ctx context.Context, nonce string, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM registration_nonces WHERE nonce = $1 AND expires_at > $2`, nonce, timestamp(now))
	if err != nil {
		return fmt.Errorf("postgres: consume registration nonce: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: consume registration nonce: %w", store.ErrNotFound)
	}
	return nil
}

// RegisterUser inserts the user and writes its login in one transaction.
func (db *DB) RegisterUser(ctx context.Context, u store.User, s store.NewSession) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := (accountTx{tx}).InsertUser(ctx, u); err != nil {
			return err
		}
		return store.WriteLogin(ctx, tokenTx{tx}, s)
	})
	if err != nil {
		return fmt.Errorf("postgres: register user: %w", translate(err))
	}
	return nil
}
