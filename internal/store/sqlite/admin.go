package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// userOrderColumns are the SQL expressions of the sort orders of
// ListUsersPage. SQLite compares text bytewise.
var userOrderColumns = map[store.UserOrder]string{
	store.UserOrderName:        `u.user_id`,
	store.UserOrderCreated:     `u.created_at`,
	store.UserOrderLastSeen:    `last_seen`,
	store.UserOrderAdmin:       `u.admin`,
	store.UserOrderDeactivated: `(u.deactivated_at IS NOT NULL)`,
	store.UserOrderLocked:      `(u.locked_at IS NOT NULL)`,
}

// ListUsersPage counts the matching users and reads one page of them in
// one transaction, so that the total and the page agree (an operator's
// listing is rare enough to take the write lock for that). Each user's
// last-seen time is the latest of its devices'.
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users u WHERE `+where, args...).Scan(&page.Total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT `+userColumnsU+`, COALESCE(d.last_seen, 0) AS last_seen
			 FROM users u
			 LEFT JOIN (SELECT user_id, max(last_seen_at) AS last_seen FROM devices GROUP BY user_id) d
			   ON d.user_id = u.user_id
			 WHERE `+where+`
			 ORDER BY `+order+` `+dir+`, u.user_id ASC
			 LIMIT ? OFFSET ?`,
			append(args, q.Limit, q.From)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s store.UserSummary
			var lastSeen int64
			if s.User, err = scanUserAnd(rows, &lastSeen); err != nil {
				return err
			}
			if lastSeen != 0 {
				s.LastSeenAt = fromMicros(lastSeen)
			}
			page.Users = append(page.Users, s)
		}
		return rows.Err()
	})
	if err != nil {
		return store.UserPage{}, fmt.Errorf("sqlite: list users page: %w", translate(err))
	}
	return page, nil
}

// userFilters is the WHERE clause of q's filters on users aliased u, with
// its arguments.
func userFilters(q store.UserQuery) (string, []any) {
	where := "1"
	var args []any
	if q.Name != "" {
		where += ` AND lower(substr(u.user_id, 2, instr(u.user_id, ':') - 2)) LIKE ? ESCAPE '\'`
		args = append(args, store.LikePattern(q.Name))
	}
	if q.UserID != "" {
		where += ` AND lower(u.user_id) LIKE ? ESCAPE '\'`
		args = append(args, store.LikePattern(q.UserID))
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
// one IMMEDIATE transaction.
func (db *DB) ModifyUser(ctx context.Context, c store.UserChange) (store.UserChangeResult, error) {
	var res store.UserChangeResult
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = store.WriteUserChange(ctx, accountTx{tx}, c); err != nil {
			return err
		}
		if len(res.LoggedOut) > 0 {
			if err := db.writeEvent(ctx, tx, store.DevicesDeleted(c.UserID, res.LoggedOut, store.ReasonPasswordChange, time.Now())); err != nil {
				return err
			}
		}
		if len(res.DeactivatedDevices) > 0 {
			if err := db.writeEvent(ctx, tx, store.DevicesDeleted(c.UserID, res.DeactivatedDevices, store.ReasonDeactivated, time.Now())); err != nil {
				return err
			}
		}
		if res.Deactivated {
			return db.writeEvent(ctx, tx, store.UserDeactivated(c.UserID, false, time.Now()))
		}
		return nil
	})
	if err != nil {
		return store.UserChangeResult{}, fmt.Errorf("sqlite: modify user: %w", translate(err))
	}
	if len(res.LoggedOut) > 0 || res.Deactivated {
		db.eventsCommitted()
	}
	return res, nil
}

var _ store.UserAdminTx = accountTx{}

