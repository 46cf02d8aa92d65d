package api

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd/authd/internal/store"
)

// matrixError is a Matrix error response: an HTTP status, an errcode and a
// human-readable message, plus the extra keys some errcodes carry.
type matrixError struct {
	Status  int
	Errcode string
	Message string
	// SoftLogout, when not nil, is sent as "soft_logout" (M_UNKNOWN_TOKEN).
	SoftLogout *bool
	// RetryAfter, when positive, is sent as "retry_after_ms" and as a
	// Retry-After header in whole seconds (M_LIMIT_EXCEEDED).
	RetryAfter time.Duration
	// outcome is how a login that ends in this error is counted (see
	// loginOutcome); empty for an error that is only a bad request.
	outcome string
}

func (e *matrixError) Error() string { return e.Errcode + ": " + e.Message }

var (
	softLogoutTrue  = true
	softLogoutFalse = false
)

// The error table: every fixed Matrix error authd sends. Errors whose
// message names the client's input are built by badRequest, and 429s by
// errLimitExceeded; anything else becomes errInternal or errUnavailable in
// writeError.
var (
	errNotJSON         = &matrixError{Status: http.StatusBadRequest, Errcode: "M_NOT_JSON", Message: "Content not JSON."}
	errNotObject       = &matrixError{Status: http.StatusBadRequest, Errcode: "M_BAD_JSON", Message: "Content must be a JSON object."}
	errTooLarge        = &matrixError{Status: http.StatusRequestEntityTooLarge, Errcode: "M_TOO_LARGE", Message: "Request body too large."}
	errUnrecognized    = &matrixError{Status: http.StatusNotFound, Errcode: "M_UNRECOGNIZED", Message: "Unrecognized request"}
	errMethod          = &matrixError{Status: http.StatusMethodNotAllowed, Errcode: "M_UNRECOGNIZED", Message: "Unrecognized request"}
	errForbidden       = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "Invalid username or password", outcome: outcomeForbidden}
	errDeactivated     = &matrixError{Status: http.StatusForbidden, Errcode: "M_USER_DEACTIVATED", Message: "This account has been deactivated", outcome: outcomeDeactivated}
	errMissingToken    = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_MISSING_TOKEN", Message: "Missing access token."}
	errMixedToken      = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_MISSING_TOKEN", Message: "Mixing Authorization headers and access_token query parameters."}
	errEncodedTokenKey = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_MISSING_TOKEN", Message: "The access_token query parameter's name must not be percent-encoded."}
	errBadAuthz        = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_MISSING_TOKEN", Message: "Invalid Authorization header."}
	errUnknownToken    = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_UNKNOWN_TOKEN", Message: "Unrecognised access token.", SoftLogout: &softLogoutFalse}
	errExpiredToken    = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_UNKNOWN_TOKEN", Message: "Access token has expired", SoftLogout: &softLogoutTrue}
	errInternal        = &matrixError{Status: http.StatusInternalServerError, Errcode: "M_UNKNOWN", Message: "Internal server error"}
	errUnavailable     = &matrixError{Status: http.StatusServiceUnavailable, Errcode: "M_UNKNOWN", Message: "Service temporarily unavailable"}
	errUnknownRefresh  = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_UNKNOWN_TOKEN", Message: "Unknown refresh token", SoftLogout: &softLogoutFalse}
	errExpiredRefresh  = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_UNKNOWN_TOKEN", Message: "Refresh token has expired", SoftLogout: &softLogoutTrue}
	errForbiddenLegacy = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "Invalid refresh token"}
	// errUserLocked answers every request of a locked account but logout
	// (spec, Account locking): the client keeps its session and waits.
	errUserLocked     = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_USER_LOCKED", Message: "This account has been locked", SoftLogout: &softLogoutTrue, outcome: outcomeLocked}
	errDeviceNotFound = &matrixError{Status: http.StatusNotFound, Errcode: "M_NOT_FOUND", Message: "Unknown device"}
	errCheckChanged   = &matrixError{Status: http.StatusServiceUnavailable, Errcode: "M_UNKNOWN", Message: "The token check changed while the request waited; retry it."}
)

// badRequest is a 400 with errcode and a message of the caller's making.
func badRequest(errcode, message string) *matrixError {
	return &matrixError{Status: http.StatusBadRequest, Errcode: errcode, Message: message}
}

// errLimitExceeded is the 429 of a rate limit that frees up after
// retryAfter.
func errLimitExceeded(retryAfter time.Duration) *matrixError {
	return &matrixError{Status: http.StatusTooManyRequests, Errcode: "M_LIMIT_EXCEEDED", Message: "Too Many Requests", RetryAfter: retryAfter, outcome: outcomeRateLimited}
}

type errorBody struct {
	Errcode      string `json:"errcode"`
	Error        string `json:"error"`
	SoftLogout   *bool  `json:"soft_logout,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// writeError sends err as a Matrix error. A *matrixError goes out as it is; a
// cancelled request, a timeout or an unavailable database is 503, anything
// else 500, each logged with its detail and answered with a fixed message
// that reveals none of it. A response is always written: a handler that
// wrote nothing would answer 200, which a forward-auth proxy reads as
// "allow". A cancelled request gets an explicit 503 rather than an aborted
// connection, so that a client that half-closed its side, and every
// middleware that records the status, still sees a refusal.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *matrixError
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client hung up: usually nobody reads this answer, and
		// there is nothing to log beyond the request line.
		e = errUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "request timed out", slog.String("route", routePattern(r)), slog.Any("err", err))
		e = errUnavailable
	case errors.Is(err, store.ErrUnavailable):
		// The database is down or refusing: the client may retry, and no
		// token was issued (a login answers only after its session is
		// stored).
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "database unavailable", slog.String("route", routePattern(r)), slog.Any("err", err))
		e = errUnavailable
	default:
		a.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("route", routePattern(r)), slog.Any("err", err))
		e = errInternal
	}
	body := errorBody{Errcode: e.Errcode, Error: e.Message, SoftLogout: e.SoftLogout}
	if e.RetryAfter > 0 {
		body.RetryAfterMS = e.RetryAfter.Milliseconds()
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
	}
	writeJSON(w, e.Status, body)
}

// quote makes client input safe to echo in an error message.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "�")
}
