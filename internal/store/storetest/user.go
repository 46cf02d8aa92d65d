package storetest

import (
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

var timeCases = []testCase{
	{"UTC", func(t *testing.T, s store.Store) {
		// The same instant as t0, written in another zone, reads back in UTC.
		u := newUser(alice)
		u.CreatedAt = t0.In(time.FixedZone("UTC+5:30", 5*3600+1800))
		mustCreateUser(t, s, u)
		got := findUser(t, s, alice)
		if got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(t0) {
			t.Fatalf("CreatedAt = %v, want %v in UTC", got.CreatedAt, t0)
		}
	}},
	{"Microseconds", func(t *testing.T, s store.Store) {
		// Stores keep microseconds and drop the rest, as Postgres and
		// SQLite columns both can.
		u := newUser(alice)
		u.CreatedAt = t0.Add(999 * time.Nanosecond)
		mustCreateUser(t, s, u)
		if got := findUser(t, s, alice); !got.CreatedAt.Equal(t0) {
			t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
		}
	}},
}

var createUserCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		got := findUser(t, s, alice)
		wantUser(t, "FindUserByID", got, u)
		if got.Deactivated() {
			t.Fatalf("new user is deactivated: %+v", got)
		}
		if tps := listThreePIDs(t, s, alice); len(tps) != 0 {
			t.Fatalf("ListThreePIDs = %+v, want none", tps)
		}
	}},
	{"Deactivated", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		u.DeactivatedAt = t1
		mustCreateUser(t, s, u)
		got := findUser(t, s, alice)
		wantUser(t, "FindUserByID", got, u)
		if !got.Deactivated() {
			t.Fatalf("user created deactivated is active: %+v", got)
		}
	}},
	{"AdminLocked", func(t *testing.T, s store.Store) {
		// The admin flag and the lock read back from every lookup of a
		// user, a session's included.
		u := newUser(alice)
		u.Admin, u.LockedAt = true, t1
		mustCreateUser(t, s, u, store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", AddedAt: t0})
		mustCreateUser(t, s, newUser(bob))
		wantUser(t, "FindUserByID", findUser(t, s, alice), u)
		if !u.Locked() {
			t.Fatal("Locked() = false with LockedAt set")
		}
		got, err := s.FindUserByLogin(t.Context(), "@ALICE:example.org")
		if err != nil {
			t.Fatal(err)
		}
		wantUser(t, "FindUserByLogin", got, u)
		got, err = s.FindUserByThreePID(t.Context(), store.MediumEmail, "alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		wantUser(t, "FindUserByThreePID", got, u)
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a1", t0))
		sess, err := s.FindSessionByAccessToken(t.Context(), hash("a1"))
		if err != nil {
			t.Fatal(err)
		}
		wantUser(t, "FindSessionByAccessToken", sess.User, u)
		other := findUser(t, s, bob)
		if other.Admin || other.Locked() {
			t.Fatalf("a plain user reads back as admin or locked: %+v", other)
		}
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		first := newUser(alice)
		mustCreateUser(t, s, first)
		second := newUser(alice)
		second.PasswordHash = "$other$"
		second.CreatedAt = t1
		err := s.CreateUser(t.Context(), second)
		wantErr(t, "CreateUser of a taken ID", err, store.ErrConflict)
		wantUser(t, "FindUserByID after the conflict", findUser(t, s, alice), first)
	}},
	{"CaseVariants", func(t *testing.T, s store.Store) {
		// Historical IDs may differ only in case; both are distinct users.
		lower, upper := newUser("@bob:x"), newUser("@BOB:x")
		upper.PasswordHash = "$upper$"
		mustCreateUser(t, s, lower)
		mustCreateUser(t, s, upper)
		wantUser(t, "FindUserByID(@bob:x)", findUser(t, s, "@bob:x"), lower)
		wantUser(t, "FindUserByID(@BOB:x)", findUser(t, s, "@BOB:x"), upper)
	}},
	{"WithThreePIDs", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		// CreateUser binds the addresses to u, also one whose UserID is left empty.
		phone := store.ThreePID{Medium: store.MediumMSISDN, Address: "15551234567", AddedAt: t0}
		email := store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t1}
		mustCreateUser(t, s, u, phone, email)
		phone.UserID = alice
		wantThreePIDs(t, "ListThreePIDs", listThreePIDs(t, s, alice), []store.ThreePID{email, phone})
		got, err := s.FindUserByThreePID(t.Context(), store.MediumEmail, "alice@example.org")
		if err != nil {
			t.Fatalf("FindUserByThreePID: %v", err)
		}
		wantUser(t, "FindUserByThreePID", got, u)
	}},
	{"ThreePIDConflict", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice),
			store.ThreePID{Medium: store.MediumEmail, Address: "shared@example.org", AddedAt: t0})
		fresh := store.ThreePID{Medium: store.MediumEmail, Address: "bob@example.org", AddedAt: t1}
		taken := store.ThreePID{Medium: store.MediumEmail, Address: "shared@example.org", AddedAt: t1}
		err := s.CreateUser(t.Context(), newUser(bob), fresh, taken)
		wantErr(t, "CreateUser with a taken address", err, store.ErrConflict)

		// Nothing was written: not the user, not the address before the taken one.
		_, err = s.FindUserByID(t.Context(), bob)
		wantErr(t, "FindUserByID of the user whose create failed", err, store.ErrNotFound)
		_, err = s.FindUserByThreePID(t.Context(), store.MediumEmail, "bob@example.org")
		wantErr(t, "FindUserByThreePID of an address whose create failed", err, store.ErrNotFound)
		if tps := listThreePIDs(t, s, bob); len(tps) != 0 {
			t.Fatalf("ListThreePIDs(%s) = %+v, want none", bob, tps)
		}
		got, err := s.FindUserByThreePID(t.Context(), store.MediumEmail, "shared@example.org")
		if err != nil {
			t.Fatalf("FindUserByThreePID(shared): %v", err)
		}
		if got.ID != alice {
			t.Fatalf("shared address moved to %s, want %s", got.ID, alice)
		}
		// The ID is free for a create without the conflict.
		mustCreateUser(t, s, newUser(bob), fresh)
	}},
	{"DuplicateThreePIDs", func(t *testing.T, s store.Store) {
		tp := store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", AddedAt: t0}
		err := s.CreateUser(t.Context(), newUser(alice), tp, tp)
		wantErr(t, "CreateUser with one address twice", err, store.ErrConflict)
		_, err = s.FindUserByID(t.Context(), alice)
		wantErr(t, "FindUserByID of the user whose create failed", err, store.ErrNotFound)
	}},
}

