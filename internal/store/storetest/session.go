package storetest

import (
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

var createSessionCases = []testCase{
	{"NewDevice", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "Alice's phone", "a1", t0)
		mustCreateSession(t, s, ns)
		wantDevice(t, "FindDevice", findDevice(t, s, alice, "PHONE"), ns.Device)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{ns.Device})
		wantSession(t, s, hash("a1"), ns.AccessToken, u)
	}},
	{"ExistingDevice", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		first := newSession(alice, "PHONE", "Alice's phone", "a1", t0)
		mustCreateSession(t, s, first)
		again := newSession(alice, "PHONE", "Renamed", "a2", t1)
		mustCreateSession(t, s, again)

		// The device is kept, its name and creation time too; only last seen moves.
		want := first.Device
		want.LastSeenAt = t1
		wantDevice(t, "FindDevice", findDevice(t, s, alice, "PHONE"), want)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{want})
		wantNoSession(t, s, hash("a1"))
		wantSession(t, s, hash("a2"), again.AccessToken, u)
	}},
	{"OtherDevicesKept", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		laptop := newSession(alice, "LAPTOP", "Laptop", "a-laptop", t0)
		// Device IDs are per user: bob's PHONE is another device than alice's.
		bobs := newSession(bob, "PHONE", "Bob's phone", "b-phone", t0)
		mustCreateSession(t, s, laptop)
		mustCreateSession(t, s, bobs)
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a-phone-1", t0))
		relogin := newSession(alice, "PHONE", "Phone", "a-phone-2", t1)
		mustCreateSession(t, s, relogin)

		wantNoSession(t, s, hash("a-phone-1"))
		wantSession(t, s, hash("a-phone-2"), relogin.AccessToken, a)
		wantSession(t, s, hash("a-laptop"), laptop.AccessToken, a)
		wantSession(t, s, hash("b-phone"), bobs.AccessToken, b)
		wantDevices(t, "ListDevices(bob)", listDevices(t, s, bob), []store.Device{bobs.Device})
	}},
	{"Expiring", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "", "a1", t0)
		ns.AccessToken.ExpiresAt = t1
		mustCreateSession(t, s, ns)
		wantSession(t, s, hash("a1"), ns.AccessToken, u)
		wantDevice(t, "device without a display name", findDevice(t, s, alice, "PHONE"), ns.Device)
	}},
	{"UnknownUser", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		err := s.CreateSession(t.Context(), newSession(bob, "PHONE", "Phone", "b1", t0))
		wantErr(t, "CreateSession for an unknown user", err, store.ErrNotFound)
		wantNoSession(t, s, hash("b1"))
		// Nothing is left for a user of that ID created later to inherit.
		mustCreateUser(t, s, newUser(bob))
		if ds := listDevices(t, s, bob); len(ds) != 0 {
			t.Fatalf("devices of a failed login: %+v", ds)
		}
		wantNoSession(t, s, hash("b1"))
	}},
	{"TokenConflict", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		mustCreateUser(t, s, newUser(bob))
		phone := newSession(alice, "PHONE", "Phone", "taken", t0)
		mustCreateSession(t, s, phone)

		for _, ns := range []store.NewSession{
			newSession(alice, "LAPTOP", "Laptop", "taken", t1),
			newSession(bob, "PHONE", "Bob's phone", "taken", t1),
		} {
			err := s.CreateSession(t.Context(), ns)
			wantErr(t, "CreateSession with a taken token hash", err, store.ErrConflict)
			// The device the failed call would have created does not exist.
			_, err = s.FindDevice(t.Context(), ns.Device.UserID, ns.Device.ID)
			wantErr(t, "FindDevice of the failed login's new device", err, store.ErrNotFound)
		}
		wantSession(t, s, hash("taken"), phone.AccessToken, u)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{phone.Device})
	}},
	{"TokenConflictExistingDevice", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		phone := newSession(alice, "PHONE", "Phone", "a-phone", t0)
		laptop := newSession(alice, "LAPTOP", "Laptop", "a-laptop", t0)
		mustCreateSession(t, s, phone)
		mustCreateSession(t, s, laptop)

		// Logging in again on PHONE with LAPTOP's token hash fails whole: PHONE
		// keeps its token and its last-seen time.
		err := s.CreateSession(t.Context(), newSession(alice, "PHONE", "Phone", "a-laptop", t1))
		wantErr(t, "CreateSession with a taken token hash", err, store.ErrConflict)
		wantSession(t, s, hash("a-phone"), phone.AccessToken, u)
		wantSession(t, s, hash("a-laptop"), laptop.AccessToken, u)
		wantDevice(t, "FindDevice(PHONE)", findDevice(t, s, alice, "PHONE"), phone.Device)
	}},
	{"WithRefreshToken", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
		// A login's pair is confirmed whatever the caller says, and the
		// refresh token is the device's whatever its own fields say.
		ns.AccessToken.Pending = true
		ns.RefreshToken.UserID, ns.RefreshToken.DeviceID = bob, "LAPTOP"
		mustCreateSession(t, s, ns)
		want := ns.AccessToken
		want.Pending = false
		wantSession(t, s, hash("a0"), want, u)
		wantDevice(t, "FindDevice", findDevice(t, s, alice, "PHONE"), ns.Device)
		got, err := s.RefreshSession(t.Context(), exchange("r0", "a1", "r1", t1))
		if err != nil {
			t.Fatalf("RefreshSession with the login's refresh token: %v", err)
		}
		wantToken(t, "RefreshSession token", got.AccessToken, issued(alice, "PHONE", "a1", t1, true))
	}},
	{"ExistingDeviceRevokesRefreshTokens", func(t *testing.T, s store.Store) {
		// Logging in again on a device revokes its refresh tokens too, used
		// or not, pending or not; a later use of one is no replay.
		u := newUser(alice)
		mustCreateUser(t, s, u)
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t0))
		mustConfirm(t, s, "a1", t0)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t0))
		laptop := newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0)
		mustCreateSession(t, s, laptop)
		relogin := newSession(alice, "PHONE", "Phone", "a3", t1)
		mustCreateSession(t, s, relogin)

		for _, tok := range []string{"a0", "a1", "a2"} {
			wantNoSession(t, s, hash(tok))
		}
		for _, tok := range []string{"r0", "r1", "r2"} {
			wantRefreshErr(t, s, "a refresh token from before the login", exchange(tok, "x", "y", t1), store.ErrNotFound)
		}
		wantSession(t, s, hash("a3"), relogin.AccessToken, u)
		// Gone, not kept revoked: a sweep finds nothing.
		mustSweep(t, s, t2.Add(time.Hour), 0)
		wantSession(t, s, hash("l0"), laptop.AccessToken, u)
		mustRefresh(t, s, exchange("lr0", "l1", "lr1", t1))
	}},
	{"RefreshTokenConflict", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		phone := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
		laptop := newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0)
		mustCreateSession(t, s, phone)
		mustCreateSession(t, s, laptop)

		// A refresh token hash taken by another device fails the login whole:
		// on a new device, and on PHONE, which keeps its tokens.
		for _, ns := range []store.NewSession{
			newRefreshSession(alice, "TABLET", "t0", "r0", t1),
			newRefreshSession(alice, "PHONE", "a1", "lr0", t1),
		} {
			err := s.CreateSession(t.Context(), ns)
			wantErr(t, "CreateSession with a taken refresh token hash", err, store.ErrConflict)
		}
		_, err := s.FindDevice(t.Context(), alice, "TABLET")
		wantErr(t, "FindDevice of the failed login's new device", err, store.ErrNotFound)
		wantNoSession(t, s, hash("t0"))
		wantNoSession(t, s, hash("a1"))
		wantSession(t, s, hash("a0"), phone.AccessToken, u)
		wantDevice(t, "FindDevice(PHONE)", findDevice(t, s, alice, "PHONE"), phone.Device)
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		mustRefresh(t, s, exchange("lr0", "l1", "lr1", t1))

		// Its own earlier refresh token's hash is free for a login on the
		// device: the login revokes that token first.
		mustCreateSession(t, s, newRefreshSession(alice, "LAPTOP", "l2", "lr0", t2))
		wantRefreshErr(t, s, "a refresh token from before the login", exchange("lr1", "x", "y", t2), store.ErrNotFound)
		mustRefresh(t, s, exchange("lr0", "l3", "lr3", t2))
	}},
}

