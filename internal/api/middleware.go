package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// requestIDHeader carries the request ID in and out.
const requestIDHeader = "X-Request-Id"

// requestID gives every request an ID, puts it in the context (where
// middleware.GetReqID finds it) and sends it back in X-Request-Id, so that
// a client's report, the proxy's log and authd's log line meet. The ID a
// trusted proxy sends (nginx $request_id, Caddy, Traefik, Envoy) is kept
// when it looks like one; a client's own is never believed (it could pin
// its lines to another request's ID in the log), nor anything that does
// not look like an ID, so that the log never holds more than a short token
// of plain characters.
func (a *api) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !plausibleRequestID(id) || !isTrusted(parseHostIP(r.RemoteAddr), a.TrustedProxies) {
			id = rand.Text()
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middleware.RequestIDKey, id)))
	})
}

// plausibleRequestID accepts 1 to 64 letters, digits, '-', '_' and '.'.
func plausibleRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// quietRoutes are polled by orchestrators and Prometheus every few seconds:
// their successes are logged at debug level, their failures as usual.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// logRequests writes one log line per request: method, route pattern (never
// the raw URL, whose query may hold an access token), status, size, duration
// and request ID. Client errors are sampled (logSampler): a flood of them
// writes a bounded number of lines, each carrying how many it stands for.
func (a *api) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		d := time.Since(start)
		route := routePattern(r)
		a.Observer.Request(route, MethodLabel(r.Method), ww.Status(), d)
		level := slog.LevelInfo
		if quietRoutes[route] && ww.Status() < 400 {
			level = slog.LevelDebug
		}
		if !a.log.Enabled(r.Context(), level) {
			return
		}
		write, suppressed := a.logSample.admit(route, ww.Status())
		if !write {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", MethodLabel(r.Method)),
			slog.String("route", route),
			slog.Int("status", ww.Status()),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", d),
			slog.String("request_id", middleware.GetReqID(r.Context())),
		}
		if suppressed > 0 {
			attrs = append(attrs, slog.Int("suppressed", suppressed))
		}
		a.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// MethodLabel is m if it is a standard HTTP method, else "other": the
// method is client input, and metric labels and logs get none. It is the
// method every Observer.Request call carries.
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
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
// expired token, and a locked account's, through: logout and logout/all,
// the only requests a locked account may make.
func (a *api) requireAuth(allowExpired bool) func(http.Handler) http.Handler {
	return a.requireAuthFrom(accessToken, allowExpired)
}

// requireAuthFrom is requireAuth with the token read by readToken.
func (a *api) requireAuthFrom(readToken func(*http.Request) (string, error), allowExpired bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := readToken(r)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			h := token.Hash(tok)
			// An address over its budget of unknown tokens is refused
			// before the database is asked, whatever token it sends now:
			// only one the cache already holds gets through.
			if _, cached := a.cache.Lookup(h, a.Now()); !cached {
				if err := a.peekTokenFailures(r); err != nil {
					a.writeError(w, r, err)
					return
				}
			}
			// A token that is not one of ours (bad checksum, wrong shape)
			// is refused without touching the database.
			if token.Check(token.Access, tok) != nil {
				a.spendTokenFailure(r)
				a.writeError(w, r, errUnknownToken)
				return
			}
			s, err := a.findSession(r.Context(), h)
			if errors.Is(err, store.ErrNotFound) {
				a.spendTokenFailure(r)
				a.writeError(w, r, errUnknownToken)
				return
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if s.User.Deactivated() {
				a.spendTokenFailure(r)
				a.writeError(w, r, errUnknownToken)
				return
			}
			// A locked account keeps its tokens but may only log out
			// (the routes that take expired tokens) until it is unlocked.
			if s.User.Locked() && !allowExpired {
				a.writeError(w, r, errUserLocked)
				return
			}
			// An expired token is a client's own, due for a refresh (soft
			// logout): it costs nothing from the budget.
			if !allowExpired && s.AccessToken.Expired(a.Now()) {
				a.writeError(w, r, errExpiredToken)
				return
			}
			// The first use of a pair issued by /refresh retires the refresh
			// token it was issued for, and every other pair of the device.
			if s.AccessToken.Pending {
				err := a.Store.ConfirmAccessToken(r.Context(), s.AccessToken.Hash, a.Now().UTC())
				// The confirmation deleted the device's other tokens.
				a.cache.DropDevice(s.AccessToken.UserID, s.AccessToken.DeviceID)
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
			if a.LastSeen != nil {
				a.LastSeen.Seen(s.AccessToken.UserID, s.AccessToken.DeviceID, a.lastSeenAddr(r), a.Now())
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
		})
	}
}

// peekTokenFailures refuses the request with 429 if its client address
// has spent its budget of unknown tokens (TokenFailureLimiter).
func (a *api) peekTokenFailures(r *http.Request) error {
	if a.TokenFailureLimiter == nil {
		return nil
	}
	d, err := a.TokenFailureLimiter.Peek(r.Context(), a.clientIPKey(r))
	if err != nil {
		return err
	}
	return a.refusal(d, ruleTokenFailures)
}

// spendTokenFailure charges an unknown token to its client address. A
// limiter that fails leaves the answer a 401: it is logged, not returned.
func (a *api) spendTokenFailure(r *http.Request) {
	if a.TokenFailureLimiter == nil {
		return
	}
	if _, err := a.TokenFailureLimiter.Allow(r.Context(), a.clientIPKey(r)); err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "rate limiter failed", slog.Any("err", err))
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
	query, err := queryTokens(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	return tokenFrom(r.Header.Values("Authorization"), query)
}

// queryTokens returns the values of the access_token parameters of a raw
// query. The key must be spelled literally: a key that only decodes to
// access_token (access%5Ftoken) is refused, since the proxies' log
// redaction, like any tool that greps for the parameter, would miss it.
// A malformed pair is skipped, as url.ParseQuery skips it.
func queryTokens(rawQuery string) ([]string, error) {
	var tokens []string
	for pair := range strings.SplitSeq(rawQuery, "&") {
		key, value, _ := strings.Cut(pair, "=")
		if key != "access_token" {
			if decoded, err := url.QueryUnescape(key); err == nil && decoded == "access_token" {
				return nil, errEncodedTokenKey
			}
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			continue
		}
		tokens = append(tokens, v)
	}
	return tokens, nil
}

// forwardedAccessToken is accessToken for a forward-auth request from a
// proxy: with no access_token in the request's own query, it reads the
// query of the original request's URI, which nginx passes as X-Original-URI
// (proxy_set_header X-Original-URI $request_uri) and Caddy and Traefik as
// X-Forwarded-Uri. Any other peer may send these headers too, and gains
// nothing: they only say where to find the token it could send itself.
func forwardedAccessToken(r *http.Request) (string, error) {
	query, err := queryTokens(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	if len(query) == 0 {
		for _, h := range []string{"X-Original-URI", "X-Forwarded-Uri"} {
			if uri := r.Header.Get(h); uri != "" {
				_, rawQuery, _ := strings.Cut(uri, "?")
				rawQuery, _, _ = strings.Cut(rawQuery, "#")
				if query, err = queryTokens(rawQuery); err != nil {
					return "", err
				}
				break
			}
		}
	}
	return tokenFrom(r.Header.Values("Authorization"), query)
}

// tokenFrom picks the one access token of a request's Authorization headers
// and access_token query values.
func tokenFrom(headers, query []string) (string, error) {
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
