package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

func TestLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		// The three bodies real clients send: none (matrix-js-sdk), {}
		// (mautrix), empty with a JSON Content-Type (matrix-nio).
		tests := []struct {
			name    string
			path    string
			body    string
			headers []string
		}{
			{"NoBody", "/_matrix/client/v3/logout", "", nil},
			{"EmptyObject", "/_matrix/client/v3/logout", "{}", []string{"Content-Type: application/json"}},
			{"EmptyWithContentType", "/_matrix/client/r0/logout", "", []string{"Content-Type: application/json"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				login := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
				tok := login.str("access_token")
				r := h.do("POST", tt.path, tt.body, append(tt.headers, bearer(tok))...)
				if r.status != 200 || r.raw != "{}" {
					t.Fatalf("logout = %d %s, want 200 {}", r.status, r.raw)
				}
				wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
				if _, err := st.FindDevice(context.Background(), "@alice:example.org", login.str("device_id")); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("device after logout: err %v, want ErrNotFound", err)
				}
				wantError(t, h.do("POST", tt.path, tt.body, append(tt.headers, bearer(tok))...), 401, "M_UNKNOWN_TOKEN")
			})
		}
	})
}

func TestLogout_Errors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		wantError(t, h.do("POST", "/_matrix/client/v3/logout", ""), 401, "M_MISSING_TOKEN")
		wantError(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(token.New(token.Access))), 401, "M_UNKNOWN_TOKEN")
		wantError(t, h.do("POST", "/_matrix/client/v3/logout/all", ""), 401, "M_MISSING_TOKEN")
	})
}

// An expired token can still log out, so that a soft-logged-out client
// can clean up its device.
func TestLogout_ExpiredToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tok := h.addExpiredToken("@alice:example.org", "OLDDEVICE")
		r := h.do("POST", "/_matrix/client/v3/logout", "", bearer(tok))
		if r.status != 200 {
			t.Fatalf("logout with expired token = %d %s", r.status, r.raw)
		}
		if _, err := st.FindDevice(context.Background(), "@alice:example.org", "OLDDEVICE"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("device after logout: %v", err)
		}
	})
}

func TestLogoutAll(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		h.addUser("@bob:example.org", "pw")
		a1 := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		a2 := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		b1 := h.login(`{"type":"m.login.password","user":"bob","password":"pw"}`).str("access_token")
		r := h.do("POST", "/_matrix/client/v3/logout/all", "{}", bearer(a1))
		if r.status != 200 || r.raw != "{}" {
			t.Fatalf("logout/all = %d %s", r.status, r.raw)
		}
		for _, tok := range []string{a1, a2} {
			wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)), 401, "M_UNKNOWN_TOKEN")
		}
		if r := h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(b1)); r.status != 200 {
			t.Fatalf("another user's token after logout/all: %d %s", r.status, r.raw)
		}
		devices, err := st.ListDevices(context.Background(), "@alice:example.org")
		if err != nil || len(devices) != 0 {
			t.Fatalf("devices after logout/all = %v, %v", devices, err)
		}
	})
}

// addExpiredToken stores a session whose access token expired an hour ago
// and returns the token.
func (h *harness) addExpiredToken(userID, deviceID string) string {
	h.t.Helper()
	tok := token.New(token.Access)
	past := h.clock.t.Add(-2 * time.Hour)
	err := h.st.CreateSession(context.Background(), store.NewSession{
		Device:      store.Device{UserID: userID, ID: deviceID, CreatedAt: past, LastSeenAt: past},
		AccessToken: store.AccessToken{Hash: token.Hash(tok), UserID: userID, DeviceID: deviceID, CreatedAt: past, ExpiresAt: past.Add(time.Hour)},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}
