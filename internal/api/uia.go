package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/authd/authd/internal/store"
)

// User-Interactive Authentication (client-server API, "User-Interactive
// Authentication API"): an endpoint that changes something a stolen access
// token must not be enough for (deleting devices, changing the password,
// deactivating) asks for the account's password as well. authd offers one
// flow, the m.login.password stage alone.
//
// The rules authd keeps beyond the spec's:
//   - A session is stored (hashed) in the database, so it works on every
//     replica and across restarts, and it expires (Deps.UIASessionTTL).
//   - A session is bound to the user and device that started it, and to one
//     operation: the method, the escaped path (which names the device to
//     delete) and a hash of the body. Finishing it with anything else is
//     refused, and runs nothing.
//   - A session authorises one operation once: the operation deletes it in
//     its own transaction, so a replay, or a second request racing the
//     first, finds it gone.
//   - The password stage names the token's own user, or it is refused
//     before any hashing: the endpoint is not a password oracle for other
//     accounts. Wrong passwords count against the same failed-login budget
//     as /login.

// defaultUIASessionTTL is how long a session lasts when Deps names no
// lifetime.
const defaultUIASessionTTL = 10 * time.Minute

// uiaSessionIDBytes is the entropy of a session ID.
const uiaSessionIDBytes = 32

var (
	errUIASessionUnknown = &matrixError{Status: http.StatusBadRequest, Errcode: "M_UNKNOWN", Message: "Unknown session ID"}
	errUIAChanged        = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "Requested operation has changed during the UI authentication session."}
	errUIAOtherUser      = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "The authentication must be for the account of the access token."}
	errUIAStage          = &matrixError{Status: http.StatusUnauthorized, Errcode: "M_UNRECOGNIZED", Message: "Unknown or unsupported auth type"}
)

// uiaFlow is one flow of a challenge.
type uiaFlow struct {
	Stages []string `json:"stages"`
}

// uiaChallenge is the 401 body of User-Interactive Authentication: the
// flows, the session, and, after a failed attempt, the error.
type uiaChallenge struct {
	Flows     []uiaFlow                 `json:"flows"`
	Params    map[string]map[string]any `json:"params"`
	Session   string                    `json:"session"`
	Completed []string                  `json:"completed,omitempty"`
	Errcode   string                    `json:"errcode,omitempty"`
	Error     string                    `json:"error,omitempty"`
}

// uiaSecretKeys are the keys of a UIA endpoint's body that are left out of
// the body hash: the authentication itself, and a new password, whose hash
// must not be stored where it could be attacked offline.
var uiaSecretKeys = []string{"auth", "new_password"}

// authenticateUIA runs User-Interactive Authentication for the operation r
// asks with body, for the caller of an authenticated route. When it returns
// false it has answered the request (a 401 challenge, or an error) and the
// operation must not run. When it returns true the caller has proved the
// password, and the grant must be passed to the store call that runs the
// operation, which consumes the session.
func (a *api) authenticateUIA(w http.ResponseWriter, r *http.Request, body jsonObject) (store.UIAGrant, bool) {
	caller := sessionFrom(r.Context()).AccessToken
	now := a.Now().UTC()
	binding := store.UIABinding{
		UserID:   caller.UserID,
		DeviceID: caller.DeviceID,
		Method:   r.Method,
		Path:     r.URL.EscapedPath(),
		BodyHash: uiaBodyHash(body),
	}
	fail := func(err error) (store.UIAGrant, bool) {
		a.writeError(w, r, err)
		return store.UIAGrant{}, false
	}

	if !body.present("auth") {
		return a.challengeUIA(w, r, "", binding, nil)
	}
	auth, _, err := body.object("auth")
	if err != nil {
		return fail(badRequest("M_BAD_JSON", "auth must be an object"))
	}
	sessionID, hasSession, err1 := auth.str("session")
	stage, hasStage, err2 := auth.str("type")
	if err1 != nil || err2 != nil {
		return fail(badRequest("M_BAD_JSON", "auth.session and auth.type must be strings"))
	}

	var sessionHash *store.TokenHash
	if hasSession {
		h := sha256.Sum256([]byte(sessionID))
		s, err := a.Store.FindUIASession(r.Context(), h, now)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != binding.UserID || s.DeviceID != binding.DeviceID)) {
			// Another user's or device's session is as unknown as one
			// that never existed.
			return fail(errUIASessionUnknown)
		}
		if err != nil {
			return fail(err)
		}
		if s.UIABinding != binding {
			return fail(errUIAChanged)
		}
		th := store.TokenHash(h)
		sessionHash = &th
	}

	switch {
	case !hasStage && hasSession:
		// Only the session: a client asking whether a stage was completed
		// out of band. None can be, in authd.
		return a.challengeUIA(w, r, sessionID, binding, nil)
	case !hasStage:
		return a.challengeUIA(w, r, "", binding, nil)
	case stage != loginTypePassword:
		return a.challengeUIA(w, r, sessionID, binding, errUIAStage)
	}

	if err := a.checkUIAPassword(r, auth, binding.UserID); err != nil {
		if errors.Is(err, errForbidden) {
			return a.challengeUIA(w, r, sessionID, binding, errForbidden)
		}
		return fail(err)
	}
	return store.UIAGrant{Session: sessionHash, Binding: binding, Now: now}, true
}

