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
	// Tokens sets token lifetimes and whether refresh tokens are issued.
	Tokens TokenPolicy
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
	// Observer counts requests, logins, rate limiting and hashing; nil
	// counts nothing.
	Observer Observer
	// Logger receives one line per request and every internal error;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultAccessTTL is the lifetime of refreshable access tokens when the
// policy names none.
const DefaultAccessTTL = 5 * time.Minute

// TokenPolicy sets the lifetimes of the tokens login and refresh issue.
// A zero duration means the token does not expire.
type TokenPolicy struct {
	// Refresh issues a refresh token to a login that asks for one
	// ("refresh_token": true); otherwise such a login gets a
	// non-refreshable token.
	Refresh bool
	// AccessTTL is the lifetime of access tokens issued with a refresh
	// token. It must be positive when Refresh is on.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens.
	RefreshTTL time.Duration
	// NonRefreshableTTL is the lifetime of access tokens issued without a
	// refresh token.
	NonRefreshableTTL time.Duration
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
	if a.Observer == nil {
		a.Observer = nopObserver{}
	}
	if a.Tokens.AccessTTL <= 0 {
		a.Tokens.AccessTTL = DefaultAccessTTL
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
	// Forward auth for the proxy, in front of every other Matrix request.
	// The proxy passes the original request's headers (and, for a
	// query-string token, its URI) along.
	r.With(a.requireAuth(false)).Get("/_authd/verify", a.handleVerify)

	// r0 and v3 are one API (spec v1.1 re-versioned r0 to v3); old bots
	// still use r0.
	for _, prefix := range []string{"/_matrix/client/r0", "/_matrix/client/v3"} {
		r.Route(prefix, func(r chi.Router) {
			r.Get("/login", a.handleLoginFlows)
			r.Post("/login", a.handleLogin)
			// Refresh is authenticated by the refresh token alone: any
			// Authorization header (matrix-js-sdk sends the stale access
			// token) is ignored.
			r.Post("/refresh", a.handleRefresh)
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
	// Synapse before 1.72 served /refresh under v1 only, and matrix-js-sdk
	// falls back to it on M_UNRECOGNIZED.
	r.Post("/_matrix/client/v1/refresh", a.handleRefresh)
	// The r0.2.0 seed's exchange, which predates the v3 API.
	r.Post("/_matrix/client/r0/tokenrefresh", a.handleTokenRefresh)
	return r
}

func (a *api) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, errUnrecognized)
}

func (a *api) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, errMethod)
}
