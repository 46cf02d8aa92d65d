package api_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// The Matrix conformance table. Each row carries the ID of the requirement it
// checks (docs/conformance.md: authd's checklist of spec v1.19, one table row
// per ID), sends one request through the real router on a fresh
// store, and asserts the status, the errcode, the body fields the requirement
// is about and the CORS headers. Where the spec and Synapse differ, the rows
// follow authd's decisions (docs/design.md). TestConformance_Coverage fails when a
// requirement loses its last row.
//
// Not applicable to authd, hence no row (notApplicable and the page hold the
// same list):
//
//	GL-2  404 M_UNRECOGNIZED on GET /login is for servers that do not offer
//	      the legacy login API; offering it is authd's whole job.
//
// The refresh requirements (R-1..R-6) and P-2 have rows too; the multi-step rotation and
// replay rules are in refresh_test.go.
//
// Also outside the table: the L-11 cross-signing clause (authd stores no
// cross-signing keys) and L-5's identical timing (a benchmark's job, not a
// table row's).

// The fixture every row starts from.
const (
	alicePW = "secret pw"
	bobPW   = "bob pw"
	gonePW  = "gone pw"
	// aliceLogin is a well-formed m.login.password login as alice.
	aliceLogin = `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw"}`
)

// fixture is the state of a fresh store before a row runs: @alice (email
// alice@example.org) with a session on device PHONE and an expired one on
// OLDDEVICE, @bob with a session on BOBPHONE, and the deactivated @gone.
type fixture struct {
	token, expired, bob string
	// refresh is alice's refresh token on device TABLET.
	refresh string
}

func newFixture(h *harness) fixture {
	h.t.Helper()
	ctx := context.Background()
	createUser(h, "@alice:example.org", alicePW, store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: "@alice:example.org", AddedAt: h.clock.t})
	createUser(h, "@bob:example.org", bobPW)
	// @gone is marked deactivated and still has its hash: an account
	// deactivated before deactivation removed hashes (L-6). One deactivated
	// now has none, and answers as an unknown account (DA-1).
	hashes, err := fixtureHashes()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.CreateUser(ctx, store.User{ID: "@gone:example.org", PasswordHash: hashes[gonePW], CreatedAt: h.clock.t, DeactivatedAt: h.clock.t}); err != nil {
		h.t.Fatal(err)
	}
	return fixture{
		token:   h.addSession("@alice:example.org", "PHONE", time.Time{}),
		expired: h.addSession("@alice:example.org", "OLDDEVICE", h.clock.t.Add(-time.Minute)),
		bob:     h.addSession("@bob:example.org", "BOBPHONE", time.Time{}),
		refresh: h.addRefreshableSession("@alice:example.org", "TABLET"),
	}
}

