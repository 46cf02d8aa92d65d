package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// deleteDevicesPath is the path the bindings of these tests name.
const deleteDevicesPath = "/_matrix/client/v3/delete_devices"

// binding is a UIA binding of a device of a user to POST deleteDevicesPath
// with the given body.
func binding(userID, deviceID, body string) store.UIABinding {
	return store.UIABinding{
		UserID: userID, DeviceID: deviceID,
		Method: "POST", Path: deleteDevicesPath,
		BodyHash: sha256.Sum256([]byte(body)),
	}
}

// uiaSession is a session with ID id, bound to b, created at t0 and
// expiring at t2.
func uiaSession(id string, b store.UIABinding) store.UIASession {
	return store.UIASession{IDHash: hash(id), UIABinding: b, CreatedAt: t0, ExpiresAt: t2}
}

// grant is a grant of the session with ID id, claiming binding b, at now.
func grant(id string, b store.UIABinding, now time.Time) store.UIAGrant {
	h := hash(id)
	return store.UIAGrant{Session: &h, Binding: b, Now: now}
}

func mustCreateUIASession(tb testing.TB, s store.Store, us store.UIASession) {
	tb.Helper()
	if err := s.CreateUIASession(tb.Context(), us); err != nil {
		tb.Fatalf("CreateUIASession(%s %s): %v", us.UserID, us.DeviceID, err)
	}
}

// wantUIASession fails unless the session us is stored and found at now.
func wantUIASession(tb testing.TB, s store.Store, us store.UIASession, now time.Time) {
	tb.Helper()
	got, err := s.FindUIASession(tb.Context(), us.IDHash, now)
	if err != nil {
		tb.Fatalf("FindUIASession(%x) at %v: %v", us.IDHash[:4], now, err)
	}
	if got.IDHash != us.IDHash || got.UIABinding != us.UIABinding ||
		!sameTime(got.CreatedAt, us.CreatedAt) || !sameTime(got.ExpiresAt, us.ExpiresAt) {
		tb.Fatalf("FindUIASession:\n got %+v\nwant %+v", got, us)
	}
}

// wantNoUIASession fails unless no session with ID id is found at now.
func wantNoUIASession(tb testing.TB, s store.Store, id string, now time.Time) {
	tb.Helper()
	_, err := s.FindUIASession(tb.Context(), hash(id), now)
	wantErr(tb, "FindUIASession of a session that should be gone", err, store.ErrNotFound)
}

// accountFixture is what the account cases start from: alice on PHONE
// (access "a0", refresh "r0"), LAPTOP ("l0") and TABLET ("t0"), and bob on
// PHONE ("b0") and on a LAPTOP of his own ("bl0"), all logged in at t0;
// alice's session "s1" is bound to her PHONE deleting with body
// uiaBody, bob's "bs1" to his PHONE likewise.
type accountFixture struct {
	alice, bob store.User
	// s1 and bs1 are the UIA sessions of alice and bob.
	s1, bs1 store.UIASession
	// devices holds every device the fixture created, by user.
	devices map[string][]store.Device
}

// uiaBody is the body the fixture's sessions are bound to.
const uiaBody = `{"devices":["LAPTOP","TABLET"]}`

func newAccountFixture(t *testing.T, s store.Store) *accountFixture {
	t.Helper()
	f := &accountFixture{alice: newUser(alice), bob: newUser(bob), devices: map[string][]store.Device{}}
	mustCreateUser(t, s, f.alice)
	mustCreateUser(t, s, f.bob)
	for _, ns := range []store.NewSession{
		newRefreshSession(alice, "PHONE", "a0", "r0", t0),
		newSession(alice, "LAPTOP", "Laptop", "l0", t0),
		newSession(alice, "TABLET", "Tablet", "t0", t0),
		newSession(bob, "PHONE", "Bob's phone", "b0", t0),
		newSession(bob, "LAPTOP", "Bob's laptop", "bl0", t0),
	} {
		mustCreateSession(t, s, ns)
		f.devices[ns.Device.UserID] = append(f.devices[ns.Device.UserID], ns.Device)
	}
	for _, ds := range f.devices {
		slices.SortFunc(ds, func(a, b store.Device) int { return strings.Compare(a.ID, b.ID) })
	}
	f.s1 = uiaSession("s1", binding(alice, "PHONE", uiaBody))
	f.bs1 = uiaSession("bs1", binding(bob, "PHONE", uiaBody))
	mustCreateUIASession(t, s, f.s1)
	mustCreateUIASession(t, s, f.bs1)
	return f
}

