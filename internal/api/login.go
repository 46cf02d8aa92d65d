package api

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authd/authd/internal/store"
)

const (
	loginTypePassword = "m.login.password"
	// maxDeviceIDLen is Synapse's bound on a client-chosen device ID.
	maxDeviceIDLen = 512
	// maxDisplayNameLen bounds initial_device_display_name, in characters.
	maxDisplayNameLen = 256
	// maxUserIDBytes is the spec's bound on a whole user ID (appendix,
	// User Identifiers): nothing longer can exist.
	maxUserIDBytes = 255
	// deviceIDLen is the length of a generated device ID.
	deviceIDLen = 10
)

type loginFlow struct {
	Type string `json:"type"`
	// GetLoginToken tells a client that POST /login/get_token is served.
	GetLoginToken bool `json:"get_login_token,omitempty"`
}

type loginFlowsResponse struct {
	Flows []loginFlow `json:"flows"`
}

// handleLoginFlows handles GET /login: the password flow, and the login
// token flow when it is on.
func (a *api) handleLoginFlows(w http.ResponseWriter, r *http.Request) {
	flows := []loginFlow{{Type: loginTypePassword}}
	if a.LoginTokens {
		flows = append(flows, loginFlow{Type: loginTypeToken, GetLoginToken: true})
	}
	writeJSON(w, http.StatusOK, loginFlowsResponse{Flows: flows})
}

type loginResponse struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
	// HomeServer is deprecated in the spec but named by the r0.2.0 seed
	// and checked by SyTest: it is the server name.
	HomeServer string `json:"home_server"`
	// RefreshToken and ExpiresInMS are sent only when the login opted in
	// to refresh (or, for ExpiresInMS, when every token expires).
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
	// WellKnown is sent only when a public base URL is configured.
	WellKnown *wellKnown `json:"well_known,omitempty"`
}

type wellKnown struct {
	Homeserver baseURL `json:"m.homeserver"`
}

type baseURL struct {
	BaseURL string `json:"base_url"`
}

// loginRequest is a validated POST /login body.
type loginRequest struct {
	who          loginIdentity
	password     string
	tokenLogin   bool // m.login.token: loginToken names the user, who is empty
	loginToken   string
	deviceID     string // "" when the client did not choose one
	displayName  string
	wantsRefresh bool // the client asked for a refresh token
}

// loginIdentity is who a login claims to be: a user ID or localpart, or a
// third-party address.
type loginIdentity struct {
	user    string       // m.id.user (or legacy top-level "user")
	medium  store.Medium // m.id.thirdparty / m.id.phone (or legacy medium+address)
	address string
}

// handleLogin handles POST /login: it checks a password login and starts a
// session on a new or client-chosen device.
func (a *api) handleLogin(w http.ResponseWriter, r *http.Request) {
	resp, err := a.login(w, r)
	a.observeLogin(err)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// observeLogin counts a login attempt that ended in err (nil: success).
func (a *api) observeLogin(err error) {
	a.Observer.LoginAttempt(loginOutcome(err))
}

// loginOutcome names the outcome of a login for the Observer: the outcome
// its Matrix error carries, else a bad request for a 4xx and an error for
// anything else.
func loginOutcome(err error) string {
	if err == nil {
		return outcomeSuccess
	}
	var e *matrixError
	switch {
	case !errors.As(err, &e) || e.Status >= 500:
		return outcomeError
	case e.outcome != "":
		return e.outcome
	default:
		return outcomeBadRequest
	}
}

// login runs POST /login once the per-IP limit (in the route table) let it
// through. Failed attempts per identifier (or per known network of the
// account, see failedLoginKey) are limited next, before any hashing. Then
// the password check waits for a hashing slot; only a login whose password
// was right meets the limit on successful logins per account.
func (a *api) login(w http.ResponseWriter, r *http.Request) (loginResponse, error) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		return loginResponse{}, err
	}
	req, err := parseLogin(body, a.LoginTokens)
	if err != nil {
		return loginResponse{}, err
	}
	if req.tokenLogin {
		return a.loginWithToken(r, req)
	}
	u, err := a.findLoginUser(r, req.who)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return loginResponse{}, err
	}
	network := a.clientIPKey(r)
	attempt, err := a.spendFailedLogin(r, req.who, u, found, network)
	if err != nil {
		return loginResponse{}, err
	}
	resp, err := a.loginWithPassword(r, req, u, found, network)
	// Only a password checked and found wrong keeps the action spent.
	if !errors.Is(err, errForbidden) {
		attempt.refund(r.Context())
	}
	return resp, err
}

