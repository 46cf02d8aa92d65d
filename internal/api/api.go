// Package api serves the Matrix client-server session endpoints (login,
// logout, whoami) and authd's operations endpoints over HTTP. It depends
// only on the store and ratelimit interfaces; cmd/authd picks the
// implementations.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/tokencache"
)

// Store is the part of the store the API calls, and no more, so that a
// wrapper (boundedStore) or a test's fake has only these to provide. Each
// method keeps the contract store.UserStore or store.SessionStore
// documents.
type Store interface {
	FindUserByLogin(ctx context.Context, id string) (store.User, error)
	FindUserByThreePID(ctx context.Context, medium store.Medium, address string) (store.User, error)
	UpdatePasswordHash(ctx context.Context, userID, hash string) error
	RecordLoginNetwork(ctx context.Context, userID, network string, at time.Time) error
	FindLoginNetwork(ctx context.Context, userID, network string, since time.Time) error

	CreateSession(ctx context.Context, s store.NewSession) error
	RefreshSession(ctx context.Context, r store.Exchange) (store.Session, error)
	ConfirmAccessToken(ctx context.Context, h store.TokenHash, now time.Time) error
	FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error)
	FindDevice(ctx context.Context, userID, deviceID string) (store.Device, error)
	ListDevices(ctx context.Context, userID string) ([]store.Device, error)
	RenameDevice(ctx context.Context, userID, deviceID, displayName string) error
	DeleteDevice(ctx context.Context, userID, deviceID string) error
	DeleteAllDevices(ctx context.Context, userID string) (int, error)

	CreateUIASession(ctx context.Context, s store.UIASession) error
	FindUIASession(ctx context.Context, h store.TokenHash, now time.Time) (store.UIASession, error)
	DeleteDevices(ctx context.Context, userID string, deviceIDs []string, g store.UIAGrant) ([]string, error)
	ChangePassword(ctx context.Context, c store.PasswordChange) ([]string, error)
	DeactivateUser(ctx context.Context, userID string, at time.Time, erase bool, g store.UIAGrant) error
	ListThreePIDs(ctx context.Context, userID string) ([]store.ThreePID, error)
	FindUserByID(ctx context.Context, id string) (store.User, error)
	ListUsersPage(ctx context.Context, q store.UserQuery) (store.UserPage, error)
	ModifyUser(ctx context.Context, c store.UserChange) (store.UserChangeResult, error)
	FindAdminToken(ctx context.Context, h store.TokenHash) (store.AdminToken, error)
	CreateRegistrationNonce(ctx context.Context, nonce string, expiresAt time.Time) error
	ConsumeRegistrationNonce(ctx context.Context, nonce string, now time.Time) error
	RegisterUser(ctx context.Context, u store.User, s store.NewSession) error
	DeleteThreePID(ctx context.Context, userID string, medium store.Medium, address string) error

	CreateLoginToken(ctx context.Context, t store.LoginToken, g store.UIAGrant) error
	ConsumeLoginToken(ctx context.Context, h store.TokenHash, now time.Time) (store.User, error)
}

