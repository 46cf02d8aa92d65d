package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/token"
)

// The conformance rows of the endpoints User-Interactive Authentication
// guards (docs/conformance.md: UI, DD, PW and DA). They join the table of
// conformance_test.go; the multi-step rules (a session used twice, on
// another operation, by two requests at once, the failed-attempt limit)
// are in uia_test.go.

// aliceAuth is a one-shot password stage for alice: no session.
const aliceAuth = `"auth":{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw"}`

// isSessionID is a UIA session ID: 43 characters of unpadded base64url.
var isSessionID = matcher{"a session ID", func(v any, _ bool) bool {
	s, _ := v.(string)
	return len(s) == 43 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}}

// challenge is what every UIA 401 carries: the password flow, empty
// params and a session.
var challenge = map[string]any{
	"flows":   []any{map[string]any{"stages": []any{"m.login.password"}}},
	"params":  map[string]any{},
	"session": isSessionID,
}

// withChallenge is challenge plus more wanted fields.
func withChallenge(more map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range challenge {
		m[k] = v
	}
	for k, v := range more {
		m[k] = v
	}
	return m
}

// aliceDevicesKept asserts that a refused request deleted nothing.
func aliceDevicesKept(t *testing.T, h *harness, f fixture, _ response) {
	t.Helper()
	wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
	wantLive(t, h, f.token, "@alice:example.org")
}

// wantPassword asserts which of two passwords logs alice in.
func wantPassword(t *testing.T, h *harness, works, fails string) {
	t.Helper()
	r := h.do("POST", loginPath, `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"`+works+`"}`)
	if r.status != 200 {
		t.Fatalf("login with %q: %d %s", works, r.status, r.raw)
	}
	// Leave no device behind for the caller's later checks.
	if out := h.do("POST", logoutPath, "", bearer(r.str("access_token"))); out.status != 200 {
		t.Fatalf("logout after the check: %d %s", out.status, out.raw)
	}
	wantError(t, h.do("POST", loginPath, `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"`+fails+`"}`), 403, "M_FORBIDDEN")
}