// grant is a grant of alice's session s1 as it was bound, at t1.
func (f *accountFixture) grant() store.UIAGrant { return grant("s1", f.s1.UIABinding, t1) }

// wantAliceUntouched fails unless alice has every device and token of the
// fixture, her password hash, and her session s1.
func (f *accountFixture) wantAliceUntouched(t *testing.T, s store.Store) {
	t.Helper()
	wantUser(t, "alice", findUser(t, s, alice), f.alice)
	wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice])
	for _, tok := range []string{"a0", "l0", "t0"} {
		if _, err := s.FindSessionByAccessToken(t.Context(), hash(tok)); err != nil {
			t.Fatalf("alice's token %s: %v", tok, err)
		}
	}
	wantUIASession(t, s, f.s1, t1)
}

// wantBobUntouched fails unless bob has his devices, tokens and session.
func (f *accountFixture) wantBobUntouched(t *testing.T, s store.Store) {
	t.Helper()
	wantUser(t, "bob", findUser(t, s, bob), f.bob)
	wantDevices(t, "bob's devices", listDevices(t, s, bob), f.devices[bob])
	for _, tok := range []string{"b0", "bl0"} {
		if _, err := s.FindSessionByAccessToken(t.Context(), hash(tok)); err != nil {
			t.Fatalf("bob's token %s: %v", tok, err)
		}
	}
	wantUIASession(t, s, f.bs1, t1)
}

