package api

import "net/http"

// handleVerify handles /_authd/verify, the forward-auth check for a reverse proxy (nginx
// auth_request, Caddy forward_auth, Traefik ForwardAuth), for any method:
// requireAuthFrom(forwardedAccessToken) has already read the Matrix token
// from the Authorization header, the query, or the original request's URI,
// so this answers 200 with the user and device in headers, which the proxy
// copies to the upstream request. A refusal is the same 401 Matrix error
// the endpoint itself would send, which the proxy passes to the client.
func (a *api) handleVerify(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	w.Header().Set("X-Matrix-User-Id", s.AccessToken.UserID)
	w.Header().Set("X-Matrix-Device-Id", s.AccessToken.DeviceID)
	writeJSON(w, http.StatusOK, emptyResponse{})
}
