package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a local account.
type User struct {
	// ID is the canonical, fully qualified Matrix user ID (@alice:example.org).
	ID string
	// PasswordHash is the versioned password hash (see internal/password).
	PasswordHash string
	CreatedAt    time.Time
	// DeactivatedAt is zero while the account is active.
	DeactivatedAt time.Time
	// Admin is true for a server administrator: the user's ordinary access
	// tokens authorise the admin API.
	Admin bool
	// LockedAt is zero while the account is not locked. A locked account
	// keeps its sessions, but cannot log in, and every request of it but
	// logout is refused until it is unlocked (spec, Account locking).
	LockedAt time.Time
}

// Deactivated reports whether the account has been deactivated.
func (u User) Deactivated() bool { return !u.DeactivatedAt.IsZero() }

// Locked reports whether the account is locked.
func (u User) Locked() bool { return !u.LockedAt.IsZero() }

// MaxUserIDLen is the longest user ID, in bytes (spec: 255).
const MaxUserIDLen = 255

// NewUserID builds the ID of a new user on serverName from a localpart, or
// from a full ID on that server, holding it to the spec's grammar for new
// IDs: a-z 0-9 . _ = - / + and at most MaxUserIDLen bytes in all. It does
// not lower-case: callers that do (the CLI, like Synapse's registration)
// do so first, and the admin API refuses upper case as Synapse's does.
func NewUserID(name, serverName string) (string, error) {
	local := name
	if strings.HasPrefix(name, "@") {
		l, server, ok := strings.Cut(name[1:], ":")
		if !ok || server != serverName {
			return "", fmt.Errorf("%q is not a user ID on %s", name, serverName)
		}
		local = l
	}
	if local == "" {
		return "", errors.New("the localpart is empty")
	}
	for _, r := range local {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._=-/+", r)) {
			return "", fmt.Errorf("localpart %q may only hold a-z, 0-9 and . _ = - / +", local)
		}
	}
	id := "@" + local + ":" + serverName
	if len(id) > MaxUserIDLen {
		return "", fmt.Errorf("user ID %s is longer than %d bytes", id, MaxUserIDLen)
	}
	return id, nil
}

// FoldUserID returns the key under which a user ID is matched
// case-insensitively at login. Matching is on the whole MXID, as Synapse does.
func FoldUserID(id string) string { return strings.ToLower(id) }

// PickLogin chooses, among the users whose folded ID matches the login id,
// the one FindUserByLogin returns: the only one, or else the exact match.
// Historical IDs may differ only in case, and then a login that names none
// of them exactly is ambiguous: it reports false.
func PickLogin(users []User, id string) (User, bool) {
	if len(users) == 1 {
		return users[0], true
	}
	for _, u := range users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
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
	// DeactivateUser consumes the grant (see UIAGrant; the zero grant for
	// the operator's CLI), then, in the same transaction, marks the user
	// deactivated at the given time, deletes every device, token, UIA
	// session and third-party ID of the user, and removes its password hash
	// (sets it to "", so that no password matches). It returns
	// ErrUIASessionGone or ErrNotFound (no user has that ID) having written
	// nothing. Deactivating twice keeps the first time. It also deletes
	// the user's login tokens. With the outbox on, the same transaction
	// writes a devices.deleted event (ReasonDeactivated) when there were
	// devices, and a user.deactivated event carrying erase, the user's wish
	// that the homeserver erase what it holds. Stores apply these rules
	// with WriteDeactivation.
	DeactivateUser(ctx context.Context, userID string, at time.Time, erase bool, g UIAGrant) error
	// AddThreePID binds an address to a user. It returns ErrConflict if the
	// address is bound already and ErrNotFound if the user does not exist.
	AddThreePID(ctx context.Context, t ThreePID) error
	// DeleteThreePID unbinds an address from the user. It returns
	// ErrNotFound, and deletes nothing, if the address is not bound to
	// that user (bound to another, or to nobody).
	DeleteThreePID(ctx context.Context, userID string, medium Medium, address string) error
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
