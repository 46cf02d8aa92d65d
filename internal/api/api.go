// Package api serves the Matrix client-server session endpoints (login,
// logout, whoami) and authd's operations endpoints over HTTP. It depends
// only on the store and ratelimit interfaces; cmd/authd picks the
// implementations.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
)

// Store is the part of the store the API uses.
type Store interface {
	store.UserStore
	store.SessionStore
}

// Deps is everything the API needs. Store, Hasher and ServerName are
// required; the rest have defaults.
type Deps struct {
	Store  Store
	Hasher *password.Hasher
	// ServerName is the homeserver's server name, the domain of every
	// local user ID.
	ServerName string
	// PublicBaseURL, when set, is the homeserver's public base URL (the
	// reverse proxy), sent as well_known in login responses so that clients
	// reconfigure themselves. Never an internal address.
	PublicBaseURL string
	// ServeVersions serves GET /_matrix/client/versions, for standalone use;
	// behind a proxy the homeserver answers it.
	ServeVersions bool
	// LoginIPLimiter limits login attempts per client IP (IPv6 by /64);
	// nil disables it.
	LoginIPLimiter ratelimit.Limiter
	// Ready reports whether the service can take traffic (database
	// reachable, schema current); nil means always ready.
	Ready func(ctx context.Context) error
	// Logger receives one line per request and every internal error;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type api struct {
	Deps
	log *slog.Logger
}

// New returns the HTTP handler serving every authd route.
func New(d Deps) http.Handler {
	a := &api{Deps: d, log: d.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.Now == nil {
		a.Now = time.Now
	}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, a.logRequests, a.recoverPanics, cors)
	r.NotFound(a.handleNotFound)
	r.MethodNotAllowed(a.handleMethodNotAllowed)

	if a.ServeVersions {
		r.Get("/_matrix/client/versions", a.handleVersions)
	}
	r.Get("/healthz", a.handleHealthz)
	r.Get("/readyz", a.handleReadyz)

	// r0 and v3 are one API (spec v1.1 re-versioned r0 to v3); old bots
	// still use r0.
	for _, prefix := range []string{"/_matrix/client/r0", "/_matrix/client/v3"} {
		r.Route(prefix, func(r chi.Router) {
			r.Get("/login", a.handleLoginFlows)
			r.Post("/login", a.handleLogin)
			r.Group(func(r chi.Router) {
				// Logout must work with an expired token, so that a
				// soft-logged-out client can still clean up its device.
				r.Use(a.requireAuth(true))
				r.Post("/logout", a.handleLogout)
				r.Post("/logout/all", a.handleLogoutAll)
			})
			r.Group(func(r chi.Router) {
				r.Use(a.requireAuth(false))
				r.Get("/account/whoami", a.handleWhoami)
			})
		})
	}
	return r
}

func (a *api) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, errUnrecognized)
}

func (a *api) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, errMethod)
}
