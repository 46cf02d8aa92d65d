package store

import (
	"errors"
	"time"
)

// ErrTokenExpired is returned by RefreshSession for a refresh token past its
// expiry. Nothing is written.
var ErrTokenExpired = errors.New("token expired")

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
