package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// errStarting is /readyz's reason before serve has a store.
var errStarting = errors.New("starting")

type healthResponse struct {
	Status string            `json:"status"`
	Reason string            `json:"reason,omitempty"`
	Checks map[string]string `json:"checks,omitempty"`
}

// handleHealthz handles GET /healthz: it says the process is up; it touches nothing else.
func (a *api) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}

// handleReadyz handles GET /readyz: it says whether authd can serve: the database answers and its
// schema is current. Its checks say how: whether rate limits are shared or
// local, whether revocations by other processes arrive.
func (a *api) handleReadyz(w http.ResponseWriter, r *http.Request) {
	var checks map[string]string
	if a.Checks != nil {
		checks = a.Checks()
	}
	if a.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.Ready(ctx); err != nil {
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.Any("err", err))
			writeJSON(w, http.StatusServiceUnavailable, healthResponse{Status: "unavailable", Reason: err.Error(), Checks: checks})
			return
		}
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok", Checks: checks})
}
