package store

import (
	"context"
	"errors"
	"time"
)

// ErrUIASessionGone is returned by an operation given a UIAGrant whose
// session no longer exists, has expired, or was bound to another operation:
// another request consumed it first, or it was never this operation's.
// Nothing is written.
var ErrUIASessionGone = errors.New("user-interactive auth session gone")

// UIABinding is what a User-Interactive Authentication session authorises:
// one operation (an HTTP method on one escaped path, with one body) asked by
// one device of one user.
type UIABinding struct {
	UserID, DeviceID string
	Method, Path     string
	// BodyHash is the SHA-256 of the request body in canonical form, without
	// the keys that carry the authentication itself (see the api package).
	BodyHash [32]byte
}

// UIASession is a stored User-Interactive Authentication session. Its ID is
// a random secret that only the client holds; the store keeps its hash.
type UIASession struct {
	IDHash TokenHash
	UIABinding
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MaxUIASessionsPerDevice is how many UIA sessions a store keeps per
// device: a client runs one flow at a time, and a few abandoned ones are
// plenty.
const MaxUIASessionsPerDevice = 16

// UIAGrant is the proof that the caller of an operation passed
// User-Interactive Authentication for it. The operation consumes the
// session in its own transaction, so that a session authorises one
// operation once. The zero UIAGrant consumes nothing: an operation the
// operator runs (the CLI), or a one-shot authentication that carried the
// password without a session.
type UIAGrant struct {
	// Session is the hash of the session to consume, nil for none. The
	// operation deletes it first, and fails with ErrUIASessionGone, having
	// written nothing, unless it existed, had not expired at Now, and was
	// bound to exactly Binding.
	Session *TokenHash
	Binding UIABinding
	Now     time.Time
}

// PasswordChange is what ChangePassword writes.
type PasswordChange struct {
	UserID string
	// Hash is the new password hash.
	Hash string
	// LogoutDevices revokes every other device of the user, and every token
	// of the device KeepDeviceID except the access token KeepAccessToken and
	// the refresh token issued with it, so that the caller stays logged in
	// and can still refresh.
	LogoutDevices   bool
	KeepDeviceID    string
	KeepAccessToken TokenHash
	Grant           UIAGrant
}

// AccountStore persists what users change about their own accounts, each
// change guarded by a User-Interactive Authentication session.
type AccountStore interface {
	// CreateUIASession stores a new session, and deletes the oldest
	// sessions of the same device beyond MaxUIASessionsPerDevice, in one
	// transaction, so that a token that asks for challenge after challenge
	// holds a bounded number of rows. It returns ErrConflict if the hash is
	// taken and ErrNotFound if the user or device does not exist.
	CreateUIASession(ctx context.Context, s UIASession) error
	// FindUIASession returns the session with that hash if it has not
	// expired at now (ExpiresAt after now), or ErrNotFound.
	FindUIASession(ctx context.Context, h TokenHash, now time.Time) (UIASession, error)
	// DeleteDevices consumes the grant, then deletes those of the listed
	// devices the user has, with every token of them, in one transaction,
	// and returns the IDs it deleted in byte order. IDs the user has no
	// device of, and repeated IDs, are ignored; an empty list deletes
	// nothing (the grant is still consumed). With the outbox on, the same
	// transaction writes a devices.deleted event (ReasonDeleted) when it
	// deleted any. Stores apply these rules with
	// DeleteUserDevices.
	DeleteDevices(ctx context.Context, userID string, deviceIDs []string, g UIAGrant) ([]string, error)
	// ChangePassword consumes the grant, then, in one transaction, replaces
	// the user's password hash, deletes every UIA session of the user, and
	// applies LogoutDevices. It returns the IDs of the devices it deleted,
	// in byte order, and ErrNotFound if the user does not exist. It also
	// deletes the user's login tokens. With the outbox on, the same
	// transaction writes a devices.deleted event (ReasonPasswordChange)
	// when it deleted any devices. Stores
	// apply these rules with WritePasswordChange.
	ChangePassword(ctx context.Context, c PasswordChange) ([]string, error)
}