var findUserByIDCases = []testCase{
	{"NotFound", func(t *testing.T, s store.Store) {
		_, err := s.FindUserByID(t.Context(), alice)
		wantErr(t, "FindUserByID in an empty store", err, store.ErrNotFound)
	}},
	{"Exact", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		_, err := s.FindUserByID(t.Context(), "@Alice:example.org")
		wantErr(t, "FindUserByID in another case", err, store.ErrNotFound)
	}},
}

var findUserByLoginCases = []testCase{
	{"Exact", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u, store.ThreePID{Medium: store.MediumEmail, Address: "a@example.org", AddedAt: t0})
		mustCreateUser(t, s, newUser(bob))
		got, err := s.FindUserByLogin(t.Context(), alice)
		if err != nil {
			t.Fatalf("FindUserByLogin: %v", err)
		}
		wantUser(t, "FindUserByLogin", got, u)
	}},
	{"CaseInsensitive", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		got, err := s.FindUserByLogin(t.Context(), "@Alice:Example.org")
		if err != nil {
			t.Fatalf("FindUserByLogin: %v", err)
		}
		wantUser(t, "FindUserByLogin", got, u)
	}},
	{"CanonicalID", func(t *testing.T, s store.Store) {
		// A stored ID with capitals is found by any case and returned as stored.
		u := newUser("@Carol:example.org")
		mustCreateUser(t, s, u)
		for _, login := range []string{"@carol:example.org", "@CAROL:EXAMPLE.ORG", "@Carol:example.org"} {
			got, err := s.FindUserByLogin(t.Context(), login)
			if err != nil {
				t.Fatalf("FindUserByLogin(%s): %v", login, err)
			}
			wantUser(t, "FindUserByLogin("+login+")", got, u)
		}
	}},
	{"Ambiguous", func(t *testing.T, s store.Store) {
		lower, upper := newUser("@bob:x"), newUser("@BOB:x")
		upper.PasswordHash = "$upper$"
		mustCreateUser(t, s, lower)
		mustCreateUser(t, s, upper)
		for login, want := range map[string]store.User{"@bob:x": lower, "@BOB:x": upper} {
			got, err := s.FindUserByLogin(t.Context(), login)
			if err != nil {
				t.Fatalf("FindUserByLogin(%s): %v", login, err)
			}
			wantUser(t, "FindUserByLogin("+login+")", got, want)
		}
		_, err := s.FindUserByLogin(t.Context(), "@Bob:x")
		wantErr(t, "FindUserByLogin matching two users, neither exactly", err, store.ErrNotFound)
	}},
	{"ForeignServer", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		_, err := s.FindUserByLogin(t.Context(), "@alice:example.com")
		wantErr(t, "FindUserByLogin on another server name", err, store.ErrNotFound)
	}},
	{"Localpart", func(t *testing.T, s store.Store) {
		// The store matches whole MXIDs; qualifying a localpart is the caller's job.
		mustCreateUser(t, s, newUser(alice))
		_, err := s.FindUserByLogin(t.Context(), "alice")
		wantErr(t, "FindUserByLogin of a bare localpart", err, store.ErrNotFound)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		_, err := s.FindUserByLogin(t.Context(), "@alicia:example.org")
		wantErr(t, "FindUserByLogin of an unknown user", err, store.ErrNotFound)
	}},
}

var findUserByThreePIDCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a, store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", AddedAt: t0})
		mustCreateUser(t, s, b, store.ThreePID{Medium: store.MediumMSISDN, Address: "15550000001", AddedAt: t0})
		for _, c := range []struct {
			medium  store.Medium
			address string
			want    store.User
		}{
			{store.MediumEmail, "alice@example.org", a},
			{store.MediumMSISDN, "15550000001", b},
		} {
			got, err := s.FindUserByThreePID(t.Context(), c.medium, c.address)
			if err != nil {
				t.Fatalf("FindUserByThreePID(%s, %s): %v", c.medium, c.address, err)
			}
			wantUser(t, "FindUserByThreePID", got, c.want)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice),
			store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", AddedAt: t0})
		for _, c := range []struct {
			name    string
			medium  store.Medium
			address string
		}{
			{"unknown address", store.MediumEmail, "bob@example.org"},
			{"other medium", store.MediumMSISDN, "alice@example.org"},
			// Addresses are canonical: the caller folds them, the store does not.
			{"other case", store.MediumEmail, "Alice@example.org"},
		} {
			_, err := s.FindUserByThreePID(t.Context(), c.medium, c.address)
			wantErr(t, "FindUserByThreePID of "+c.name, err, store.ErrNotFound)
		}
	}},
}

var listUsersCases = []testCase{
	{"Empty", func(t *testing.T, s store.Store) {
		users, err := s.ListUsers(t.Context())
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(users) != 0 {
			t.Fatalf("ListUsers = %+v, want none", users)
		}
	}},
	{"Order", func(t *testing.T, s store.Store) {
		carol, a, upper, lower := newUser("@carol:x"), newUser("@alice:x"), newUser("@Bob:x"), newUser("@bob:x")
		a.DeactivatedAt = t2
		upper.CreatedAt = t1
		for _, u := range []store.User{carol, a, lower, upper} {
			mustCreateUser(t, s, u)
		}
		users, err := s.ListUsers(t.Context())
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		// Ordered by ID bytewise: upper case before lower case.
		wantUsers(t, "ListUsers", users, []store.User{upper, a, lower, carol})
	}},
}

var updatePasswordHashCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		if err := s.UpdatePasswordHash(t.Context(), alice, "$new$"); err != nil {
			t.Fatalf("UpdatePasswordHash: %v", err)
		}
		a.PasswordHash = "$new$"
		wantUser(t, "updated user", findUser(t, s, alice), a)
		wantUser(t, "other user", findUser(t, s, bob), b)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		err := s.UpdatePasswordHash(t.Context(), "@Alice:example.org", "$new$")
		wantErr(t, "UpdatePasswordHash of an unknown user", err, store.ErrNotFound)
		wantUser(t, "existing user", findUser(t, s, alice), newUser(alice))
	}},
}

var deactivateUserCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a1", t0))
		mustCreateSession(t, s, newSession(alice, "LAPTOP", "Laptop", "a2", t0))
		other := newSession(bob, "PHONE", "Bob's phone", "b1", t0)
		mustCreateSession(t, s, other)
		mustAddThreePID(t, s, store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t0})
		mustAddThreePID(t, s, store.ThreePID{Medium: store.MediumMSISDN, Address: "15551234567", UserID: alice, AddedAt: t0})
		bobs := store.ThreePID{Medium: store.MediumEmail, Address: "bob@example.org", UserID: bob, AddedAt: t0}
		mustAddThreePID(t, s, bobs)
		mustCreateUIASession(t, s, uiaSession("s1", binding(alice, "PHONE", "{}")))
		mustCreateUIASession(t, s, uiaSession("s2", binding(alice, "LAPTOP", "{}")))
		bobSession := uiaSession("bs1", binding(bob, "PHONE", "{}"))
		mustCreateUIASession(t, s, bobSession)

		if err := s.DeactivateUser(t.Context(), alice, t1, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		// The hash goes: no password logs in to the account again.
		a.DeactivatedAt, a.PasswordHash = t1, ""
		got := findUser(t, s, alice)
		wantUser(t, "deactivated user", got, a)
		if !got.Deactivated() {
			t.Fatalf("Deactivated() = false after DeactivateUser")
		}
		if ds := listDevices(t, s, alice); len(ds) != 0 {
			t.Fatalf("devices left after DeactivateUser: %+v", ds)
		}
		wantNoSession(t, s, hash("a1"))
		wantNoSession(t, s, hash("a2"))
		wantThreePIDs(t, "threepids left after DeactivateUser", listThreePIDs(t, s, alice), nil)
		wantNoUIASession(t, s, "s1", t0)
		wantNoUIASession(t, s, "s2", t0)
		// The addresses are free for another account.
		_, err := s.FindUserByThreePID(t.Context(), store.MediumEmail, "alice@example.org")
		wantErr(t, "FindUserByThreePID of a deactivated user's address", err, store.ErrNotFound)

		wantUser(t, "other user", findUser(t, s, bob), b)
		wantDevices(t, "other user's devices", listDevices(t, s, bob), []store.Device{other.Device})
		wantSession(t, s, hash("b1"), other.AccessToken, b)
		wantThreePIDs(t, "other user's threepids", listThreePIDs(t, s, bob), []store.ThreePID{bobs})
		wantUIASession(t, s, bobSession, t0)
	}},
	{"Grant", func(t *testing.T, s store.Store) {
		// With a grant, the session is consumed in the deactivation's
		// transaction; a grant that does not match it writes nothing.
		f := newAccountFixture(t, s)
		mustAddThreePID(t, s, store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t0})
		for _, m := range mismatches(f) {
			err := s.DeactivateUser(t.Context(), m.userID, t1, false, m.g)
			wantErr(t, "DeactivateUser with a grant of the wrong "+m.name, err, store.ErrUIASessionGone)
			f.wantAliceUntouched(t, s)
			f.wantBobUntouched(t, s)
			if tps := listThreePIDs(t, s, alice); len(tps) != 1 {
				t.Fatalf("alice's threepids after a refused deactivation: %+v", tps)
			}
		}
		if err := s.DeactivateUser(t.Context(), alice, t1, false, f.grant()); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		a := f.alice
		a.DeactivatedAt, a.PasswordHash = t1, ""
		wantUser(t, "deactivated user", findUser(t, s, alice), a)
		wantDevices(t, "alice's devices", listDevices(t, s, alice), nil)
		wantThreePIDs(t, "alice's threepids", listThreePIDs(t, s, alice), nil)
		wantNoUIASession(t, s, "s1", t0)
		// The session is consumed: the grant cannot be used again.
		err := s.DeactivateUser(t.Context(), alice, t2, false, f.grant())
		wantErr(t, "DeactivateUser with a consumed session", err, store.ErrUIASessionGone)
		f.wantBobUntouched(t, s)
	}},
	{"RefreshTokens", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t0))
		mustConfirm(t, s, "a1", t0)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t0))
		bobs := newRefreshSession(bob, "PHONE", "b0", "br0", t0)
		mustCreateSession(t, s, bobs)

		if err := s.DeactivateUser(t.Context(), alice, t1, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		// Even a device recreated under the same ID inherits no token.
		mustCreateSession(t, s, newSession(alice, "PHONE", "Phone", "a3", t1))
		for _, tok := range []string{"r0", "r1", "r2"} {
			wantRefreshErr(t, s, "a deactivated user's refresh token", exchange(tok, "x", "y", t1), store.ErrNotFound)
		}
		mustSweep(t, s, t2.Add(time.Hour), 0)
		wantSession(t, s, hash("b0"), bobs.AccessToken, b)
		mustRefresh(t, s, exchange("br0", "b1", "br1", t1))
	}},
	{"Twice", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		if err := s.DeactivateUser(t.Context(), alice, t1, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		if err := s.DeactivateUser(t.Context(), alice, t2, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser again: %v", err)
		}
		if got := findUser(t, s, alice); !sameTime(got.DeactivatedAt, t1) {
			t.Fatalf("DeactivatedAt = %v, want the first time %v", got.DeactivatedAt, t1)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		err := s.DeactivateUser(t.Context(), bob, t1, false, store.UIAGrant{})
		wantErr(t, "DeactivateUser of an unknown user", err, store.ErrNotFound)
		if got := findUser(t, s, alice); got.Deactivated() {
			t.Fatalf("another user was deactivated: %+v", got)
		}
	}},
}

var addThreePIDCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		tp := store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t1}
		mustAddThreePID(t, s, tp)
		wantThreePIDs(t, "ListThreePIDs", listThreePIDs(t, s, alice), []store.ThreePID{tp})
		got, err := s.FindUserByThreePID(t.Context(), tp.Medium, tp.Address)
		if err != nil {
			t.Fatalf("FindUserByThreePID: %v", err)
		}
		wantUser(t, "FindUserByThreePID", got, u)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		tp := store.ThreePID{Medium: store.MediumEmail, Address: "shared@example.org", UserID: alice, AddedAt: t0}
		mustAddThreePID(t, s, tp)
		for _, userID := range []string{bob, alice} {
			err := s.AddThreePID(t.Context(), store.ThreePID{
				Medium: store.MediumEmail, Address: "shared@example.org", UserID: userID, AddedAt: t1,
			})
			wantErr(t, "AddThreePID of a bound address for "+userID, err, store.ErrConflict)
		}
		wantThreePIDs(t, "ListThreePIDs of the owner", listThreePIDs(t, s, alice), []store.ThreePID{tp})
		if tps := listThreePIDs(t, s, bob); len(tps) != 0 {
			t.Fatalf("ListThreePIDs(%s) = %+v, want none", bob, tps)
		}
	}},
	{"SameAddressOtherMedium", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		email := store.ThreePID{Medium: store.MediumEmail, Address: "15550000001", UserID: alice, AddedAt: t0}
		phone := store.ThreePID{Medium: store.MediumMSISDN, Address: "15550000001", UserID: bob, AddedAt: t0}
		mustAddThreePID(t, s, email)
		mustAddThreePID(t, s, phone)
		wantThreePIDs(t, "ListThreePIDs(alice)", listThreePIDs(t, s, alice), []store.ThreePID{email})
		wantThreePIDs(t, "ListThreePIDs(bob)", listThreePIDs(t, s, bob), []store.ThreePID{phone})
	}},
	{"UnknownUser", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		err := s.AddThreePID(t.Context(), store.ThreePID{
			Medium: store.MediumEmail, Address: "bob@example.org", UserID: bob, AddedAt: t0,
		})
		wantErr(t, "AddThreePID for an unknown user", err, store.ErrNotFound)
		_, err = s.FindUserByThreePID(t.Context(), store.MediumEmail, "bob@example.org")
		wantErr(t, "FindUserByThreePID after the failed add", err, store.ErrNotFound)
	}},
}

var deleteThreePIDCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		gone := store.ThreePID{Medium: store.MediumEmail, Address: "old@example.org", UserID: alice, AddedAt: t0}
		kept := store.ThreePID{Medium: store.MediumEmail, Address: "new@example.org", UserID: alice, AddedAt: t1}
		mustAddThreePID(t, s, gone)
		mustAddThreePID(t, s, kept)
		if err := s.DeleteThreePID(t.Context(), alice, gone.Medium, gone.Address); err != nil {
			t.Fatalf("DeleteThreePID: %v", err)
		}
		_, err := s.FindUserByThreePID(t.Context(), gone.Medium, gone.Address)
		wantErr(t, "FindUserByThreePID of a deleted address", err, store.ErrNotFound)
		wantThreePIDs(t, "ListThreePIDs", listThreePIDs(t, s, alice), []store.ThreePID{kept})
		// The address is free again.
		mustAddThreePID(t, s, gone)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		tp := store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t0}
		mustAddThreePID(t, s, tp)
		err := s.DeleteThreePID(t.Context(), alice, store.MediumEmail, "bob@example.org")
		wantErr(t, "DeleteThreePID of an unbound address", err, store.ErrNotFound)
		err = s.DeleteThreePID(t.Context(), alice, store.MediumMSISDN, "alice@example.org")
		wantErr(t, "DeleteThreePID under another medium", err, store.ErrNotFound)
		wantThreePIDs(t, "ListThreePIDs", listThreePIDs(t, s, alice), []store.ThreePID{tp})
	}},
	{"OtherUsersAddress", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		tp := store.ThreePID{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t0}
		mustAddThreePID(t, s, tp)
		err := s.DeleteThreePID(t.Context(), bob, tp.Medium, tp.Address)
		wantErr(t, "DeleteThreePID of another user's address", err, store.ErrNotFound)
		err = s.DeleteThreePID(t.Context(), "@nobody:example.org", tp.Medium, tp.Address)
		wantErr(t, "DeleteThreePID for an unknown user", err, store.ErrNotFound)
		wantThreePIDs(t, "ListThreePIDs of the owner", listThreePIDs(t, s, alice), []store.ThreePID{tp})
		if u, err := s.FindUserByThreePID(t.Context(), tp.Medium, tp.Address); err != nil || u.ID != alice {
			t.Fatalf("FindUserByThreePID after the refused delete = %+v, %v; want %s", u, err, alice)
		}
	}},
}

var listThreePIDsCases = []testCase{
	{"Order", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		phone := store.ThreePID{Medium: store.MediumMSISDN, Address: "15550000001", UserID: alice, AddedAt: t0}
		zed := store.ThreePID{Medium: store.MediumEmail, Address: "zed@example.org", UserID: alice, AddedAt: t1}
		amy := store.ThreePID{Medium: store.MediumEmail, Address: "amy@example.org", UserID: alice, AddedAt: t2}
		others := store.ThreePID{Medium: store.MediumEmail, Address: "bob@example.org", UserID: bob, AddedAt: t0}
		for _, tp := range []store.ThreePID{phone, zed, others, amy} {
			mustAddThreePID(t, s, tp)
		}
		wantThreePIDs(t, "ListThreePIDs", listThreePIDs(t, s, alice), []store.ThreePID{amy, zed, phone})
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		if tps := listThreePIDs(t, s, alice); len(tps) != 0 {
			t.Fatalf("ListThreePIDs of a user without any = %+v", tps)
		}
		if tps := listThreePIDs(t, s, bob); len(tps) != 0 {
			t.Fatalf("ListThreePIDs of an unknown user = %+v", tps)
		}
	}},
}
