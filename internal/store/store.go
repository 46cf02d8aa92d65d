// Package store is authd's domain: users, their third-party IDs, devices
// and access tokens, the Store interface that persists them, and the
// sentinel errors every implementation returns. It imports nothing else of
// authd; the concrete stores live in the postgres and sqlite subpackages.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned when the requested user, device, third-party ID or
// token does not exist. Not found is always an error, never a zero value.
var ErrNotFound = errors.New("not found")

// ErrTokenExpired is returned by RefreshSession for a refresh token past its
// expiry. Nothing is written.
var ErrTokenExpired = errors.New("token expired")

// ErrTokenReplayed is returned by RefreshSession for a refresh token that was
// exchanged and then superseded (its successor was used) and is presented
// again, or for the refresh token of a pending pair that lost to a sibling:
// a sign that it was stolen. The store has already deleted the device,
// and with it every token of the session, when it returns this.
var ErrTokenReplayed = errors.New("refresh token replayed")

// ErrConflict is returned when a create would violate uniqueness, such as a
// user ID or third-party address that is already taken.
var ErrConflict = errors.New("conflict")

// ErrUnavailable is returned (wrapping the driver's error) when the database
// cannot be reached or cannot serve right now: the connection was refused or
// lost, the server is starting or shutting down, or the file is locked or
// unreadable. It is transient: the same call may succeed later. A call whose
// context ended returns the context's error instead.
var ErrUnavailable = errors.New("database unavailable")

// User is a local account.
type User struct {
	// ID is the canonical, fully qualified Matrix user ID (@alice:example.org).
	ID string
	// PasswordHash is the versioned password hash (see internal/password).
	PasswordHash string
	CreatedAt    time.Time
	// DeactivatedAt is zero while the account is active.
	DeactivatedAt time.Time
}

// Deactivated reports whether the account has been deactivated.
func (u User) Deactivated() bool { return !u.DeactivatedAt.IsZero() }

// FoldUserID returns the key under which a user ID is matched
// case-insensitively at login. Matching is on the whole MXID, as Synapse does.
func FoldUserID(id string) string { return strings.ToLower(id) }

// Medium names the kind of a third-party identifier.
type Medium string

// The third-party media authd knows.
const (
	MediumEmail  Medium = "email"
	MediumMSISDN Medium = "msisdn"
)

// ThreePID binds a canonical third-party address to a user.
type ThreePID struct {
	Medium  Medium
	Address string // canonical form, e.g. a lower-cased email address
	UserID  string
	AddedAt time.Time
}

// Device is a client session slot of a user. Access tokens belong to a
// device; deleting the device revokes them.
type Device struct {
	UserID      string
	ID          string
	DisplayName string
	CreatedAt   time.Time
	LastSeenAt  time.Time
}

// TokenHash is the SHA-256 digest of a bearer token. Stores keep only the
// digest, never the token itself.
type TokenHash [32]byte

// AccessToken is a stored access token.
type AccessToken struct {
	Hash      TokenHash
	UserID    string
	DeviceID  string
	CreatedAt time.Time
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
	// Pending is true for the unused half of a pair issued by a refresh:
	// until the new access or refresh token is first used, the refresh token
	// it was issued for stays valid, so that a client that lost the response
	// can retry (spec, Refreshing access tokens). ConfirmAccessToken ends it.
	Pending bool
}

// RefreshToken is a stored refresh token. It is always paired with the
// access token issued with it.
type RefreshToken struct {
	Hash      TokenHash
	UserID    string
	DeviceID  string
	CreatedAt time.Time
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
}

// Refresh is the exchange of a refresh token for a new pair.
type Refresh struct {
	// Old is the hash of the refresh token presented.
	Old TokenHash
	// Access and Refresh are the new pair (hash, created and expiry times);
	// the store fills in their user and device from the old token.
	Access  AccessToken
	Refresh RefreshToken
	Now     time.Time
	// Immediate is the r0.2.0 /tokenrefresh exchange: the old refresh token
	// and the access token issued with it are revoked at once, and the new
	// pair is confirmed from the start. Otherwise (v1.3 /refresh) the new
	// pair is pending and the old token stays valid until the pair is used.
	Immediate bool
}

// Expired reports whether the token has expired at now.
func (t AccessToken) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// NewSession is what a successful login writes: the device (created, or
// reused when the user already has one with that ID) and its access token.
type NewSession struct {
	Device      Device // UserID, ID, DisplayName and CreatedAt/LastSeenAt (now)
	AccessToken AccessToken
	// RefreshToken, when not nil, is stored paired with the access token.
	RefreshToken *RefreshToken
}

// Session is what an access token resolves to.
type Session struct {
	User        User
	AccessToken AccessToken
}

