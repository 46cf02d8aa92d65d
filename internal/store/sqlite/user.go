package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/authd/authd/internal/store"
)

// userColumns are the columns scanUser reads, in its order.
const userColumns = `user_id, password_hash, created_at, deactivated_at, admin, locked_at`

// userColumnsU is userColumns of the table aliased u.
const userColumnsU = `u.user_id, u.password_hash, u.created_at, u.deactivated_at, u.admin, u.locked_at`

// CreateUser stores a new user and binds the given third-party IDs to it, in
// one transaction. Each ThreePID is bound to u.ID whatever its UserID says.
// It returns store.ErrConflict if the user ID or an address is taken; then
// nothing is written.
func (db *DB) CreateUser(ctx context.Context, u store.User, threepids ...store.ThreePID) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users (user_id, user_id_folded, password_hash, created_at, deactivated_at, admin, locked_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ID, store.FoldUserID(u.ID), u.PasswordHash, micros(u.CreatedAt), nullMicros(u.DeactivatedAt),
			u.Admin, nullMicros(u.LockedAt),
		); err != nil {
			return err
		}
		for _, t := range threepids {
			t.UserID = u.ID
			if err := addThreePID(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", translate(err))
	}
	return nil
}

// FindUserByID returns the user with exactly this ID, or store.ErrNotFound.
func (db *DB) FindUserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(db.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: find user: %w", translate(err))
	}
	return u, nil
}

// FindUserByLogin reads the users whose user_id_folded is store.FoldUserID(id)
// and lets store.PickLogin choose.
func (db *DB) FindUserByLogin(ctx context.Context, id string) (store.User, error) {
	users, err := queryUsers(ctx, db.reads(),
		`SELECT `+userColumns+` FROM users WHERE user_id_folded = ?`, store.FoldUserID(id))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: find user by login: %w", translate(err))
	}
	u, ok := store.PickLogin(users, id)
	if !ok {
		return store.User{}, fmt.Errorf("sqlite: find user by login: %w", store.ErrNotFound)
	}
	return u, nil
}

// FindUserByThreePID returns the user the canonical address is bound to, or
// store.ErrNotFound.
func (db *DB) FindUserByThreePID(ctx context.Context, medium store.Medium, address string) (store.User, error) {
	u, err := scanUser(db.reads().QueryRowContext(ctx,
		`SELECT `+userColumnsU+`
		 FROM user_threepids t JOIN users u ON u.user_id = t.user_id
		 WHERE t.medium = ? AND t.address = ?`,
		string(medium), address))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: find user by threepid: %w", translate(err))
	}
	return u, nil
}

// ListUsers returns every user, ordered by ID bytewise.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	users, err := queryUsers(ctx, db.db, `SELECT `+userColumns+` FROM users ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", translate(err))
	}
	return users, nil
}

// UpdatePasswordHash replaces the user's password hash. It returns
// store.ErrNotFound if no user has that ID.
func (db *DB) UpdatePasswordHash(ctx context.Context, userID, hash string) error {
	res, err := db.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE user_id = ?`, hash, userID)
	if err != nil {
		return fmt.Errorf("sqlite: update password hash: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("sqlite: update password hash: %w", translate(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: update password hash: %w", store.ErrNotFound)
	}
	return nil
}

// AddThreePID binds an address to a user. It returns store.ErrConflict if
// the address is bound already and store.ErrNotFound if the user does not
// exist.
func (db *DB) AddThreePID(ctx context.Context, t store.ThreePID) error {
	if err := addThreePID(ctx, db.db, t); err != nil {
		return fmt.Errorf("sqlite: add threepid: %w", translate(err))
	}
	return nil
}

func addThreePID(ctx context.Context, q querier, t store.ThreePID) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO user_threepids (medium, address, user_id, added_at) VALUES (?, ?, ?, ?)`,
		string(t.Medium), t.Address, t.UserID, micros(t.AddedAt))
	return err
}

