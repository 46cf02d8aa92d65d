package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// The conformance rows of the third-party ID endpoints (3P-) and of
// m.login.token at /login (LT-), appended to the table TestConformance runs.
func init() {
	conformance = append(conformance, threePIDConformance...)
	conformance = append(conformance, loginTokenConformance...)
}

const (
	threePIDPath       = v3 + "/account/3pid"
	deleteThreePIDPath = threePIDPath + "/delete"
	// fixtureLoginToken is the login token withLoginToken stores for
	// alice; each row's store is its own, so one token serves every row.
	badLoginTokenRaw = `{"errcode":"M_FORBIDDEN","error":"Invalid login token"}`
)

var fixtureLoginToken = token.New(token.Login)

// loginTokensOn turns m.login.token on.
func loginTokensOn(d *api.Deps) { d.LoginTokens = true }

// withLoginToken stores fixtureLoginToken for alice, issued by PHONE now
// and living two minutes.
func withLoginToken(h *harness, _ fixture) {
	h.t.Helper()
	err := h.st.CreateLoginToken(context.Background(), store.LoginToken{
		Hash: token.Hash(fixtureLoginToken), UserID: "@alice:example.org", DeviceID: "PHONE",
		CreatedAt: h.clock.t, ExpiresAt: h.clock.t.Add(2 * time.Minute),
	}, store.UIAGrant{})
	if err != nil {
		h.t.Fatal(err)
	}
}

// getTokenPath is where a logged-in client asks for a login token.
const getTokenPath = "/_matrix/client/v1/login/get_token"

// isLoginToken is an authd login token.
var isLoginToken = matcher{"an authd login token", func(v any, _ bool) bool {
	s, _ := v.(string)
	return token.Check(token.Login, s) == nil
}}

func tokenLogin(tok string) string { return `{"type":"m.login.token","token":"` + tok + `"}` }

// wantThreePIDs fails unless GET /account/3pid shows userID's token the
// given addresses.
func wantBoundEmails(t *testing.T, h *harness, userID string, addrs ...string) {
	t.Helper()
	tps, err := h.st.ListThreePIDs(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tps) != len(addrs) {
		t.Fatalf("%s has %+v, want %v", userID, tps, addrs)
	}
	for i, a := range addrs {
		if tps[i].Address != a {
			t.Fatalf("%s has %+v, want %v", userID, tps, addrs)
		}
	}
}