// loginWithPassword checks the password in a hashing slot and, when it is
// right and the account not over its limit of successful logins, starts
// the session.
func (a *api) loginWithPassword(r *http.Request, req loginRequest, u store.User, found bool, network string) (loginResponse, error) {
	slot, err := a.acquireHashSlot(r.Context())
	if err != nil {
		return loginResponse{}, err
	}
	u, err = a.checkPassword(r, req, u, found)
	a.gate.release(slot)
	if err != nil {
		return loginResponse{}, err
	}
	// Limited after the password check, like the deactivated answer: a 429
	// here tells only someone who knows the password that the account is
	// busy, so it can link no identifier to another.
	if err := a.limit(r, a.LoginSuccessLimiter, accountKey(u.ID), ruleAccountSuccess); err != nil {
		return loginResponse{}, err
	}
	resp, err := a.startSession(r, u, req)
	if err == nil {
		a.rememberNetwork(r, u.ID, network)
	}
	return resp, err
}

// startSession creates or reuses the device and stores the new tokens.
func (a *api) startSession(r *http.Request, u store.User, req loginRequest) (loginResponse, error) {
	deviceID := req.deviceID
	if deviceID == "" {
		var err error
		if deviceID, err = a.newDeviceID(r, u.ID); err != nil {
			return loginResponse{}, err
		}
	}
	now := a.Now().UTC()
	pair := a.newPair(now, req.wantsRefresh && a.Tokens.IssueRefresh)
	sess := store.NewSession{
		Device: store.Device{
			UserID:      u.ID,
			ID:          deviceID,
			DisplayName: req.displayName,
			CreatedAt:   now,
			LastSeenAt:  now,
			LastSeenIP:  a.lastSeenIP(r),
		},
		AccessToken: pair.accessRow(u.ID, deviceID),
	}
	if pair.refreshToken != "" {
		rt := pair.refreshRow(u.ID, deviceID)
		sess.RefreshToken = &rt
	}
	err := a.Store.CreateSession(r.Context(), sess)
	if req.deviceID != "" {
		// An existing device's earlier tokens were just revoked.
		a.cache.DropDevice(u.ID, deviceID)
	}
	if err != nil {
		return loginResponse{}, err
	}
	resp := loginResponse{
		UserID:       u.ID,
		AccessToken:  pair.accessToken,
		RefreshToken: pair.refreshToken,
		ExpiresInMS:  pair.expiresInMS(),
		DeviceID:     deviceID,
		HomeServer:   a.ServerName,
	}
	if a.PublicBaseURL != "" {
		resp.WellKnown = &wellKnown{Homeserver: baseURL{BaseURL: a.PublicBaseURL}}
	}
	return resp, nil
}

