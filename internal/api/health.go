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
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// handleHealthz says the process is up; it touches nothing else.
func (a *api) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}

// handleReadyz says whether authd can serve: the database answers and its
// schema is current.
func (a *api) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if a.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.Ready(ctx); err != nil {
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.Any("err", err))
			writeJSON(w, http.StatusServiceUnavailable, healthResponse{Status: "unavailable", Reason: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}