// checkUIAPassword checks the password stage of auth for userID, the
// token's user: the identifier must name that account (checked before any
// hashing), and the password must be its own. A wrong password is
// errForbidden, and stays counted against the identifier's failed-login
// budget, as at /login.
func (a *api) checkUIAPassword(r *http.Request, auth jsonObject, userID string) error {
	who, err := parseIdentity(auth)
	if err != nil {
		return err
	}
	pw, ok, err := auth.str("password")
	if err != nil || !ok {
		return badRequest("M_INVALID_PARAM", "Bad parameter: auth.password")
	}
	u, err := a.findLoginUser(r, who)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != userID) {
		return errUIAOtherUser
	}
	if err != nil {
		return err
	}
	network := a.clientIPKey(r)
	attempt, err := a.spendFailedLogin(r, who, u, true, network)
	if err != nil {
		return err
	}
	ctx := r.Context()
	slot, err := a.acquireHashSlot(ctx)
	if err != nil {
		attempt.refund(ctx)
		return err
	}
	_, err = a.checkPassword(r, loginRequest{password: pw}, u, true)
	a.gate.release(slot)
	if !errors.Is(err, errForbidden) {
		attempt.refund(ctx)
	}
	return err
}

// challengeUIA answers 401 with the flows and a session: the one named
// (already checked to be the caller's, for this operation), or a new one
// bound to binding. failure, when set, is the failed attempt's error.
func (a *api) challengeUIA(w http.ResponseWriter, r *http.Request, sessionID string, binding store.UIABinding, failure *matrixError) (store.UIAGrant, bool) {
	if sessionID == "" {
		var err error
		if sessionID, err = a.newUIASession(r, binding); err != nil {
			a.writeError(w, r, err)
			return store.UIAGrant{}, false
		}
	}
	c := uiaChallenge{
		Flows:   []uiaFlow{{Stages: []string{loginTypePassword}}},
		Params:  map[string]map[string]any{},
		Session: sessionID,
	}
	if failure != nil {
		c.Errcode, c.Error = failure.Errcode, failure.Message
	}
	writeJSON(w, http.StatusUnauthorized, c)
	return store.UIAGrant{}, false
}

// newUIASession stores a new session bound to binding and returns its ID.
func (a *api) newUIASession(r *http.Request, binding store.UIABinding) (string, error) {
	var b [uiaSessionIDBytes]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := a.Now().UTC()
	ttl := a.UIASessionTTL
	if ttl <= 0 {
		ttl = defaultUIASessionTTL
	}
	err := a.Store.CreateUIASession(r.Context(), store.UIASession{
		IDHash:     sha256.Sum256([]byte(id)),
		UIABinding: binding,
		CreatedAt:  now,
		ExpiresAt:  now.Add(ttl),
	})
	return id, err
}

// uiaBodyHash is the SHA-256 of body without uiaSecretKeys, in a canonical
// form: keys sorted, insignificant whitespace dropped, strings re-escaped
// alike, numbers as sent. Two requests that mean the same operation hash
// alike however the client formats them.
func uiaBodyHash(body jsonObject) [32]byte {
	canonical := make(map[string]any, len(body))
	for k, raw := range body {
		if isUIASecretKey(k) {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if d.Decode(&v) != nil {
			// readJSONObject has checked the body; keep the raw bytes if
			// it ever changes.
			v = string(raw)
		}
		canonical[k] = v
	}
	b, _ := json.Marshal(canonical)
	return sha256.Sum256(b)
}

func isUIASecretKey(k string) bool {
	for _, s := range uiaSecretKeys {
		if k == s {
			return true
		}
	}
	return false
}

// uiaGrantError maps the store's refusal to consume a grant: the session
// went (used by a racing request, or expired meanwhile).
func uiaGrantError(err error) error {
	if errors.Is(err, store.ErrUIASessionGone) {
		return errUIASessionUnknown
	}
	return err
}
