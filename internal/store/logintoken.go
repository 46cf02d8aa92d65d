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
	// CreateLoginToken consumes the grant (see UIAGrant; the spec asks for
	// authentication every time a token is issued) and stores a new login
	// token, in one transaction. It returns ErrUIASessionGone, ErrConflict
	// if the hash is taken, or ErrNotFound if the user does not exist; then
	// nothing is written. Stores apply this rule with WriteLoginToken.
	CreateLoginToken(ctx context.Context, t LoginToken, g UIAGrant) error
	// ConsumeLoginToken deletes the login token with that hash and returns
	// its user, atomically: of any number of concurrent calls with one
	// hash, at most one returns the user. It returns ErrNotFound for a
	// hash that is unknown, consumed already, or of a token expired at now
	// (ExpiresAt not after now), which it deletes as well. The user is
	// returned whether or not it is deactivated: that is the caller's to
	// refuse.
	ConsumeLoginToken(ctx context.Context, h TokenHash, now time.Time) (User, error)
	// DeleteLoginTokens deletes every login token of the user and returns
	// how many it deleted (ChangePassword and DeactivateUser do it too, in
	// their transactions).
	// An unknown user has none.
	DeleteLoginTokens(ctx context.Context, userID string) (int, error)
}