// UserStore persists users and their third-party IDs.
type UserStore interface {
	// CreateUser stores a new user, and binds the given third-party IDs to it
	// in the same transaction. It returns ErrConflict if the user ID, or any of
	// the addresses, is taken; then nothing is written.
	CreateUser(ctx context.Context, u User, threepids ...ThreePID) error
	// FindUserByID returns the user with exactly this ID, or ErrNotFound.
	FindUserByID(ctx context.Context, id string) (User, error)
	// FindUserByLogin matches id case-insensitively against the whole user ID
	// (see FoldUserID). With one match it returns it; with several it returns
	// the exact match if there is one. Otherwise it returns ErrNotFound.
	FindUserByLogin(ctx context.Context, id string) (User, error)
	// FindUserByThreePID returns the user the canonical address is bound to,
	// or ErrNotFound.
	FindUserByThreePID(ctx context.Context, medium Medium, address string) (User, error)
	// ListUsers returns every user, ordered by ID.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdatePasswordHash replaces the user's password hash. It returns
	// ErrNotFound if no user has that ID.
	UpdatePasswordHash(ctx context.Context, userID, hash string) error
	// DeactivateUser marks the user deactivated at the given time and, in the
	// same transaction, deletes every device and token of the user. It returns
	// ErrNotFound if no user has that ID. Deactivating twice keeps the first time.
	DeactivateUser(ctx context.Context, userID string, at time.Time) error
	// AddThreePID binds an address to a user. It returns ErrConflict if the
	// address is bound already and ErrNotFound if the user does not exist.
	AddThreePID(ctx context.Context, t ThreePID) error
	// DeleteThreePID unbinds an address. It returns ErrNotFound if it was not bound.
	DeleteThreePID(ctx context.Context, medium Medium, address string) error
	// ListThreePIDs returns the addresses bound to a user, ordered by medium
	// and address.
	ListThreePIDs(ctx context.Context, userID string) ([]ThreePID, error)
	// FindPasswordHashPrefixes returns the distinct scheme-and-cost prefixes
	// of the stored password hashes of every user, deactivated or not, in
	// byte order: the first 17 bytes of a hash that starts with "$authd-v1$"
	// (such as "$authd-v1$$2a$12$"), the first 7 of any other (such as
	// "$2b$10$"). Users without a password hash are skipped.
	FindPasswordHashPrefixes(ctx context.Context) ([]string, error)
	// RecordLoginNetwork records a successful login of the user from a
	// client network at the given time (kept if a later one is recorded
	// already). The network is an opaque key of at most MaxLoginNetworkLen
	// bytes. At most MaxLoginNetworks networks are kept per user: the
	// least recently successful beyond that are deleted, in the same
	// transaction. It returns ErrNotFound if the user does not exist.
	RecordLoginNetwork(ctx context.Context, userID, network string, at time.Time) error
	// FindLoginNetwork returns nil if the user logged in successfully from
	// the network at or after since, and ErrNotFound otherwise.
	FindLoginNetwork(ctx context.Context, userID, network string, since time.Time) error
}

// MaxLoginNetworks is how many login networks a store keeps per user.
const MaxLoginNetworks = 16

// MaxLoginNetworkLen is the longest login network key, in bytes.
const MaxLoginNetworkLen = 64

// ErrLoginNetworkTooLong is returned by RecordLoginNetwork for a network
// key longer than MaxLoginNetworkLen. Nothing is written.
var ErrLoginNetworkTooLong = errors.New("login network key too long")