// Every store satisfies Store.
var _ Store = store.Store(nil)

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
	// nil disables it. The limiters run in this order, before any hashing.
	LoginIPLimiter ratelimit.Limiter
	// LoginFailedLimiter limits failed logins per identifier as named
	// (whether or not it names an account), or per account and network
	// for a client on a known network (see KnownNetworkTTL). An attempt
	// consumes one action before the password is checked; a successful
	// one gives it back. nil disables it.
	LoginFailedLimiter ratelimit.Limiter
	// KnownNetworkTTL is how long a network (an IP address, or an IPv6
	// /64) that a user logged in from successfully stays known: failed
	// logins from it are counted on a budget of that account and network
	// alone, so failures from elsewhere cannot lock the owner out. Zero
	// turns known networks off.
	KnownNetworkTTL time.Duration
	// LoginSuccessLimiter limits successful logins per account, checked
	// once the password is known to be right; nil disables it.
	LoginSuccessLimiter ratelimit.Limiter
	// RefreshIPLimiter limits /refresh and /tokenrefresh per client IP;
	// nil disables it.
	RefreshIPLimiter ratelimit.Limiter
	// TokenFailureLimiter limits, per client IP, the access tokens that
	// turn out unknown (malformed, not found, or of a deactivated user;
	// an expired one does not count) on every authenticated route and
	// /_authd/verify. An address over it is answered 429 before the store
	// is asked, whatever token it sends, unless the token cache holds that
	// token. nil disables it.
	TokenFailureLimiter ratelimit.Limiter
	// UIASessionTTL is how long a User-Interactive Authentication session
	// lasts from its challenge (defaultUIASessionTTL when zero).
	UIASessionTTL time.Duration
	// LoginTokens turns on m.login.token: POST /login accepts login
	// tokens and GET /login advertises them. Off, such a login is an
	// unknown login type.
	LoginTokens bool
	// LoginTokenTTL is the lifetime of a login token
	// (defaultLoginTokenTTL when zero).
	LoginTokenTTL time.Duration
	// AdminAPI serves the admin API (admin.go): Synapse's user admin
	// routes and the spec's admin whois and lock endpoints. Off, they do
	// not exist.
	AdminAPI bool
	// Version is authd's version, which the admin API's server_version
	// reports.
	Version string
	// RegistrationSharedSecret, when set, serves Synapse's shared-secret
	// registration (register.go) at /_synapse/admin/v1/register; empty,
	// the routes do not exist.
	RegistrationSharedSecret []byte
	// LoginTokenLimiter limits, per user, the login tokens issued; nil
	// disables it.
	LoginTokenLimiter ratelimit.Limiter
	// TrustedProxies are the peers whose X-Forwarded-For is believed (see
	// clientIP). Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// LastSeen, when set, is told of every request whose access token is
	// accepted (every authenticated route and /_authd/verify); nil records
	// nothing (a device's last-seen time is then its last login).
	LastSeen LastSeenRecorder
	// LastSeenIP keeps the client's address (see clientIP) as the
	// device's last-seen address, at login and in what LastSeen is told;
	// false keeps none.
	LastSeenIP bool
	// HashConcurrency bounds the password checks that run at once
	// (GOMAXPROCS when zero). HashQueueTimeout (defaultHashQueueTimeout
	// when zero) bounds the wait for a slot: a login that can expect a
	// longer one is answered 429 at once (see hashGate).
	HashConcurrency  int
	HashQueueTimeout time.Duration
	// TokenCache, when set, is believed for a validated access token
	// instead of asking the store; nil asks the store every time.
	// Revocations made through this handler drop their tokens from it at
	// once. Those made elsewhere (the CLI, another replica) drop them when
	// their notices reach TokenCache.Revoked (cmd/authd feeds it from the
	// revocation listener), or at the latest when the entries' lifetime
	// runs out.
	TokenCache *tokencache.Cache
	// Ready reports whether the service can take traffic (database
	// reachable, schema current); nil means always ready.
	Ready func(ctx context.Context) error
	// Checks, when set, names the state of parts that degrade without
	// making the service unready (the rate-limit backend, the revocation
	// feed): /readyz shows them as "checks".
	Checks func() map[string]string
	// StoreTimeout bounds every call to Store, so that a database that
	// stops answering costs a request 503 M_UNKNOWN after this long rather
	// than a hung connection; zero means no bound beyond the request's.
	StoreTimeout time.Duration
	// Metrics, when set, is served as GET /metrics (Prometheus); nil
	// leaves the route out (metrics served elsewhere, or not at all).
	Metrics http.Handler
	// Observer counts requests, logins, rate limiting and hashing; nil
	// counts nothing.
	Observer Observer
	// Logger receives one line per request and every internal error;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// defaultAccessTTL is the lifetime of refreshable access tokens when the