// parseLogin validates a login body with Synapse's errcodes (L-7 in docs/conformance.md)
// and resolves the deprecated top-level fields with Synapse's precedence:
// "medium" + "address" over "user" over "identifier". With loginTokens on
// it takes m.login.token too, whose token names the user: its identifier
// and user are ignored (mautrix sends "identifier": {"type": ""}).
func parseLogin(body jsonObject, loginTokens bool) (loginRequest, error) {
	var req loginRequest
	if _, ok := body["type"]; !ok {
		return req, badRequest("M_UNKNOWN", "Missing JSON keys.")
	}
	typ, _, err := body.str("type")
	if err != nil || !body.present("type") {
		return req, badRequest("M_INVALID_PARAM", "Bad parameter: type")
	}
	switch {
	case typ == loginTypePassword:
		pw, ok, err := body.str("password")
		if err != nil || !ok {
			return req, badRequest("M_INVALID_PARAM", "Bad parameter: password")
		}
		req.password = pw
	case typ == loginTypeToken && loginTokens:
		req.tokenLogin = true
		if req.loginToken, err = parseLoginToken(body); err != nil {
			return req, err
		}
	default:
		return req, badRequest("M_UNKNOWN", "Unknown login type "+quote(typ))
	}

	if req.wantsRefresh, _, err = body.boolean("refresh_token"); err != nil {
		return req, badRequest("M_UNKNOWN", "`refresh_token` should be true or false.")
	}
	if req.deviceID, _, err = body.str("device_id"); err != nil {
		return req, badRequest("M_INVALID_PARAM", "Bad parameter: device_id")
	}
	if len(req.deviceID) > maxDeviceIDLen {
		return req, badRequest("M_INVALID_PARAM", "device_id may not be longer than 512 characters")
	}
	if !validDeviceID(req.deviceID) {
		return req, badRequest("M_INVALID_PARAM", "device_id may only contain printable ASCII characters other than space")
	}
	if req.displayName, _, err = body.str("initial_device_display_name"); err != nil {
		return req, badRequest("M_INVALID_PARAM", "Bad parameter: initial_device_display_name")
	}
	if err := checkDisplayName("initial_device_display_name", req.displayName); err != nil {
		return req, err
	}

	if req.tokenLogin {
		return req, nil
	}
	req.who, err = parseIdentity(body)
	return req, err
}

// validDeviceID reports whether a client-chosen device ID uses only
// printable ASCII other than space (0x21 to 0x7E). The device ID travels to
// the homeserver in the X-Matrix-Device-Id header of forward auth, and an
// HTTP header value loses leading and trailing whitespace and cannot carry
// control characters: " PHONE\t" would be one device here and PHONE there.
// Restricting the set keeps one ID naming one device on both sides.
func validDeviceID(id string) bool {
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func parseIdentity(body jsonObject) (loginIdentity, error) {
	invalid := badRequest("M_INVALID_PARAM", "Invalid login submission")

	medium, hasMedium, err1 := body.str("medium")
	address, hasAddress, err2 := body.str("address")
	if err1 == nil && err2 == nil && hasMedium && hasAddress {
		return loginIdentity{medium: store.Medium(medium), address: address}, nil
	}
	if body.present("user") {
		user, _, err := body.str("user")
		if err != nil {
			return loginIdentity{}, invalid
		}
		return loginIdentity{user: user}, nil
	}
	if !body.present("identifier") {
		return loginIdentity{}, invalid
	}
	id, _, err := body.object("identifier")
	if err != nil {
		return loginIdentity{}, invalid
	}
	if !id.present("type") {
		return loginIdentity{}, badRequest("M_MISSING_PARAM", "Missing parameter: identifier.type")
	}
	idType, _, err := id.str("type")
	if err != nil {
		return loginIdentity{}, badRequest("M_INVALID_PARAM", "Bad parameter: identifier.type")
	}
	switch idType {
	case "m.id.user":
		user, ok, err := id.str("user")
		if err != nil || !ok {
			return loginIdentity{}, badRequest("M_UNKNOWN", "User identifier is missing 'user' key")
		}
		return loginIdentity{user: user}, nil
	case "m.id.thirdparty":
		medium, ok1, err1 := id.str("medium")
		address, ok2, err2 := id.str("address")
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return loginIdentity{}, badRequest("M_UNKNOWN", "Invalid thirdparty identifier")
		}
		return loginIdentity{medium: store.Medium(medium), address: address}, nil
	case "m.id.phone":
		country, ok1, err1 := id.str("country")
		phone, ok2, err2 := id.str("phone")
		if !ok2 && err2 == nil {
			// Element also sends the legacy Synapse key "number".
			phone, ok2, err2 = id.str("number")
		}
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return loginIdentity{}, badRequest("M_UNKNOWN", "Invalid phone-type identifier")
		}
		return loginIdentity{medium: store.MediumMSISDN, address: country + " " + phone}, nil
	default:
		return loginIdentity{}, badRequest("M_UNKNOWN", "Unknown login identifier type")
	}
}