// wantIDs fails unless got is want, both in order; nil and empty are equal.
func wantIDs(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if !slices.Equal(got, want) {
		tb.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// mismatches are grants of alice's s1 that get one binding field wrong,
// each with the user the operation is for.
func mismatches(f *accountFixture) []struct {
	name   string
	userID string
	g      store.UIAGrant
} {
	type mismatch = struct {
		name   string
		userID string
		g      store.UIAGrant
	}
	with := func(name, userID string, change func(b *store.UIABinding)) mismatch {
		b := f.s1.UIABinding
		change(&b)
		return mismatch{name, userID, grant("s1", b, t1)}
	}
	return []mismatch{
		// bob presents alice's session for an operation on his account.
		with("User", bob, func(b *store.UIABinding) { b.UserID = bob }),
		// A grant that claims alice's binding for bob's account.
		with("OperationUser", bob, func(*store.UIABinding) {}),
		with("Device", alice, func(b *store.UIABinding) { b.DeviceID = "LAPTOP" }),
		with("Method", alice, func(b *store.UIABinding) { b.Method = "DELETE" }),
		with("Path", alice, func(b *store.UIABinding) { b.Path = "/_matrix/client/v3/devices/LAPTOP" }),
		with("BodyHash", alice, func(b *store.UIABinding) { b.BodyHash = sha256.Sum256([]byte(`{"devices":[]}`)) }),
		{"UnknownSession", alice, grant("s2", f.s1.UIABinding, t1)},
		// A session expires at its ExpiresAt.
		{"Expired", alice, grant("s1", f.s1.UIABinding, t2)},
	}
}

var uiaSessionCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		// Times keep microseconds and come back in UTC.
		us := uiaSession("s2", binding(alice, "LAPTOP", "{}"))
		us.CreatedAt = t1.In(time.FixedZone("UTC+5:30", 5*3600+1800))
		us.ExpiresAt = t2.Add(999 * time.Nanosecond)
		mustCreateUIASession(t, s, us)
		us.CreatedAt, us.ExpiresAt = t1, t2
		wantUIASession(t, s, us, t1)
		wantUIASession(t, s, us, t2.Add(-time.Microsecond))
		wantNoUIASession(t, s, "s2", t2)
		wantNoUIASession(t, s, "s2", t2.Add(time.Hour))
		wantNoUIASession(t, s, "unknown", t1)
		f.wantAliceUntouched(t, s)
		f.wantBobUntouched(t, s)
	}},
	{"BoundedPerDevice", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		// LAPTOP asks for more challenges than a device keeps: the oldest
		// go; PHONE's session (the fixture's s1) stays.
		n := store.MaxUIASessionsPerDevice + 3
		for i := range n {
			us := uiaSession(fmt.Sprintf("laptop%02d", i), binding(alice, "LAPTOP", "{}"))
			us.CreatedAt = t0.Add(time.Duration(i) * time.Second)
			mustCreateUIASession(t, s, us)
		}
		for i := range n {
			id := fmt.Sprintf("laptop%02d", i)
			_, err := s.FindUIASession(t.Context(), hash(id), t1)
			if kept := i >= n-store.MaxUIASessionsPerDevice; kept != (err == nil) {
				t.Fatalf("session %d of %d: FindUIASession = %v, want kept %v", i, n, err, kept)
			}
		}
		wantUIASession(t, s, f.s1, t1)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		other := uiaSession("s1", binding(alice, "LAPTOP", "{}"))
		wantErr(t, "CreateUIASession of a taken hash", s.CreateUIASession(t.Context(), other), store.ErrConflict)
		wantUIASession(t, s, f.s1, t1)
	}},
	{"UnknownUserOrDevice", func(t *testing.T, s store.Store) {
		newAccountFixture(t, s)
		err := s.CreateUIASession(t.Context(), uiaSession("s2", binding("@carol:example.org", "PHONE", "{}")))
		wantErr(t, "CreateUIASession of an unknown user", err, store.ErrNotFound)
		err = s.CreateUIASession(t.Context(), uiaSession("s3", binding(alice, "WATCH", "{}")))
		wantErr(t, "CreateUIASession of an unknown device", err, store.ErrNotFound)
		wantNoUIASession(t, s, "s2", t1)
		wantNoUIASession(t, s, "s3", t1)
	}},
	{"DeletedWithDevice", func(t *testing.T, s store.Store) {
		// A session dies with the device that asked for it: logout, a
		// refresh-token replay, an admin's deletion.
		f := newAccountFixture(t, s)
		if err := s.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		wantNoUIASession(t, s, "s1", t1)
		f.wantBobUntouched(t, s)
		mustCreateUIASession(t, s, uiaSession("s2", binding(alice, "LAPTOP", "{}")))
		if _, err := s.DeleteAllDevices(t.Context(), alice); err != nil {
			t.Fatalf("DeleteAllDevices: %v", err)
		}
		wantNoUIASession(t, s, "s2", t1)
		f.wantBobUntouched(t, s)
	}},
	{"Sweep", func(t *testing.T, s store.Store) {
		// The sweep deletes sessions that expired before its cutoff, and
		// counts them with the tokens.
		f := newAccountFixture(t, s)
		early := uiaSession("early", binding(alice, "LAPTOP", "{}"))
		early.ExpiresAt = t1
		mustCreateUIASession(t, s, early)
		mustSweep(t, s, t1, 0)
		mustSweep(t, s, t1.Add(time.Microsecond), 1)
		wantUIASession(t, s, f.s1, t1)
		mustSweep(t, s, t2.Add(time.Microsecond), 2)
		wantNoUIASession(t, s, "s1", t0)
		wantNoUIASession(t, s, "bs1", t0)
		wantDevices(t, "alice's devices after the sweep", listDevices(t, s, alice), f.devices[alice])
	}},
}

var deleteDevicesCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		got, err := s.DeleteDevices(t.Context(), alice, []string{"TABLET", "LAPTOP"}, f.grant())
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices", got, []string{"LAPTOP", "TABLET"})
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice][1:2])
		wantNoSession(t, s, hash("l0"))
		wantNoSession(t, s, hash("t0"))
		wantSession(t, s, hash("a0"), issued(alice, "PHONE", "a0", t0, false), f.alice)
		wantNoUIASession(t, s, "s1", t1)
		f.wantBobUntouched(t, s)
	}},
	{"ConsumedOnce", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		if _, err := s.DeleteDevices(t.Context(), alice, []string{"LAPTOP"}, f.grant()); err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		got, err := s.DeleteDevices(t.Context(), alice, []string{"TABLET"}, f.grant())
		wantErr(t, "DeleteDevices with a consumed session", err, store.ErrUIASessionGone)
		wantIDs(t, "DeleteDevices with a consumed session", got, nil)
		if _, err := s.FindDevice(t.Context(), alice, "TABLET"); err != nil {
			t.Fatalf("TABLET after a refused deletion: %v", err)
		}
		if _, err := s.FindSessionByAccessToken(t.Context(), hash("t0")); err != nil {
			t.Fatalf("TABLET's token after a refused deletion: %v", err)
		}
		f.wantBobUntouched(t, s)
	}},
	{"Mismatch", func(t *testing.T, s store.Store) {
		// A grant that is not exactly the session's binding consumes
		// nothing and deletes nothing: not alice's, not bob's same-named
		// LAPTOP.
		f := newAccountFixture(t, s)
		for _, m := range mismatches(f) {
			got, err := s.DeleteDevices(t.Context(), m.userID, []string{"LAPTOP", "TABLET"}, m.g)
			wantErr(t, "DeleteDevices with a grant of the wrong "+m.name, err, store.ErrUIASessionGone)
			wantIDs(t, "DeleteDevices with a grant of the wrong "+m.name, got, nil)
			f.wantAliceUntouched(t, s)
			f.wantBobUntouched(t, s)
		}
	}},
	{"ZeroGrant", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		got, err := s.DeleteDevices(t.Context(), alice, []string{"LAPTOP"}, store.UIAGrant{})
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices", got, []string{"LAPTOP"})
		wantNoSession(t, s, hash("l0"))
		// No session was named, so none was consumed.
		wantUIASession(t, s, f.s1, t1)
		f.wantBobUntouched(t, s)
	}},
	{"Concurrent", func(t *testing.T, s store.Store) {
		// Requests carrying one session at once: exactly one runs.
		f := newAccountFixture(t, s)
		const n = 8
		results := make([][]string, n)
		errs := make([]error, n)
		parallel(n, func(i int) {
			results[i], errs[i] = s.DeleteDevices(t.Context(), alice, []string{"LAPTOP", "TABLET"}, f.grant())
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("DeleteDevices #%d and #%d both succeeded", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrUIASessionGone):
				t.Fatalf("DeleteDevices #%d: %v, want success or %v", i, err, store.ErrUIASessionGone)
			}
		}
		if winner < 0 {
			t.Fatalf("DeleteDevices: none succeeded: %v", errs)
		}
		wantIDs(t, "the winner's DeleteDevices", results[winner], []string{"LAPTOP", "TABLET"})
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice][1:2])
		f.wantBobUntouched(t, s)
	}},
	{"OtherUsersDevice", func(t *testing.T, s store.Store) {
		// bob has a LAPTOP too; alice's list names it, and bob keeps it.
		f := newAccountFixture(t, s)
		got, err := s.DeleteDevices(t.Context(), alice, []string{"LAPTOP", "BOBS"}, f.grant())
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices", got, []string{"LAPTOP"})
		f.wantBobUntouched(t, s)
		// And a list of bob's devices only deletes nothing of anyone's.
		got, err = s.DeleteDevices(t.Context(), bob, []string{"TABLET"}, store.UIAGrant{})
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices of another user's device", got, nil)
		if _, err := s.FindDevice(t.Context(), alice, "TABLET"); err != nil {
			t.Fatalf("alice's TABLET: %v", err)
		}
		f.wantBobUntouched(t, s)
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		// An empty list deletes nothing, and still uses up the session.
		f := newAccountFixture(t, s)
		for _, ids := range [][]string{nil, {}} {
			got, err := s.DeleteDevices(t.Context(), alice, ids, store.UIAGrant{})
			if err != nil {
				t.Fatalf("DeleteDevices(%q): %v", ids, err)
			}
			wantIDs(t, "DeleteDevices of nothing", got, nil)
		}
		f.wantAliceUntouched(t, s)
		got, err := s.DeleteDevices(t.Context(), alice, nil, f.grant())
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices of nothing", got, nil)
		wantNoUIASession(t, s, "s1", t1)
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice])
		f.wantBobUntouched(t, s)
	}},
	{"Duplicates", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		got, err := s.DeleteDevices(t.Context(), alice, []string{"TABLET", "WATCH", "TABLET", "LAPTOP", "LAPTOP"}, f.grant())
		if err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		wantIDs(t, "DeleteDevices with repeats and an unknown ID", got, []string{"LAPTOP", "TABLET"})
		f.wantBobUntouched(t, s)
	}},
}

