package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// The admin API is Synapse's (/_synapse/admin/...), cut to what authd owns:
// users, passwords, third-party IDs, devices and tokens, the admin flag and
// the lock; plus the spec's admin whois and lock endpoints. Every tool
// operators have for user administration (synadm, synapse-admin, Ketesa,
// matrix-js-sdk's admin calls) speaks these paths. Handlers are in
// adminusers.go and admindevices.go.

var (
	errNotAdmin     = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "You are not a server admin"}
	errUserNotFound = &matrixError{Status: http.StatusNotFound, Errcode: "M_NOT_FOUND", Message: "User not found"}
)

// mountAdmin adds the admin routes to r. Admin is checked before the
// target user is looked up, and answered the same for every target, so
// that a non-admin learns nothing about which users exist.
func (a *api) mountAdmin(r chi.Router) {
	r.Get("/_synapse/admin/v1/server_version", a.handleServerVersion)
	r.Group(func(r chi.Router) {
		r.Use(a.requireAdminAuth(false))
		r.Get("/_synapse/admin/v2/users", a.handleListUsers(false))
		r.Get("/_synapse/admin/v3/users", a.handleListUsers(true))
		r.Get("/_synapse/admin/v2/users/{userId}", a.handleGetUser)
		r.Put("/_synapse/admin/v2/users/{userId}", a.handlePutUser)
		r.Post("/_synapse/admin/v1/reset_password/{userId}", a.handleResetPassword)
		r.Post("/_synapse/admin/v1/deactivate/{userId}", a.handleAdminDeactivate)
		r.Get("/_synapse/admin/v1/whois/{userId}", a.handleWhois)
		r.Get("/_synapse/admin/v2/users/{userId}/devices", a.handleAdminListDevices)
		r.Get("/_synapse/admin/v2/users/{userId}/devices/{deviceId}", a.handleAdminGetDevice)
		r.Put("/_synapse/admin/v2/users/{userId}/devices/{deviceId}", a.handleAdminRenameDevice)
		r.Delete("/_synapse/admin/v2/users/{userId}/devices/{deviceId}", a.handleAdminDeleteDevice)
		r.Post("/_synapse/admin/v2/users/{userId}/delete_devices", a.handleAdminDeleteDevices)
		r.Get("/_synapse/admin/v1/threepid/{medium}/users/{address}", a.handleThreePIDOwner)
		r.Put("/_synapse/admin/v1/users/{userId}/admin", a.handleSetAdmin)
		r.Get("/_matrix/client/v1/admin/lock/{userId}", a.handleGetLock)
		r.Put("/_matrix/client/v1/admin/lock/{userId}", a.handleSetLock)
	})
	// A user may ask these of themselves: matrix-js-sdk's
	// isSynapseAdministrator asks the admin flag of its own user, and the
	// spec lets a user whois themselves.
	r.Group(func(r chi.Router) {
		r.Use(a.requireAdminAuth(true))
		r.Get("/_synapse/admin/v1/users/{userId}/admin", a.handleGetAdmin)
		r.Get("/_matrix/client/r0/admin/whois/{userId}", a.handleWhois)
		r.Get("/_matrix/client/v3/admin/whois/{userId}", a.handleWhois)
	})
}

// requireAdminAuth authorises an admin request: an admin token (the CLI's
// `authd admin token issue`), looked up in the store on every request so
// that a revocation is immediate everywhere, or else an access token of an
// admin user (requireAuth, then requireAdmin).
func (a *api) requireAdminAuth(self bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		asUser := a.requireAuth(false)(a.requireAdmin(self)(next))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := accessToken(r)
			if err != nil || token.Check(token.Admin, tok) != nil {
				asUser.ServeHTTP(w, r)
				return
			}
			if err := a.peekTokenFailures(r); err != nil {
				a.writeError(w, r, err)
				return
			}
			t, err := a.Store.FindAdminToken(r.Context(), token.Hash(tok))
			if errors.Is(err, store.ErrNotFound) || err == nil && t.Expired(a.Now()) {
				a.spendTokenFailure(r)
				a.writeError(w, r, errUnknownToken)
				return
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, "admin-token:"+t.ID)))
		})
	}
}

type adminKey struct{}

