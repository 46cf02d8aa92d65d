package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO users (user_id, user_id_folded, password_hash, created_at, deactivated_at, admin, locked_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			u.ID, store.FoldUserID(u.ID), u.PasswordHash, timestamp(u.CreatedAt), nullTimestamp(u.DeactivatedAt),
			u.Admin, nullTimestamp(u.LockedAt),
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
		return fmt.Errorf("postgres: create user: %w", translate(err))
	}
	return nil
}

// FindUserByID returns the user with exactly this ID, or store.ErrNotFound.
func (db *DB) FindUserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: find user: %w", translate(err))
	}
	return u, nil
}

// FindUserByLogin reads the users whose user_id_folded is store.FoldUserID(id)
// and lets store.PickLogin choose.
func (db *DB) FindUserByLogin(ctx context.Context, id string) (store.User, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+userColumns+` FROM users WHERE user_id_folded = $1`, store.FoldUserID(id))
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: find user by login: %w", translate(err))
	}
	users, err := pgx.CollectRows(rows, collectUser)
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: find user by login: %w", translate(err))
	}
	u, ok := store.PickLogin(users, id)
	if !ok {
		return store.User{}, fmt.Errorf("postgres: find user by login: %w", store.ErrNotFound)
	}
	return u, nil
}

// FindUserByThreePID returns the user the canonical address is bound to, or
// store.ErrNotFound.
func (db *DB) FindUserByThreePID(ctx context.Context, medium store.Medium, address string) (store.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx,
		`SELECT `+userColumnsU+`
		 FROM user_threepids t JOIN users u ON u.user_id = t.user_id
		 WHERE t.medium = $1 AND t.address = $2`,
		string(medium), address))
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: find user by threepid: %w", translate(err))
	}
	return u, nil
}

// ListUsers returns every user, ordered by ID bytewise (as the sqlite store
// does, whatever the database's collation).
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY user_id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", translate(err))
	}
	users, err := pgx.CollectRows(rows, collectUser)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", translate(err))
	}
	return users, nil
}

