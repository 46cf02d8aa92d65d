package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// cors puts the Matrix CORS headers on every response, errors included, and
// answers every OPTIONS request itself: the spec forbids running endpoint
// logic (authentication included) for a preflight.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		if r.Method == http.MethodOptions {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one log line per request: method, route pattern (never
// the raw URL, whose query may hold an access token), status, size, duration
// and request ID.
func (a *api) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		a.Observer.Request(routePattern(r), r.Method, ww.Status(), time.Since(start))
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("route", routePattern(r)),
			slog.Int("status", ww.Status()),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", middleware.GetReqID(r.Context())),
		)
	})
}

// routePattern names the route that served r ("/_matrix/client/v3/login"),
// or "unmatched".
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// recoverPanics turns a panic into a logged 500 Matrix error instead of a
// dropped connection.
func (a *api) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

// sessionFrom returns the session requireAuth put in the context.
func sessionFrom(ctx context.Context) store.Session {
	s, _ := ctx.Value(sessionKey{}).(store.Session)
	return s
}

// requireAuth authenticates the request's access token once, before the
// handler, and puts the session in the context. allowExpired lets an
// expired token through (logout).
func (a *api) requireAuth(allowExpired bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := accessToken(r)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			// A token that is not one of ours (bad checksum, wrong shape)
			// is refused without touching the database.
			if token.Check(token.Access, tok) != nil {
				a.writeError(w, r, errUnknownToken)
				return
			}
			s, err := a.Store.FindSessionByAccessToken(r.Context(), token.Hash(tok))
			if errors.Is(err, store.ErrNotFound) {
				a.writeError(w, r, errUnknownToken)
				return
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if s.User.Deactivated() {
				a.writeError(w, r, errUnknownToken)
				return
			}
			if !allowExpired && s.AccessToken.Expired(a.Now()) {
				a.writeError(w, r, errExpiredToken)
				return
			}
			// The first use of a pair issued by /refresh retires the refresh
			// token it was issued for, and every other pair of the device.
			if s.AccessToken.Pending {
				err := a.Store.ConfirmAccessToken(r.Context(), s.AccessToken.Hash, a.Now().UTC())
				if errors.Is(err, store.ErrNotFound) {
					a.writeError(w, r, errUnknownToken)
					return
				}
				if err != nil {
					a.writeError(w, r, err)
					return
				}
				s.AccessToken.Pending = false
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
		})
	}
}

// tokenLogID names a token in logs by the first bytes of its SHA-256, which
// tells tokens apart without revealing them.
func tokenLogID(tok string) string {
	h := token.Hash(tok)
	return hex.EncodeToString(h[:4])
}

// accessToken reads the access token from the Authorization header or the
// deprecated access_token query parameter. Both at once, either twice, or a
// header that is not "Bearer <token>" (scheme case-insensitive, RFC 7235)
// is M_MISSING_TOKEN, as Synapse answers.
func accessToken(r *http.Request) (string, error) {
	headers := r.Header.Values("Authorization")
	query := r.URL.Query()["access_token"]
	switch {
	case len(headers) > 0 && len(query) > 0:
		return "", errMixedToken
	case len(headers) > 1 || len(query) > 1:
		return "", errBadAuthz
	case len(query) == 1:
		if query[0] == "" {
			return "", errMissingToken
		}
		return query[0], nil
	case len(headers) == 1:
		scheme, tok, ok := strings.Cut(headers[0], " ")
		tok = strings.TrimLeft(tok, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
			return "", errBadAuthz
		}
		return tok, nil
	default:
		return "", errMissingToken
	}
}
