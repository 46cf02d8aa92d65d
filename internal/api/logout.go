package api

import (
	"errors"
	"net/http"

	"github.com/authd/authd/internal/store"
)

type emptyResponse struct{}

// handleLogout handles POST /logout: it revokes the caller's access token by deleting its device,
// which takes every token of the device with it (spec: "The device
// associated with the access token is also deleted"). The request body is
// not read: clients send none (matrix-js-sdk), {} (mautrix) or an empty one
// with a JSON Content-Type (matrix-nio).
func (a *api) handleLogout(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	err := a.Store.DeleteDevice(r.Context(), s.AccessToken.UserID, s.AccessToken.DeviceID)
	a.cache.DropDevice(s.AccessToken.UserID, s.AccessToken.DeviceID)
	// A concurrent logout of the same device got there first: the token is
	// revoked either way.
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyResponse{})
}

// handleLogoutAll handles POST /logout/all: it deletes every device of the caller's user, and with them
// every token, the caller's own included.
func (a *api) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	_, err := a.Store.DeleteAllDevices(r.Context(), s.AccessToken.UserID)
	a.cache.DropUser(s.AccessToken.UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyResponse{})
}