// LockUser reads the user; the IMMEDIATE transaction already holds the
// database's write lock.
func (t accountTx) LockUser(ctx context.Context, userID string) (store.User, error) {
	u, err := scanUser(t.tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
	if err != nil {
		return store.User{}, translate(err)
	}
	return u, nil
}

// InsertUser stores a new user.
func (t accountTx) InsertUser(ctx context.Context, u store.User) error {
	_, err := t.tx.ExecContext(ctx,
		`INSERT INTO users (user_id, user_id_folded, password_hash, created_at, deactivated_at, admin, locked_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, store.FoldUserID(u.ID), u.PasswordHash, micros(u.CreatedAt), nullMicros(u.DeactivatedAt),
		u.Admin, nullMicros(u.LockedAt))
	return err
}

// SetAdmin sets the admin flag.
func (t accountTx) SetAdmin(ctx context.Context, userID string, admin bool) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE users SET admin = ? WHERE user_id = ?`, admin, userID)
	return err
}

// SetLocked locks (keeping an earlier lock's time) or unlocks the user. A
// lock fires users_locked, which records it for every replica's poller.
func (t accountTx) SetLocked(ctx context.Context, userID string, at time.Time) error {
	var err error
	if at.IsZero() {
		_, err = t.tx.ExecContext(ctx, `UPDATE users SET locked_at = NULL WHERE user_id = ?`, userID)
	} else {
		_, err = t.tx.ExecContext(ctx, `UPDATE users SET locked_at = COALESCE(locked_at, ?) WHERE user_id = ?`, micros(at), userID)
	}
	return err
}

// ClearDeactivated lifts the deactivated mark.
func (t accountTx) ClearDeactivated(ctx context.Context, userID string) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE users SET deactivated_at = NULL WHERE user_id = ?`, userID)
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

// ImportUsers plans the batch (store.PlanImport) from what the database
// holds and creates the new users, all in one IMMEDIATE transaction with
// prepared statements: SQLite runs them in-process, a row at a time.
func (db *DB) ImportUsers(ctx context.Context, users []store.ImportedUser) ([]store.ImportOutcome, error) {
	var outcomes []store.ImportOutcome
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		exists := map[string]bool{}
		bound := map[store.ThreePIDKey]bool{}
		userStmt, err := tx.PrepareContext(ctx, `SELECT count(*) FROM users WHERE user_id = ?`)
		if err != nil {
			return err
		}
		defer userStmt.Close()
		tpStmt, err := tx.PrepareContext(ctx, `SELECT count(*) FROM user_threepids WHERE medium = ? AND address = ?`)
		if err != nil {
			return err
		}
		defer tpStmt.Close()
		for _, u := range users {
			var n int
			if err := userStmt.QueryRowContext(ctx, u.User.ID).Scan(&n); err != nil {
				return err
			}
			exists[u.User.ID] = n > 0
			for _, t := range u.ThreePIDs {
				if err := tpStmt.QueryRowContext(ctx, string(t.Medium), t.Address).Scan(&n); err != nil {
					return err
				}
				bound[store.ThreePIDKey{Medium: t.Medium, Address: t.Address}] = n > 0
			}
		}
		var create []store.ImportedUser
		outcomes, create = store.PlanImport(users, exists, bound)
		insUser, err := tx.PrepareContext(ctx,
			`INSERT INTO users (user_id, user_id_folded, password_hash, created_at, deactivated_at, admin, locked_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insUser.Close()
		insTP, err := tx.PrepareContext(ctx,
			`INSERT INTO user_threepids (medium, address, user_id, added_at) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insTP.Close()
		for _, c := range create {
			u := c.User
			if _, err := insUser.ExecContext(ctx, u.ID, store.FoldUserID(u.ID), u.PasswordHash, micros(u.CreatedAt),
				nullMicros(u.DeactivatedAt), u.Admin, nullMicros(u.LockedAt)); err != nil {
				return err
			}
			for _, t := range c.ThreePIDs {
				if _, err := insTP.ExecContext(ctx, string(t.Medium), t.Address, u.ID, micros(t.AddedAt)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: import users: %w", translate(err))
	}
	return outcomes, nil
}

// CreateAdminToken stores an admin token.
func (db *DB) CreateAdminToken(ctx context.Context, t store.AdminToken) error {
	_, err := db.db.ExecContext(ctx,
		`INSERT INTO admin_tokens (id, token_hash, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Hash[:], t.Name, micros(t.CreatedAt), nullMicros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("sqlite: create admin token: %w", translate(err))
	}
	return nil
}

const adminTokenColumns = `id, token_hash, name, created_at, expires_at`

func scanAdminToken(row scanner) (store.AdminToken, error) {
	var t store.AdminToken
	var hash []byte
	var createdAt int64
	var expiresAt sql.NullInt64
	if err := row.Scan(&t.ID, &hash, &t.Name, &createdAt, &expiresAt); err != nil {
		return store.AdminToken{}, err
	}
	copy(t.Hash[:], hash)
	t.CreatedAt = fromMicros(createdAt)
	t.ExpiresAt = fromNullMicros(expiresAt)
	return t, nil
}

// FindAdminToken returns the admin token with that hash, or
// store.ErrNotFound.
func (db *DB) FindAdminToken(ctx context.Context, h store.TokenHash) (store.AdminToken, error) {
	t, err := scanAdminToken(db.db.QueryRowContext(ctx, `SELECT `+adminTokenColumns+` FROM admin_tokens WHERE token_hash = ?`, h[:]))
	if err != nil {
		return store.AdminToken{}, fmt.Errorf("sqlite: find admin token: %w", translate(err))
	}
	return t, nil
}

// ListAdminTokens returns every admin token, oldest first.
func (db *DB) ListAdminTokens(ctx context.Context) ([]store.AdminToken, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+adminTokenColumns+` FROM admin_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list admin tokens: %w", translate(err))
	}
	defer rows.Close()
	tokens := []store.AdminToken{}
	for rows.Next() {
		t, err := scanAdminToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list admin tokens: %w", translate(err))
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list admin tokens: %w", translate(err))
	}
	return tokens, nil
}

// DeleteAdminToken revokes an admin token by ID.
func (db *DB) DeleteAdminToken(ctx context.Context, id string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM admin_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete admin token: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("sqlite: delete admin token: %w", translate(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete admin token: %w", store.ErrNotFound)
	}
	return nil
}

// CreateRegistrationNonce stores a registration nonce.
func (db *DB) CreateRegistrationNonce(ctx context.Context, nonce string, expiresAt time.Time) error {
	if _, err := db.db.ExecContext(ctx, `INSERT INTO registration_nonces (nonce, expires_at) VALUES (?, ?)`, nonce, micros(expiresAt)); err != nil {
		return fmt.Errorf("sqlite: create registration nonce: %w", translate(err))
	}
	return nil
}

// ConsumeRegistrationNonce deletes the nonce in one statement.
func (db *DB) ConsumeRegistrationNonce(ctx context.Context, nonce string, now time.Time) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM registration_nonces WHERE nonce = ? AND expires_at > ?`, nonce, micros(now))
	if err != nil {
		return fmt.Errorf("sqlite: consume registration nonce: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("sqlite: consume registration nonce: %w", translate(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: consume registration nonce: %w", store.ErrNotFound)
	}
	return nil
}

// RegisterUser inserts the user and writes its login in one IMMEDIATE
// transaction.
func (db *DB) RegisterUser(ctx context.Context, u store.User, s store.NewSession) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := (accountTx{tx}).InsertUser(ctx, u); err != nil {
			return err
		}
		return store.WriteLogin(ctx, tokenTx{tx}, s)
	})
	if err != nil {
		return fmt.Errorf("sqlite: register user: %w", translate(err))
	}
	return nil
}