// DeleteThreePID unbinds an address from the user. It returns
// store.ErrNotFound if the address is not bound to that user.
func (db *DB) DeleteThreePID(ctx context.Context, userID string, medium store.Medium, address string) error {
	res, err := db.db.ExecContext(ctx,
		`DELETE FROM user_threepids WHERE medium = ? AND address = ? AND user_id = ?`,
		string(medium), address, userID)
	if err != nil {
		return fmt.Errorf("sqlite: delete threepid: %w", translate(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("sqlite: delete threepid: %w", translate(err))
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete threepid: %w", store.ErrNotFound)
	}
	return nil
}

// ListThreePIDs returns the addresses bound to a user, ordered by medium and
// address bytewise. A user without any, or no such user, gives none.
func (db *DB) ListThreePIDs(ctx context.Context, userID string) ([]store.ThreePID, error) {
	threepids, err := listThreePIDs(ctx, db.db, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list threepids: %w", translate(err))
	}
	return threepids, nil
}

// listThreePIDs is ListThreePIDs on q, returning the driver's errors.
func listThreePIDs(ctx context.Context, q querier, userID string) ([]store.ThreePID, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT medium, address, user_id, added_at FROM user_threepids
		 WHERE user_id = ? ORDER BY medium, address`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	threepids := []store.ThreePID{}
	for rows.Next() {
		var t store.ThreePID
		var medium string
		var addedAt int64
		if err := rows.Scan(&medium, &t.Address, &t.UserID, &addedAt); err != nil {
			return nil, err
		}
		t.Medium = store.Medium(medium)
		t.AddedAt = fromMicros(addedAt)
		threepids = append(threepids, t)
	}
	return threepids, rows.Err()
}

// queryUsers runs a query selecting userColumns.
func queryUsers(ctx context.Context, q querier, query string, args ...any) ([]store.User, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	users := []store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanUser reads the userColumns of one row.
func scanUser(row scanner) (store.User, error) { return scanUserAnd(row) }

// scanUserAnd is scanUser for a row that has more columns after the user's,
// read into more.
func scanUserAnd(row scanner, more ...any) (store.User, error) {
	var u store.User
	var createdAt int64
	var deactivatedAt, lockedAt sql.NullInt64
	if err := row.Scan(append([]any{&u.ID, &u.PasswordHash, &createdAt, &deactivatedAt, &u.Admin, &lockedAt}, more...)...); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = fromMicros(createdAt)
	u.DeactivatedAt = fromNullMicros(deactivatedAt)
	u.LockedAt = fromNullMicros(lockedAt)
	return u, nil
}

// FindPasswordHashPrefixes returns the distinct scheme-and-cost prefixes of
// every stored password hash, in one aggregate query: the first 17 bytes of
// an "$authd-v1$" hash, the first 7 of any other. Empty hashes are skipped.
// Hashes are ASCII, so substr's characters are bytes.
func (db *DB) FindPasswordHashPrefixes(ctx context.Context) ([]string, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT DISTINCT CASE WHEN substr(password_hash, 1, 10) = '$authd-v1$'
		   THEN substr(password_hash, 1, 17) ELSE substr(password_hash, 1, 7) END AS prefix
		 FROM users WHERE password_hash <> '' ORDER BY prefix`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find password hash prefixes: %w", translate(err))
	}
	defer rows.Close()
	var prefixes []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("sqlite: find password hash prefixes: %w", translate(err))
		}
		prefixes = append(prefixes, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: find password hash prefixes: %w", translate(err))
	}
	return prefixes, nil
}

// RecordLoginNetwork records a login network (see store.UserStore) in one
// IMMEDIATE transaction.
func (db *DB) RecordLoginNetwork(ctx context.Context, userID, network string, at time.Time) error {
	if len(network) > store.MaxLoginNetworkLen {
		return fmt.Errorf("sqlite: record login network: %w", store.ErrLoginNetworkTooLong)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO login_networks (user_id, network, last_success_at) VALUES (?, ?, ?)
			 ON CONFLICT (user_id, network)
			 DO UPDATE SET last_success_at = max(last_success_at, excluded.last_success_at)`,
			userID, network, micros(at),
		); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`DELETE FROM login_networks WHERE user_id = ? AND network NOT IN
			 (SELECT network FROM login_networks WHERE user_id = ?
			  ORDER BY last_success_at DESC, network LIMIT ?)`,
			userID, userID, store.MaxLoginNetworks)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: record login network: %w", translate(err))
	}
	return nil
}

// FindLoginNetwork returns nil if the user logged in successfully from the
// network at or after since, and store.ErrNotFound otherwise. It is one
// lookup of the primary key.
func (db *DB) FindLoginNetwork(ctx context.Context, userID, network string, since time.Time) error {
	var one int
	if err := db.reads().QueryRowContext(ctx,
		`SELECT 1 FROM login_networks WHERE user_id = ? AND network = ? AND last_success_at >= ?`,
		userID, network, micros(since),
	).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: find login network: %w", translate(err))
	}
	return nil
}
