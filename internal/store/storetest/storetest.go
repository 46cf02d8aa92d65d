// Package storetest is the conformance suite that every store.Store
// implementation must pass. An implementation's test calls Run with a
// function that opens a fresh, migrated, empty store.
package storetest

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// Run runs the suite. open must return a fresh, migrated, empty store for
// the given (sub)test and arrange for its cleanup; the suite closes nothing.
// Subtests are named after the method and the case, like CreateUser/Conflict.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, group := range []struct {
		name  string
		cases []testCase
	}{
		{"Ping", pingCases},
		{"Times", timeCases},
		{"CreateUser", createUserCases},
		{"FindUserByID", findUserByIDCases},
		{"FindUserByLogin", findUserByLoginCases},
		{"FindUserByThreePID", findUserByThreePIDCases},
		{"ListUsers", listUsersCases},
		{"UpdatePasswordHash", updatePasswordHashCases},
		{"DeactivateUser", deactivateUserCases},
		{"AddThreePID", addThreePIDCases},
		{"DeleteThreePID", deleteThreePIDCases},
		{"ListThreePIDs", listThreePIDsCases},
		{"FindPasswordHashPrefixes", passwordHashPrefixCases},
		{"LoginNetworks", loginNetworkCases},
		{"CreateSession", createSessionCases},
		{"FindSessionByAccessToken", findSessionCases},
		{"FindDevice", findDeviceCases},
		{"ListDevices", listDevicesCases},
		{"RenameDevice", renameDeviceCases},
		{"DeleteDevice", deleteDeviceCases},
		{"DeleteAllDevices", deleteAllDevicesCases},
		{"CountActiveSessions", countActiveSessionsCases},
		{"RecordLastSeen", recordLastSeenCases},
		{"RefreshSession", refreshSessionCases},
		{"ConfirmAccessToken", confirmAccessTokenCases},
		{"DeleteExpiredTokens", deleteExpiredTokensCases},
		{"UIASessions", uiaSessionCases},
		{"DeleteDevices", deleteDevicesCases},
		{"ChangePassword", changePasswordCases},
		{"LoginTokens", loginTokenCases},
		{"ListUsersPage", listUsersPageCases},
		{"ModifyUser", modifyUserCases},
		{"ImportUsers", importUsersCases},
		{"AdminTokens", adminTokenCases},
		{"Registration", registrationCases},
	} {
		t.Run(group.name, func(t *testing.T) {
			for _, c := range group.cases {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, open(t))
				})
			}
		})
	}
}

// testCase is one subtest: it gets a fresh store.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Fixed times, exact to the microsecond that stores keep, in UTC.
var (
	t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)
	t1 = t0.Add(time.Hour + time.Microsecond)
	t2 = t1.Add(24*time.Hour + 7*time.Microsecond)
)

// Users of the fixtures.
const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
)

// hash is the token hash of a made-up token.
func hash(token string) store.TokenHash { return sha256.Sum256([]byte(token)) }

// newUser is an active user created at t0.
func newUser(id string) store.User {
	return store.User{ID: id, PasswordHash: "$hash$" + id, CreatedAt: t0}
}

// newSession is a login of userID on deviceID at the given time with a
// token that does not expire.
func newSession(userID, deviceID, displayName, token string, at time.Time) store.NewSession {
	return store.NewSession{
		Device: store.Device{UserID: userID, ID: deviceID, DisplayName: displayName, CreatedAt: at, LastSeenAt: at},
		AccessToken: store.AccessToken{
			Hash: hash(token), UserID: userID, DeviceID: deviceID, CreatedAt: at,
		},
	}
}

func mustCreateUser(tb testing.TB, s store.Store, u store.User, threepids ...store.ThreePID) {
	tb.Helper()
	if err := s.CreateUser(tb.Context(), u, threepids...); err != nil {
		tb.Fatalf("CreateUser(%s): %v", u.ID, err)
	}
}

func mustCreateSession(tb testing.TB, s store.Store, ns store.NewSession) {
	tb.Helper()
	if err := s.CreateSession(tb.Context(), ns); err != nil {
		tb.Fatalf("CreateSession(%s, %s): %v", ns.Device.UserID, ns.Device.ID, err)
	}
}

func mustAddThreePID(tb testing.TB, s store.Store, tp store.ThreePID) {
	tb.Helper()
	if err := s.AddThreePID(tb.Context(), tp); err != nil {
		tb.Fatalf("AddThreePID(%s %s): %v", tp.Medium, tp.Address, err)
	}
}

