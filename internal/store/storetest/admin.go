package storetest

import (
	"testing"

	"github.com/authd/authd/internal/store"
)

// pageNames lists the user IDs of a page, in order.
func pageNames(p store.UserPage) []string {
	names := []string{}
	for _, u := range p.Users {
		names = append(names, u.ID)
	}
	return names
}

func listPage(tb testing.TB, s store.Store, q store.UserQuery) store.UserPage {
	tb.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	p, err := s.ListUsersPage(tb.Context(), q)
	if err != nil {
		tb.Fatalf("ListUsersPage(%+v): %v", q, err)
	}
	return p
}

func wantPage(tb testing.TB, what string, p store.UserPage, total int, names ...string) {
	tb.Helper()
	got := pageNames(p)
	if names == nil {
		names = []string{}
	}
	if p.Total != total || len(got) != len(names) {
		tb.Fatalf("%s: total %d, users %v; want total %d, users %v", what, p.Total, got, total, names)
	}
	for i := range names {
		if got[i] != names[i] {
			tb.Fatalf("%s: users %v, want %v", what, got, names)
		}
	}
}

// adminFixture is four users: alice (admin, seen at t2), bob (locked,
// created at t1), carol (deactivated), and "@100%_x:example.org", whose
// localpart holds LIKE's wildcards.
func adminFixture(tb testing.TB, s store.Store) {
	tb.Helper()
	a := newUser(alice)
	a.Admin = true
	mustCreateUser(tb, s, a)
	mustCreateSession(tb, s, newSession(alice, "PHONE", "", "a1", t0))
	if err := s.RecordLastSeen(tb.Context(), []store.DeviceSeen{{UserID: alice, DeviceID: "PHONE", At: t2}}); err != nil {
		tb.Fatal(err)
	}
	mustCreateSession(tb, s, newSession(alice, "LAPTOP", "", "a2", t1))
	b := newUser(bob)
	b.CreatedAt, b.LockedAt = t1, t1
	mustCreateUser(tb, s, b)
	c := newUser("@carol:example.org")
	c.DeactivatedAt = t1
	mustCreateUser(tb, s, c)
	mustCreateUser(tb, s, newUser("@100%_x:example.org"))
}

