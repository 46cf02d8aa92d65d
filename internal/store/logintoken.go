package store

import (
	"context"
	"time"
)

// LoginToken is a stored login token (m.login.token): a single-use secret
// that logs a new client in as UserID until ExpiresAt. The store keeps only
// its hash.
type LoginToken struct {
	Hash   TokenHash
	UserID string
	// DeviceID is the device that asked for the token, kept only to record
	// who asked: the login the token allows makes a device of its own,
	// and the token does not die with this one.
	DeviceID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// LoginTokenStore persists login tokens. Expired ones are deleted by
// TokenSweeper.DeleteExpiredTokens.
type LoginTokenStore interface {
	// CreateLoginToken stores a new login token. It returns ErrConflict if
	// the hash is taken and ErrNotFound if the user does not exist.
	CreateLoginToken(ctx context.Context, t LoginToken) error
	// ConsumeLoginToken deletes the login token with that hash and returns
	// its user, atomically: of any number of concurrent calls with one
	// hash, at most one returns the user. It returns ErrNotFound for a
	// hash that is unknown, consumed already, or of a token expired at now
	// (ExpiresAt not after now), which it deletes as well. The user is
	// returned whether or not it is deactivated: that is the caller's to
	// refuse.
	ConsumeLoginToken(ctx context.Context, h TokenHash, now time.Time) (User, error)
	// DeleteLoginTokens deletes every login token of the user, for a
	// password change or a deactivation, and returns how many it deleted.
	// An unknown user has none.
	DeleteLoginTokens(ctx context.Context, userID string) (int, error)
}
