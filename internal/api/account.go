package api

import (
	"net/http"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
)

// unbindNoSupport is the id_server_unbind_result authd answers: it never
// binds an address at an identity server, and cannot tell which identity
// server anything else bound one at.
const unbindNoSupport = "no-support"

// unbindResponse answers deactivation and POST /account/3pid/delete.
type unbindResponse struct {
	IDServerUnbindResult string `json:"id_server_unbind_result"`
}

// handleChangePassword handles POST /account/password: after
// User-Interactive Authentication, replaces the caller's password. With
// logout_devices (the default) every other device is logged out, and the
// caller's own session, refresh token included, is kept. The body is
// checked before the challenge, so a client learns of a bad new password
// before it asks the user for the old one.
func (a *api) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	newPassword, ok, err := body.str("new_password")
	switch {
	case err != nil:
		a.writeError(w, r, badRequest("M_BAD_JSON", "new_password must be a string"))
		return
	case !ok || newPassword == "":
		a.writeError(w, r, badRequest("M_MISSING_PARAM", "Missing parameter: new_password"))
		return
	case len(newPassword) > password.MaxLen:
		a.writeError(w, r, badRequest("M_INVALID_PARAM", "new_password may not be longer than 1024 bytes"))
		return
	}
	logoutDevices, ok, err := body.boolean("logout_devices")
	if err != nil {
		a.writeError(w, r, badRequest("M_BAD_JSON", "logout_devices must be true or false"))
		return
	}
	if !ok {
		logoutDevices = true
	}

	grant, ok := a.authenticateUIA(w, r, body)
	if !ok {
		return
	}
	hash, err := a.hashNewPassword(r, newPassword)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	caller := sessionFrom(r.Context()).AccessToken
	deleted, err := a.Store.ChangePassword(r.Context(), store.PasswordChange{
		UserID:          caller.UserID,
		Hash:            hash,
		LogoutDevices:   logoutDevices,
		KeepDeviceID:    caller.DeviceID,
		KeepAccessToken: caller.Hash,
		Grant:           grant,
	})
	if err != nil {
		a.writeError(w, r, uiaGrantError(err))
		return
	}
	for _, id := range deleted {
		a.cache.DropDevice(caller.UserID, id)
	}
	if logoutDevices {
		// The caller's device lost its other tokens; its own is read back
		// from the store on its next use.
		a.cache.DropDevice(caller.UserID, caller.DeviceID)
	}
	writeJSON(w, http.StatusOK, emptyResponse{})
}

// hashNewPassword hashes a new password at the current cost, in a hashing
// slot like any password check.
func (a *api) hashNewPassword(r *http.Request, pw string) (string, error) {
	slot, err := a.acquireHashSlot(r.Context())
	if err != nil {
		return "", err
	}
	defer a.gate.release(slot)
	return a.Hasher.Hash(pw)
}

// handleDeactivate handles POST /account/deactivate: after
// User-Interactive Authentication, deactivates the caller's account (the
// token's user, whoever the auth dict names). In one transaction every
// device and token, every third-party ID and the password hash go, so that
// no later login can succeed. erase is accepted and passed on to the
// homeserver; id_server is accepted and ignored.
func (a *api) handleDeactivate(w http.ResponseWriter, r *http.Request) {
	body, err := readOptionalJSONObject(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	erase, _, err := body.boolean("erase")
	if err != nil {
		a.writeError(w, r, badRequest("M_BAD_JSON", "erase must be true or false"))
		return
	}
	if _, _, err := body.str("id_server"); err != nil {
		a.writeError(w, r, badRequest("M_BAD_JSON", "id_server must be a string"))
		return
	}
	grant, ok := a.authenticateUIA(w, r, body)
	if !ok {
		return
	}
	userID := sessionFrom(r.Context()).AccessToken.UserID
	err = a.Store.DeactivateUser(r.Context(), userID, a.Now().UTC(), erase, grant)
	if err != nil {
		a.writeError(w, r, uiaGrantError(err))
		return
	}
	a.cache.DropUser(userID)
	writeJSON(w, http.StatusOK, unbindResponse{IDServerUnbindResult: unbindNoSupport})
}
