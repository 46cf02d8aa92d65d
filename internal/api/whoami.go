package api

import "net/http"

type whoamiResponse struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	IsGuest  bool   `json:"is_guest"`
}

// handleWhoami handles GET /account/whoami: the caller's user and device.
func (a *api) handleWhoami(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	writeJSON(w, http.StatusOK, whoamiResponse{UserID: s.AccessToken.UserID, DeviceID: s.AccessToken.DeviceID})
}
