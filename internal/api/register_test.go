package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
)

const sharedSecret = "a shared secret of at least 32 bytes, for tests"

// registrationMAC is what register_new_matrix_user sends: hex
// HMAC-SHA1(shared secret, nonce NUL user NUL password NUL admin|notadmin).
func registrationMAC(secret, nonce, user, pw string, admin bool) string {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	m.Write([]byte(nonce + "\x00" + user + "\x00" + pw + "\x00" + role))
	return hex.EncodeToString(m.Sum(nil))
}

func registerBody(nonce, user, pw string, admin bool, mac string) string {
	b, _ := json.Marshal(map[string]any{"nonce": nonce, "username": user, "password": pw, "admin": admin, "mac": mac, "displayname": "ignored"})
	return string(b)
}

// Shared-secret registration: a nonce per attempt, the MAC checked, the
// user created with a working token; replays, expired nonces, wrong MACs,
// taken and bad names refused. Off without a secret.
func TestRegister_SharedSecret(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, func(d *api.Deps) { d.RegistrationSharedSecret = []byte(sharedSecret) })
		nonce := func() string {
			r := h.do("GET", "/_synapse/admin/v1/register", "")
			if r.status != 200 || len(r.str("nonce")) != 32 {
				t.Fatalf("nonce = %d %s", r.status, r.raw)
			}
			return r.str("nonce")
		}
		n := nonce()
		r := h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "Newbie", "newbie pw", true, registrationMAC(sharedSecret, n, "Newbie", "newbie pw", true)))
		if r.status != 200 || r.str("user_id") != "@newbie:"+serverName || r.str("home_server") != serverName || r.str("device_id") == "" {
			t.Fatalf("register = %d %s", r.status, r.raw)
		}
		wantLive(t, h, r.str("access_token"), "@newbie:"+serverName)
		u, err := st.FindUserByID(context.Background(), "@newbie:"+serverName)
		if err != nil || !u.Admin {
			t.Fatalf("registered user %+v, %v: want an admin", u, err)
		}
		h.login(pwLogin("newbie", "newbie pw"))
		// The nonce is spent.
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "other", "pw", false, registrationMAC(sharedSecret, n, "other", "pw", false))), 400, "M_UNKNOWN")
		// A wrong MAC spends the nonce too, and writes nothing.
		n = nonce()
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "mallory", "pw", true, registrationMAC("another secret", n, "mallory", "pw", true))), 403, "M_FORBIDDEN")
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "mallory", "pw", true, registrationMAC(sharedSecret, n, "mallory", "pw", true))), 400, "M_UNKNOWN")
		// The MAC covers the admin flag.
		n = nonce()
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "mallory", "pw", true, registrationMAC(sharedSecret, n, "mallory", "pw", false))), 403, "M_FORBIDDEN")
		if _, err := st.FindUserByID(context.Background(), "@mallory:"+serverName); err == nil {
			t.Fatal("a refused registration created the user")
		}
		// Taken and invalid names.
		n = nonce()
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "newbie", "pw", false, registrationMAC(sharedSecret, n, "newbie", "pw", false))), 400, "M_USER_IN_USE")
		n = nonce()
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "bad name", "pw", false, registrationMAC(sharedSecret, n, "bad name", "pw", false))), 400, "M_INVALID_USERNAME")
		// An expired nonce.
		n = nonce()
		h.clock.t = h.clock.t.Add(61 * time.Second)
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", registerBody(n, "late", "pw", false, registrationMAC(sharedSecret, n, "late", "pw", false))), 400, "M_UNKNOWN")
		wantError(t, h.do("POST", "/_synapse/admin/v1/register", `{"nonce":"x"}`), 400, "M_MISSING_PARAM")

		off := newHarness(t, st)
		wantError(t, off.do("GET", "/_synapse/admin/v1/register", ""), 404, "M_UNRECOGNIZED")
		wantError(t, off.do("POST", "/_synapse/admin/v1/register", "{}"), 404, "M_UNRECOGNIZED")
	})
}
