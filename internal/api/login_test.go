package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

func TestLogin_Flows(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		for _, v := range []string{"r0", "v3"} {
			r := h.do("GET", "/_matrix/client/"+v+"/login", "")
			if r.status != 200 || r.raw != `{"flows":[{"type":"m.login.password"}]}` {
				t.Fatalf("GET %s/login = %d %s", v, r.status, r.raw)
			}
		}
	})
}

var deviceIDPattern = regexp.MustCompile(`^[A-Z]{10}$`)

func TestLogin_OK(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "secret pw", "alice@example.org")
		tests := []struct {
			name string
			path string
			body string
		}{
			{"Localpart", "/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw"}`},
			{"R0", "/_matrix/client/r0/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw"}`},
			{"FullMXID", "/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@alice:example.org"},"password":"secret pw"}`},
			{"UpperCase", "/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@ALICE:Example.ORG"},"password":"secret pw"}`},
			{"LegacyUser", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"secret pw"}`},
			{"LegacyUserOverIdentifier", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","identifier":{"type":"m.id.user","user":"bob"},"password":"secret pw"}`},
			{"Email", "/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"Alice@Example.org"},"password":"secret pw"}`},
			{"LegacyMediumAddress", "/_matrix/client/r0/login", `{"type":"m.login.password","medium":"email","address":"alice@example.org","user":"nobody","password":"secret pw"}`},
			{"ExtraFields", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"secret pw","org.example.custom":[1,2]}`},
			{"RefreshFalse", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"secret pw","refresh_token":false}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("POST", tt.path, tt.body)
				if r.status != 200 {
					t.Fatalf("status %d, body %s", r.status, r.raw)
				}
				if r.str("user_id") != "@alice:example.org" || r.str("home_server") != serverName {
					t.Fatalf("user_id %q home_server %q", r.str("user_id"), r.str("home_server"))
				}
				if !deviceIDPattern.MatchString(r.str("device_id")) {
					t.Fatalf("device_id %q is not 10 upper-case letters", r.str("device_id"))
				}
				if err := token.Check(token.Access, r.str("access_token")); err != nil {
					t.Fatalf("access_token %q: %v", r.str("access_token"), err)
				}
				for _, absent := range []string{"refresh_token", "expires_in_ms", "well_known"} {
					if _, ok := r.body[absent]; ok {
						t.Fatalf("response has %q: %s", absent, r.raw)
					}
				}
				w := h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(r.str("access_token")))
				if w.status != 200 || w.str("user_id") != "@alice:example.org" || w.str("device_id") != r.str("device_id") {
					t.Fatalf("whoami after login: %d %s", w.status, w.raw)
				}
			})
		}
	})
}

func TestLogin_NoContentType(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		// httptest sets no Content-Type unless asked; the spec does not
		// require one.
		r := h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`)
		if r.status != 200 {
			t.Fatalf("login without Content-Type: %d %s", r.status, r.raw)
		}
	})
}

func TestLogin_Forbidden(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "secret pw", "alice@example.org")
		h.addUser("@gone:example.org", "gone pw")
		if err := st.DeactivateUser(context.Background(), "@gone:example.org", h.clock.t, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		forbidden := `{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}`
		tests := []struct {
			name, body  string
			wantErrcode string
		}{
			{"WrongPassword", `{"type":"m.login.password","user":"alice","password":"secret PW"}`, "M_FORBIDDEN"},
			{"UnknownUser", `{"type":"m.login.password","user":"mallory","password":"secret pw"}`, "M_FORBIDDEN"},
			{"ForeignServer", `{"type":"m.login.password","user":"@alice:evil.example","password":"secret pw"}`, "M_FORBIDDEN"},
			{"UnknownEmail", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"x@example.org"},"password":"secret pw"}`, "M_FORBIDDEN"},
			{"BadEmail", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"not-an-email"},"password":"secret pw"}`, "M_FORBIDDEN"},
			{"Phone", `{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","phone":"07700900123"},"password":"secret pw"}`, "M_FORBIDDEN"},
			{"EmptyUser", `{"type":"m.login.password","user":"","password":"secret pw"}`, "M_FORBIDDEN"},
			{"HugeUser", `{"type":"m.login.password","user":"` + strings.Repeat("a", 300) + `","password":"secret pw"}`, "M_FORBIDDEN"},
			{"PasswordTooLong", `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 2000) + `"}`, "M_FORBIDDEN"},
			{"DeactivatedWrongPassword", `{"type":"m.login.password","user":"gone","password":"nope"}`, "M_FORBIDDEN"},
			// Deactivation removed the hash: the right password is as wrong as any.
			{"DeactivatedRightPassword", `{"type":"m.login.password","user":"gone","password":"gone pw"}`, "M_FORBIDDEN"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("POST", "/_matrix/client/v3/login", tt.body)
				wantError(t, r, http.StatusForbidden, tt.wantErrcode)
				// Unknown user and wrong password must be byte-identical.
				if tt.wantErrcode == "M_FORBIDDEN" && r.raw != forbidden {
					t.Fatalf("body %s, want %s", r.raw, forbidden)
				}
			})
		}
	})
}