// adminFrom is the admin requireAdminAuth let through: the user ID of the
// caller (also set for a user asking about themselves), or "admin-token:"
// and the ID of an admin token.
func adminFrom(ctx context.Context) string {
	id, _ := ctx.Value(adminKey{}).(string)
	return id
}

// requireAdmin lets a request through when the caller's account is an
// admin's, read from the store on every request rather than from the token
// cache, so that a demotion takes effect at once on every replica. With
// self, a caller may also ask about their own account: the {userId} of the
// path, compared as sent. Anyone else gets errNotAdmin, before any lookup
// of the target.
func (a *api) requireAdmin(self bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := sessionFrom(r.Context())
			u, err := a.Store.FindUserByID(r.Context(), s.AccessToken.UserID)
			if errors.Is(err, store.ErrNotFound) {
				// Deleted between the token check and now.
				err = errUnknownToken
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if !u.Admin {
				target, _ := url.PathUnescape(chi.URLParam(r, "userId"))
				if !self || target != u.ID {
					a.Observer.AdminAction(routePattern(r), "forbidden")
					a.writeError(w, r, errNotAdmin)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, u.ID)))
		})
	}
}

// targetUserID is the {userId} of the path, percent-decoded (chi matches
// the escaped path, so that an encoded ID is one segment), which must be a
// user ID on this server: errcode is the error code of a foreign one (the
// spec's endpoints say M_INVALID_PARAM; Synapse's own say M_UNKNOWN).
func (a *api) targetUserID(r *http.Request, errcode string) (string, error) {
	id, err := url.PathUnescape(chi.URLParam(r, "userId"))
	if err != nil || !strings.HasPrefix(id, "@") || len(id) > store.MaxUserIDLen {
		return "", badRequest("M_INVALID_PARAM", "Invalid user ID")
	}
	_, server, ok := strings.Cut(id[1:], ":")
	if !ok {
		return "", badRequest("M_INVALID_PARAM", "Invalid user ID")
	}
	if server != a.ServerName {
		return "", badRequest(errcode, "Can only look up local users")
	}
	return id, nil
}

// targetUser is the user targetUserID names, or errUserNotFound.
func (a *api) targetUser(r *http.Request, errcode string) (store.User, error) {
	id, err := a.targetUserID(r, errcode)
	if err != nil {
		return store.User{}, err
	}
	u, err := a.Store.FindUserByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errUserNotFound
	}
	return u, err
}

// adminDone counts and logs an admin action that changed something: who,
// on whom, what. Never a password.
func (a *api) adminDone(r *http.Request, target string, attrs ...slog.Attr) {
	a.Observer.AdminAction(routePattern(r), "ok")
	attrs = append([]slog.Attr{
		slog.String("admin", adminFrom(r.Context())),
		slog.String("target", target),
		slog.String("route", routePattern(r)),
		slog.String("method", MethodLabel(r.Method)),
	}, attrs...)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin action", attrs...)
}

// adminFailed writes err and counts the action by its status.
func (a *api) adminFailed(w http.ResponseWriter, r *http.Request, err error) {
	outcome := "error"
	var e *matrixError
	if errors.As(err, &e) && e.Status < 500 {
		outcome = "refused"
	}
	a.Observer.AdminAction(routePattern(r), outcome)
	a.writeError(w, r, err)
}

// hashAdminPassword hashes a password an admin set, in a hashing slot like
// a login's, but waiting for one as long as the request lasts rather than
// being shed: an import script's requests queue behind each other.
func (a *api) hashAdminPassword(r *http.Request, pw string) (string, error) {
	slot, wait, err := a.gate.acquireUntilDone(r.Context())
	a.Observer.HashWait(wait)
	if err != nil {
		return "", err // only the request's end stops the wait
	}
	defer a.gate.release(slot)
	return a.Hasher.Hash(pw)
}

type serverVersionResponse struct {
	ServerVersion string `json:"server_version"`
}

// handleServerVersion handles GET /_synapse/admin/v1/server_version, which
// needs no token (Synapse's does not either): synadm's version and
// synapse-admin's login page read it.
func (a *api) handleServerVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, serverVersionResponse{ServerVersion: "authd " + a.Version})
}