// UpdatePasswordHash replaces the user's password hash. It returns
// store.ErrNotFound if no user has that ID.
func (db *DB) UpdatePasswordHash(ctx context.Context, userID, hash string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE user_id = $1`, userID, hash)
	if err != nil {
		return fmt.Errorf("postgres: update password hash: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: update password hash: %w", store.ErrNotFound)
	}
	return nil
}

// AddThreePID binds an address to a user. It returns store.ErrConflict if
// the address is bound already and store.ErrNotFound if the user does not
// exist.
func (db *DB) AddThreePID(ctx context.Context, t store.ThreePID) error {
	if err := addThreePID(ctx, db.pool, t); err != nil {
		return fmt.Errorf("postgres: add threepid: %w", translate(err))
	}
	return nil
}

func addThreePID(ctx context.Context, q querier, t store.ThreePID) error {
	_, err := q.Exec(ctx,
		`INSERT INTO user_threepids (medium, address, user_id, added_at) VALUES ($1, $2, $3, $4)`,
		string(t.Medium), t.Address, t.UserID, timestamp(t.AddedAt))
	return err
}

// DeleteThreePID unbinds an address from the user. It returns
// store.ErrNotFound if the address is not bound to that user.
func (db *DB) DeleteThreePID(ctx context.Context, userID string, medium store.Medium, address string) error {
	tag, err := db.pool.Exec(ctx,
		`DELETE FROM user_threepids WHERE medium = $1 AND address = $2 AND user_id = $3`,
		string(medium), address, userID)
	if err != nil {
		return fmt.Errorf("postgres: delete threepid: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete threepid: %w", store.ErrNotFound)
	}
	return nil
}

// ListThreePIDs returns the addresses bound to a user, ordered by medium and
// address bytewise. A user without any, or no such user, gives none.
func (db *DB) ListThreePIDs(ctx context.Context, userID string) ([]store.ThreePID, error) {
	threepids, err := listThreePIDs(ctx, db.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list threepids: %w", translate(err))
	}
	return threepids, nil
}

// listThreePIDs is ListThreePIDs on q, returning the driver's errors.
func listThreePIDs(ctx context.Context, q querier, userID string) ([]store.ThreePID, error) {
	rows, err := q.Query(ctx,
		`SELECT medium, address, user_id, added_at FROM user_threepids
		 WHERE user_id = $1 ORDER BY medium COLLATE "C", address COLLATE "C"`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.ThreePID, error) {
		var t store.ThreePID
		var medium string
		if err := row.Scan(&medium, &t.Address, &t.UserID, &t.AddedAt); err != nil {
			return store.ThreePID{}, err
		}
		t.Medium = store.Medium(medium)
		t.AddedAt = t.AddedAt.UTC()
		return t, nil
	})
}

// collectUser is scanUser for pgx.CollectRows.
func collectUser(row pgx.CollectableRow) (store.User, error) { return scanUser(row) }

// scanUser reads the userColumns of one row.
func scanUser(row pgx.Row) (store.User, error) { return scanUserAnd(row) }

// scanUserAnd is scanUser for a row that has more columns after the user's,
// read into more.
func scanUserAnd(row pgx.Row, more ...any) (store.User, error) {
	var u store.User
	var deactivatedAt, lockedAt *time.Time
	if err := row.Scan(append([]any{&u.ID, &u.PasswordHash, &u.CreatedAt, &deactivatedAt, &u.Admin, &lockedAt}, more...)...); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.DeactivatedAt = fromNull(deactivatedAt)
	u.LockedAt = fromNull(lockedAt)
	return u, nil
}

// FindPasswordHashPrefixes returns the distinct scheme-and-cost prefixes of
// every stored password hash, in one aggregate query: the first 17 bytes of
// an "$authd-v1$" hash, the first 7 of any other. Empty hashes are skipped.
// Hashes are ASCII, so left's characters are bytes.
func (db *DB) FindPasswordHashPrefixes(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT DISTINCT CASE WHEN left(password_hash, 10) = '$authd-v1$'
		   THEN left(password_hash, 17) ELSE left(password_hash, 7) END COLLATE "C" AS prefix
		 FROM users WHERE password_hash <> '' ORDER BY prefix`)
	if err != nil {
		return nil, fmt.Errorf("postgres: find password hash prefixes: %w", translate(err))
	}
	prefixes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: find password hash prefixes: %w", translate(err))
	}
	return prefixes, nil
}

// RecordLoginNetwork records a login network (see store.UserStore) in one
// transaction that holds the user's row lock (FOR NO KEY UPDATE), so that
// concurrent records of one user keep the bound.
func (db *DB) RecordLoginNetwork(ctx context.Context, userID, network string, at time.Time) error {
	if len(network) > store.MaxLoginNetworkLen {
		return fmt.Errorf("postgres: record login network: %w", store.ErrLoginNetworkTooLong)
	}
	err := pgx.BeginTxFunc(ctx, db.pool, readCommitted, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx,
			`SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE`, userID,
		).Scan(&one); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO login_networks (user_id, network, last_success_at) VALUES ($1, $2, $3)
			 ON CONFLICT (user_id, network)
			 DO UPDATE SET last_success_at = GREATEST(login_networks.last_success_at, EXCLUDED.last_success_at)`,
			userID, network, timestamp(at),
		); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`DELETE FROM login_networks WHERE user_id = $1 AND network NOT IN
			 (SELECT network FROM login_networks WHERE user_id = $1
			  ORDER BY last_success_at DESC, network LIMIT $2)`,
			userID, store.MaxLoginNetworks)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record login network: %w", translate(err))
	}
	return nil
}

// FindLoginNetwork returns nil if the user logged in successfully from the
// network at or after since, and store.ErrNotFound otherwise. It is one
// lookup of the primary key.
func (db *DB) FindLoginNetwork(ctx context.Context, userID, network string, since time.Time) error {
	var one int
	if err := db.pool.QueryRow(ctx,
		`SELECT 1 FROM login_networks WHERE user_id = $1 AND network = $2 AND last_success_at >= $3`,
		userID, network, timestamp(since),
	).Scan(&one); err != nil {
		return fmt.Errorf("postgres: find login network: %w", translate(err))
	}
	return nil
}