var listUsersPageCases = []testCase{
	{"Filters", func(t *testing.T, s store.Store) {
		adminFixture(t, s)
		wantPage(t, "all", listPage(t, s, store.UserQuery{}), 4,
			"@100%_x:example.org", alice, bob, "@carol:example.org")
		wantPage(t, "name in any case", listPage(t, s, store.UserQuery{Name: "AL"}), 1, alice)
		// The name is the localpart only: the server name matches nothing.
		wantPage(t, "name not the server", listPage(t, s, store.UserQuery{Name: "example"}), 0)
		wantPage(t, "user ID", listPage(t, s, store.UserQuery{UserID: "@BOB:EXAMPLE"}), 1, bob)
		// Wildcards are literal.
		wantPage(t, "percent", listPage(t, s, store.UserQuery{Name: "0%_"}), 1, "@100%_x:example.org")
		wantPage(t, "underscore", listPage(t, s, store.UserQuery{Name: "_"}), 1, "@100%_x:example.org")
		wantPage(t, "deactivated only", listPage(t, s, store.UserQuery{Deactivated: store.TriTrue}), 1, "@carol:example.org")
		wantPage(t, "active only", listPage(t, s, store.UserQuery{Deactivated: store.TriFalse}), 3,
			"@100%_x:example.org", alice, bob)
		wantPage(t, "admins", listPage(t, s, store.UserQuery{Admin: store.TriTrue}), 1, alice)
		wantPage(t, "not locked", listPage(t, s, store.UserQuery{Locked: store.TriFalse}), 3,
			"@100%_x:example.org", alice, "@carol:example.org")
		wantPage(t, "locked", listPage(t, s, store.UserQuery{Locked: store.TriTrue, Deactivated: store.TriFalse}), 1, bob)
	}},
	{"Fields", func(t *testing.T, s store.Store) {
		adminFixture(t, s)
		p := listPage(t, s, store.UserQuery{})
		byID := map[string]store.UserSummary{}
		for _, u := range p.Users {
			byID[u.ID] = u
		}
		if a := byID[alice]; !a.Admin || !sameTime(a.LastSeenAt, t2) {
			t.Fatalf("alice = %+v, want admin, last seen at the latest of its devices (%v)", a, t2)
		}
		if b := byID[bob]; !b.Locked() || !sameTime(b.CreatedAt, t1) || !b.LastSeenAt.IsZero() {
			t.Fatalf("bob = %+v, want locked, created at t1, never seen", b)
		}
		if c := byID["@carol:example.org"]; !c.Deactivated() {
			t.Fatalf("carol = %+v, want deactivated", c)
		}
	}},
	{"Orders", func(t *testing.T, s store.Store) {
		adminFixture(t, s)
		wantPage(t, "name descending", listPage(t, s, store.UserQuery{Descending: true}), 4,
			"@carol:example.org", bob, alice, "@100%_x:example.org")
		// Ties break by user ID ascending, whatever the direction.
		wantPage(t, "created", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderCreated}), 4,
			"@100%_x:example.org", alice, "@carol:example.org", bob)
		wantPage(t, "created descending", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderCreated, Descending: true}), 4,
			bob, "@100%_x:example.org", alice, "@carol:example.org")
		wantPage(t, "last seen descending", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderLastSeen, Descending: true}), 4,
			alice, "@100%_x:example.org", bob, "@carol:example.org")
		wantPage(t, "admin descending", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderAdmin, Descending: true}), 4,
			alice, "@100%_x:example.org", bob, "@carol:example.org")
		wantPage(t, "locked descending", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderLocked, Descending: true}), 4,
			bob, "@100%_x:example.org", alice, "@carol:example.org")
		wantPage(t, "deactivated", listPage(t, s, store.UserQuery{OrderBy: store.UserOrderDeactivated}), 4,
			"@100%_x:example.org", alice, bob, "@carol:example.org")
	}},
	{"Paging", func(t *testing.T, s store.Store) {
		adminFixture(t, s)
		wantPage(t, "first two", listPage(t, s, store.UserQuery{Limit: 2}), 4, "@100%_x:example.org", alice)
		wantPage(t, "next two", listPage(t, s, store.UserQuery{From: 2, Limit: 2}), 4, bob, "@carol:example.org")
		wantPage(t, "past the end", listPage(t, s, store.UserQuery{From: 9, Limit: 2}), 4)
		wantPage(t, "filtered page", listPage(t, s, store.UserQuery{From: 1, Limit: 1, Locked: store.TriFalse}), 3, alice)
	}},
}

func ptr[T any](v T) *T { return &v }

