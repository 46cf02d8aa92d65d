package api

import "time"

// Observer receives the events authd counts. The metrics package implements
// it; a nil Observer in Deps counts nothing. Label values are fixed strings
// from this package, never client input or secrets.
type Observer interface {
	// Request is called once per request with its route pattern (or
	// "unmatched"), method (one of the standard ones, or "other"), status
	// and duration.
	Request(route, method string, status int, d time.Duration)
	// LoginAttempt counts a POST /login by outcome: "success",
	// "forbidden", "deactivated", "locked", "bad_request", "rate_limited",
	// "hash_busy" or "error".
	LoginAttempt(outcome string)
	// RateLimited counts a request refused by a rate-limit rule: "ip",
	// "account_failed", "account_success", "refresh_ip", "token_failures"
	// or "login_tokens".
	RateLimited(rule string)
	// HashWait is how long a password check waited for a hashing slot.
	HashWait(d time.Duration)
	// HashDuration is how long one password check (or dummy check) took.
	HashDuration(d time.Duration)
	// AdminAction counts an admin API request by route pattern and
	// outcome: "ok", "refused" (a client error, the target's absence
	// included), "forbidden" (not an admin) or "error".
	AdminAction(route, outcome string)
}

// The outcomes of a login, as counted by the Observer.
const (
	outcomeSuccess     = "success"
	outcomeForbidden   = "forbidden"
	outcomeDeactivated = "deactivated"
	outcomeLocked      = "locked"
	outcomeBadRequest  = "bad_request"
	outcomeRateLimited = "rate_limited"
	outcomeHashBusy    = "hash_busy"
	outcomeError       = "error"
)

// LoginOutcomes returns the outcomes LoginAttempt reports, so that an
// Observer may start each one at zero.
func LoginOutcomes() []string {
	return []string{outcomeSuccess, outcomeForbidden, outcomeDeactivated, outcomeLocked, outcomeBadRequest,
		outcomeRateLimited, outcomeHashBusy, outcomeError}
}

// RateLimitRules returns the rules RateLimited reports, so that an
// Observer may start each one at zero.
func RateLimitRules() []string {
	return []string{ruleIP, ruleAccountFailed, ruleAccountSuccess, ruleRefreshIP, ruleTokenFailures, ruleLoginTokens}
}

type nopObserver struct{}

func (nopObserver) Request(string, string, int, time.Duration) {}
func (nopObserver) LoginAttempt(string)                        {}
func (nopObserver) RateLimited(string)                         {}
func (nopObserver) HashWait(time.Duration)                     {}
func (nopObserver) HashDuration(time.Duration)                 {}
func (nopObserver) AdminAction(string, string)                 {}