// passwordChange is alice's change to the hash "$new$", presenting the
// access token keep on PHONE.
func passwordChange(keep string, logout bool, g store.UIAGrant) store.PasswordChange {
	return store.PasswordChange{
		UserID: alice, Hash: "$new$",
		LogoutDevices: logout, KeepDeviceID: "PHONE", KeepAccessToken: hash(keep),
		Grant: g,
	}
}

// mustChangePassword runs c and fails the test unless it succeeds and
// deletes exactly the devices want.
func mustChangePassword(t *testing.T, s store.Store, c store.PasswordChange, want []string) {
	t.Helper()
	got, err := s.ChangePassword(t.Context(), c)
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	wantIDs(t, "ChangePassword", got, want)
}

var changePasswordCases = []testCase{
	{"LogoutDevices", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		mustCreateUIASession(t, s, uiaSession("s2", binding(alice, "TABLET", "{}")))
		mustChangePassword(t, s, passwordChange("a0", true, f.grant()), []string{"LAPTOP", "TABLET"})
		changed := f.alice
		changed.PasswordHash = "$new$"
		wantUser(t, "alice", findUser(t, s, alice), changed)
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice][1:2])
		wantNoSession(t, s, hash("l0"))
		wantNoSession(t, s, hash("t0"))
		// The caller keeps its access token, and can refresh.
		wantSession(t, s, hash("a0"), issued(alice, "PHONE", "a0", t0, false), changed)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		// Every UIA session of alice is gone, not only the one consumed.
		wantNoUIASession(t, s, "s1", t0)
		wantNoUIASession(t, s, "s2", t0)
		f.wantBobUntouched(t, s)
	}},
	{"KeepsOldPair", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustChangePassword(t, s, passwordChange("a0", true, store.UIAGrant{}), []string{"LAPTOP", "TABLET"})
		changed := f.alice
		changed.PasswordHash = "$new$"
		wantSession(t, s, hash("a0"), issued(alice, "PHONE", "a0", t0, false), changed)
		wantNoSession(t, s, hash("a1"))
		wantRefreshErr(t, s, "the other pair's refresh token", exchange("r1", "x", "y", t1), store.ErrNotFound)
		got := mustRefresh(t, s, exchange("r0", "a2", "r2", t2))
		wantToken(t, "refresh with the kept token", got.AccessToken, issued(alice, "PHONE", "a2", t2, true))
		f.wantBobUntouched(t, s)
	}},
	{"KeepsPendingPair", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustChangePassword(t, s, passwordChange("a1", true, store.UIAGrant{}), []string{"LAPTOP", "TABLET"})
		changed := f.alice
		changed.PasswordHash = "$new$"
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, true), changed)
		wantNoSession(t, s, hash("a0"))
		wantRefreshErr(t, s, "the old pair's refresh token", exchange("r0", "x", "y", t1), store.ErrNotFound)
		got := mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		wantToken(t, "refresh with the kept token", got.AccessToken, issued(alice, "PHONE", "a2", t2, true))
		f.wantBobUntouched(t, s)
	}},
	{"AnotherDevice", func(t *testing.T, s store.Store) {
		// The caller is LAPTOP, whose token has no refresh token: PHONE's
		// refresh token goes with PHONE.
		f := newAccountFixture(t, s)
		c := passwordChange("l0", true, store.UIAGrant{})
		c.KeepDeviceID = "LAPTOP"
		mustChangePassword(t, s, c, []string{"PHONE", "TABLET"})
		wantRefreshErr(t, s, "another device's refresh token", exchange("r0", "x", "y", t1), store.ErrNotFound)
		changed := f.alice
		changed.PasswordHash = "$new$"
		wantSession(t, s, hash("l0"), issued(alice, "LAPTOP", "l0", t0, false), changed)
		f.wantBobUntouched(t, s)
	}},
	{"KeepNothing", func(t *testing.T, s store.Store) {
		// Without a device to keep, every device goes.
		f := newAccountFixture(t, s)
		c := passwordChange("a0", true, store.UIAGrant{})
		c.KeepDeviceID = ""
		mustChangePassword(t, s, c, []string{"LAPTOP", "PHONE", "TABLET"})
		wantDevices(t, "alice's devices", listDevices(t, s, alice), nil)
		f.wantBobUntouched(t, s)
	}},
	{"KeepDevices", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustCreateUIASession(t, s, uiaSession("s2", binding(alice, "TABLET", "{}")))
		mustChangePassword(t, s, passwordChange("a0", false, f.grant()), nil)
		changed := f.alice
		changed.PasswordHash = "$new$"
		wantUser(t, "alice", findUser(t, s, alice), changed)
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice])
		for _, tok := range []string{"a0", "a1", "l0", "t0"} {
			if _, err := s.FindSessionByAccessToken(t.Context(), hash(tok)); err != nil {
				t.Fatalf("alice's token %s: %v", tok, err)
			}
		}
		mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		// The UIA sessions go all the same.
		wantNoUIASession(t, s, "s1", t0)
		wantNoUIASession(t, s, "s2", t0)
		f.wantBobUntouched(t, s)
	}},
	{"Grant", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		for _, m := range mismatches(f) {
			c := passwordChange("a0", true, m.g)
			c.UserID = m.userID
			got, err := s.ChangePassword(t.Context(), c)
			wantErr(t, "ChangePassword with a grant of the wrong "+m.name, err, store.ErrUIASessionGone)
			wantIDs(t, "ChangePassword with a grant of the wrong "+m.name, got, nil)
			f.wantAliceUntouched(t, s)
			f.wantBobUntouched(t, s)
		}
		mustChangePassword(t, s, passwordChange("a0", false, f.grant()), nil)
		// Consumed: the same grant again changes nothing.
		again := passwordChange("a0", true, f.grant())
		again.Hash = "$again$"
		_, err := s.ChangePassword(t.Context(), again)
		wantErr(t, "ChangePassword with a consumed session", err, store.ErrUIASessionGone)
		if got := findUser(t, s, alice); got.PasswordHash != "$new$" {
			t.Fatalf("password hash = %q after a refused change, want $new$", got.PasswordHash)
		}
		wantDevices(t, "alice's devices", listDevices(t, s, alice), f.devices[alice])
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		f := newAccountFixture(t, s)
		c := passwordChange("a0", true, store.UIAGrant{})
		c.UserID = "@carol:example.org"
		_, err := s.ChangePassword(t.Context(), c)
		wantErr(t, "ChangePassword of an unknown user", err, store.ErrNotFound)
		f.wantAliceUntouched(t, s)
		f.wantBobUntouched(t, s)
	}},
}