var modifyUserCases = []testCase{
	{"Create", func(t *testing.T, s store.Store) {
		tps := []store.ThreePID{{Medium: store.MediumEmail, Address: "alice@example.org"}}
		res, err := s.ModifyUser(t.Context(), store.UserChange{
			UserID: alice, Now: t1, Create: true, PasswordHash: ptr("$h$"), Admin: ptr(true), ThreePIDs: &tps,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := store.User{ID: alice, PasswordHash: "$h$", CreatedAt: t1, Admin: true}
		if !res.Created {
			t.Fatal("Created = false for a new user")
		}
		wantUser(t, "result", res.User, want)
		wantUser(t, "stored", findUser(t, s, alice), want)
		wantThreePIDs(t, "threepids", listThreePIDs(t, s, alice),
			[]store.ThreePID{{Medium: store.MediumEmail, Address: "alice@example.org", UserID: alice, AddedAt: t1}})
		// Again: it exists now, and is modified instead.
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Create: true, Admin: ptr(false)})
		if err != nil || res.Created || res.User.Admin {
			t.Fatalf("second ModifyUser = %+v, %v; want modified, not admin", res, err)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		_, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, Admin: ptr(true)})
		wantErr(t, "ModifyUser of nobody", err, store.ErrNotFound)
		if _, err := s.FindUserByID(t.Context(), alice); err == nil {
			t.Fatal("a user was created")
		}
	}},
	{"Invalid", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		d := newUser(bob)
		d.DeactivatedAt = t1
		mustCreateUser(t, s, d)
		for name, c := range map[string]store.UserChange{
			"create without password":     {UserID: "@new:example.org", Create: true},
			"deactivate and lock":         {UserID: alice, Deactivate: true, Locked: ptr(true)},
			"deactivate and reactivate":   {UserID: alice, Deactivate: true, Reactivate: true},
			"reactivate without password": {UserID: bob, Reactivate: true},
			"empty password hash":         {UserID: alice, PasswordHash: ptr("")},
			"create deactivated, no rows": {UserID: "@new:example.org", Create: true, PasswordHash: ptr("$h$"), Deactivate: true},
		} {
			c.Now = t2
			_, err := s.ModifyUser(t.Context(), c)
			wantErr(t, name, err, store.ErrInvalidChange)
		}
		wantUser(t, "alice", findUser(t, s, alice), newUser(alice))
		wantUser(t, "bob", findUser(t, s, bob), d)
		if _, err := s.FindUserByID(t.Context(), "@new:example.org"); err == nil {
			t.Fatal("an invalid create wrote a user")
		}
	}},
	{"PasswordAndLogout", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a1", t0))
		res, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, PasswordHash: ptr("$new$")})
		if err != nil || len(res.LoggedOut) != 0 {
			t.Fatalf("ModifyUser = %+v, %v", res, err)
		}
		if len(listDevices(t, s, alice)) != 1 {
			t.Fatal("a password change without logout deleted the device")
		}
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, PasswordHash: ptr("$newer$"), LogoutDevices: true})
		if err != nil || len(res.LoggedOut) != 1 || res.LoggedOut[0] != "PHONE" {
			t.Fatalf("ModifyUser with logout = %+v, %v", res, err)
		}
		wantNoSession(t, s, hash("a1"))
		if got := findUser(t, s, alice).PasswordHash; got != "$newer$" {
			t.Fatalf("hash %q", got)
		}
	}},
	{"ThreePIDs", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice), store.ThreePID{Medium: store.MediumEmail, Address: "a@example.org", AddedAt: t0},
			store.ThreePID{Medium: store.MediumEmail, Address: "old@example.org", AddedAt: t0})
		mustCreateUser(t, s, newUser(bob), store.ThreePID{Medium: store.MediumEmail, Address: "b@example.org", AddedAt: t0})
		// The kept address keeps its time, the new one gets now, the
		// dropped one goes.
		tps := []store.ThreePID{{Medium: store.MediumEmail, Address: "a@example.org"}, {Medium: store.MediumEmail, Address: "new@example.org"}}
		if _, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, ThreePIDs: &tps}); err != nil {
			t.Fatal(err)
		}
		want := []store.ThreePID{
			{Medium: store.MediumEmail, Address: "a@example.org", UserID: alice, AddedAt: t0},
			{Medium: store.MediumEmail, Address: "new@example.org", UserID: alice, AddedAt: t1},
		}
		wantThreePIDs(t, "after replace", listThreePIDs(t, s, alice), want)
		// Another user's address: a conflict, and nothing changes, not
		// even the admin flag asked for with it.
		taken := []store.ThreePID{{Medium: store.MediumEmail, Address: "b@example.org"}}
		_, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, ThreePIDs: &taken, Admin: ptr(true)})
		wantErr(t, "taken address", err, store.ErrConflict)
		wantThreePIDs(t, "after conflict", listThreePIDs(t, s, alice), want)
		if findUser(t, s, alice).Admin {
			t.Fatal("a failed change set the admin flag")
		}
		// An empty set clears them.
		none := []store.ThreePID{}
		if _, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, ThreePIDs: &none}); err != nil {
			t.Fatal(err)
		}
		wantThreePIDs(t, "cleared", listThreePIDs(t, s, alice), nil)
	}},
	{"LockUnlock", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a1", t0))
		res, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, Locked: ptr(true)})
		if err != nil || !sameTime(res.User.LockedAt, t1) {
			t.Fatalf("lock = %+v, %v", res, err)
		}
		// A second lock keeps the first time; the session survives.
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Locked: ptr(true)})
		if err != nil || !sameTime(res.User.LockedAt, t1) {
			t.Fatalf("relock = %+v, %v", res, err)
		}
		sess, err := s.FindSessionByAccessToken(t.Context(), hash("a1"))
		if err != nil || !sess.User.Locked() {
			t.Fatalf("session of a locked user = %+v, %v", sess, err)
		}
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Locked: ptr(false)})
		if err != nil || res.User.Locked() {
			t.Fatalf("unlock = %+v, %v", res, err)
		}
	}},
	{"DeactivateReactivate", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice), store.ThreePID{Medium: store.MediumEmail, Address: "a@example.org", AddedAt: t0})
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a1", t0))
		res, err := s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t1, Deactivate: true, Locked: ptr(false)})
		if err != nil || !res.Deactivated || len(res.DeactivatedDevices) != 1 || !sameTime(res.User.DeactivatedAt, t1) {
			t.Fatalf("deactivate = %+v, %v", res, err)
		}
		wantNoSession(t, s, hash("a1"))
		wantThreePIDs(t, "after deactivation", listThreePIDs(t, s, alice), nil)
		if res.User.PasswordHash != "" {
			t.Fatal("deactivation kept the hash")
		}
		// Deactivating again is a no-op; reactivating an active user
		// needs nothing.
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Deactivate: true})
		if err != nil || res.Deactivated || !sameTime(res.User.DeactivatedAt, t1) {
			t.Fatalf("deactivate again = %+v, %v", res, err)
		}
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Reactivate: true, PasswordHash: ptr("$back$")})
		if err != nil || res.User.Deactivated() || res.User.PasswordHash != "$back$" {
			t.Fatalf("reactivate = %+v, %v", res, err)
		}
		res, err = s.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: t2, Reactivate: true})
		if err != nil || res.User.Deactivated() {
			t.Fatalf("reactivate an active user = %+v, %v", res, err)
		}
	}},
}

