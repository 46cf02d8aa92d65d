package api

import "net/http"

// handleVerify is the forward-auth check for a reverse proxy (nginx
// auth_request, Caddy forward_auth, Traefik ForwardAuth): requireAuth has
// already read the Matrix token from the header or query, so this answers
// 200 with the user and device in headers. A refusal is requireAuth's 401
// with the Matrix error body.
func (a *api) handleVerify(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	w.Header().Set("X-Matrix-User-Id", s.AccessToken.UserID)
	w.Header().Set("X-Matrix-Device-Id", s.AccessToken.DeviceID)
	writeJSON(w, http.StatusOK, emptyResponse{})
}
