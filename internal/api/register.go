package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
)

// registrationNonceTTL is how long a shared-secret registration nonce
// lasts, as in Synapse.
const registrationNonceTTL = time.Minute

var (
	errBadNonce = badRequest("M_UNKNOWN", "unrecognised nonce")
	errBadMAC   = &matrixError{Status: http.StatusForbidden, Errcode: "M_FORBIDDEN", Message: "HMAC incorrect"}
)

type nonceResponse struct {
	Nonce string `json:"nonce"`
}

// handleRegisterNonce handles GET /_synapse/admin/v1/register: a nonce for
// one registration attempt, valid for a minute, stored so that any replica
// can take the attempt.
func (a *api) handleRegisterNonce(w http.ResponseWriter, r *http.Request) {
	var b [16]byte
	rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	if err := a.Store.CreateRegistrationNonce(r.Context(), nonce, a.Now().UTC().Add(registrationNonceTTL)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonceResponse{Nonce: nonce})
}

type registerResponse struct {
	AccessToken string `json:"access_token"`
	UserID      string `json:"user_id"`
	HomeServer  string `json:"home_server"`
	DeviceID    string `json:"device_id"`
}

// handleRegister handles POST /_synapse/admin/v1/register, Synapse's
// shared-secret registration as register_new_matrix_user sends it: the
// nonce is consumed first (each serves one attempt, right or wrong), then
// the MAC, an HMAC-SHA1 keyed with the shared secret over nonce, username,
// password and "admin" or "notadmin" (and the user type, when sent),
// separated by NUL bytes, is compared in constant time. The user is
// created with its first device and access token in one transaction.
// displayname is the homeserver's business and is ignored; authd has no
// user types, so a non-null user_type is refused.
func (a *api) handleRegister(w http.ResponseWriter, r *http.Request) {
	body, err := readJSONObject(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	field := func(key string) (string, error) {
		v, ok, err := body.str(key)
		if err != nil || !ok || v == "" {
			return "", badRequest("M_MISSING_PARAM", "Missing or invalid parameter: "+key)
		}
		return v, nil
	}
	var nonce, username, pw, mac string
	for _, f := range []struct {
		key string
		dst *string
	}{{"nonce", &nonce}, {"username", &username}, {"password", &pw}, {"mac", &mac}} {
		if *f.dst, err = field(f.key); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	admin, _, err := body.boolean("admin")
	if err != nil {
		a.writeError(w, r, badRequest("M_INVALID_PARAM", "admin must be true or false"))
		return
	}
	if body.present("user_type") {
		a.writeError(w, r, badRequest("M_INVALID_PARAM", "authd has no user types: user_type must be null"))
		return
	}
	if len(pw) > password.MaxLen {
		a.writeError(w, r, badRequest("M_INVALID_PARAM", "password may not be longer than 1024 bytes"))
		return
	}
	if err := a.Store.ConsumeRegistrationNonce(r.Context(), nonce, a.Now().UTC()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = errBadNonce
		}
		a.writeError(w, r, err)
		return
	}
	if !a.registrationMACValid(mac, nonce, username, pw, admin) {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "shared-secret registration refused: wrong MAC")
		a.writeError(w, r, errBadMAC)
		return
	}
	id, err := store.NewUserID(strings.ToLower(username), a.ServerName)
	if err != nil {
		a.writeError(w, r, badRequest("M_INVALID_USERNAME", err.Error()))
		return
	}
	hash, err := a.hashAdminPassword(r, pw)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	deviceID := randomDeviceID()
	now := a.Now().UTC()
	pair := a.newPair(now, false)
	u := store.User{ID: id, PasswordHash: hash, CreatedAt: now, Admin: admin}
	err = a.Store.RegisterUser(r.Context(), u, store.NewSession{
		Device:      store.Device{UserID: id, ID: deviceID, CreatedAt: now, LastSeenAt: now, LastSeenIP: a.lastSeenIP(r)},
		AccessToken: pair.accessRow(id, deviceID),
	})
	if errors.Is(err, store.ErrConflict) {
		err = badRequest("M_USER_IN_USE", "User ID already taken.")
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "registered with the shared secret", slog.String("user_id", id), slog.Bool("admin", admin))
	writeJSON(w, http.StatusOK, registerResponse{AccessToken: pair.accessToken, UserID: id, HomeServer: a.ServerName, DeviceID: deviceID})
}

// registrationMACValid compares the client's hex MAC with the expected one
// in constant time. (Synapse appends NUL and the user type when one is
// sent; authd refuses user types before it gets here.)
func (a *api) registrationMACValid(mac, nonce, username, pw string, admin bool) bool {
	got, err := hex.DecodeString(mac)
	if err != nil {
		return false
	}
	m := hmac.New(sha1.New, a.RegistrationSharedSecret)
	m.Write([]byte(nonce + "\x00" + username + "\x00" + pw + "\x00"))
	if admin {
		m.Write([]byte("admin"))
	} else {
		m.Write([]byte("notadmin"))
	}
	return hmac.Equal(got, m.Sum(nil))
}
