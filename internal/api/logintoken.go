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
	if err := a.limit(r, a.LoginSuccessLimiter, accountKey(u.ID), ruleAccountSuccess); err != nil {
		return loginResponse{}, err
	}
	return a.startSession(r, u, req)
}

// issueLoginToken mints a login token for the user, asked for by deviceID,
// and stores its hash. It returns the token and how long it lives. The
// caller has authenticated the user (User-Interactive Auth) and applied
// LoginTokenLimiter.
func (a *api) issueLoginToken(r *http.Request, userID, deviceID string) (string, time.Duration, error) {
	t := token.New(token.Login)
	now := a.Now().UTC()
	err := a.Store.CreateLoginToken(r.Context(), store.LoginToken{
		Hash:      token.Hash(t),
		UserID:    userID,
		DeviceID:  deviceID,
		CreatedAt: now,
		ExpiresAt: now.Add(a.LoginTokenTTL),
	})
	if err != nil {
		return "", 0, err
	}
	return t, a.LoginTokenTTL, nil
}

// limitLoginTokens spends one action of the user's login-token budget
// (LoginTokenLimiter), and says 429 when it is spent.
func (a *api) limitLoginTokens(r *http.Request, userID string) error {
	return a.limit(r, a.LoginTokenLimiter, accountKey(userID), ruleLoginTokens)
}