func TestLogin_BadRequest(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tests := []struct {
			name, body  string
			wantStatus  int
			wantErrcode string
		}{
			{"NotJSON", `{"type":"m.login.password",`, 400, "M_NOT_JSON"},
			{"InvalidUTF8", "{\"type\":\"m.login.password\",\"user\":\"\xff\",\"password\":\"pw\"}", 400, "M_NOT_JSON"},
			{"Array", `[1,2]`, 400, "M_BAD_JSON"},
			{"Null", `null`, 400, "M_BAD_JSON"},
			{"String", `"login"`, 400, "M_BAD_JSON"},
			{"Empty", ``, 400, "M_NOT_JSON"},
			{"MissingType", `{"user":"alice","password":"pw"}`, 400, "M_UNKNOWN"},
			{"TypeNotString", `{"type":1,"user":"alice","password":"pw"}`, 400, "M_INVALID_PARAM"},
			{"TypeNull", `{"type":null,"user":"alice","password":"pw"}`, 400, "M_INVALID_PARAM"},
			{"UnknownType", `{"type":"m.login.token","token":"x"}`, 400, "M_UNKNOWN"},
			{"TypeCaseMatters", `{"TYPE":"m.login.password","user":"alice","password":"pw"}`, 400, "M_UNKNOWN"},
			{"MissingPassword", `{"type":"m.login.password","user":"alice"}`, 400, "M_INVALID_PARAM"},
			{"PasswordNotString", `{"type":"m.login.password","user":"alice","password":123}`, 400, "M_INVALID_PARAM"},
			{"RefreshTokenString", `{"type":"m.login.password","user":"alice","password":"pw","refresh_token":"yes"}`, 400, "M_UNKNOWN"},
			{"RefreshTokenNumber", `{"type":"m.login.password","user":"alice","password":"pw","refresh_token":1}`, 400, "M_UNKNOWN"},
			{"DeviceIDTooLong", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"` + strings.Repeat("D", 513) + `"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDNotString", `{"type":"m.login.password","user":"alice","password":"pw","device_id":7}`, 400, "M_INVALID_PARAM"},
			// A device ID must be one a header carries unchanged (the
			// forward-auth X-Matrix-Device-Id): printable ASCII, no space.
			{"DeviceIDSurroundingWhitespace", `{"type":"m.login.password","user":"alice","password":"pw","device_id":" PHONE\t"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDTrailingSpace", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PHONE "}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDInnerSpace", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"MY PHONE"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDNewline", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PHONE\r\nX-Matrix-User-Id: @admin:example.org"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDNUL", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PH\u0000ONE"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDDelete", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PHONE\u007f"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDNonASCII", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PHÖNE"}`, 400, "M_INVALID_PARAM"},
			{"DeviceIDNoBreakSpace", `{"type":"m.login.password","user":"alice","password":"pw","device_id":"PHONE\u00a0"}`, 400, "M_INVALID_PARAM"},
			{"DisplayNameTooLong", `{"type":"m.login.password","user":"alice","password":"pw","initial_device_display_name":"` + strings.Repeat("n", 257) + `"}`, 400, "M_INVALID_PARAM"},
			{"NoIdentity", `{"type":"m.login.password","password":"pw"}`, 400, "M_INVALID_PARAM"},
			{"UserNotString", `{"type":"m.login.password","user":["alice"],"password":"pw"}`, 400, "M_INVALID_PARAM"},
			{"IdentifierNotObject", `{"type":"m.login.password","identifier":"alice","password":"pw"}`, 400, "M_INVALID_PARAM"},
			{"IdentifierWithoutType", `{"type":"m.login.password","identifier":{"user":"alice"},"password":"pw"}`, 400, "M_MISSING_PARAM"},
			{"UnknownIdentifierType", `{"type":"m.login.password","identifier":{"type":"m.id.carrier_pigeon"},"password":"pw"}`, 400, "M_UNKNOWN"},
			{"UserIdentifierWithoutUser", `{"type":"m.login.password","identifier":{"type":"m.id.user"},"password":"pw"}`, 400, "M_UNKNOWN"},
			{"ThirdpartyWithoutAddress", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email"},"password":"pw"}`, 400, "M_UNKNOWN"},
			{"PhoneWithoutNumber", `{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB"},"password":"pw"}`, 400, "M_UNKNOWN"},
			{"TooLarge", `{"type":"m.login.password","user":"alice","password":"pw","pad":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "M_TOO_LARGE"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, h.do("POST", "/_matrix/client/v3/login", tt.body), tt.wantStatus, tt.wantErrcode)
			})
		}
		devices, err := st.ListDevices(context.Background(), "@alice:example.org")
		if err != nil || len(devices) != 0 {
			t.Fatalf("bad requests left devices %v (err %v)", devices, err)
		}
	})
}

func TestLogin_DeviceID(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		ctx := context.Background()

		first := h.login(`{"type":"m.login.password","user":"alice","password":"pw","device_id":"test_device_id","initial_device_display_name":"Jungle Phone"}`)
		if first.str("device_id") != "test_device_id" {
			t.Fatalf("device_id %q, want the one sent", first.str("device_id"))
		}
		other := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)

		// Logging in again with the same device ID keeps the device (and its
		// name) and revokes the device's earlier token (spec: "the server
		// will invalidate any access and refresh tokens previously assigned
		// to that device"), but not other devices' tokens.
		h.clock.t = h.clock.t.Add(time.Hour)
		second := h.login(`{"type":"m.login.password","user":"alice","password":"pw","device_id":"test_device_id","initial_device_display_name":"Renamed"}`)
		if second.str("device_id") != "test_device_id" {
			t.Fatalf("second device_id %q", second.str("device_id"))
		}
		wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(first.str("access_token"))), 401, "M_UNKNOWN_TOKEN")
		for _, tok := range []string{second.str("access_token"), other.str("access_token")} {
			if r := h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)); r.status != 200 {
				t.Fatalf("whoami = %d %s", r.status, r.raw)
			}
		}
		d, err := st.FindDevice(ctx, "@alice:example.org", "test_device_id")
		if err != nil {
			t.Fatal(err)
		}
		if d.DisplayName != "Jungle Phone" || !d.LastSeenAt.Equal(h.clock.t) {
			t.Fatalf("device after re-login = %+v, want the first name and last seen now", d)
		}
		devices, err := st.ListDevices(ctx, "@alice:example.org")
		if err != nil || len(devices) != 2 {
			t.Fatalf("ListDevices = %v, %v; want 2 devices", devices, err)
		}
	})
}

func TestLogin_RateLimitedByIP(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, func(d *api.Deps) {
			d.LoginIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 2, Every: 5 * time.Second}, 0, func() time.Time { return h.clock.t })
		})
		h.addUser("@alice:example.org", "pw")
		body := `{"type":"m.login.password","user":"alice","password":"wrong"}`
		for range 2 {
			wantError(t, h.do("POST", "/_matrix/client/v3/login", body), 403, "M_FORBIDDEN")
		}
		r := h.do("POST", "/_matrix/client/v3/login", body)
		wantError(t, r, 429, "M_LIMIT_EXCEEDED")
		if ms, _ := r.body["retry_after_ms"].(float64); ms != 5000 {
			t.Fatalf("retry_after_ms = %v, want 5000", r.body["retry_after_ms"])
		}
		if got := r.header.Get("Retry-After"); got != "5" {
			t.Fatalf("Retry-After = %q, want 5", got)
		}
		// Malformed bodies are limited too: the limit comes first.
		wantError(t, h.do("POST", "/_matrix/client/v3/login", `not json`), 429, "M_LIMIT_EXCEEDED")
		h.clock.t = h.clock.t.Add(5 * time.Second)
		h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
	})
}

func TestLogin_WellKnown(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, func(d *api.Deps) { d.PublicBaseURL = "https://matrix.example.org" })
		h.addUser("@alice:example.org", "pw")
		r := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
		wk, _ := r.body["well_known"].(map[string]any)
		hs, _ := wk["m.homeserver"].(map[string]any)
		if hs["base_url"] != "https://matrix.example.org" {
			t.Fatalf("well_known = %v", r.body["well_known"])
		}
	})
}

// Every printable ASCII character but space is allowed in a device ID, and
// the ID comes back unchanged from login and whoami.
func TestLogin_DeviceIDCharacterSet(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		var all strings.Builder
		for c := byte(0x21); c <= 0x7e; c++ {
			all.WriteByte(c)
		}
		id := all.String()
		quoted, _ := json.Marshal(id)
		r := h.login(`{"type":"m.login.password","user":"alice","password":"pw","device_id":` + string(quoted) + `}`)
		if r.str("device_id") != id {
			t.Fatalf("device_id %q, want %q", r.str("device_id"), id)
		}
		if w := h.whoami(r.str("access_token")); w.str("device_id") != id {
			t.Fatalf("whoami device_id %q, want %q", w.str("device_id"), id)
		}
	})
}
