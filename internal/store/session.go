package store

import (
	"context"
	"time"
)

// DeviceKey names one device of one user.
type DeviceKey struct {
	UserID, DeviceID string
}

// MaxDevicesPerBatch bounds how many logouts the stores delete in one
// transaction (they batch concurrent DeleteDevice calls), and BatchTimeout
// bounds such a transaction when no caller's context has a deadline.
const (
	MaxDevicesPerBatch = 256
	BatchTimeout       = 10 * time.Second
)

// Device is a client session slot of a user. Access tokens belong to a
// device; deleting the device revokes them.
type Device struct {
	UserID      string
	ID          string
	DisplayName string
	CreatedAt   time.Time
	// LastSeenAt is when the device was last seen: logged in, or used
	// (see LastSeenStore).
	LastSeenAt time.Time
	// LastSeenIP is the client address it was last seen from, "" when
	// unknown.
	LastSeenIP string
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

// Expired reports whether the token has expired at now.
func (t AccessToken) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// NewSession is what a successful login writes: the device (created, or
// reused when the user already has one with that ID) and its access token.
type NewSession struct {
	Device      Device // UserID, ID, DisplayName, CreatedAt/LastSeenAt (now) and LastSeenIP
	AccessToken AccessToken
	// RefreshToken, when not nil, is stored paired with the access token.
	RefreshToken *RefreshToken
}

// Session is what an access token resolves to.
type Session struct {
	User        User
	AccessToken AccessToken
}

// SessionStore persists devices and access tokens.
type SessionStore interface {
	// CreateSession writes a login in one transaction. If the user has no
	// device with that ID it is created; if it has one, the device is kept
	// (its display name unchanged, its last-seen time and address updated)
	// and every earlier access and refresh token of that device is revoked.
	// Then the access token, and the refresh token if any, are stored
	// (confirmed, not pending). It returns ErrNotFound if the user does not
	// exist and ErrConflict if a token hash is taken; then nothing is
	// written. Stores apply this rule with WriteLogin.
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
	// A superseded token is a replay even past its expiry. Stores apply
	// these rules with ExchangeRefreshToken.
	RefreshSession(ctx context.Context, r Exchange) (Session, error)
	// ConfirmAccessToken records the first use of a pending access token: its
	// pair stays; every other access token of the device is deleted; every
	// other refresh token of the device is revoked (kept, marked revoked at
	// now, if it was ever exchanged or is pending, so that a replay is
	// recognised; deleted otherwise). It does nothing for a confirmed token,
	// and returns ErrNotFound if the token no longer exists (another pair
	// won). Stores apply this rule with ConfirmPendingAccessToken.
	ConfirmAccessToken(ctx context.Context, h TokenHash, now time.Time) error
	// FindSessionByAccessToken returns the token with that hash and its user,
	// expired or not, or ErrNotFound.
	FindSessionByAccessToken(ctx context.Context, h TokenHash) (Session, error)
	// FindDevice returns one device of a user, or ErrNotFound.
	FindDevice(ctx context.Context, userID, deviceID string) (Device, error)
	// ListDevices returns the devices of a user, ordered by device ID.
	ListDevices(ctx context.Context, userID string) ([]Device, error)
	// RenameDevice sets the display name of one device of a user ("" for
	// none), and nothing else. It returns ErrNotFound if the user has no
	// such device.
	RenameDevice(ctx context.Context, userID, deviceID, displayName string) error
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
	// DeleteExpiredTokens deletes access, refresh, login and admin tokens,
	// UIA sessions and registration nonces that expired before the cutoff, and revoked refresh tokens
	// revoked before it, and returns how many rows it deleted.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error)
}

// WriteLogin applies the rules of SessionStore.CreateSession inside tx.
func WriteLogin(ctx context.Context, tx TokenTx, s NewSession) error {
	d := s.Device
	if err := tx.UpsertDevice(ctx, d); err != nil {
		return err
	}
	// A login naming a known device replaces its tokens: "the server will
	// invalidate any access and refresh tokens previously assigned to that
	// device" (client-server API, relationship between access tokens and
	// devices). Synapse does not (element-hq/synapse#6616); authd does.
	if err := tx.DeleteDeviceTokens(ctx, d.UserID, d.ID); err != nil {
		return err
	}
	access := s.AccessToken
	access.UserID, access.DeviceID, access.Pending = d.UserID, d.ID, false
	var refresh *RefreshToken
	if s.RefreshToken != nil {
		rt := *s.RefreshToken
		rt.UserID, rt.DeviceID = d.UserID, d.ID
		refresh = &rt
	}
	_, _, err := tx.InsertPair(ctx, access, refresh)
	return err
}
