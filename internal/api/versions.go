package api

import "net/http"

// specVersions are the client-server API versions whose session endpoints
// authd implements: every r0 release (r0 and v3 paths are one API) and v1.1
// to v1.19. v1.20 drops the access_token query parameter, which authd still
// accepts.
var specVersions = []string{
	"r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
	"v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
}

type versionsResponse struct {
	Versions         []string        `json:"versions"`
	UnstableFeatures map[string]bool `json:"unstable_features"`
}

// handleVersions handles GET /_matrix/client/versions, in standalone use.
func (a *api) handleVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, versionsResponse{Versions: specVersions, UnstableFeatures: map[string]bool{}})
}