// sentinels are the errors a store may return by contract.
var sentinels = []error{store.ErrNotFound, store.ErrConflict, store.ErrTokenExpired, store.ErrTokenReplayed, store.ErrUIASessionGone}

// wantErr fails unless err is want and no other sentinel.
func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: err = %v, want %v", what, err, want)
	}
	for _, other := range sentinels {
		if other != want && errors.Is(err, other) {
			tb.Fatalf("%s: err = %v, is both %v and %v", what, err, want, other)
		}
	}
}

// wantUser fails unless got is want, times compared with Equal and
// required to be in UTC.
func wantUser(tb testing.TB, what string, got, want store.User) {
	tb.Helper()
	if got.ID != want.ID || got.PasswordHash != want.PasswordHash ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.DeactivatedAt, want.DeactivatedAt) ||
		got.Admin != want.Admin || !sameTime(got.LockedAt, want.LockedAt) {
		tb.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantUsers(tb testing.TB, what string, got, want []store.User) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d users %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		wantUser(tb, what, got[i], want[i])
	}
}

func wantThreePIDs(tb testing.TB, what string, got, want []store.ThreePID) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d threepids %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Medium != w.Medium || g.Address != w.Address || g.UserID != w.UserID || !sameTime(g.AddedAt, w.AddedAt) {
			tb.Fatalf("%s: [%d]\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

func wantDevice(tb testing.TB, what string, got, want store.Device) {
	tb.Helper()
	if got.UserID != want.UserID || got.ID != want.ID || got.DisplayName != want.DisplayName ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.LastSeenAt, want.LastSeenAt) ||
		got.LastSeenIP != want.LastSeenIP {
		tb.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantDevices(tb testing.TB, what string, got, want []store.Device) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d devices %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		wantDevice(tb, what, got[i], want[i])
	}
}

func wantToken(tb testing.TB, what string, got, want store.AccessToken) {
	tb.Helper()
	if got.Hash != want.Hash || got.UserID != want.UserID || got.DeviceID != want.DeviceID ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) ||
		got.Pending != want.Pending {
		tb.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// sameTime reports whether got is the instant want, and zero exactly when
// want is, and in UTC.
func sameTime(got, want time.Time) bool {
	if want.IsZero() {
		return got.IsZero()
	}
	return got.Equal(want) && got.Location() == time.UTC
}

// wantSession fails unless the token h resolves to the given token and user.
func wantSession(tb testing.TB, s store.Store, h store.TokenHash, wantTok store.AccessToken, wantU store.User) {
	tb.Helper()
	got, err := s.FindSessionByAccessToken(tb.Context(), h)
	if err != nil {
		tb.Fatalf("FindSessionByAccessToken(%x): %v", h[:4], err)
	}
	wantToken(tb, "session token", got.AccessToken, wantTok)
	wantUser(tb, "session user", got.User, wantU)
}

// wantNoSession fails unless the token h resolves to nothing.
func wantNoSession(tb testing.TB, s store.Store, h store.TokenHash) {
	tb.Helper()
	_, err := s.FindSessionByAccessToken(tb.Context(), h)
	wantErr(tb, "FindSessionByAccessToken of a revoked token", err, store.ErrNotFound)
}

// findUser returns the user with that ID, failing the test if there is none.
func findUser(tb testing.TB, s store.Store, id string) store.User {
	tb.Helper()
	u, err := s.FindUserByID(tb.Context(), id)
	if err != nil {
		tb.Fatalf("FindUserByID(%s): %v", id, err)
	}
	return u
}

func findDevice(tb testing.TB, s store.Store, userID, deviceID string) store.Device {
	tb.Helper()
	d, err := s.FindDevice(tb.Context(), userID, deviceID)
	if err != nil {
		tb.Fatalf("FindDevice(%s, %s): %v", userID, deviceID, err)
	}
	return d
}

func listDevices(tb testing.TB, s store.Store, userID string) []store.Device {
	tb.Helper()
	ds, err := s.ListDevices(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("ListDevices(%s): %v", userID, err)
	}
	return ds
}

func listThreePIDs(tb testing.TB, s store.Store, userID string) []store.ThreePID {
	tb.Helper()
	tps, err := s.ListThreePIDs(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("ListThreePIDs(%s): %v", userID, err)
	}
	return tps
}

var pingCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}},
}
