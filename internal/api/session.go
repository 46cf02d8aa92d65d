package api

import (
	"context"
	"errors"

	"github.com/authd/authd/internal/store"
)

// findSession resolves an access token's hash to its session: from the
// token cache when it holds it, else from the store, caching the answer
// when it is a live, confirmed token of an active user.
func (a *api) findSession(ctx context.Context, h store.TokenHash) (store.Session, error) {
	now := a.Now()
	if s, ok := a.cache.Lookup(h, now); ok {
		return s, nil
	}
	gen := a.cache.Generation()
	s, err := a.Store.FindSessionByAccessToken(ctx, h)
	// A locked user's tokens are never cached either: a lock refuses them
	// at once on every replica (the store announces it), and an unlock
	// needs no notice.
	if err == nil && !s.User.Deactivated() && !s.User.Locked() && !s.AccessToken.Pending && !s.AccessToken.Expired(now) {
		a.cache.Add(h, s, gen, now)
	}
	return s, err
}

// forgetRefreshed drops what a refresh exchange revoked. A success names
// the device (the pair it confirmed, or with /tokenrefresh the old access
// token, is gone), and so does a replay (the store deleted that device);
// an unknown or expired token wrote nothing. Nothing else is dropped: any
// other failure (the database timed out or went away) may in rare cases
// have committed an exchange whose answer was lost, and that revocation
// reaches the cache as revocations made elsewhere do, through the
// revocation feed or at the latest when the entries' ttl runs out. So
// nothing a client sends, a made-up refresh token on a request it cancels
// included, can empty the cache.
func (a *api) forgetRefreshed(s store.Session, err error) {
	if err == nil || errors.Is(err, store.ErrTokenReplayed) {
		a.cache.DropDevice(s.AccessToken.UserID, s.AccessToken.DeviceID)
	}
}
