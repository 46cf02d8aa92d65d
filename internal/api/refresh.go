package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

type refreshResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
}

// handleRefresh handles POST /refresh (spec v1.3+): it exchanges a refresh token
// for a new pair. The old token stays valid until the new pair is first
// used, so that a client that lost the response can retry; a replay after
// that revokes the whole session.
func (a *api) handleRefresh(w http.ResponseWriter, r *http.Request) {
	p, err := a.exchangeRefreshToken(w, r, false)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, token.ErrMalformed), errors.Is(err, store.ErrTokenReplayed):
		a.writeError(w, r, errUnknownRefresh)
	case errors.Is(err, store.ErrTokenExpired):
		a.writeError(w, r, errExpiredRefresh)
	case errors.Is(err, store.ErrUserLocked):
		a.writeError(w, r, errUserLocked)
	case err != nil:
		a.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, refreshResponse{AccessToken: p.accessToken, RefreshToken: p.refreshToken, ExpiresInMS: p.expiresInMS()})
	}
}

type tokenRefreshResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// handleTokenRefresh handles POST /tokenrefresh, the seed's r0.2.0 exchange: the supplied
// refresh token and the access token issued with it are invalidated at
// once, and any failure is 403 M_FORBIDDEN.
func (a *api) handleTokenRefresh(w http.ResponseWriter, r *http.Request) {
	p, err := a.exchangeRefreshToken(w, r, true)
	var e *matrixError
	switch {
	case errors.As(err, &e):
		a.writeError(w, r, e)
	case errors.Is(err, store.ErrUserLocked):
		a.writeError(w, r, errUserLocked)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, token.ErrMalformed),
		errors.Is(err, store.ErrTokenReplayed), errors.Is(err, store.ErrTokenExpired):
		a.writeError(w, r, errForbiddenLegacy)
	case err != nil:
		a.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, tokenRefreshResponse{AccessToken: p.accessToken, RefreshToken: p.refreshToken})
	}
}

// exchangeRefreshToken reads {"refresh_token": "..."} and exchanges it. Malformed bodies
// are Matrix errors (*matrixError); token failures are the store's sentinels or
// token.ErrMalformed, for the caller to phrase.
func (a *api) exchangeRefreshToken(w http.ResponseWriter, r *http.Request, immediate bool) (tokenPair, error) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		return tokenPair{}, err
	}
	if !body.present("refresh_token") {
		return tokenPair{}, badRequest("M_MISSING_PARAM", "Missing parameter: refresh_token")
	}
	old, _, err := body.str("refresh_token")
	if err != nil {
		return tokenPair{}, badRequest("M_INVALID_PARAM", "Bad parameter: refresh_token")
	}
	if err := token.Check(token.Refresh, old); err != nil {
		return tokenPair{}, err
	}
	now := a.Now().UTC()
	p := a.newPair(now, true)
	// A client that hangs up must not leave the exchange half-known: the
	// store call runs to its end (bounded by the store timeout), so its
	// outcome is always known and the cache told of it.
	sess, err := a.Store.RefreshSession(context.WithoutCancel(r.Context()), store.Exchange{
		Old:       token.Hash(old),
		Access:    p.accessRow("", ""),
		Refresh:   p.refreshRow("", ""),
		Now:       now,
		Immediate: immediate,
	})
	a.forgetRefreshed(sess, err)
	if errors.Is(err, store.ErrTokenReplayed) {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "refresh token replayed: session revoked",
			slog.String("token", tokenLogID(old)))
	}
	if err != nil {
		return tokenPair{}, err
	}
	return p, nil
}