var findSessionCases = []testCase{
	{"NonExpiring", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "Phone", "a1", t0)
		mustCreateSession(t, s, ns)
		got, err := s.FindSessionByAccessToken(t.Context(), hash("a1"))
		if err != nil {
			t.Fatalf("FindSessionByAccessToken: %v", err)
		}
		if !got.AccessToken.ExpiresAt.IsZero() {
			t.Fatalf("ExpiresAt = %v, want zero", got.AccessToken.ExpiresAt)
		}
		wantToken(t, "token", got.AccessToken, ns.AccessToken)
		wantUser(t, "user", got.User, u)
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		// The store returns expired tokens; expiry is the caller's decision.
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "Phone", "a1", t1)
		ns.AccessToken.ExpiresAt = t0
		mustCreateSession(t, s, ns)
		got, err := s.FindSessionByAccessToken(t.Context(), hash("a1"))
		if err != nil {
			t.Fatalf("FindSessionByAccessToken of an expired token: %v", err)
		}
		if !sameTime(got.AccessToken.ExpiresAt, t0) {
			t.Fatalf("ExpiresAt = %v, want %v", got.AccessToken.ExpiresAt, t0)
		}
		if !got.AccessToken.Expired(t1) {
			t.Fatalf("token read back does not report itself expired at %v: %+v", t1, got.AccessToken)
		}
		wantToken(t, "token", got.AccessToken, ns.AccessToken)
		wantUser(t, "user", got.User, u)
	}},
	{"DeactivatedUser", func(t *testing.T, s store.Store) {
		// A user created deactivated (an import) can hold a token; the
		// session carries the user's state for the caller to refuse.
		u := newUser(alice)
		u.DeactivatedAt = t0
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "Phone", "a1", t1)
		mustCreateSession(t, s, ns)
		wantSession(t, s, hash("a1"), ns.AccessToken, u)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a1", t0))
		_, err := s.FindSessionByAccessToken(t.Context(), hash("a2"))
		wantErr(t, "FindSessionByAccessToken of an unknown hash", err, store.ErrNotFound)
	}},
}