var threePIDConformance = []conformanceCase{
	{id: "3P-1", name: "List", method: "GET", path: threePIDPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200,
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			tps, _ := r.body["threepids"].([]any)
			ms := float64(h.clock.t.UnixMilli())
			if len(tps) != 1 {
				t.Fatalf("threepids %s, want alice's email", r.raw)
			}
			want := map[string]any{"medium": "email", "address": "alice@example.org", "validated_at": ms, "added_at": ms}
			got, _ := tps[0].(map[string]any)
			if len(got) != len(want) {
				t.Fatalf("threepid %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("threepid %v, want %v", got, want)
				}
			}
		}},
	{id: "3P-1", name: "ListNone", method: "GET", path: r0 + "/account/3pid", headers: []string{"Authorization: Bearer {bob}"},
		wantStatus: 200, wantRaw: `{"threepids":[]}`},
	{id: "3P-2", name: "DeleteOwn", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body:       `{"medium":"email","address":"alice@example.org"}`,
		wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`,
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org")
			r := h.do("POST", loginPath, login(`{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"}`))
			if r.status != 403 || r.raw != forbiddenRaw {
				t.Fatalf("login with the deleted address: %d %s, want %s", r.status, r.raw, forbiddenRaw)
			}
		}},
	{id: "3P-2", name: "DeleteCanonicalised", method: "POST", path: r0 + "/account/3pid/delete", headers: []string{"Authorization: Bearer {token}"},
		body:       `{"medium":"email","address":" Alice@EXAMPLE.org","id_server":"id.example.org"}`,
		wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`,
		check: func(t *testing.T, h *harness, _ fixture, _ response) { wantBoundEmails(t, h, "@alice:example.org") }},
	{id: "3P-3", name: "OtherUsersAddressKept", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {bob}"},
		body:       `{"medium":"email","address":"alice@example.org"}`,
		wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`,
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org", "alice@example.org")
		}},
	{id: "3P-3", name: "UnboundAddress", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body:       `{"medium":"msisdn","address":"15550000001"}`,
		wantStatus: 200, wantRaw: `{"id_server_unbind_result":"no-support"}`,
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org", "alice@example.org")
		}},
	{id: "3P-4", name: "UnknownMedium", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{"medium":"phone","address":"alice@example.org"}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org", "alice@example.org")
		}},
	{id: "3P-4", name: "MissingMedium", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{"address":"alice@example.org"}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM"},
	{id: "3P-4", name: "MissingAddress", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{"medium":"email"}`, wantStatus: 400, wantErrcode: "M_MISSING_PARAM"},
	{id: "3P-4", name: "AddressNotAString", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{"medium":"email","address":["alice@example.org"]}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org", "alice@example.org")
		}},
	{id: "3P-4", name: "IDServerNotAString", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{"medium":"email","address":"alice@example.org","id_server":1}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "3P-4", name: "NotAnObject", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {token}"},
		body: `["email"]`, wantStatus: 400, wantErrcode: "M_BAD_JSON"},
	{id: "3P-5", name: "ListNeedsToken", method: "GET", path: threePIDPath, wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "3P-5", name: "DeleteExpiredToken", method: "POST", path: deleteThreePIDPath, headers: []string{"Authorization: Bearer {expired}"},
		body: `{"medium":"email","address":"alice@example.org"}`, wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantBoundEmails(t, h, "@alice:example.org", "alice@example.org")
		}},
}

var loginTokenConformance = []conformanceCase{
	{id: "LT-1", name: "LogsIn", deps: loginTokensOn, setup: withLoginToken, method: "POST", path: loginPath,
		body:       `{"type":"m.login.token","token":"` + fixtureLoginToken + `","initial_device_display_name":"New phone"}`,
		wantStatus: 200,
		want:       map[string]any{"user_id": "@alice:example.org", "access_token": isAccessToken, "device_id": isGeneratedDeviceID, "refresh_token": absent},
		check:      loggedIn},
	{id: "LT-1", name: "R0WithDeviceAndRefresh", deps: func(d *api.Deps) {
		d.LoginTokens = true
		d.Tokens = api.TokenPolicy{IssueRefresh: true, AccessTTL: 5 * time.Minute}
	}, setup: withLoginToken, method: "POST", path: r0 + "/login",
		body:       `{"type":"m.login.token","token":"` + fixtureLoginToken + `","device_id":"NEWPHONE","refresh_token":true}`,
		wantStatus: 200,
		want:       map[string]any{"user_id": "@alice:example.org", "device_id": "NEWPHONE", "refresh_token": isRefreshToken}},
	{id: "LT-2", name: "SecondUse", deps: loginTokensOn, setup: withLoginToken, method: "POST", path: loginPath,
		body: tokenLogin(fixtureLoginToken), wantStatus: 200,
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			r := h.do("POST", loginPath, tokenLogin(fixtureLoginToken))
			if r.status != 403 || r.raw != badLoginTokenRaw {
				t.Fatalf("second use: %d %s, want 403 %s", r.status, r.raw, badLoginTokenRaw)
			}
		}},
	{id: "LT-3", name: "Expired", deps: loginTokensOn,
		setup: func(h *harness, f fixture) {
			withLoginToken(h, f)
			h.clock.t = h.clock.t.Add(2 * time.Minute)
		},
		method: "POST", path: loginPath, body: tokenLogin(fixtureLoginToken),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-4", name: "AccessTokenAsLoginToken", deps: loginTokensOn, method: "POST", path: loginPath,
		body: tokenLogin("{token}"), wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-4", name: "RefreshTokenAsLoginToken", deps: loginTokensOn, method: "POST", path: loginPath,
		body: tokenLogin("{refresh}"), wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-4", name: "Unknown", deps: loginTokensOn, method: "POST", path: loginPath,
		body: tokenLogin(token.New(token.Login)), wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-4", name: "Malformed", deps: loginTokensOn, method: "POST", path: loginPath,
		body: tokenLogin("adl_garbled"), wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-4", name: "Empty", deps: loginTokensOn, method: "POST", path: loginPath,
		body: tokenLogin(""), wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: badLoginTokenRaw},
	{id: "LT-5", name: "ConcurrentUseOnce", deps: loginTokensOn, setup: withLoginToken, method: "GET", path: loginPath,
		wantStatus: 200,
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			const n = 6
			statuses := make([]int, n)
			start := make(chan struct{})
			done := make(chan struct{})
			for i := range n {
				go func() {
					defer func() { done <- struct{}{} }()
					<-start
					statuses[i] = h.do("POST", loginPath, tokenLogin(fixtureLoginToken)).status
				}()
			}
			close(start)
			for range n {
				<-done
			}
			ok := 0
			for _, s := range statuses {
				switch s {
				case 200:
					ok++
				case 403:
				default:
					t.Fatalf("statuses %v, want one 200 and the rest 403", statuses)
				}
			}
			if ok != 1 {
				t.Fatalf("statuses %v, want exactly one 200", statuses)
			}
		}},
	{id: "LT-6", name: "MautrixEmptyIdentifier", deps: loginTokensOn, setup: withLoginToken, method: "POST", path: loginPath,
		body:       `{"type":"m.login.token","identifier":{"type":""},"token":"` + fixtureLoginToken + `"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "LT-6", name: "IdentifierIgnored", deps: loginTokensOn, setup: withLoginToken, method: "POST", path: loginPath,
		body:       `{"type":"m.login.token","user":"bob","token":"` + fixtureLoginToken + `"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "LT-7", name: "AdvertisedWhenOn", deps: loginTokensOn, method: "GET", path: loginPath,
		wantStatus: 200, wantRaw: `{"flows":[{"type":"m.login.password"},{"type":"m.login.token","get_login_token":true}]}`},
	{id: "LT-7", name: "NotAdvertisedWhenOff", method: "GET", path: r0 + "/login",
		wantStatus: 200, wantRaw: `{"flows":[{"type":"m.login.password"}]}`},
	{id: "LT-7", name: "RefusedWhenOff", setup: withLoginToken, method: "POST", path: loginPath,
		body: tokenLogin(fixtureLoginToken), wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "LT-8", name: "MissingToken", deps: loginTokensOn, method: "POST", path: loginPath,
		body: `{"type":"m.login.token"}`, wantStatus: 400, wantErrcode: "M_UNKNOWN", want: map[string]any{"error": "Missing JSON keys."}},
	{id: "LT-8", name: "TokenNotAString", deps: loginTokensOn, method: "POST", path: loginPath,
		body: `{"type":"m.login.token","token":1}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "LT-9", name: "DeactivatedUser", deps: loginTokensOn,
		setup: func(h *harness, f fixture) {
			withLoginToken(h, f)
			if err := h.st.DeactivateUser(context.Background(), "@alice:example.org", h.clock.t, false, store.UIAGrant{}); err != nil {
				h.t.Fatal(err)
			}
		},
		method: "POST", path: loginPath, body: tokenLogin(fixtureLoginToken),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: `{"errcode":"M_FORBIDDEN","error":"Invalid login token"}`},
	{id: "LT-9", name: "MarkedDeactivated", deps: loginTokensOn,
		setup: func(h *harness, _ fixture) {
			err := h.st.CreateLoginToken(context.Background(), store.LoginToken{
				Hash: token.Hash(fixtureLoginToken), UserID: "@gone:example.org",
				CreatedAt: h.clock.t, ExpiresAt: h.clock.t.Add(2 * time.Minute),
			}, store.UIAGrant{})
			if err != nil {
				h.t.Fatal(err)
			}
		},
		method: "POST", path: loginPath, body: tokenLogin(fixtureLoginToken),
		wantStatus: 403, wantErrcode: "M_USER_DEACTIVATED"},
	{id: "LT-9", name: "PasswordChanged", deps: loginTokensOn,
		setup: func(h *harness, f fixture) {
			withLoginToken(h, f)
			wantOK(h.t, h.do("POST", v3+"/account/password", `{"new_password":"new pw","logout_devices":false,`+aliceAuth+`}`, bearer(f.token)))
		},
		method: "POST", path: loginPath, body: tokenLogin(fixtureLoginToken),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: `{"errcode":"M_FORBIDDEN","error":"Invalid login token"}`},

	{id: "LT-10", name: "GetTokenChallenge", deps: loginTokensOn, method: "POST", path: getTokenPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{}`, wantStatus: 401, want: challenge},
	{id: "LT-10", name: "GetToken", deps: loginTokensOn, method: "POST", path: getTokenPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 200, want: map[string]any{"expires_in_ms": float64(120000), "login_token": isLoginToken},
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			login := h.do("POST", loginPath, tokenLogin(r.str("login_token")))
			if login.status != 200 || login.str("user_id") != "@alice:example.org" {
				t.Fatalf("login with the issued token: %d %s", login.status, login.raw)
			}
			wantError(t, h.do("POST", loginPath, tokenLogin(r.str("login_token"))), 403, "M_FORBIDDEN")
		}},
	{id: "LT-10", name: "GetTokenOncePerMinute", deps: func(d *api.Deps) {
		loginTokensOn(d)
		d.LoginTokenLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 1, Every: time.Minute}, 0, d.Now)
	}, method: "POST", path: getTokenPath, headers: []string{"Authorization: Bearer {token}"},
		setup: func(h *harness, f fixture) {
			wantOK(h.t, h.do("POST", getTokenPath, `{`+aliceAuth+`}`, bearer(f.token)))
		},
		body: `{` + aliceAuth + `}`, wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED"},
	{id: "LT-10", name: "GetTokenWrongPassword", deps: loginTokensOn, method: "POST", path: getTokenPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{` + passwordAuth("", "wrong") + `}`, wantStatus: 401, wantErrcode: "M_FORBIDDEN", want: challenge},
	{id: "LT-10", name: "GetTokenNotServedWhenOff", method: "POST", path: getTokenPath, headers: []string{"Authorization: Bearer {token}"},
		body: `{` + aliceAuth + `}`, wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
}