// policy names none.
const defaultAccessTTL = 5 * time.Minute

// TokenPolicy sets the lifetimes of the tokens login and refresh issue.
// A zero duration means the token does not expire.
type TokenPolicy struct {
	// IssueRefresh issues a refresh token to a login that asks for one
	// ("refresh_token": true); otherwise such a login gets a
	// non-refreshable token.
	IssueRefresh bool
	// AccessTTL is the lifetime of access tokens issued with a refresh
	// token. It must be positive when IssueRefresh is on.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens.
	RefreshTTL time.Duration
	// NonRefreshableTTL is the lifetime of access tokens issued without a
	// refresh token.
	NonRefreshableTTL time.Duration
}

type api struct {
	Deps
	log       *slog.Logger
	logSample *logSampler
	gate      *hashGate
	cache     *tokencache.Cache // nil when off
	// root is the router New returns: a 405 asks it which methods a path
	// takes, since a subrouter sees only the rest of the path.
	root chi.Router
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
	a.logSample = newLogSampler(a.Now)
	if a.Observer == nil {
		a.Observer = nopObserver{}
	}
	if a.Tokens.AccessTTL <= 0 {
		a.Tokens.AccessTTL = defaultAccessTTL
	}
	if a.LoginTokenTTL <= 0 {
		a.LoginTokenTTL = defaultLoginTokenTTL
	}
	if a.HashConcurrency <= 0 {
		a.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	if a.HashQueueTimeout <= 0 {
		a.HashQueueTimeout = defaultHashQueueTimeout
	}
	a.gate = newHashGate(a.HashConcurrency, a.HashQueueTimeout)
	a.gate.seedHashTime(a.Hasher.VerifyEstimate())
	a.cache = a.TokenCache
	if a.StoreTimeout > 0 {
		a.Store = boundedStore{s: a.Store, timeout: a.StoreTimeout}
	}

	r := a.newRouter()

	if a.ServeVersions {
		r.Get("/_matrix/client/versions", a.handleVersions)
	}
	r.Get("/healthz", a.handleHealthz)
	r.Get("/readyz", a.handleReadyz)
	if a.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", a.Metrics)
	}
	// Forward auth for the proxy, in front of every other Matrix request.
	// The proxy passes the original request's headers along, and its URI
	// for a query-string token. nginx's auth_request keeps the original
	// method, so every method is answered alike.
	r.With(a.requireAuthFrom(forwardedAccessToken, false)).HandleFunc("/_authd/verify", a.handleVerify)

	// Per-IP limits run before the body is read. A login refused here is
	// still counted as a login attempt.
	limitLogins := a.limitByIP(a.LoginIPLimiter, ruleIP, a.observeLogin)
	limitRefreshes := a.limitByIP(a.RefreshIPLimiter, ruleRefreshIP, nil)

	// r0 and v3 are one API (spec v1.1 re-versioned r0 to v3); old bots
	// still use r0.
	for _, prefix := range []string{"/_matrix/client/r0", "/_matrix/client/v3"} {
		r.Route(prefix, func(r chi.Router) {
			r.Get("/login", a.handleLoginFlows)
			r.With(limitLogins).Post("/login", a.handleLogin)
			// Refresh is authenticated by the refresh token alone: any
			// Authorization header (matrix-js-sdk sends the stale access
			// token) is ignored.
			r.With(limitRefreshes).Post("/refresh", a.handleRefresh)
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
				r.Get("/devices", a.handleListDevices)
				r.Get("/devices/{deviceId}", a.handleGetDevice)
				r.Put("/devices/{deviceId}", a.handleRenameDevice)
				// User-Interactive Authentication guards these (uia.go).
				r.Delete("/devices/{deviceId}", a.handleDeleteDevice)
				r.Post("/delete_devices", a.handleDeleteDevices)
				r.Post("/account/password", a.handleChangePassword)
				r.Post("/account/deactivate", a.handleDeactivate)
				r.Get("/account/3pid", a.handleListThreePIDs)
				r.Post("/account/3pid/delete", a.handleDeleteThreePID)
			})
		})
	}
	// Synapse before 1.72 served /refresh under v1 only, and matrix-js-sdk
	// falls back to it on M_UNRECOGNIZED.
	r.With(limitRefreshes).Post("/_matrix/client/v1/refresh", a.handleRefresh)
	if a.LoginTokens {
		// Served under v1 only, as the spec defines it.
		r.With(a.requireAuth(false)).Post("/_matrix/client/v1/login/get_token", a.handleGetLoginToken)
	}
	if a.AdminAPI {
		a.mountAdmin(r)
	}
	if len(a.RegistrationSharedSecret) > 0 {
		// Per client IP, on the login budget: nonces are rows.
		limitRegistrations := a.limitByIP(a.LoginIPLimiter, ruleIP, nil)
		r.With(limitRegistrations).Get("/_synapse/admin/v1/register", a.handleRegisterNonce)
		r.With(limitRegistrations).Post("/_synapse/admin/v1/register", a.handleRegister)
	}
	// The r0.2.0 seed's exchange, which predates the v3 API.
	r.With(limitRefreshes).Post("/_matrix/client/r0/tokenrefresh", a.handleTokenRefresh)
	return r
}