var findDeviceCases = []testCase{
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a1", t0))
		for _, c := range []struct{ name, userID, deviceID string }{
			{"unknown device", alice, "LAPTOP"},
			{"another user's device", bob, "PHONE"},
			{"device ID in another case", alice, "phone"},
		} {
			_, err := s.FindDevice(t.Context(), c.userID, c.deviceID)
			wantErr(t, "FindDevice of "+c.name, err, store.ErrNotFound)
		}
	}},
}

var listDevicesCases = []testCase{
	{"Order", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		var want []store.Device
		for i, id := range []string{"b", "B", "a", "A"} {
			ns := newSession(alice, id, "device "+id, "a-"+id, t0.Add(time.Duration(i)*time.Minute))
			mustCreateSession(t, s, ns)
			want = append(want, ns.Device)
		}
		mustCreateSession(t, s, newSession(bob, "0", "Bob's", "b-0", t0))
		// Ordered by device ID bytewise: A, B, a, b.
		want = []store.Device{want[3], want[1], want[2], want[0]}
		wantDevices(t, "ListDevices", listDevices(t, s, alice), want)
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		if ds := listDevices(t, s, alice); len(ds) != 0 {
			t.Fatalf("ListDevices of a user without devices = %+v", ds)
		}
		if ds := listDevices(t, s, bob); len(ds) != 0 {
			t.Fatalf("ListDevices of an unknown user = %+v", ds)
		}
	}},
}

var renameDeviceCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		phone := newSession(alice, "PHONE", "Phone", "a-phone", t0)
		mustCreateSession(t, s, phone)
		laptop := newSession(alice, "LAPTOP", "Laptop", "a-laptop", t0)
		mustCreateSession(t, s, laptop)

		if err := s.RenameDevice(t.Context(), alice, "PHONE", "Work phone ✓"); err != nil {
			t.Fatalf("RenameDevice: %v", err)
		}
		phone.Device.DisplayName = "Work phone ✓"
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{laptop.Device, phone.Device})
		// The tokens are untouched.
		if _, err := s.FindSessionByAccessToken(t.Context(), hash("a-phone")); err != nil {
			t.Fatalf("the renamed device's token: %v", err)
		}
		if err := s.RenameDevice(t.Context(), alice, "PHONE", ""); err != nil {
			t.Fatalf("RenameDevice to no name: %v", err)
		}
		phone.Device.DisplayName = ""
		wantDevices(t, "ListDevices after clearing", listDevices(t, s, alice), []store.Device{laptop.Device, phone.Device})
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		bobs := newSession(bob, "BOBPHONE", "Bob's", "b-phone", t0)
		mustCreateSession(t, s, bobs)

		wantErr(t, "RenameDevice of an unknown device", s.RenameDevice(t.Context(), alice, "NOPE", "x"), store.ErrNotFound)
		// Another user's device is not the caller's to rename.
		wantErr(t, "RenameDevice of bob's device as alice", s.RenameDevice(t.Context(), alice, "BOBPHONE", "mine"), store.ErrNotFound)
		wantDevices(t, "ListDevices(bob)", listDevices(t, s, bob), []store.Device{bobs.Device})
	}},
}

var deleteDeviceCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a-phone", t0))
		laptop := newSession(alice, "LAPTOP", "Laptop", "a-laptop", t0)
		mustCreateSession(t, s, laptop)

		if err := s.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		_, err := s.FindDevice(t.Context(), alice, "PHONE")
		wantErr(t, "FindDevice of a deleted device", err, store.ErrNotFound)
		wantNoSession(t, s, hash("a-phone"))
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{laptop.Device})
		wantSession(t, s, hash("a-laptop"), laptop.AccessToken, u)

		err = s.DeleteDevice(t.Context(), alice, "PHONE")
		wantErr(t, "DeleteDevice twice", err, store.ErrNotFound)

		// A later login on that device ID makes a new device, old token still dead.
		fresh := newSession(alice, "PHONE", "New phone", "a-phone-2", t1)
		mustCreateSession(t, s, fresh)
		wantDevice(t, "FindDevice of the new device", findDevice(t, s, alice, "PHONE"), fresh.Device)
		wantNoSession(t, s, hash("a-phone"))
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		a := newUser(alice)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, newUser(bob))
		phone := newSession(alice, "PHONE", "Phone", "a1", t0)
		mustCreateSession(t, s, phone)
		err := s.DeleteDevice(t.Context(), alice, "LAPTOP")
		wantErr(t, "DeleteDevice of an unknown device", err, store.ErrNotFound)
		err = s.DeleteDevice(t.Context(), bob, "PHONE")
		wantErr(t, "DeleteDevice of another user's device", err, store.ErrNotFound)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{phone.Device})
		wantSession(t, s, hash("a1"), phone.AccessToken, a)
	}},
	{"RefreshTokens", func(t *testing.T, s store.Store) {
		// Every refresh token of the device goes with it: confirmed, pending,
		// and revoked ones kept for replay detection.
		u := newUser(alice)
		mustCreateUser(t, s, u)
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t0))
		mustConfirm(t, s, "a1", t0)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t0))
		laptop := newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0)
		mustCreateSession(t, s, laptop)

		if err := s.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		// A new device of the same ID inherits none of them.
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a3", t1))
		for _, tok := range []string{"r0", "r1", "r2"} {
			wantRefreshErr(t, s, "a deleted device's refresh token", exchange(tok, "x", "y", t1), store.ErrNotFound)
		}
		mustSweep(t, s, t2.Add(time.Hour), 0)
		findDevice(t, s, alice, "PHONE")
		wantSession(t, s, hash("l0"), laptop.AccessToken, u)
		mustRefresh(t, s, exchange("lr0", "l1", "lr1", t1))
	}},
}

var deleteAllDevicesCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		for _, d := range []string{"PHONE", "LAPTOP", "TABLET"} {
			mustCreateSession(t, s, newSession(alice, d, d, "a-"+d, t0))
		}
		bobs := newSession(bob, "PHONE", "Bob's phone", "b-PHONE", t0)
		mustCreateSession(t, s, bobs)

		n, err := s.DeleteAllDevices(t.Context(), alice)
		if err != nil {
			t.Fatalf("DeleteAllDevices: %v", err)
		}
		if n != 3 {
			t.Fatalf("DeleteAllDevices = %d, want 3", n)
		}
		if ds := listDevices(t, s, alice); len(ds) != 0 {
			t.Fatalf("devices left: %+v", ds)
		}
		for _, d := range []string{"PHONE", "LAPTOP", "TABLET"} {
			wantNoSession(t, s, hash("a-"+d))
		}
		// The user stays, active; other users keep their devices.
		wantUser(t, "user", findUser(t, s, alice), a)
		wantDevices(t, "ListDevices(bob)", listDevices(t, s, bob), []store.Device{bobs.Device})
		wantSession(t, s, hash("b-PHONE"), bobs.AccessToken, b)
	}},
	{"None", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		for _, userID := range []string{alice, bob} {
			n, err := s.DeleteAllDevices(t.Context(), userID)
			if err != nil {
				t.Fatalf("DeleteAllDevices(%s): %v", userID, err)
			}
			if n != 0 {
				t.Fatalf("DeleteAllDevices(%s) = %d, want 0", userID, n)
			}
		}
	}},
	{"RefreshTokens", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t0))
		mustConfirm(t, s, "a1", t0)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t0))
		mustCreateSession(t, s, newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0))
		bobs := newRefreshSession(bob, "PHONE", "b0", "br0", t0)
		mustCreateSession(t, s, bobs)

		if n, err := s.DeleteAllDevices(t.Context(), alice); err != nil || n != 2 {
			t.Fatalf("DeleteAllDevices = %d, %v; want 2, nil", n, err)
		}
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a3", t1))
		mustCreateSession(t, s, newSession(alice, "LAPTOP", "Laptop", "l3", t1))
		for _, tok := range []string{"r0", "r1", "r2", "lr0"} {
			wantRefreshErr(t, s, "a deleted device's refresh token", exchange(tok, "x", "y", t1), store.ErrNotFound)
		}
		mustSweep(t, s, t2.Add(time.Hour), 0)
		wantSession(t, s, hash("b0"), bobs.AccessToken, b)
		mustRefresh(t, s, exchange("br0", "b1", "br1", t1))
	}},
}

// countActive calls CountActiveSessions, which must succeed.
func countActive(tb testing.TB, s store.Store, now time.Time) int {
	tb.Helper()
	n, err := s.CountActiveSessions(tb.Context(), now)
	if err != nil {
		tb.Fatalf("CountActiveSessions: %v", err)
	}
	return n
}

// wantActive asserts the number of active sessions at now.
func wantActive(tb testing.TB, s store.Store, now time.Time, want int) {
	tb.Helper()
	if got := countActive(tb, s, now); got != want {
		tb.Fatalf("CountActiveSessions(%s) = %d, want %d", now.Format(time.RFC3339Nano), got, want)
	}
}

var countActiveSessionsCases = []testCase{
	{"Empty", func(t *testing.T, s store.Store) {
		wantActive(t, s, t0, 0)
		// A user without a device has no session.
		mustCreateUser(t, s, newUser(alice))
		wantActive(t, s, t0, 0)
	}},
	{"Expiry", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		// Never expires.
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a-phone", t0))
		// Expires at t1.
		laptop := newSession(alice, "LAPTOP", "", "a-laptop", t0)
		laptop.AccessToken.ExpiresAt = t1
		mustCreateSession(t, s, laptop)
		// Expires at t2, another user.
		bobs := newSession(bob, "PHONE", "", "b-phone", t0)
		bobs.AccessToken.ExpiresAt = t2
		mustCreateSession(t, s, bobs)

		wantActive(t, s, t0, 3)
		wantActive(t, s, t1.Add(-time.Microsecond), 3)
		// A token is expired from its expiry on (AccessToken.Expired).
		wantActive(t, s, t1, 2)
		wantActive(t, s, t2, 1)
		wantActive(t, s, t2.Add(24*time.Hour), 1)
	}},
	{"PendingPairCountsOnce", func(t *testing.T, s store.Store) {
		// Until the new pair of a refresh is used, the device holds two
		// live access tokens: still one session.
		loginWithRefresh(t, s) // alice's PHONE and bob's PHONE
		wantActive(t, s, t0, 2)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		wantActive(t, s, t1, 2)
		mustConfirm(t, s, "a1", t1)
		wantActive(t, s, t1, 2)
	}},
	{"DeletedDevices", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		for _, d := range []string{"PHONE", "LAPTOP", "TABLET"} {
			mustCreateSession(t, s, newSession(alice, d, d, "a-"+d, t0))
		}
		wantActive(t, s, t0, 3)
		if err := s.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		wantActive(t, s, t0, 2)
		if err := s.DeactivateUser(t.Context(), alice, t1, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		wantActive(t, s, t1, 0)
	}},
}