var importUsersCases = []testCase{
	{"Outcomes", func(t *testing.T, s store.Store) {
		existing := newUser(alice)
		mustCreateUser(t, s, existing, store.ThreePID{Medium: store.MediumEmail, Address: "taken@example.org", AddedAt: t0})
		imported := func(id string, admin bool, emails ...string) store.ImportedUser {
			u := store.User{ID: id, PasswordHash: "$2b$04$imported" + id, CreatedAt: t1, Admin: admin}
			var tps []store.ThreePID
			for _, e := range emails {
				tps = append(tps, store.ThreePID{Medium: store.MediumEmail, Address: e, AddedAt: t1})
			}
			return store.ImportedUser{User: u, ThreePIDs: tps}
		}
		batch := []store.ImportedUser{
			imported(alice, true, "new@example.org"),                   // exists: left alone
			imported(bob, true, "bob@example.org", "bob@example.org"),  // created, the address once
			imported("@carol:example.org", false, "taken@example.org"), // address bound to alice
			imported("@dave:example.org", false, "bob@example.org"),    // address claimed by bob above
			imported(bob, false),                 // listed twice
			imported("@erin:example.org", false), // created without addresses
		}
		want := []store.ImportOutcome{store.ImportExists, store.ImportCreated, store.ImportConflict, store.ImportConflict, store.ImportExists, store.ImportCreated}
		got, err := s.ImportUsers(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("outcomes %v, want %v", got, want)
			}
		}
		wantUser(t, "alice, untouched", findUser(t, s, alice), existing)
		wantUser(t, "bob", findUser(t, s, bob), batch[1].User)
		wantThreePIDs(t, "bob's addresses", listThreePIDs(t, s, bob),
			[]store.ThreePID{{Medium: store.MediumEmail, Address: "bob@example.org", UserID: bob, AddedAt: t1}})
		for _, id := range []string{"@carol:example.org", "@dave:example.org"} {
			if _, err := s.FindUserByID(t.Context(), id); err == nil {
				t.Fatalf("%s was created despite its address", id)
			}
		}
		wantUser(t, "erin", findUser(t, s, "@erin:example.org"), batch[5].User)
		// Again: everything exists or conflicts, and nothing changes.
		got, err = s.ImportUsers(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range got {
			if o == store.ImportCreated {
				t.Fatalf("second import created entry %d: %v", i, got)
			}
		}
		wantUser(t, "bob after the second import", findUser(t, s, bob), batch[1].User)
		if got, err := s.ImportUsers(t.Context(), nil); err != nil || len(got) != 0 {
			t.Fatalf("empty import = %v, %v", got, err)
		}
	}},
}

