package api

import "net/http"

// secondAskHeader marks the proxy's second forward-auth request, made only
// to get authd's error for the client (see handleVerify).
const secondAskHeader = "X-Authd-Second-Ask"

// handleVerify handles /_authd/verify, the forward-auth check for a reverse proxy (nginx
// auth_request, Caddy forward_auth, Traefik ForwardAuth), for any method:
// requireAuthFrom(forwardedAccessToken) has already read the Matrix token
// from the Authorization header, the query, or the original request's URI,
// so this answers 200 with the user and device in headers, which the proxy
// copies to the upstream request. A refusal is the same 401 Matrix error
// the endpoint itself would send, which the proxy passes to the client.
//
// A proxy that cannot pass authd's error body through its forward-auth
// check (nginx's auth_request) asks a second time, for the client, marking
// the request with secondAskHeader; the original request is then never
// sent upstream. Should the second ask find the token good (a rate limit
// refilled, the database back), a 200 would reach the client as an empty
// answer to whatever it asked, so it gets a 503 to retry instead. Anyone
// may send the header: it can only turn the sender's own 200 into a 503.
func (a *api) handleVerify(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(secondAskHeader) != "" {
		a.writeError(w, r, errCheckChanged)
		return
	}
	s := sessionFrom(r.Context())
	w.Header().Set("X-Matrix-User-Id", s.AccessToken.UserID)
	w.Header().Set("X-Matrix-Device-Id", s.AccessToken.DeviceID)
	writeJSON(w, http.StatusOK, emptyResponse{})
}