// NewUnavailable returns the handler serve answers with until its store is
// open and its schema checked: /healthz says the process is up, /readyz
// answers 503 with d.Ready's reason, /metrics is served if d.Metrics is
// set, OPTIONS gets its CORS answer, and every other request 503 M_UNKNOWN
// (a client retries it). Of d it uses Ready, Checks, Metrics, Observer,
// Logger and TrustedProxies.
func NewUnavailable(d Deps) http.Handler {
	a := &api{Deps: Deps{Ready: d.Ready, Checks: d.Checks, Metrics: d.Metrics, Observer: d.Observer, Logger: d.Logger, TrustedProxies: d.TrustedProxies}, log: d.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.Observer == nil {
		a.Observer = nopObserver{}
	}
	if a.Ready == nil {
		a.Ready = func(context.Context) error { return errStarting }
	}
	a.logSample = newLogSampler(time.Now)
	r := a.newRouter()
	r.Get("/healthz", a.handleHealthz)
	r.Get("/readyz", a.handleReadyz)
	if a.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", a.Metrics)
	}
	unavailable := func(w http.ResponseWriter, r *http.Request) { a.writeError(w, r, errUnavailable) }
	r.NotFound(unavailable)
	r.MethodNotAllowed(unavailable)
	return r
}

// newRouter is a router with the middleware every response gets; the
// first one made is the root.
func (a *api) newRouter() chi.Router {
	r := chi.NewRouter()
	if a.root == nil {
		a.root = r
	}
	r.Use(a.requestID, a.logRequests, a.recoverPanics, cors)
	r.NotFound(a.handleNotFound)
	r.MethodNotAllowed(a.handleMethodNotAllowed)
	return r
}

// handleNotFound answers a path no route takes: 404 M_UNRECOGNIZED.
func (a *api) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, errUnrecognized)
}

// handleMethodNotAllowed answers a known path asked with a method it does
// not take: 405 with the Matrix error, and the Allow header RFC 9110
// requires, which chi sets only for its own 405 handler.
func (a *api) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if allow := a.allowedMethods(r); allow != "" {
		w.Header().Set("Allow", allow)
	}
	a.writeError(w, r, errMethod)
}

// allowedMethods lists the methods the router takes on r's path, OPTIONS
// (answered for CORS on every path) included.
func (a *api) allowedMethods(r *http.Request) string {
	path := r.URL.EscapedPath()
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if a.root.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return ""
	}
	return strings.Join(append(allow, http.MethodOptions), ", ")
}