// checkPassword checks the password of the user a login resolved to. An
// unknown user costs the same bcrypt work as a wrong password and gets the
// same answer, so that neither status, body nor timing tells them apart. A
// deactivated account is revealed only to someone who knows its password.
// The caller holds a hashing slot.
func (a *api) checkPassword(r *http.Request, req loginRequest, u store.User, found bool) (store.User, error) {
	start := time.Now()
	defer func() { a.Observer.HashDuration(time.Since(start)) }()
	if !found || u.PasswordHash == "" {
		// Deactivation removes the hash: such an account answers as an
		// unknown one.
		a.Hasher.VerifyDummy()
		return store.User{}, errForbidden
	}
	res, err := a.Hasher.Verify(u.PasswordHash, req.password)
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelError, "stored password hash unusable", slog.String("user_id", u.ID), slog.Any("err", err))
	}
	if !res.OK {
		return store.User{}, errForbidden
	}
	if u.Deactivated() {
		return store.User{}, errDeactivated
	}
	// Only to someone who knows the password, like deactivation.
	if u.Locked() {
		return store.User{}, errUserLocked
	}
	if res.NeedsRehash {
		a.rehash(r, u.ID, req.password)
	}
	return u, nil
}

// rehash upgrades a user's password hash to the current scheme and cost. A
// failure is logged, not fatal: the old hash still works.
func (a *api) rehash(r *http.Request, userID, password string) {
	hash, err := a.Hasher.Hash(password)
	if err == nil {
		err = a.Store.UpdatePasswordHash(r.Context(), userID, hash)
	}
	if err != nil {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "password rehash failed", slog.String("user_id", userID), slog.Any("err", err))
		return
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "password rehashed", slog.String("user_id", userID), slog.Int("cost", a.Hasher.Cost()))
}

// findLoginUser resolves a login identity to a stored user, or ErrNotFound.
func (a *api) findLoginUser(r *http.Request, who loginIdentity) (store.User, error) {
	if who.medium != "" {
		addr, err := store.CanonicalAddress(who.medium, who.address)
		if err != nil {
			return store.User{}, store.ErrNotFound
		}
		return a.Store.FindUserByThreePID(r.Context(), who.medium, addr)
	}
	id := a.qualify(who.user)
	// A user ID longer than the spec allows, or with a NUL (which even
	// historical IDs exclude), cannot exist; don't ask.
	if len(id) > maxUserIDBytes || id == "@:"+a.ServerName || strings.ContainsRune(id, 0) {
		return store.User{}, store.ErrNotFound
	}
	return a.Store.FindUserByLogin(r.Context(), id)
}

// qualify turns a localpart into a user ID on this server; a full user ID
// (starting with @) stays as it is.
func (a *api) qualify(user string) string {
	if strings.HasPrefix(user, "@") {
		return user
	}
	return "@" + user + ":" + a.ServerName
}

// newDeviceID generates a device ID of ten upper-case letters that the user
// does not have yet: a login must never take over another device's slot.
func (a *api) newDeviceID(r *http.Request, userID string) (string, error) {
	for {
		id := randomDeviceID()
		_, err := a.Store.FindDevice(r.Context(), userID, id)
		if errors.Is(err, store.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
}

func randomDeviceID() string {
	var b [deviceIDLen]byte
	rand.Read(b[:])
	for i := range b {
		// 256 = 9*26 + 22: the bias towards the first 22 letters is
		// harmless for an identifier that is not a secret.
		b[i] = 'A' + b[i]%26
	}
	return string(b[:])
}