var uiaConformance = []conformanceCase{
	// User-Interactive Authentication, on each endpoint it guards.
	{id: "UI-1", name: "DeleteDeviceChallenge", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 401, want: withChallenge(map[string]any{"errcode": absent, "completed": absent}), check: aliceDevicesKept},
	{id: "UI-1", name: "DeleteDeviceNullBody", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: "null", wantStatus: 401, want: challenge, check: aliceDevicesKept},
	{id: "UI-1", name: "DeleteDevicesChallenge", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["TABLET"]}`, wantStatus: 401, want: challenge, check: aliceDevicesKept},
	{id: "UI-1", name: "PasswordChallenge", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"new pw"}`, wantStatus: 401, want: challenge,
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantPassword(t, h, alicePW, "new pw")
		}},
	{id: "UI-1", name: "DeactivateChallenge", method: "POST", path: r0 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{}`, wantStatus: 401, want: challenge, check: aliceDevicesKept},
	{id: "UI-1", name: "AuthNullIsNoAuth", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["TABLET"],"auth":null}`, wantStatus: 401, want: challenge, check: aliceDevicesKept},

	{id: "UI-2", name: "OneShot", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["TABLET"],` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
		}},

	{id: "UI-3", name: "FullUserIDAnyCase", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@ALICE:example.org"},"password":"secret pw"}}`,
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
		}},
	{id: "UI-3", name: "Email", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"Alice@Example.org"},"password":"secret pw"}}`,
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
		}},
	{id: "UI-3", name: "LegacyTopLevelUser", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","user":"alice","password":"secret pw"}}`,
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
		}},

	{id: "UI-4", name: "WrongPassword", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"wrong"}}`,
		wantStatus: 401, wantErrcode: "M_FORBIDDEN", want: withChallenge(map[string]any{"error": "Invalid username or password"}),
		check: aliceDevicesKept},

	{id: "UI-5", name: "OtherAccount", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","identifier":{"type":"m.id.user","user":"bob"},"password":"bob pw"}}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN",
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "UI-5", name: "UnknownEmail", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"devices":["TABLET"],"auth":{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"nobody@example.org"},"password":"secret pw"}}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", check: aliceDevicesKept},

	{id: "UI-6", name: "UnknownSession", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","session":"madeup","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw"}}`,
		wantStatus: 400, wantErrcode: "M_UNKNOWN", check: aliceDevicesKept},

	{id: "UI-9", name: "DummyStage", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{"auth":{"type":"m.login.dummy"}}`, wantStatus: 401, wantErrcode: "M_UNRECOGNIZED", want: challenge, check: aliceDevicesKept},
	{id: "UI-9", name: "TokenStage", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{"auth":{"type":"m.login.token","token":"x"}}`, wantStatus: 401, wantErrcode: "M_UNRECOGNIZED", want: challenge, check: aliceDevicesKept},
	{id: "UI-9", name: "AuthNotObject", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{"auth":"password"}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", check: aliceDevicesKept},
	{id: "UI-9", name: "TypeNotString", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{"auth":{"type":1}}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", check: aliceDevicesKept},
	{id: "UI-9", name: "PasswordNotString", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{"auth":{"type":"m.login.password","user":"alice","password":1}}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM", check: aliceDevicesKept},

	{id: "UI-10", name: "MissingToken", method: "DELETE", path: v3 + "/devices/TABLET",
		body: `{` + aliceAuth + `}`, wantStatus: 401, wantErrcode: "M_MISSING_TOKEN", want: map[string]any{"flows": absent, "session": absent}},
	{id: "UI-10", name: "UnknownToken", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		body: `{"new_password":"x"}`, wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false, "flows": absent}},
	{id: "UI-10", name: "ExpiredToken", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {expired}"},
		body: `{"devices":[]}`, wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": true, "flows": absent}},

	// Deleting devices.
	{id: "DD-1", name: "DeleteDevice", method: "DELETE", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
			wantError(t, h.do("GET", v3+"/devices/TABLET", "", bearer(f.token)), 404, "M_NOT_FOUND")
			r := h.do("POST", v3+"/refresh", `{"refresh_token":"`+f.refresh+`"}`)
			wantError(t, r, 401, "M_UNKNOWN_TOKEN")
		}},
	{id: "DD-1", name: "DeleteOwnDevice", method: "DELETE", path: r0 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "TABLET")
			wantRevoked(t, h, f.token)
		}},
	{id: "DD-1", name: "DeleteUnknownDevice", method: "DELETE", path: v3 + "/devices/NOPE", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}", check: aliceDevicesKept},
	{id: "DD-1", name: "DeleteOtherUsersDevice", method: "DELETE", path: v3 + "/devices/BOBPHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "DD-1", name: "DeleteEncodedDeviceID", method: "DELETE", path: v3 + "/devices/A%2FB", headers: []string{"Authorization: Bearer {token}"},
		setup: func(h *harness, _ fixture) { h.addSession("@alice:example.org", "A/B", time.Time{}) },
		body:  `{` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
		}},

	{id: "DD-2", name: "DeleteSeveral", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["TABLET","OLDDEVICE","TABLET","NOPE","BOBPHONE"],` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "PHONE")
			wantLive(t, h, f.token, "@alice:example.org")
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "DD-2", name: "EmptyListDeletesNothing", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":[],` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}", check: aliceDevicesKept},
	{id: "DD-2", name: "EmptyListNeedsAuth", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":[]}`, wantStatus: 401, want: challenge, check: aliceDevicesKept},

	{id: "DD-3", name: "DevicesMissing", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM", check: aliceDevicesKept},
	{id: "DD-3", name: "DevicesNull", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":null}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM", want: map[string]any{"session": absent}},
	{id: "DD-3", name: "DevicesNotArray", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":"TABLET"}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", want: map[string]any{"session": absent}},
	{id: "DD-3", name: "DeviceNotString", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["TABLET",7],` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", check: aliceDevicesKept},
	{id: "DD-3", name: "TooManyDevices", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `{"devices":["D"` + strings.Repeat(`,"D"`, 1000) + `]}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "DD-3", name: "BodyNotJSON", method: "POST", path: v3 + "/delete_devices", headers: []string{"Authorization: Bearer {token}"},
		body: `devices=TABLET`, wantStatus: 400, wantErrcode: "M_NOT_JSON"},

	// Changing the password.
	{id: "PW-1", name: "ChangePassword", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"new pw",` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantPassword(t, h, "new pw", alicePW)
		}},
	{id: "PW-2", name: "LogsOutOtherDevicesByDefault", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"new pw",` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "PHONE")
			wantLive(t, h, f.token, "@alice:example.org")
		}},
	{id: "PW-2", name: "LogoutDevicesFalse", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"new pw","logout_devices":false,` + aliceAuth + `}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantPassword(t, h, "new pw", alicePW)
		}},
	{id: "PW-3", name: "NewPasswordMissing", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM",
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantPassword(t, h, alicePW, "wrong")
		}},
	{id: "PW-3", name: "NewPasswordEmpty", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":""}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM", want: map[string]any{"session": absent}},
	{id: "PW-3", name: "NewPasswordNotString", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":12345678}`, wantStatus: 400, wantErrcode: "M_BAD_JSON"},
	{id: "PW-3", name: "NewPasswordTooLong", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"` + strings.Repeat("x", 1025) + `"}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "PW-3", name: "LogoutDevicesNotBool", method: "POST", path: v3 + "/account/password", headers: []string{"Authorization: Bearer {token}"},
		body: `{"new_password":"new pw","logout_devices":"no",` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_BAD_JSON",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantPassword(t, h, alicePW, "new pw")
		}},

	// Deactivating the account.
	{id: "DA-1", name: "Deactivate", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{"erase":true,` + aliceAuth + `}`, wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`,
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org")
			wantRevoked(t, h, f.token)
			wantError(t, h.do("POST", loginPath, aliceLogin), 403, "M_FORBIDDEN")
			wantError(t, h.do("POST", loginPath, `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"secret pw"}`), 403, "M_FORBIDDEN")
			tps, err := h.st.ListThreePIDs(context.Background(), "@alice:example.org")
			if err != nil || len(tps) != 0 {
				t.Fatalf("third-party IDs after deactivation: %v, %v", tps, err)
			}
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "DA-2", name: "OtherAccountsPassword", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"auth":{"type":"m.login.password","user":"@bob:example.org","password":"bob pw"}}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN",
		check: func(t *testing.T, h *harness, f fixture, r response) {
			aliceDevicesKept(t, h, f, r)
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "DA-3", name: "EraseNotBool", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{"erase":"yes",` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", check: aliceDevicesKept},
	{id: "DA-3", name: "IDServerNotString", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{"id_server":5,` + aliceAuth + `}`, wantStatus: 400, wantErrcode: "M_BAD_JSON", check: aliceDevicesKept},
	{id: "DA-3", name: "IDServerIgnored", method: "POST", path: v3 + "/account/deactivate", headers: []string{"Authorization: Bearer {token}"},
		body: `{"id_server":"id.example.org",` + aliceAuth + `}`, wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`},
}

func init() { conformance = append(conformance, uiaConformance...) }

// multiStepTests are the requirements whose checks take more than one
// request, and the tests that make them (TestConformance_Coverage checks
// that these exist).
var multiStepTests = map[string][]string{
	"UI-7": {"TestUIA_SessionBoundToOperation"},
	"UI-8": {"TestUIA_TwoSteps", "TestUIA_ConcurrentUseOfOneSession"},
	"PW-4": {"TestChangePassword_EndsOtherSessions"},
	// A lock and its lifting, across whoami, devices, forward auth,
	// refresh, login and logout (and across replicas in cmd/authd).
	"A-5": {"TestAdmin_Lock"},
}