var adminTokenCases = []testCase{
	{"Lifecycle", func(t *testing.T, s store.Store) {
		a := store.AdminToken{ID: "tok1", Hash: hash("adm1"), Name: "ansible", CreatedAt: t0}
		b := store.AdminToken{ID: "tok2", Hash: hash("adm2"), CreatedAt: t1, ExpiresAt: t2}
		for _, tok := range []store.AdminToken{b, a} {
			if err := s.CreateAdminToken(t.Context(), tok); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, "same ID", s.CreateAdminToken(t.Context(), store.AdminToken{ID: "tok1", Hash: hash("other"), CreatedAt: t0}), store.ErrConflict)
		wantErr(t, "same hash", s.CreateAdminToken(t.Context(), store.AdminToken{ID: "tok3", Hash: hash("adm1"), CreatedAt: t0}), store.ErrConflict)
		got, err := s.FindAdminToken(t.Context(), hash("adm2"))
		if err != nil || got.ID != "tok2" || !sameTime(got.ExpiresAt, t2) || !got.Expired(t2) || got.Expired(t1) {
			t.Fatalf("FindAdminToken = %+v, %v", got, err)
		}
		list, err := s.ListAdminTokens(t.Context())
		if err != nil || len(list) != 2 || list[0].ID != "tok1" || list[0].Name != "ansible" || !list[0].ExpiresAt.IsZero() || list[1].ID != "tok2" {
			t.Fatalf("ListAdminTokens = %+v, %v", list, err)
		}
		// The sweep takes the expired one.
		if _, err := s.DeleteExpiredTokens(t.Context(), t2.Add(1e9)); err != nil {
			t.Fatal(err)
		}
		_, err = s.FindAdminToken(t.Context(), hash("adm2"))
		wantErr(t, "swept token", err, store.ErrNotFound)
		if err := s.DeleteAdminToken(t.Context(), "tok1"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "revoked twice", s.DeleteAdminToken(t.Context(), "tok1"), store.ErrNotFound)
		_, err = s.FindAdminToken(t.Context(), hash("adm1"))
		wantErr(t, "revoked token", err, store.ErrNotFound)
	}},
}

var registrationCases = []testCase{
	{"Nonces", func(t *testing.T, s store.Store) {
		if err := s.CreateRegistrationNonce(t.Context(), "n1", t1); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRegistrationNonce(t.Context(), "n2", t1); err != nil {
			t.Fatal(err)
		}
		if err := s.ConsumeRegistrationNonce(t.Context(), "n1", t0); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "used twice", s.ConsumeRegistrationNonce(t.Context(), "n1", t0), store.ErrNotFound)
		wantErr(t, "expired", s.ConsumeRegistrationNonce(t.Context(), "n2", t1), store.ErrNotFound)
		wantErr(t, "unknown", s.ConsumeRegistrationNonce(t.Context(), "n3", t0), store.ErrNotFound)
	}},
	{"RegisterUser", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		u.Admin = true
		ns := newSession(alice, "REG", "", "r1", t0)
		if err := s.RegisterUser(t.Context(), u, ns); err != nil {
			t.Fatal(err)
		}
		wantUser(t, "registered", findUser(t, s, alice), u)
		wantSession(t, s, hash("r1"), ns.AccessToken, u)
		// Taken: nothing written, not even the session.
		wantErr(t, "taken", s.RegisterUser(t.Context(), newUser(alice), newSession(alice, "REG2", "", "r2", t0)), store.ErrConflict)
		wantNoSession(t, s, hash("r2"))
		wantUser(t, "after the conflict", findUser(t, s, alice), u)
	}},
}
