package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

const (
	loginTypeToken = "m.login.token"
	// defaultLoginTokenTTL is the spec's recommended lifetime of a login
	// token.
	defaultLoginTokenTTL = 2 * time.Minute
)

// errBadLoginToken is the one answer to every login token that does not
// log in: malformed, of another kind, unknown, used or expired. One body
// for all tells a guesser nothing about which.
var errBadLoginToken = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "Invalid login token", outcome: outcomeForbidden}

// parseLoginToken reads the token of an m.login.token login. A missing one
// is Synapse's 400 for a missing key.
func parseLoginToken(body jsonObject) (string, error) {
	if !body.present("token") {
		return "", badRequest("M_UNKNOWN", "Missing JSON keys.")
	}
	t, _, err := body.str("token")
	if err != nil {
		return "", badRequest("M_INVALID_PARAM", "Bad parameter: token")
	}
	return t, nil
}

// loginWithToken runs an m.login.token login once the per-IP limit let it
// through: it consumes the token (checked for form and checksum before the
// store is asked), then follows the password login's path after its
// password check: the deactivated answer, the account's limit on
// successful logins, the session. The token is spent even when the login
// then fails: a token logs in at most once.
func (a *api) loginWithToken(r *http.Request, req loginRequest) (loginResponse, error) {
	if token.Check(token.Login, req.loginToken) != nil {
		return loginResponse{}, errBadLoginToken
	}
	u, err := a.Store.ConsumeLoginToken(r.Context(), token.Hash(req.loginToken), a.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return loginResponse{}, errBadLoginToken
	}
	if err != nil {
		return loginResponse{}, err
	}
	if u.Deactivated() {
		return loginResponse{}, errDeactivated
	}
	if u.Locked() {
		return loginResponse{}, errUserLocked
	}
	if err := a.limit(r, a.LoginSuccessLimiter, accountKey(u.ID), ruleAccountSuccess); err != nil {
		return loginResponse{}, err
	}
	return a.startSession(r, u, req)
}

// issueLoginToken mints a login token for the user, asked for by deviceID,
// and stores its hash, consuming the grant in the same transaction. It
// returns the token and how long it lives. The caller has applied
// LoginTokenLimiter.
func (a *api) issueLoginToken(r *http.Request, userID, deviceID string, g store.UIAGrant) (string, time.Duration, error) {
	t := token.New(token.Login)
	now := a.Now().UTC()
	err := a.Store.CreateLoginToken(r.Context(), store.LoginToken{
		Hash:      token.Hash(t),
		UserID:    userID,
		DeviceID:  deviceID,
		CreatedAt: now,
		ExpiresAt: now.Add(a.LoginTokenTTL),
	}, g)
	if err != nil {
		return "", 0, err
	}
	return t, a.LoginTokenTTL, nil
}

type loginTokenResponse struct {
	LoginToken  string `json:"login_token"`
	ExpiresInMS int64  `json:"expires_in_ms"`
}

// handleGetLoginToken handles POST /_matrix/client/v1/login/get_token:
// after User-Interactive Authentication, every time (the spec asks for
// consent to each new client; there is no grace period anyway), a
// single-use login token for the caller, at most LoginTokenLimiter's
// budget of them. The limit is applied after authentication, so that it
// counts tokens the user asked for, not challenges.
func (a *api) handleGetLoginToken(w http.ResponseWriter, r *http.Request) {
	body, err := readOptionalJSONObject(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	grant, ok := a.authenticateUIA(w, r, body)
	if !ok {
		return
	}
	caller := sessionFrom(r.Context()).AccessToken
	if err := a.limitLoginTokens(r, caller.UserID); err != nil {
		a.writeError(w, r, err)
		return
	}
	tok, ttl, err := a.issueLoginToken(r, caller.UserID, caller.DeviceID, grant)
	if err != nil {
		a.writeError(w, r, uiaGrantError(err))
		return
	}
	writeJSON(w, http.StatusOK, loginTokenResponse{LoginToken: tok, ExpiresInMS: ttl.Milliseconds()})
}

// limitLoginTokens spends one action of the user's login-token budget
// (LoginTokenLimiter), and says 429 when it is spent.
func (a *api) limitLoginTokens(r *http.Request, userID string) error {
	return a.limit(r, a.LoginTokenLimiter, accountKey(userID), ruleLoginTokens)
}
