package api

import (
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// tokenPair is a freshly minted access token and, when refreshable, its
// refresh token, with their lifetimes.
type tokenPair struct {
	accessToken, refreshToken  string // refreshToken is "" for a non-refreshable token
	now, accessExp, refreshExp time.Time
}

// newPair mints the tokens a login or refresh hands out under the token
// policy. Zero expiry times mean "does not expire".
func (a *api) newPair(now time.Time, refreshable bool) tokenPair {
	p := tokenPair{accessToken: token.New(token.Access), now: now}
	if !refreshable {
		if a.Tokens.NonRefreshableTTL > 0 {
			p.accessExp = now.Add(a.Tokens.NonRefreshableTTL)
		}
		return p
	}
	p.refreshToken = token.New(token.Refresh)
	p.accessExp = now.Add(a.Tokens.AccessTTL)
	if a.Tokens.RefreshTTL > 0 {
		p.refreshExp = now.Add(a.Tokens.RefreshTTL)
	}
	return p
}

func (p tokenPair) accessRow(userID, deviceID string) store.AccessToken {
	return store.AccessToken{Hash: token.Hash(p.accessToken), UserID: userID, DeviceID: deviceID, CreatedAt: p.now, ExpiresAt: p.accessExp}
}

func (p tokenPair) refreshRow(userID, deviceID string) store.RefreshToken {
	return store.RefreshToken{Hash: token.Hash(p.refreshToken), UserID: userID, DeviceID: deviceID, CreatedAt: p.now, ExpiresAt: p.refreshExp}
}

// expiresInMS is the access token's lifetime for the response, 0 (omitted)
// when it does not expire.
func (p tokenPair) expiresInMS() int64 {
	if p.accessExp.IsZero() {
		return 0
	}
	return p.accessExp.Sub(p.now).Milliseconds()
}
