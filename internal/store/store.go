// Package store is authd's domain: users, their third-party IDs, devices
// and access tokens, the Store interface that persists them, and the
// sentinel errors every implementation returns. It imports nothing else of
// authd; the concrete stores live in the postgres and sqlite subpackages.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned when the requested user, device, third-party ID or
// token does not exist. Not found is always an error, never a zero value.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a create would violate uniqueness, such as a
// user ID or third-party address that is already taken.
var ErrConflict = errors.New("conflict")

// ErrUnavailable is returned (wrapping the driver's error) when the database
// cannot be reached or cannot serve right now: the connection was refused or
// lost, the server is starting or shutting down, or the file is locked or
// unreadable. It is transient: the same call may succeed later. A call whose
// context ended returns the context's error instead.
var ErrUnavailable = errors.New("database unavailable")

// Store is everything authd persists.
type Store interface {
	UserStore
	SessionStore
	AccountStore
	LoginTokenStore
	LastSeenStore
	TokenSweeper
	OutboxStore
	UserAdminStore
	UserImporter
	AdminTokenStore
	RegistrationStore
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