// addRefreshableSession stores a device with an access token and a refresh
// token, and returns the refresh token.
func (h *harness) addRefreshableSession(userID, deviceID string) string {
	h.t.Helper()
	access, refresh := token.New(token.Access), token.New(token.Refresh)
	created := h.clock.t.Add(-time.Minute)
	err := h.st.CreateSession(context.Background(), store.NewSession{
		Device:       store.Device{UserID: userID, ID: deviceID, CreatedAt: created, LastSeenAt: created},
		AccessToken:  store.AccessToken{Hash: token.Hash(access), UserID: userID, DeviceID: deviceID, CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute)},
		RefreshToken: &store.RefreshToken{Hash: token.Hash(refresh), UserID: userID, DeviceID: deviceID, CreatedAt: created},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return refresh
}

// fixtureHashes hashes the fixture's passwords once for every row: bcrypt,
// even at its minimum cost, is most of a row's time under the race detector.
var fixtureHashes = sync.OnceValues(func() (map[string]string, error) {
	hasher, err := password.NewHasher(bcrypt.MinCost, nil)
	if err != nil {
		return nil, err
	}
	hashes := map[string]string{}
	for _, pw := range []string{alicePW, bobPW, gonePW} {
		if hashes[pw], err = hasher.Hash(pw); err != nil {
			return nil, err
		}
	}
	return hashes, nil
})

// createUser is h.addUser for the fixture's passwords, with their hashes
// computed once.
func createUser(h *harness, id, pw string, tps ...store.ThreePID) {
	h.t.Helper()
	hashes, err := fixtureHashes()
	if err != nil {
		h.t.Fatal(err)
	}
	hash, ok := hashes[pw]
	if !ok {
		h.t.Fatalf("createUser: %q is not a fixture password", pw)
	}
	if err := h.st.CreateUser(context.Background(), store.User{ID: id, PasswordHash: hash, CreatedAt: h.clock.t}, tps...); err != nil {
		h.t.Fatal(err)
	}
}

// expand fills the fixture's tokens into a row's path, headers, body or
// wanted strings: {token}, {expired}, {bob}.
func (f fixture) expand(s string) string {
	return strings.NewReplacer("{token}", f.token, "{expired}", f.expired, "{bob}", f.bob, "{refresh}", f.refresh).Replace(s)
}

// addSession stores a device with one access token (expiring at expires,
// unless zero) and returns the token.
func (h *harness) addSession(userID, deviceID string, expires time.Time) string {
	h.t.Helper()
	tok := token.New(token.Access)
	created := h.clock.t.Add(-time.Hour)
	err := h.st.CreateSession(context.Background(), store.NewSession{
		Device:      store.Device{UserID: userID, ID: deviceID, DisplayName: deviceID + " name", CreatedAt: created, LastSeenAt: created},
		AccessToken: store.AccessToken{Hash: token.Hash(tok), UserID: userID, DeviceID: deviceID, CreatedAt: created, ExpiresAt: expires},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// matcher is a wanted body field that is not one literal value.
type matcher struct {
	desc string
	ok   func(v any, present bool) bool
}

var (
	absent        = matcher{"absent", func(_ any, present bool) bool { return !present }}
	isAccessToken = matcher{"an authd access token", func(v any, _ bool) bool {
		s, _ := v.(string)
		return token.Check(token.Access, s) == nil
	}}
	isRefreshToken = matcher{"an authd refresh token", func(v any, _ bool) bool {
		s, _ := v.(string)
		return token.Check(token.Refresh, s) == nil
	}}
	isGeneratedDeviceID = matcher{"a generated device ID", func(v any, _ bool) bool {
		s, _ := v.(string)
		return deviceIDPattern.MatchString(s)
	}}
	// isNewUserID is the appendix's grammar for user IDs of new users, in
	// at most 255 bytes.
	isNewUserID = matcher{"a user ID in the grammar for new IDs", func(v any, _ bool) bool {
		s, _ := v.(string)
		return len(s) <= 255 && newUserID.MatchString(s)
	}}
)

var newUserID = regexp.MustCompile(`^@[a-z0-9._=\-/+]+:example\.org$`)

// corsHeaders go on every response, errors included (spec: Web browser clients).
var corsHeaders = map[string]string{
	"Access-Control-Allow-Origin":   "*",
	"Access-Control-Allow-Methods":  "GET, POST, PUT, DELETE, OPTIONS",
	"Access-Control-Allow-Headers":  "X-Requested-With, Content-Type, Authorization",
	"Access-Control-Expose-Headers": "Retry-After",
}

type conformanceCase struct {
	id   string // requirement ID in this file's checklist
	name string
	// deps configures the API beyond the harness defaults.
	deps func(*api.Deps)
	// setup adds to the fixture before the request.
	setup   func(h *harness, f fixture)
	method  string
	path    string
	headers []string
	body    string

	wantStatus  int
	wantErrcode string // "" for a success, which must carry no errcode
	// want maps body fields to their JSON value (as encoding/json decodes
	// it into any; strings are expanded) or to a matcher.
	want       map[string]any
	wantRaw    string // the exact body, when set
	wantHeader map[string]string
	// check asserts what the response alone cannot show, such as the
	// state of other sessions afterwards.
	check func(t *testing.T, h *harness, f fixture, r response)
}

const (
	v3           = "/_matrix/client/v3"
	r0           = "/_matrix/client/r0"
	loginPath    = v3 + "/login"
	logoutPath   = v3 + "/logout"
	whoamiPath   = v3 + "/account/whoami"
	forbiddenRaw = `{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}`
)

// limitLogins allows one login per IP every two seconds; exhaustIP uses
// that one up.
func limitLogins(d *api.Deps) {
	d.LoginIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 1, Every: 2 * time.Second}, 0, d.Now)
}

func exhaustIP(h *harness, _ fixture) {
	h.t.Helper()
	wantError(h.t, h.do("POST", loginPath, `{"type":"m.login.password","user":"alice","password":"wrong"}`), 403, "M_FORBIDDEN")
}

// whoami returns the response to GET /account/whoami with tok.
func (h *harness) whoami(tok string) response {
	h.t.Helper()
	return h.do("GET", whoamiPath, "", bearer(tok))
}

// wantLive asserts that tok authenticates as userID.
func wantLive(t *testing.T, h *harness, tok, userID string) {
	t.Helper()
	if r := h.whoami(tok); r.status != 200 || r.str("user_id") != userID {
		t.Fatalf("token of %s: whoami = %d %s", userID, r.status, r.raw)
	}
}

// wantRevoked asserts that tok was revoked: 401 M_UNKNOWN_TOKEN without
// soft logout, so the client drops its session.
func wantRevoked(t *testing.T, h *harness, tok string) {
	t.Helper()
	r := h.whoami(tok)
	wantError(t, r, 401, "M_UNKNOWN_TOKEN")
	if r.body["soft_logout"] != false {
		t.Fatalf("revoked token: soft_logout %v, want false", r.body["soft_logout"])
	}
}

// wantDevices asserts the IDs of userID's devices.
func wantDevices(t *testing.T, h *harness, userID string, ids ...string) []store.Device {
	t.Helper()
	devices, err := h.st.ListDevices(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devices {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("devices of %s = %v, want %v", userID, got, ids)
	}
	return devices
}

func wantNoBody(t *testing.T, _ *harness, _ fixture, r response) {
	t.Helper()
	if r.raw != "" {
		t.Fatalf("body %q, want none", r.raw)
	}
}

// loggedIn checks that the access token a login returned works, for the
// user_id the login returned.
func loggedIn(t *testing.T, h *harness, _ fixture, r response) {
	t.Helper()
	wantLive(t, h, r.str("access_token"), r.str("user_id"))
}

// withUser adds a user whose password is alice's.
func withUser(id string) func(*harness, fixture) {
	return func(h *harness, _ fixture) { createUser(h, id, alicePW) }
}

func login(identifier string) string {
	return `{"type":"m.login.password","identifier":` + identifier + `,"password":"secret pw"}`
}

var conformance = []conformanceCase{
	// 1. Transport, error envelope, CORS.
	{id: "T-1", name: "LoginWithoutContentType", method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"},
		wantHeader: map[string]string{"Content-Type": "application/json"}},
	{id: "T-1", name: "LoginWithOtherContentType", method: "POST", path: loginPath, body: aliceLogin,
		headers: []string{"Content-Type: text/plain"}, wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "T-1", name: "ErrorsAreJSON", method: "GET", path: v3 + "/nope",
		wantStatus: 404, wantErrcode: "M_UNRECOGNIZED", wantHeader: map[string]string{"Content-Type": "application/json"}},

	{id: "T-2", name: "LogoutNoBody", method: "POST", path: logoutPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},
	{id: "T-2", name: "LogoutEmptyObject", method: "POST", path: logoutPath, body: "{}",
		headers:    []string{"Authorization: Bearer {token}", "Content-Type: application/json"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},
	{id: "T-2", name: "LogoutEmptyWithContentType", method: "POST", path: logoutPath,
		headers:    []string{"Authorization: Bearer {token}", "Content-Type: application/json"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},
	{id: "T-2", name: "LogoutAllNoBody", method: "POST", path: logoutPath + "/all", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},

	{id: "T-3", name: "ErrcodeAndError", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"wrong"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", want: map[string]any{"error": "Invalid username or password"}},
	{id: "T-3", name: "ExtraKeyForErrcode", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"error": "Access token has expired", "soft_logout": true}},
	{id: "T-3", name: "InternalErrorHidesDetail", method: "POST", path: loginPath, body: aliceLogin,
		setup:      func(h *harness, _ fixture) { h.st.Close() },
		wantStatus: 500, wantErrcode: "M_UNKNOWN", wantRaw: `{"errcode":"M_UNKNOWN","error":"Internal server error"}`},

	{id: "T-4", name: "InvalidJSON", method: "POST", path: loginPath, body: `{"type":"m.login.password", "identifier":`,
		wantStatus: 400, wantErrcode: "M_NOT_JSON", want: map[string]any{"error": "Content not JSON."}},
	{id: "T-4", name: "InvalidUTF8", method: "POST", path: loginPath,
		body:       "{\"type\":\"m.login.password\",\"user\":\"al\xffice\",\"password\":\"secret pw\"}",
		wantStatus: 400, wantErrcode: "M_NOT_JSON"},
	{id: "T-4", name: "EmptyLoginBody", method: "POST", path: loginPath, wantStatus: 400, wantErrcode: "M_NOT_JSON"},
	{id: "T-4", name: "NotAnObject", method: "POST", path: loginPath, body: `["m.login.password"]`,
		wantStatus: 400, wantErrcode: "M_BAD_JSON", want: map[string]any{"error": "Content must be a JSON object."}},
	{id: "T-4", name: "Null", method: "POST", path: loginPath, body: `null`, wantStatus: 400, wantErrcode: "M_BAD_JSON"},
	{id: "T-4", name: "IllTypedKey", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":["secret pw"]}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "T-4", name: "BodyTooLarge", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","pad":"` + strings.Repeat("x", 65<<10) + `"}`,
		wantStatus: 413, wantErrcode: "M_TOO_LARGE"},

	{id: "T-5", name: "UnknownEndpoint", method: "GET", path: v3 + "/sync",
		wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
	{id: "T-5", name: "UnknownVersion", method: "POST", path: "/_matrix/client/v4/login", body: aliceLogin,
		wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
	{id: "T-5", name: "WrongMethod", method: "GET", path: logoutPath,
		wantStatus: 405, wantErrcode: "M_UNRECOGNIZED"},
	{id: "T-5", name: "WrongMethodR0", method: "PUT", path: r0 + "/login", body: "{}",
		wantStatus: 405, wantErrcode: "M_UNRECOGNIZED"},
	{id: "T-5", name: "WrongMethodAuthenticated", method: "DELETE", path: whoamiPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 405, wantErrcode: "M_UNRECOGNIZED"},

	{id: "T-6", name: "RateLimited", deps: limitLogins, setup: exhaustIP, method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED", want: map[string]any{"retry_after_ms": float64(2000)},
		wantHeader: map[string]string{"Retry-After": "2", "Access-Control-Expose-Headers": "Retry-After"}},
	{id: "T-6", name: "RetryAfterWholeSecondsRoundedUp",
		deps: func(d *api.Deps) {
			d.LoginIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 1, Every: 1500 * time.Millisecond}, 0, d.Now)
		},
		setup: exhaustIP, method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED", want: map[string]any{"retry_after_ms": float64(1500)},
		wantHeader: map[string]string{"Retry-After": "2"}},

	{id: "T-7", name: "CORSOnSuccess", method: "GET", path: loginPath, wantStatus: 200},
	{id: "T-7", name: "CORSOnUnauthorized", method: "POST", path: logoutPath, wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "T-7", name: "CORSOnNotFound", method: "GET", path: "/_matrix/media/v3/config", wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
	{id: "T-7", name: "CORSOnRateLimit", deps: limitLogins, setup: exhaustIP, method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED"},

	{id: "T-8", name: "PreflightWithoutToken", method: "OPTIONS", path: logoutPath,
		headers:    []string{"Origin: https://app.element.io", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization"},
		wantStatus: 204, check: wantNoBody},
	{id: "T-8", name: "PreflightLogin", method: "OPTIONS", path: loginPath,
		headers:    []string{"Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type"},
		wantStatus: 204, check: wantNoBody},
	{id: "T-8", name: "AnyPath", method: "OPTIONS", path: "/_matrix/client/v3/rooms/!r:example.org/send/m.room.message/1",
		wantStatus: 204, check: wantNoBody},
	{id: "T-8", name: "NoEndpointLogic", method: "OPTIONS", path: logoutPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 204,
		check: func(t *testing.T, h *harness, f fixture, r response) {
			wantNoBody(t, h, f, r)
			wantLive(t, h, f.token, "@alice:example.org")
		}},

	// 2. GET /login.
	{id: "GL-1", name: "Flows", method: "GET", path: loginPath,
		wantStatus: 200, want: map[string]any{"flows": []any{map[string]any{"type": "m.login.password"}}}},
	{id: "GL-1", name: "NoAuthNeeded", method: "GET", path: loginPath, headers: []string{"Authorization: Bearer not-a-token"},
		wantStatus: 200, want: map[string]any{"flows": []any{map[string]any{"type": "m.login.password"}}}},
	{id: "GL-3", name: "PasswordFirst", method: "GET", path: loginPath, wantStatus: 200,
		check: func(t *testing.T, _ *harness, _ fixture, r response) {
			flows, _ := r.body["flows"].([]any)
			if len(flows) == 0 {
				t.Fatalf("no flows: %s", r.raw)
			}
			first, _ := flows[0].(map[string]any)
			if first["type"] != "m.login.password" {
				t.Fatalf("first flow %v, want m.login.password", flows)
			}
		}},
	{id: "GL-3", name: "OnlyAdvertisedTypesAccepted", method: "POST", path: loginPath,
		body:       `{"type":"m.login.token","token":"abc"}`,
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},

	// 3. POST /login.
	{id: "L-1", name: "Localpart", method: "POST", path: loginPath, body: login(`{"type":"m.id.user","user":"alice"}`),
		wantStatus: 200,
		want: map[string]any{"user_id": "@alice:example.org", "access_token": isAccessToken, "device_id": isGeneratedDeviceID,
			"home_server": "example.org"},
		check: loggedIn},
	{id: "L-1", name: "FullMXID", method: "POST", path: loginPath, body: login(`{"type":"m.id.user","user":"@alice:example.org"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "access_token": isAccessToken}, check: loggedIn},

	// matrix-js-sdk's loginRequest sends the Authorization header of the
	// session it already holds, stale or not: login ignores it.
	{id: "L-1", name: "StaleAuthorizationIgnored", method: "POST", path: loginPath, body: aliceLogin,
		headers:    []string{"Authorization: Bearer {expired}"},
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}, check: loggedIn},

	{id: "L-2", name: "Email", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "access_token": isAccessToken}, check: loggedIn},
	{id: "L-2", name: "EmailCanonicalised", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.thirdparty","medium":"email","address":" ALICE@Example.ORG"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "L-2", name: "UnknownEmailIsForbidden", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.thirdparty","medium":"email","address":"mallory@example.org"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "L-2", name: "UnknownMediumIsForbidden", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.thirdparty","medium":"carrier_pigeon","address":"coo"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},

	// authd binds no phone numbers yet: a phone login is a well-formed
	// login for nobody, so it gets the wrong-password answer, not a 400.
	{id: "L-3", name: "Phone", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.phone","country":"GB","phone":"07700900123"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "L-3", name: "PhoneElementNumberKey", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.phone","country":"GB","number":"07700900123"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "L-3", name: "PhoneWithoutNumber", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.phone","country":"GB"}`),
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},

	{id: "L-4", name: "TopLevelUser", method: "POST", path: loginPath,
		body:       `{"user":"alice","password":"secret pw","type":"m.login.password"}`, // matrix-js-sdk loginWithPassword
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}, check: loggedIn},
	{id: "L-4", name: "TopLevelMediumAddress", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","medium":"email","address":"alice@example.org","password":"secret pw"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "L-4", name: "TopLevelUserOverridesIdentifier", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","identifier":{"type":"m.id.user","user":"bob"},"password":"secret pw"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "L-4", name: "MediumAddressOverrideUser", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","medium":"email","address":"alice@example.org","user":"bob","password":"secret pw"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "L-4", name: "NothingUsable", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","medium":"email","password":"secret pw"}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM", want: map[string]any{"error": "Invalid login submission"}},

	{id: "L-5", name: "WrongPassword", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"Secret pw"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "L-5", name: "UnknownUserSameAnswer", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"mallory","password":"secret pw"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "L-5", name: "NoDeviceOnFailure", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"wrong","device_id":"NEWDEVICE"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
		}},

	{id: "L-6", name: "DeactivatedRightPassword", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"gone","password":"gone pw"}`,
		wantStatus: 403, wantErrcode: "M_USER_DEACTIVATED"},
	{id: "L-6", name: "DeactivatedWrongPasswordRevealsNothing", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"gone","password":"guess"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},

	{id: "L-7", name: "MissingType", method: "POST", path: loginPath, body: `{"user":"alice","password":"secret pw"}`,
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "L-7", name: "TypeNotString", method: "POST", path: loginPath, body: `{"type":7,"user":"alice","password":"secret pw"}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "L-7", name: "UnknownType", method: "POST", path: loginPath, body: `{"type":"m.login.sso","user":"alice"}`,
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "L-7", name: "MissingPassword", method: "POST", path: loginPath, body: `{"type":"m.login.password","user":"alice"}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "L-7", name: "IdentifierWithoutType", method: "POST", path: loginPath, body: login(`{"user":"alice"}`),
		wantStatus: 400, wantErrcode: "M_MISSING_PARAM"},
	{id: "L-7", name: "UnknownIdentifierType", method: "POST", path: loginPath, body: login(`{"type":"m.id.carrier_pigeon"}`),
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "L-7", name: "UserIdentifierWithoutUser", method: "POST", path: loginPath, body: login(`{"type":"m.id.user"}`),
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "L-7", name: "RefreshTokenNotBoolean", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","refresh_token":"true"}`,
		wantStatus: 400, wantErrcode: "M_UNKNOWN"},
	{id: "L-7", name: "DeviceIDTooLong", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","device_id":"` + strings.Repeat("D", 513) + `"}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
		}},

	{id: "L-8", name: "PerIP", deps: limitLogins, setup: exhaustIP, method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			// Refilled after the retry time.
			h.clock.t = h.clock.t.Add(2 * time.Second)
			h.login(aliceLogin)
		}},
	{id: "L-8", name: "BeforeParsing", deps: limitLogins, setup: exhaustIP, method: "POST", path: loginPath, body: `{"type":`,
		wantStatus: 429, wantErrcode: "M_LIMIT_EXCEEDED"},
	{id: "L-8", name: "FlowsNotLimited", deps: limitLogins, setup: exhaustIP, method: "GET", path: loginPath, wantStatus: 200},

	{id: "L-9", name: "DeviceGenerated", method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 200, want: map[string]any{"device_id": isGeneratedDeviceID},
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			if _, err := h.st.FindDevice(context.Background(), "@alice:example.org", r.str("device_id")); err != nil {
				t.Fatalf("generated device %s not stored: %v", r.str("device_id"), err)
			}
		}},
	{id: "L-9", name: "EachLoginANewDevice", method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 200,
		check: func(t *testing.T, h *harness, f fixture, r response) {
			second := h.login(aliceLogin)
			if second.str("device_id") == r.str("device_id") {
				t.Fatalf("two logins share device %s", r.str("device_id"))
			}
			wantLive(t, h, r.str("access_token"), "@alice:example.org")
			wantLive(t, h, f.token, "@alice:example.org")
		}},

	{id: "L-10", name: "DeviceIDEchoed", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","device_id":"test_device_id"}`,
		wantStatus: 200, want: map[string]any{"device_id": "test_device_id"},
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			if w := h.whoami(r.str("access_token")); w.str("device_id") != "test_device_id" {
				t.Fatalf("whoami device_id %s", w.raw)
			}
		}},

	{id: "L-11", name: "ExistingDeviceKeptOldTokenRevoked", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","device_id":"PHONE","initial_device_display_name":"Renamed"}`,
		wantStatus: 200, want: map[string]any{"device_id": "PHONE", "access_token": isAccessToken},
		check: func(t *testing.T, h *harness, f fixture, r response) {
			// The spec prose wins over Synapse (#6616): see docs/design.md.
			wantRevoked(t, h, f.token)
			wantLive(t, h, r.str("access_token"), "@alice:example.org")
			devices := wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
			if devices[1].DisplayName != "PHONE name" {
				t.Fatalf("display name %q: initial_device_display_name must be ignored for a known device", devices[1].DisplayName)
			}
			// Another user's device of the same ID is not this one.
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "L-11", name: "SameIDOtherUserIsNewDevice", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","device_id":"BOBPHONE"}`,
		wantStatus: 200, want: map[string]any{"device_id": "BOBPHONE"},
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantLive(t, h, f.bob, "@bob:example.org")
			wantDevices(t, h, "@alice:example.org", "BOBPHONE", "OLDDEVICE", "PHONE", "TABLET")
		}},

	// The request's Host is httptest's example.com: home_server is the
	// configured server name, never where authd was reached.
	{id: "L-12", name: "RefreshOptIn", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","user":"alice","password":"secret pw","refresh_token":true}`,
		deps:       withTokens(refreshPolicy),
		wantStatus: 200, want: map[string]any{"refresh_token": isRefreshToken, "expires_in_ms": float64(300000)}},
	{id: "L-12", name: "NoRefreshWithoutOptIn", method: "POST", path: loginPath, body: aliceLogin,
		deps:       withTokens(refreshPolicy),
		wantStatus: 200, want: map[string]any{"refresh_token": absent, "expires_in_ms": absent}},

	{id: "R-1", name: "StaleAuthorizationIgnored", method: "POST", path: v3 + "/refresh",
		headers: []string{"Authorization: Bearer {expired}"}, body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken, "refresh_token": isRefreshToken}},
	{id: "R-1", name: "GarbageAuthorizationIgnored", method: "POST", path: v3 + "/refresh",
		headers: []string{"Authorization: Bearer not-a-token"}, body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken}},
	{id: "R-2", name: "MissingRefreshToken", method: "POST", path: v3 + "/refresh", body: `{}`,
		wantStatus: 400, wantErrcode: "M_MISSING_PARAM"},
	{id: "R-2", name: "RefreshTokenNotString", method: "POST", path: v3 + "/refresh", body: `{"refresh_token":["x"]}`,
		wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "R-3", name: "NewPairSameDevice", method: "POST", path: v3 + "/refresh", body: `{"refresh_token":"{refresh}"}`,
		deps:       withTokens(refreshPolicy),
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken, "refresh_token": isRefreshToken, "expires_in_ms": float64(300000)},
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			w := h.whoami(r.str("access_token"))
			if w.status != 200 || w.str("device_id") != "TABLET" {
				t.Fatalf("the refreshed token = %d %s, want device TABLET", w.status, w.raw)
			}
		}},
	{id: "R-4", name: "PredecessorValidUntilUse", method: "POST", path: v3 + "/refresh", body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200,
		check: func(t *testing.T, h *harness, f fixture, first response) {
			retry := h.refresh(v3+"/refresh", f.refresh)
			wantOK(t, retry)
			wantOK(t, h.whoami(retry.str("access_token")))
			wantRevoked(t, h, first.str("access_token"))
		}},
	{id: "R-5", name: "UnknownRefreshToken", method: "POST", path: v3 + "/refresh", body: `{"refresh_token":"{token}"}`,
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false}},
	{id: "R-6", name: "V1Path", method: "POST", path: "/_matrix/client/v1/refresh", body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken}},
	{id: "R-6", name: "R0Path", method: "POST", path: r0 + "/refresh", body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken}},
	{id: "P-2", name: "TokenRefresh", method: "POST", path: r0 + "/tokenrefresh", body: `{"refresh_token":"{refresh}"}`,
		wantStatus: 200, want: map[string]any{"access_token": isAccessToken, "refresh_token": isRefreshToken, "expires_in_ms": absent}},
	{id: "P-2", name: "TokenRefreshFailureIsForbidden", method: "POST", path: r0 + "/tokenrefresh", body: `{"refresh_token":"{token}"}`,
		wantStatus: 403, wantErrcode: "M_FORBIDDEN"},

	{id: "L-13", name: "HomeServerIsServerName", method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 200, want: map[string]any{"home_server": "example.org"}},

	{id: "L-14", name: "WellKnownOmittedByDefault", method: "POST", path: loginPath, body: aliceLogin,
		wantStatus: 200, want: map[string]any{"well_known": absent}},
	{id: "L-14", name: "WellKnownIsPublicBaseURL", method: "POST", path: loginPath, body: aliceLogin,
		deps:       func(d *api.Deps) { d.PublicBaseURL = "https://matrix.example.org" },
		wantStatus: 200,
		want:       map[string]any{"well_known": map[string]any{"m.homeserver": map[string]any{"base_url": "https://matrix.example.org"}}}},

	{id: "L-15", name: "CanonicalUserID", method: "POST", path: loginPath, body: login(`{"type":"m.id.user","user":"@ALICE:Example.Org"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"},
		check: func(t *testing.T, h *harness, _ fixture, r response) {
			wantLive(t, h, r.str("access_token"), "@alice:example.org")
		}},

	// 4. Access-token transport and failures.
	{id: "A-1", name: "Bearer", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "A-1", name: "SchemeCaseInsensitive", method: "GET", path: whoamiPath, headers: []string{"Authorization: bearer {token}"},
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}},
	{id: "A-2", name: "QueryParameter", method: "GET", path: whoamiPath + "?access_token={token}",
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "device_id": "PHONE"}},
	{id: "A-2", name: "QueryParameterLogout", method: "POST", path: logoutPath + "?access_token={token}",
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},
	{id: "A-3", name: "Missing", method: "GET", path: whoamiPath,
		wantStatus: 401, wantErrcode: "M_MISSING_TOKEN", want: map[string]any{"soft_logout": absent}},
	{id: "A-3", name: "Unknown", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN"},
	{id: "A-3", name: "NotOurs", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer syt_YWxpY2U_xyzxyzxyzxyzxyzxyzxyz_0a1b2c"},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN"},
	{id: "A-3", name: "HeaderAndQuery", method: "GET", path: whoamiPath + "?access_token={token}", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "A-3", name: "TwoHeaders", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {token}", "Authorization: Bearer {bob}"},
		wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "A-3", name: "OtherScheme", method: "GET", path: whoamiPath, headers: []string{"Authorization: Basic YWxpY2U6c2VjcmV0IHB3"},
		wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},

	{id: "A-4", name: "ExpiredIsSoftLogout", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": true}},
	{id: "A-4", name: "UnknownIsNotSoftLogout", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false}},
	{id: "A-4", name: "DeactivatedIsNotSoftLogout", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {token}"},
		setup: func(h *harness, _ fixture) {
			if err := h.st.DeactivateUser(context.Background(), "@alice:example.org", h.clock.t, false, store.UIAGrant{}); err != nil {
				h.t.Fatal(err)
			}
		},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false}},
	{id: "A-4", name: "LoggedOutIsNotSoftLogout", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {token}"},
		setup: func(h *harness, f fixture) {
			h.t.Helper()
			if r := h.do("POST", logoutPath, "", bearer(f.token)); r.status != 200 {
				h.t.Fatalf("logout: %d %s", r.status, r.raw)
			}
		},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false}},

	// 5. Logout.
	{id: "LO-1", name: "DeviceDeleted", method: "POST", path: logoutPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantRevoked(t, h, f.token)
			if _, err := h.st.FindDevice(context.Background(), "@alice:example.org", "PHONE"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("device after logout: %v, want ErrNotFound", err)
			}
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "TABLET")
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "LO-2", name: "EveryDevice", method: "POST", path: logoutPath + "/all", headers: []string{"Authorization: Bearer {token}"},
		setup:      func(h *harness, _ fixture) { h.login(aliceLogin) },
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantRevoked(t, h, f.token)
			wantDevices(t, h, "@alice:example.org")
			wantLive(t, h, f.bob, "@bob:example.org")
		}},
	{id: "LO-3", name: "LogoutWithExpiredToken", method: "POST", path: logoutPath, headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "PHONE", "TABLET")
			wantLive(t, h, f.token, "@alice:example.org")
		}},
	{id: "LO-3", name: "LogoutAllWithExpiredToken", method: "POST", path: logoutPath + "/all", headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDevices(t, h, "@alice:example.org")
			wantRevoked(t, h, f.token)
		}},
	{id: "LO-4", name: "LogoutMissingToken", method: "POST", path: logoutPath, wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "LO-4", name: "LogoutUnknownToken", method: "POST", path: logoutPath, headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false}},
	{id: "LO-4", name: "LogoutAllMissingToken", method: "POST", path: logoutPath + "/all", body: "{}",
		wantStatus: 401, wantErrcode: "M_MISSING_TOKEN",
		check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
		}},

	// 7. whoami.
	{id: "W-1", name: "Whoami", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "device_id": "PHONE", "is_guest": false}},
	{id: "W-2", name: "UnknownToken", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN"},
	{id: "W-2", name: "MissingToken", method: "GET", path: whoamiPath, wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "W-2", name: "RefreshTokenIsNoAccessToken", method: "GET", path: whoamiPath, headers: []string{"Authorization: Bearer " + token.New(token.Refresh)},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN"},

	// 8. Devices.
	{id: "DV-1", name: "ListDevices", method: "GET", path: v3 + "/devices", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, r response) {
			wantDeviceList(t, h, r)
		}},
	{id: "DV-1", name: "ListDevicesR0", method: "GET", path: r0 + "/devices", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, r response) {
			wantDeviceList(t, h, r)
		}},
	{id: "DV-2", name: "GetDevice", method: "GET", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, want: map[string]any{"device_id": "PHONE", "display_name": "PHONE name", "last_seen_ip": absent}},
	{id: "DV-2", name: "GetDeviceWithoutName", method: "GET", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, want: map[string]any{"device_id": "TABLET", "display_name": absent}},
	{id: "DV-2", name: "GetDeviceEncodedID", method: "GET", path: v3 + "/devices/A%2FB%20", headers: []string{"Authorization: Bearer {token}"},
		setup:      func(h *harness, _ fixture) { h.addSession("@alice:example.org", "A/B", time.Time{}) },
		wantStatus: 404, wantErrcode: "M_NOT_FOUND"},
	{id: "DV-2", name: "GetDeviceSlashInID", method: "GET", path: v3 + "/devices/A%2FB", headers: []string{"Authorization: Bearer {token}"},
		setup:      func(h *harness, _ fixture) { h.addSession("@alice:example.org", "A/B", time.Time{}) },
		wantStatus: 200, want: map[string]any{"device_id": "A/B", "display_name": "A/B name"}},
	{id: "DV-2", name: "GetUnknownDevice", method: "GET", path: v3 + "/devices/NOPE", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 404, wantErrcode: "M_NOT_FOUND"},
	{id: "DV-2", name: "GetOtherUsersDevice", method: "GET", path: v3 + "/devices/BOBPHONE", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 404, wantErrcode: "M_NOT_FOUND"},
	{id: "DV-3", name: "Rename", method: "PUT", path: v3 + "/devices/TABLET", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"Kitchen tablet ✓"}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "TABLET", "Kitchen tablet ✓")
		}},
	{id: "DV-3", name: "RenameLongest", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"` + strings.Repeat("é", 256) + `"}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "PHONE", strings.Repeat("é", 256))
		}},
	{id: "DV-3", name: "RenameToNothing", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":""}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "PHONE", "")
		}},
	{id: "DV-3", name: "NoDisplayNameChangesNothing", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{}`, wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "PHONE", "PHONE name")
		}},
	{id: "DV-3", name: "RenameUnknownDevice", method: "PUT", path: v3 + "/devices/NOPE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"x"}`, wantStatus: 404, wantErrcode: "M_NOT_FOUND"},
	{id: "DV-3", name: "RenameUnknownDeviceWithoutName", method: "PUT", path: v3 + "/devices/NOPE", headers: []string{"Authorization: Bearer {token}"},
		body: `{}`, wantStatus: 404, wantErrcode: "M_NOT_FOUND"},
	{id: "DV-3", name: "RenameOtherUsersDevice", method: "PUT", path: v3 + "/devices/BOBPHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"mine now"}`, wantStatus: 404, wantErrcode: "M_NOT_FOUND",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.bob, "BOBPHONE", "BOBPHONE name")
		}},
	{id: "DV-3", name: "NameNotString", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":7}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "DV-3", name: "NameTooLong", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"` + strings.Repeat("é", 257) + `"}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM",
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "PHONE", "PHONE name")
		}},
	{id: "DV-3", name: "NameWithNUL", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `{"display_name":"a\u0000b"}`, wantStatus: 400, wantErrcode: "M_INVALID_PARAM"},
	{id: "DV-3", name: "BodyNotJSON", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {token}"},
		body: `display_name=x`, wantStatus: 400, wantErrcode: "M_NOT_JSON"},
	{id: "DV-4", name: "MissingToken", method: "GET", path: v3 + "/devices", wantStatus: 401, wantErrcode: "M_MISSING_TOKEN"},
	{id: "DV-4", name: "UnknownToken", method: "PUT", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer " + token.New(token.Access)},
		body: `{"display_name":"x"}`, wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": false},
		check: func(t *testing.T, h *harness, f fixture, _ response) {
			wantDeviceName(t, h, f.token, "PHONE", "PHONE name")
		}},
	{id: "DV-4", name: "ExpiredToken", method: "GET", path: v3 + "/devices/PHONE", headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": true}},
	{id: "DV-5", name: "LoginSetsLastSeen", method: "GET", path: v3 + "/devices/NEWPHONE", headers: []string{"Authorization: Bearer {token}"},
		deps: func(d *api.Deps) { d.LastSeenIP = true },
		setup: func(h *harness, _ fixture) {
			h.clock.t = h.clock.t.Add(time.Minute)
			h.login(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw","device_id":"NEWPHONE"}`)
		},
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, r response) {
			wantDeviceLastSeen(t, r, h.clock.t, "192.0.2.1")
		}},
	{id: "DV-5", name: "UnknownAddressAbsent", method: "GET", path: v3 + "/devices", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, check: func(t *testing.T, _ *harness, _ fixture, r response) {
			devices, _ := r.body["devices"].([]any)
			for _, d := range devices {
				if d, _ := d.(map[string]any); d["last_seen_ip"] != nil {
					t.Fatalf("a device with no known address has last_seen_ip: %s", r.raw)
				}
			}
		}},
	{id: "DV-5", name: "AddressesOff", method: "GET", path: v3 + "/devices/NEWPHONE", headers: []string{"Authorization: Bearer {token}"},
		setup: func(h *harness, _ fixture) {
			h.login(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"secret pw","device_id":"NEWPHONE"}`)
		},
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, r response) {
			wantDeviceLastSeen(t, r, h.clock.t, "")
		}},
	{id: "DV-6", name: "UseMovesLastSeen", method: "GET", path: v3 + "/account/whoami",
		headers: []string{"Authorization: Bearer {token}", "Remote-Addr: 127.0.0.1:4000", "X-Forwarded-For: 2001:db8::7"},
		deps: func(d *api.Deps) {
			d.LastSeenIP = true
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			d.LastSeen = writeThrough{d.Store.(store.LastSeenStore)}
		},
		setup:      func(h *harness, _ fixture) { h.clock.t = h.clock.t.Add(time.Hour) },
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantStoredLastSeen(t, h, "PHONE", h.clock.t, "2001:db8::7")
		}},
	{id: "DV-6", name: "VerifyMovesLastSeen", method: "GET", path: "/_authd/verify",
		headers: []string{"Authorization: Bearer {token}", "Remote-Addr: 127.0.0.1:4000", "X-Forwarded-For: 198.51.100.3"},
		deps: func(d *api.Deps) {
			d.LastSeenIP = true
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			d.LastSeen = writeThrough{d.Store.(store.LastSeenStore)}
		},
		setup:      func(h *harness, _ fixture) { h.clock.t = h.clock.t.Add(time.Hour) },
		wantStatus: 200, check: func(t *testing.T, h *harness, _ fixture, _ response) {
			wantStoredLastSeen(t, h, "PHONE", h.clock.t, "198.51.100.3")
		}},

	// 9. User IDs.
	{id: "U-1", name: "ResponseUserIDGrammar", method: "POST", path: loginPath, body: login(`{"type":"m.id.user","user":"Alice"}`),
		wantStatus: 200, want: map[string]any{"user_id": isNewUserID}},
	{id: "U-1", name: "LimitInBytes", method: "POST", path: loginPath,
		// 130 two-byte letters: 143 characters but 273 bytes, longer
		// than any user ID can be, though a store could hold it.
		setup:      withUser("@" + strings.Repeat("é", 130) + ":example.org"),
		body:       login(`{"type":"m.id.user","user":"` + strings.Repeat("é", 130) + `"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "U-1", name: "LongestUserID", method: "POST", path: loginPath,
		setup:      withUser("@" + strings.Repeat("é", 121) + ":example.org"), // 255 bytes
		body:       login(`{"type":"m.id.user","user":"` + strings.Repeat("é", 121) + `"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@" + strings.Repeat("é", 121) + ":example.org"}},

	{id: "U-2", name: "HistoricalLocalpart", method: "POST", path: loginPath,
		setup:      withUser("@Zoë!history:example.org"),
		body:       login(`{"type":"m.id.user","user":"Zoë!history"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@Zoë!history:example.org"}, check: loggedIn},

	{id: "U-3", name: "UpperCaseTyped", method: "POST", path: loginPath, body: login(`{"type":"m.id.user","user":"@ALICE:EXAMPLE.ORG"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org"}, check: loggedIn},
	{id: "U-3", name: "StoredMixedCaseIsCanonical", method: "POST", path: loginPath,
		setup:      withUser("@Carol:example.org"),
		body:       login(`{"type":"m.id.user","user":"carol"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@Carol:example.org"}, check: loggedIn},
	{id: "U-3", name: "SeveralMatchesExactWins", method: "POST", path: loginPath,
		setup: func(h *harness, _ fixture) {
			createUser(h, "@dave:example.org", bobPW)
			createUser(h, "@Dave:example.org", alicePW)
		},
		body:       login(`{"type":"m.id.user","user":"@Dave:example.org"}`),
		wantStatus: 200, want: map[string]any{"user_id": "@Dave:example.org"}},
	{id: "U-3", name: "SeveralMatchesNoneExact", method: "POST", path: loginPath,
		setup: func(h *harness, _ fixture) {
			createUser(h, "@dave:example.org", alicePW)
			createUser(h, "@Dave:example.org", alicePW)
		},
		body:       login(`{"type":"m.id.user","user":"@DAVE:example.org"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},

	{id: "U-4", name: "LocalpartQualified", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"bob"},"password":"bob pw"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@bob:example.org"}, check: loggedIn},
	{id: "U-4", name: "FullMXIDAsIs", method: "POST", path: loginPath,
		body:       `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@bob:example.org"},"password":"bob pw"}`,
		wantStatus: 200, want: map[string]any{"user_id": "@bob:example.org"}},
	{id: "U-4", name: "ForeignServerIsForbidden", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.user","user":"@alice:matrix.org"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},
	{id: "U-4", name: "LocalpartWithColonIsNotAnMXID", method: "POST", path: loginPath,
		body:       login(`{"type":"m.id.user","user":"alice:example.org"}`),
		wantStatus: 403, wantErrcode: "M_FORBIDDEN", wantRaw: forbiddenRaw},

	// 10. r0 is v3.
	{id: "P-1", name: "R0LoginFlows", method: "GET", path: r0 + "/login",
		wantStatus: 200, want: map[string]any{"flows": []any{map[string]any{"type": "m.login.password"}}}},
	{id: "P-1", name: "R0Login", method: "POST", path: r0 + "/login", body: aliceLogin,
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "access_token": isAccessToken, "home_server": "example.org"},
		check: loggedIn},
	{id: "P-1", name: "R0Whoami", method: "GET", path: r0 + "/account/whoami", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, want: map[string]any{"user_id": "@alice:example.org", "device_id": "PHONE", "is_guest": false}},
	{id: "P-1", name: "R0Logout", method: "POST", path: r0 + "/logout", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, f fixture, _ response) { wantRevoked(t, h, f.token) }},
	{id: "P-1", name: "R0LogoutAll", method: "POST", path: r0 + "/logout/all", headers: []string{"Authorization: Bearer {token}"},
		wantStatus: 200, wantRaw: "{}",
		check: func(t *testing.T, h *harness, _ fixture, _ response) { wantDevices(t, h, "@alice:example.org") }},
	{id: "P-1", name: "R0Errors", method: "GET", path: r0 + "/account/whoami", headers: []string{"Authorization: Bearer {expired}"},
		wantStatus: 401, wantErrcode: "M_UNKNOWN_TOKEN", want: map[string]any{"soft_logout": true}},

	// 8. Discovery, the parts authd answers. /versions is served only when
	// configured (AUTHD_SERVE_VERSIONS, Deps.ServeVersions): behind a proxy
	// the homeserver answers it for the whole server.
	{id: "D-1", name: "VersionsOffByDefault", method: "GET", path: "/_matrix/client/versions",
		wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
	{id: "D-1", name: "VersionsWhenServed", method: "GET", path: "/_matrix/client/versions",
		deps:       func(d *api.Deps) { d.ServeVersions = true },
		wantStatus: 200, want: map[string]any{"unstable_features": map[string]any{}},
		check: func(t *testing.T, _ *harness, _ fixture, r response) {
			versions, _ := r.body["versions"].([]any)
			has := map[any]bool{}
			for _, v := range versions {
				has[v] = true
			}
			// matrix-js-sdk needs one of v1.1..v1.13; v1.0 never existed;
			// v1.20 drops the query-string token authd accepts.
			if !has["v1.1"] || !has["r0.6.1"] || !has["v1.19"] || has["v1.0"] || has["v1.20"] {
				t.Fatalf("versions %v", versions)
			}
		}},
	{id: "D-1", name: "VersionsWithToken", method: "GET", path: "/_matrix/client/versions", headers: []string{"Authorization: Bearer {token}"},
		deps:       func(d *api.Deps) { d.ServeVersions = true },
		wantStatus: 200},
	{id: "D-3", name: "AuthMetadataUnrecognized", method: "GET", path: "/_matrix/client/v1/auth_metadata",
		wantStatus: 404, wantErrcode: "M_UNRECOGNIZED"},
}

// TestConformance runs every row of the table on a fresh SQLite store and a
// fresh Postgres store.
func TestConformance(t *testing.T) {
	for _, c := range conformance {
		t.Run(c.id+"_"+c.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, st testStore) {
				var deps []func(*api.Deps)
				if c.deps != nil {
					deps = append(deps, c.deps)
				}
				h := newHarness(t, st, deps...)
				f := newFixture(h)
				if c.setup != nil {
					c.setup(h, f)
				}
				headers := make([]string, len(c.headers))
				for i, kv := range c.headers {
					headers[i] = f.expand(kv)
				}
				r := h.do(c.method, f.expand(c.path), f.expand(c.body), headers...)

				if c.wantErrcode != "" {
					wantError(t, r, c.wantStatus, c.wantErrcode)
				} else if r.status != c.wantStatus || r.body["errcode"] != nil {
					t.Fatalf("got %d %s, want %d", r.status, r.raw, c.wantStatus)
				}
				for k, want := range corsHeaders {
					if got := r.header.Get(k); got != want {
						t.Fatalf("%s = %q, want %q", k, got, want)
					}
				}
				for k, want := range c.wantHeader {
					if got := r.header.Get(k); got != want {
						t.Fatalf("%s = %q, want %q", k, got, want)
					}
				}
				for k, want := range c.want {
					got, present := r.body[k]
					switch want := want.(type) {
					case matcher:
						if !want.ok(got, present) {
							t.Fatalf("%s = %v, want %s (body %s)", k, got, want.desc, r.raw)
						}
					case string:
						if got != f.expand(want) {
							t.Fatalf("%s = %v, want %q (body %s)", k, got, f.expand(want), r.raw)
						}
					default:
						if !present || !reflect.DeepEqual(got, want) {
							t.Fatalf("%s = %#v, want %#v (body %s)", k, got, want, r.raw)
						}
					}
				}
				if c.wantRaw != "" && r.raw != c.wantRaw {
					t.Fatalf("body %s, want %s", r.raw, c.wantRaw)
				}
				if c.check != nil {
					c.check(t, h, f, r)
				}
			})
		})
	}
}

// notApplicable are the requirements of the covered sections with no row,
// and why (see the comment above the fixture).
var notApplicable = map[string]string{
	"GL-2": "authd offers the legacy login API",
}

// TestConformance_Coverage fails when a requirement of docs/conformance.md
// loses its last row, when a row names an ID the page does not list, or when
// a requirement the page marks not applicable gains a row. The page is the
// list, so the checklist and the table cannot drift apart.
func TestConformance_Coverage(t *testing.T) {
	page, err := os.ReadFile("../../docs/conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	// A requirement is a table row "| ID | requirement | spec |"; one whose
	// text says "Not applicable" has no row here, by design.
	rowRE := regexp.MustCompile(`(?m)^\| *([0-9A-Z]+-[0-9]+) *\|(.*)$`)
	var want, notApplicableOnPage []string
	for _, m := range rowRE.FindAllStringSubmatch(string(page), -1) {
		if strings.Contains(m[2], "Not applicable") {
			notApplicableOnPage = append(notApplicableOnPage, m[1])
		} else {
			want = append(want, m[1])
		}
	}
	if len(want) == 0 {
		t.Fatal("docs/conformance.md lists no requirement")
	}
	var na []string
	for id := range notApplicable {
		na = append(na, id)
	}
	slices.Sort(na)
	slices.Sort(notApplicableOnPage)
	if !slices.Equal(na, notApplicableOnPage) {
		t.Errorf("not applicable here: %v; in docs/conformance.md: %v", na, notApplicableOnPage)
	}
	var got []string
	for _, c := range conformance {
		if !slices.Contains(got, c.id) {
			got = append(got, c.id)
		}
		if reason, ok := notApplicable[c.id]; ok {
			t.Errorf("%s has a row but is marked not applicable (%s)", c.id, reason)
		}
	}
	declared := declaredTests(t)
	for id, tests := range multiStepTests {
		for _, name := range tests {
			if !declared[name] {
				t.Errorf("%s names %s, which no test file of the package declares", id, name)
			}
		}
		if !slices.Contains(got, id) {
			got = append(got, id)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("requirements covered:\n%v\nwant (docs/conformance.md):\n%v", got, want)
	}
}

// wantDeviceList asserts a GET /devices answer for the fixture's alice:
// her three devices in device ID order, with their names (none on TABLET)
// and last-seen times, and none of bob's.
func wantDeviceList(t *testing.T, h *harness, r response) {
	t.Helper()
	devices, _ := r.body["devices"].([]any)
	type shown struct {
		id, name string
		named    bool
		seen     float64
	}
	var got []shown
	for _, d := range devices {
		m, _ := d.(map[string]any)
		name, named := m["display_name"].(string)
		seen, _ := m["last_seen_ts"].(float64)
		got = append(got, shown{m["device_id"].(string), name, named, seen})
	}
	hourAgo := float64(h.clock.t.Add(-time.Hour).UnixMilli())
	minuteAgo := float64(h.clock.t.Add(-time.Minute).UnixMilli())
	want := []shown{
		{"OLDDEVICE", "OLDDEVICE name", true, hourAgo},
		{"PHONE", "PHONE name", true, hourAgo},
		{"TABLET", "", false, minuteAgo},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("devices = %+v\nwant %+v (body %s)", got, want, r.raw)
	}
}

// wantDeviceName asserts a device's display name as its owner (token tok)
// reads it; "" means the device has none, and the key is absent.
// writeThrough records every sighting in the store at once, so that a row
// sees it; serve's recorder (internal/lastseen) writes them in batches.
type writeThrough struct{ st store.LastSeenStore }

func (w writeThrough) Seen(userID, deviceID string, ip netip.Addr, at time.Time) {
	var addr string
	if ip.IsValid() {
		addr = ip.String()
	}
	if err := w.st.RecordLastSeen(context.Background(), []store.DeviceSeen{{UserID: userID, DeviceID: deviceID, IP: addr, At: at}}); err != nil {
		panic(err)
	}
}

// wantStoredLastSeen asserts what the store holds of alice's device.
func wantStoredLastSeen(t *testing.T, h *harness, deviceID string, at time.Time, ip string) {
	t.Helper()
	d, err := h.st.FindDevice(context.Background(), "@alice:example.org", deviceID)
	if err != nil || !d.LastSeenAt.Equal(at) || d.LastSeenIP != ip {
		t.Fatalf("device %s: %+v, %v; want last seen at %v from %q", deviceID, d, err, at, ip)
	}
}

// wantDeviceLastSeen asserts a device's last_seen_ts (at, in milliseconds)
// and last_seen_ip (absent for "").
func wantDeviceLastSeen(t *testing.T, r response, at time.Time, ip string) {
	t.Helper()
	ts, _ := r.body["last_seen_ts"].(float64)
	gotIP, present := r.body["last_seen_ip"]
	if r.status != 200 || int64(ts) != at.UnixMilli() || present != (ip != "") || (present && gotIP != ip) {
		t.Fatalf("device %d %s, want last_seen_ts %d and last_seen_ip %q", r.status, r.raw, at.UnixMilli(), ip)
	}
}

func wantDeviceName(t *testing.T, h *harness, tok, deviceID, name string) {
	t.Helper()
	r := h.do("GET", v3+"/devices/"+deviceID, "", bearer(tok))
	got, present := r.body["display_name"]
	if r.status != 200 || present != (name != "") || (present && got != name) {
		t.Fatalf("GET /devices/%s = %d %s, want display_name %q", deviceID, r.status, r.raw, name)
	}
}

// declaredTests names every top-level Test function of the package's test
// files.
func declaredTests(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	fset := gotoken.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				names[fn.Name.Name] = true
			}
		}
	}
	return names
}
