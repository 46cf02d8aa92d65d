package store

import (
	"context"
	"errors"
	"time"
)

// ErrTokenExpired is returned by RefreshSession for a refresh token past its
// expiry. Nothing is written.
var ErrTokenExpired = errors.New("token expired")

// ErrUserLocked is returned by RefreshSession for a refresh token of a
// locked account: it gets no new tokens until it is unlocked, and keeps
// the ones it has. Nothing is written.
var ErrUserLocked = errors.New("user locked")

// ErrTokenReplayed is returned by RefreshSession for a refresh token that was
// exchanged and then superseded (its successor was used) and is presented
// again, or for the refresh token of a pending pair that lost to a sibling:
// a sign that it was stolen. The store has already deleted the device,
// and with it every token of the session, when it returns this.
var ErrTokenReplayed = errors.New("refresh token replayed")

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

// Exchange is a request to exchange a refresh token for a new pair: what
// RefreshSession writes.
type Exchange struct {
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

// RefreshTokenState is what the exchange rules read of a stored refresh
// token.
type RefreshTokenState struct {
	// ID is the store's key for the token; stores number tokens from 1, so
	// 0 means none.
	ID               int64
	UserID, DeviceID string
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
	// Pending is true for the refresh token of a pair not yet used.
	Pending bool
	// Exchanged is true once the token was exchanged for a new pair.
	Exchanged bool
	// Revoked is true once the token was superseded: by a confirmed
	// successor or, for a pending one, by a sibling pair confirmed first
	// (it is then kept as a tombstone).
	Revoked bool
}

// Expired reports whether the token has expired at now.
func (t RefreshTokenState) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// AccessTokenState is what the confirmation rule reads of a stored access
// token.
type AccessTokenState struct {
	// ID is the store's key for the token, and RefreshID that of the refresh
	// token issued with it (0 for none).
	ID, RefreshID    int64
	UserID, DeviceID string
	Pending          bool
}

// TokenTx is one transaction of a store, serialised per device (by a row
// lock or a database-wide write lock: the store's choice), in which
// WriteLogin, ExchangeRefreshToken and ConfirmPendingAccessToken apply the
// token rules. Its methods return the driver's errors; the store maps them
// afterwards.
type TokenTx interface {
	// LockRefreshToken returns the refresh token with hash h, read under the
	// transaction's serialisation, so that it stays true until the
	// transaction ends. It fails if the token, or its device, is gone.
	LockRefreshToken(ctx context.Context, h TokenHash) (RefreshTokenState, error)
	// LockAccessToken returns the access token with hash h; if it is
	// pending, read under the transaction's serialisation (a confirmed token
	// needs no lock: nothing will be written). It fails if the token is gone.
	LockAccessToken(ctx context.Context, h TokenHash) (AccessTokenState, error)
	// UpsertDevice creates the device, or updates the last-seen time and
	// address of the user's existing device of that ID (its display name and
	// creation time unchanged).
	UpsertDevice(ctx context.Context, d Device) error
	// DeleteDeviceTokens deletes every access and refresh token of a device.
	DeleteDeviceTokens(ctx context.Context, userID, deviceID string) error
	// DeleteDevice deletes a device and, with it, every token of it.
	DeleteDevice(ctx context.Context, userID, deviceID string) error
	// MarkExchanged records that the refresh token id was exchanged at at,
	// keeping an earlier time if it has one.
	MarkExchanged(ctx context.Context, id int64, at time.Time) error
	// InsertPair stores the access token and the refresh token issued with
	// it (nil for none), both pending if access.Pending is, and returns their
	// ids (refreshID 0 for none).
	InsertPair(ctx context.Context, access AccessToken, refresh *RefreshToken) (accessID, refreshID int64, err error)
	// ConfirmPair records the first use of a pair of tokens of a device, the
	// access token accessID and the refresh token refreshID (0 for either
	// means none). The pair, and an access token issued with refreshID, is
	// confirmed; every other access token of the device is deleted; every
	// other refresh token is revoked at now, and kept to recognise a replay,
	// if it was ever exchanged or is still pending, and deleted if not.
	ConfirmPair(ctx context.Context, userID, deviceID string, accessID, refreshID int64, now time.Time) error
	// FindUser returns the user with this ID.
	FindUser(ctx context.Context, userID string) (User, error)
}

// ExchangeRefreshToken applies the rules of SessionStore.RefreshSession
// inside tx and returns the new access token (as given, with its user,
// device and pending state filled in) and its user. Its errors are those of
// RefreshSession, or tx's. With ErrTokenReplayed it has deleted the device
// in tx and the Session names that device: the caller commits tx, then
// returns the error. On any other error the caller rolls tx back.
//
// Why the tombstones: two exchanges of one refresh token are either a
// client that retried after losing the response, or a client and a thief
// holding a stolen copy. The retrying client never received the pair that
// lost, so it never presents it; a refresh token of a losing pair that is
// presented all the same was received by someone, and when the winner was
// the thief's, it is the client's. ConfirmPair therefore keeps a pending
// sibling as a tombstone (revoked, still pending), and this treats its use
// as a replay. The cost: a client that itself sent two refreshes
// concurrently and read both answers, then used the later one's pair and
// the earlier one's refresh token, is logged out. The access tokens of
// losing pairs are deleted, not kept: a client refused one refreshes with
// its refresh token, which finds the tombstone. Tombstones go with the
// other revoked tokens, in DeleteExpiredTokens.
func ExchangeRefreshToken(ctx context.Context, tx TokenTx, e Exchange) (Session, error) {
	old, err := tx.LockRefreshToken(ctx, e.Old)
	if err != nil {
		return Session{}, err
	}
	switch {
	case old.Revoked && (old.Exchanged || old.Pending):
		// Someone holds a token that was exchanged and superseded, or the
		// tombstone of a pending pair that lost to another: the client or a
		// thief used it after its successor, or the pair that won was a
		// thief's. Revoke the whole session, successor included.
		if err := tx.DeleteDevice(ctx, old.UserID, old.DeviceID); err != nil {
			return Session{}, err
		}
		return Session{AccessToken: AccessToken{UserID: old.UserID, DeviceID: old.DeviceID}}, ErrTokenReplayed
	case old.Revoked:
		return Session{}, ErrNotFound
	case old.Expired(e.Now):
		return Session{}, ErrTokenExpired
	}
	user, err := tx.FindUser(ctx, old.UserID)
	if err != nil {
		return Session{}, err
	}
	if user.Locked() {
		return Session{}, ErrUserLocked
	}
	if old.Pending {
		// Using the new refresh token is a first use of its pair (spec,
		// Refreshing access tokens).
		if err := tx.ConfirmPair(ctx, old.UserID, old.DeviceID, 0, old.ID, e.Now); err != nil {
			return Session{}, err
		}
	}
	if err := tx.MarkExchanged(ctx, old.ID, e.Now); err != nil {
		return Session{}, err
	}
	access, refresh := e.Access, e.Refresh
	access.UserID, access.DeviceID, access.Pending = old.UserID, old.DeviceID, !e.Immediate
	refresh.UserID, refresh.DeviceID = old.UserID, old.DeviceID
	accessID, refreshID, err := tx.InsertPair(ctx, access, &refresh)
	if err != nil {
		return Session{}, err
	}
	if e.Immediate {
		// Confirmed from the start, as if first used now: the old token,
		// just exchanged, is revoked (and kept for replay detection), and
		// every other access token of the device, the one issued with it
		// included, is deleted.
		if err := tx.ConfirmPair(ctx, old.UserID, old.DeviceID, accessID, refreshID, e.Now); err != nil {
			return Session{}, err
		}
	}
	return Session{User: user, AccessToken: access}, nil
}

// ConfirmPendingAccessToken applies the rule of
// SessionStore.ConfirmAccessToken inside tx: a confirmed token is left as
// it is; a pending one has its pair confirmed. It fails with tx's error if
// the token is gone (another pair won).
func ConfirmPendingAccessToken(ctx context.Context, tx TokenTx, h TokenHash, now time.Time) error {
	t, err := tx.LockAccessToken(ctx, h)
	if err != nil {
		return err
	}
	if !t.Pending {
		return nil
	}
	return tx.ConfirmPair(ctx, t.UserID, t.DeviceID, t.ID, t.RefreshID, now)
}
