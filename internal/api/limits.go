package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
)

// The rate-limit rules, as counted by the Observer.
const (
	ruleIP             = "ip"
	ruleAccountFailed  = "account_failed"
	ruleAccountSuccess = "account_success"
	ruleRefreshIP      = "refresh_ip"
	// ruleTokenFailures is the per-address budget of unknown access tokens
	// (Deps.TokenFailureLimiter).
	ruleTokenFailures = "token_failures"
	// ruleLoginTokens is the per-user budget of login tokens issued
	// (Deps.LoginTokenLimiter).
	ruleLoginTokens = "login_tokens"
)

// limitByIP refuses, with 429, a request whose client address is over l
// under rule; a nil l lets everything through. observe, when not nil, is
// told of every request the middleware answers itself (a refusal, or the
// limiter's own failure), so that an endpoint counting its outcomes
// counts these too.
func (a *api) limitByIP(l ratelimit.Limiter, rule string, observe func(error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := a.limit(r, l, a.clientIPKey(r), rule); err != nil {
				if observe != nil {
					observe(err)
				}
				a.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// failedLogin is the action a login spent from its failed-login budget
// before its password was checked: refund gives it back.
type failedLogin struct {
	limiter ratelimit.Limiter // nil when failed logins are not limited
	key     string
	log     *slog.Logger
}

// spendFailedLogin consumes one action of the login's failed-login budget
// (failedLoginKey), and says 429 when the budget is spent.
func (a *api) spendFailedLogin(r *http.Request, who loginIdentity, u store.User, found bool, network string) (failedLogin, error) {
	key, err := a.failedLoginKey(r.Context(), who, u, found, network)
	if err != nil {
		return failedLogin{}, err
	}
	if err := a.limit(r, a.LoginFailedLimiter, key, ruleAccountFailed); err != nil {
		return failedLogin{}, err
	}
	return failedLogin{limiter: a.LoginFailedLimiter, key: key, log: a.log}, nil
}

// refund gives the spent action back. A failure is logged: the login's
// answer stands.
func (f failedLogin) refund(ctx context.Context) {
	if f.limiter == nil {
		return
	}
	if err := f.limiter.Undo(ctx, f.key); err != nil {
		f.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter undo failed", slog.Any("err", err))
	}
}

// accountKey is the key of an account's own budgets, the same for every
// spelling of its user ID.
func accountKey(userID string) string {
	return limitKey(store.FoldUserID(userID))
}

// limit consumes one action of key under l, and says 429 when l denies it.
// A nil l allows everything.
func (a *api) limit(r *http.Request, l ratelimit.Limiter, key, rule string) error {
	if l == nil {
		return nil
	}
	d, err := l.Allow(r.Context(), key)
	if err != nil {
		return err
	}
	return a.refusal(d, rule)
}

// refusal is the 429 for a limiter's denial under rule, counted; nil when
// d allows.
func (a *api) refusal(d ratelimit.Decision, rule string) error {
	if d.Allowed {
		return nil
	}
	a.Observer.RateLimited(rule)
	return errLimitExceeded(d.RetryAfter)
}

// maxLimitKey bounds the length of a rate-limit key. Limiters bound the
// number of keys they hold, not their size: an identifier can be as long as
// the 64 KiB body allows, and a spray of such logins from many addresses
// would otherwise hold gigabytes in the in-process limiter, or in Redis. No
// valid user ID (255 bytes) or email address is longer.
const maxLimitKey = 320

// limitKey is key, or its SHA-256 when it is longer than maxLimitKey.
func limitKey(key string) string {
	if len(key) > maxLimitKey {
		sum := sha256.Sum256([]byte(key))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return key
}

// identifierKey is the failed-login key of an identifier as the client
// named it: the folded user ID a localpart or user ID stands for, or the
// canonical third-party address. It never depends on whether, or to which
// account, the identifier resolves: were it the account's, failures spent
// on an email address would make its owner's user ID answer 429, which
// tells who owns the address (and that anyone does).
func (a *api) identifierKey(who loginIdentity) string {
	if who.medium != "" {
		addr, err := store.CanonicalAddress(who.medium, who.address)
		if err != nil {
			addr = strings.ToLower(who.address)
		}
		return limitKey("3pid:" + string(who.medium) + ":" + addr)
	}
	return limitKey(store.FoldUserID(a.qualify(who.user)))
}

// failedLoginKey is the key failed logins are counted under. Normally the
// identifier's (identifierKey): a guesser gets the failed-login burst per
// identifier of an account (its user ID and each address), however many
// addresses it sends from, and every identifier behaves alike whether or
// not it names an account. But failures from elsewhere must not lock the
// owner out: a client on a network the account logged in from successfully
// within KnownNetworkTTL (the IP, or the /64 for IPv6) counts its failures
// under that account and network instead, a budget nobody outside that
// network can spend.
func (a *api) failedLoginKey(ctx context.Context, who loginIdentity, u store.User, found bool, network string) (string, error) {
	if !found || a.KnownNetworkTTL <= 0 || network == invalidIPKey {
		return a.identifierKey(who), nil
	}
	err := a.Store.FindLoginNetwork(ctx, u.ID, network, a.Now().Add(-a.KnownNetworkTTL).UTC())
	switch {
	case err == nil:
		return limitKey("known:" + network + ":" + store.FoldUserID(u.ID)), nil
	case errors.Is(err, store.ErrNotFound):
		return a.identifierKey(who), nil
	default:
		return "", err
	}
}

// rememberNetwork records that the user logged in from network, which
// makes it a known network (failedLoginKey). A network recorded within the
// last tenth of KnownNetworkTTL (at most an hour) is not written again:
// one read instead of a transaction and a commit for each login of a
// client that logs in often. A failure is logged, not fatal: the login
// succeeded.
func (a *api) rememberNetwork(r *http.Request, userID, network string) {
	if a.KnownNetworkTTL <= 0 || network == invalidIPKey {
		return
	}
	now := a.Now().UTC()
	fresh := min(a.KnownNetworkTTL/10, time.Hour)
	if a.Store.FindLoginNetwork(r.Context(), userID, network, now.Add(-fresh)) == nil {
		return
	}
	if err := a.Store.RecordLoginNetwork(r.Context(), userID, network, now); err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "recording the login network failed", slog.String("user_id", userID), slog.Any("err", err))
	}
}