// SessionStore persists devices and access tokens.
type SessionStore interface {
	// CreateSession writes a login in one transaction. If the user has no
	// device with that ID it is created; if it has one, the device is kept
	// (its display name unchanged, its last-seen time updated) and every
	// earlier access and refresh token of that device is revoked. Then the
	// access token, and the refresh token if any, are stored (confirmed, not
	// pending). It returns ErrNotFound if the user does not exist and
	// ErrConflict if a token hash is taken; then nothing is written.
	CreateSession(ctx context.Context, s NewSession) error
	// RefreshSession exchanges a refresh token for the new pair in r, in one
	// transaction serialised per device. If the presented token is itself
	// pending, its pair is confirmed first (as ConfirmAccessToken). It
	// returns the new access token with its user. Errors: ErrNotFound for an
	// unknown token or one superseded before it was ever exchanged;
	// ErrTokenExpired for an expired one; ErrTokenReplayed (after deleting the
	// device) for one that was exchanged and then superseded, by a confirmed
	// successor or by an Immediate exchange, and for the refresh token of a
	// pending pair that lost to a sibling (kept as a tombstone: a client that
	// retried never received the losing pair, so whoever presents it is the
	// client whose pair a thief's beat, or the thief); with ErrTokenReplayed
	// the Session's AccessToken names the deleted device (UserID, DeviceID)
	// and nothing else. Of the errors, only ErrTokenReplayed writes anything.
	RefreshSession(ctx context.Context, r Refresh) (Session, error)
	// ConfirmAccessToken records the first use of a pending access token: its
	// pair stays; every other access token of the device is deleted; every
	// other refresh token of the device is revoked (kept, marked revoked at
	// now, if it was ever exchanged or is pending, so that a replay is
	// recognised; deleted otherwise). It does nothing for a confirmed token, and returns
	// ErrNotFound if the token no longer exists (another pair won).
	ConfirmAccessToken(ctx context.Context, h TokenHash, now time.Time) error
	// FindSessionByAccessToken returns the token with that hash and its user,
	// expired or not, or ErrNotFound.
	FindSessionByAccessToken(ctx context.Context, h TokenHash) (Session, error)
	// FindDevice returns one device of a user, or ErrNotFound.
	FindDevice(ctx context.Context, userID, deviceID string) (Device, error)
	// ListDevices returns the devices of a user, ordered by device ID.
	ListDevices(ctx context.Context, userID string) ([]Device, error)
	// DeleteDevice deletes a device and every token of it. It returns
	// ErrNotFound if the user has no such device.
	DeleteDevice(ctx context.Context, userID, deviceID string) error
	// DeleteAllDevices deletes every device and token of a user and returns
	// how many devices it deleted (zero is not an error).
	DeleteAllDevices(ctx context.Context, userID string) (int, error)
	// CountActiveSessions returns how many devices hold an access token that
	// has not expired at now (no expiry, or one after now), pending or not.
	// A device with several such tokens (a refresh not yet confirmed) counts
	// once.
	CountActiveSessions(ctx context.Context, now time.Time) (int, error)
}

// TokenSweeper deletes tokens nobody can use any more. It is the one
// method the periodic sweep inside serve needs.
type TokenSweeper interface {
	// DeleteExpiredTokens deletes access and refresh tokens that expired
	// before the cutoff, and revoked refresh tokens revoked before it, and
	// returns how many rows it deleted.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error)
}

// Store is everything authd persists.
type Store interface {
	UserStore
	SessionStore
	TokenSweeper
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Revocation names tokens revoked by another process: every access token of
// DeviceID, or of every device of UserID when DeviceID is empty. A
// Revocation with an empty UserID names every token (a notice the listener
// could not read, or one that revoked everything): drop all of them.
type Revocation struct{ UserID, DeviceID string }

// RevocationListener is implemented by stores that broadcast revocations
// (Postgres through NOTIFY, SQLite through a polled table): every
// revocation of an access token, committed by any process on the database,
// is announced to every listener.
type RevocationListener interface {
	// ListenRevocations calls revoked for each revocation committed by any
	// process, until ctx ends. subscribed is called with true once the
	// subscription is live (every revocation committed after it is
	// delivered), and with false and the error whenever it is lost or an
	// attempt to subscribe fails; it then reconnects with backoff (capped at
	// a few seconds) and calls subscribed(true, nil) again. Revocations
	// committed while it is not subscribed are never delivered, so a
	// consumer must stop trusting what it cached from subscribed(false) to
	// the next subscribed(true). When ctx ends while it is subscribed, it
	// calls subscribed(false, ctx.Err()); then it returns. revoked and
	// subscribed are called from one goroutine, one at a time.
	ListenRevocations(ctx context.Context, revoked func(Revocation), subscribed func(ok bool, err error))
}

// KeepSubscribed is the loop of a ListenRevocations: it calls subscribe
// until ctx ends, waiting between two calls from backoffMin, doubling up to
// backoffMax (back to backoffMin after a success). subscribe connects,
// calls live once every later revocation will be delivered, delivers them
// until it fails, and returns why. KeepSubscribed reports each live and
// each failure to subscribed, and a ctx ending while live as
// subscribed(false, ctx.Err()), as RevocationListener promises.
func KeepSubscribed(ctx context.Context, backoffMin, backoffMax time.Duration,
	subscribe func(ctx context.Context, live func()) error, subscribed func(ok bool, err error)) {
	backoff := backoffMin
	for {
		live := false
		err := subscribe(ctx, func() {
			live = true
			backoff = backoffMin
			subscribed(true, nil)
		})
		if ctx.Err() != nil {
			if live {
				subscribed(false, ctx.Err())
			}
			return
		}
		subscribed(false, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// Schema is the migration state of a store's database.
type Schema struct {
	Version uint // the applied version, 0 when none
	Latest  uint // the newest version this build ships
	Dirty   bool // a migration failed halfway
}

// Current reports whether the schema is fully migrated and clean.
func (s Schema) Current() bool { return !s.Dirty && s.Version == s.Latest }

// Migrator is implemented by stores whose schema authd manages.
type Migrator interface {
	// MigrateUp applies every pending migration.
	MigrateUp(ctx context.Context) error
	// SchemaStatus reports the applied and the newest schema version.
	SchemaStatus(ctx context.Context) (Schema, error)
}
