package storetest

import (
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// newLoginToken is a login token of userID asked for by PHONE at t0 that
// expires two minutes later.
func newLoginToken(userID, token string) store.LoginToken {
	return store.LoginToken{Hash: hash(token), UserID: userID, DeviceID: "PHONE", CreatedAt: t0, ExpiresAt: t0.Add(2 * time.Minute)}
}

func mustCreateLoginTokenGranted(tb testing.TB, s store.Store, lt store.LoginToken, g store.UIAGrant) {
	tb.Helper()
	if err := s.CreateLoginToken(tb.Context(), lt, g); err != nil {
		tb.Fatalf("CreateLoginToken(%s) with a grant: %v", lt.UserID, err)
	}
}

func mustCreateLoginToken(tb testing.TB, s store.Store, lt store.LoginToken) {
	tb.Helper()
	if err := s.CreateLoginToken(tb.Context(), lt, store.UIAGrant{}); err != nil {
		tb.Fatalf("CreateLoginToken(%s): %v", lt.UserID, err)
	}
}

// wantConsumeErr fails unless consuming the token at now fails with want.
func wantConsumeErr(tb testing.TB, s store.Store, what, token string, now time.Time, want error) {
	tb.Helper()
	u, err := s.ConsumeLoginToken(tb.Context(), hash(token), now)
	wantErr(tb, "ConsumeLoginToken of "+what, err, want)
	if u != (store.User{}) {
		tb.Fatalf("ConsumeLoginToken of %s returned %+v with its error", what, u)
	}
}

var loginTokenCases = []testCase{
	{"ConsumeOnce", func(t *testing.T, s store.Store) {
		a := newUser(alice)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, newUser(bob))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		mustCreateLoginToken(t, s, newLoginToken(bob, "l2"))
		u, err := s.ConsumeLoginToken(t.Context(), hash("l1"), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("ConsumeLoginToken: %v", err)
		}
		wantUser(t, "ConsumeLoginToken", u, a)
		wantConsumeErr(t, s, "a used token", "l1", t0.Add(time.Minute), store.ErrNotFound)
		// Bob's token is his own, and still there.
		u, err = s.ConsumeLoginToken(t.Context(), hash("l2"), t0.Add(time.Minute))
		if err != nil || u.ID != bob {
			t.Fatalf("ConsumeLoginToken of bob's token = %+v, %v", u, err)
		}
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		wantConsumeErr(t, s, "an unknown token", "l0", t0, store.ErrNotFound)
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		lt := newLoginToken(alice, "l1")
		mustCreateLoginToken(t, s, lt)
		// A token is dead at its expiry time, not a microsecond after.
		wantConsumeErr(t, s, "a token at its expiry", "l1", lt.ExpiresAt, store.ErrNotFound)
		// Refusing it deleted it: it is gone even for an earlier clock.
		wantConsumeErr(t, s, "a refused expired token", "l1", t0, store.ErrNotFound)
	}},
	{"JustBeforeExpiry", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		lt := newLoginToken(alice, "l1")
		mustCreateLoginToken(t, s, lt)
		if _, err := s.ConsumeLoginToken(t.Context(), hash("l1"), lt.ExpiresAt.Add(-time.Microsecond)); err != nil {
			t.Fatalf("ConsumeLoginToken a microsecond before expiry: %v", err)
		}
	}},
	{"Concurrent", func(t *testing.T, s store.Store) {
		a := newUser(alice)
		mustCreateUser(t, s, a)
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		const n = 8
		users := make([]store.User, n)
		errs := make([]error, n)
		parallel(n, func(i int) {
			users[i], errs[i] = s.ConsumeLoginToken(t.Context(), hash("l1"), t0.Add(time.Minute))
		})
		winner := onlySuccess(t, "ConsumeLoginToken", errs)
		wantUser(t, "the winning ConsumeLoginToken", users[winner], a)
	}},
	{"DeactivatedUser", func(t *testing.T, s store.Store) {
		// Marked deactivated while a token lives (DeactivateUser deletes
		// the user's tokens: DeactivationDeletesThem).
		u := newUser(alice)
		u.DeactivatedAt = t1
		mustCreateUser(t, s, u)
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		// The store returns the user as it is; refusing it is the caller's.
		u, err := s.ConsumeLoginToken(t.Context(), hash("l1"), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("ConsumeLoginToken of a deactivated user's token: %v", err)
		}
		if !u.Deactivated() {
			t.Fatalf("ConsumeLoginToken = %+v, want the user deactivated", u)
		}
	}},
	{"DeactivationDeletesThem", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		mustCreateLoginToken(t, s, newLoginToken(bob, "l2"))
		if err := s.DeactivateUser(t.Context(), alice, t1, false, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		_, err := s.ConsumeLoginToken(t.Context(), hash("l1"), t0.Add(time.Minute))
		wantErr(t, "ConsumeLoginToken after deactivation", err, store.ErrNotFound)
		if _, err := s.ConsumeLoginToken(t.Context(), hash("l2"), t0.Add(time.Minute)); err != nil {
			t.Fatalf("bob's token after alice's deactivation: %v", err)
		}
	}},
	{"PasswordChangeDeletesThem", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		if _, err := s.ChangePassword(t.Context(), store.PasswordChange{UserID: alice, Hash: "$new$"}); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		_, err := s.ConsumeLoginToken(t.Context(), hash("l1"), t0.Add(time.Minute))
		wantErr(t, "ConsumeLoginToken after a password change", err, store.ErrNotFound)
	}},
	{"GrantConsumed", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a1", t0))
		b := store.UIABinding{UserID: alice, DeviceID: "PHONE", Method: "POST", Path: "/_matrix/client/v1/login/get_token"}
		if err := s.CreateUIASession(t.Context(), store.UIASession{IDHash: hash("u1"), UIABinding: b, CreatedAt: t0, ExpiresAt: t1}); err != nil {
			t.Fatal(err)
		}
		sess := hash("u1")
		g := store.UIAGrant{Session: &sess, Binding: b, Now: t0}
		mustCreateLoginTokenGranted(t, s, newLoginToken(alice, "l1"), g)
		err := s.CreateLoginToken(t.Context(), newLoginToken(alice, "l2"), g)
		wantErr(t, "CreateLoginToken with a used grant", err, store.ErrUIASessionGone)
		_, err = s.ConsumeLoginToken(t.Context(), hash("l2"), t0.Add(time.Minute))
		wantErr(t, "ConsumeLoginToken of a token refused", err, store.ErrNotFound)
	}},
	{"CreateConflict", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		err := s.CreateLoginToken(t.Context(), newLoginToken(bob, "l1"), store.UIAGrant{})
		wantErr(t, "CreateLoginToken of a taken hash", err, store.ErrConflict)
		u, err := s.ConsumeLoginToken(t.Context(), hash("l1"), t0)
		if err != nil || u.ID != alice {
			t.Fatalf("ConsumeLoginToken after the conflict = %+v, %v; want %s", u, err, alice)
		}
	}},
	{"CreateUnknownUser", func(t *testing.T, s store.Store) {
		err := s.CreateLoginToken(t.Context(), newLoginToken(alice, "l1"), store.UIAGrant{})
		wantErr(t, "CreateLoginToken for an unknown user", err, store.ErrNotFound)
		wantConsumeErr(t, s, "a token never stored", "l1", t0, store.ErrNotFound)
	}},
	{"DeleteLoginTokens", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l1"))
		mustCreateLoginToken(t, s, newLoginToken(alice, "l2"))
		mustCreateLoginToken(t, s, newLoginToken(bob, "l3"))
		n, err := s.DeleteLoginTokens(t.Context(), alice)
		if err != nil || n != 2 {
			t.Fatalf("DeleteLoginTokens = %d, %v; want 2", n, err)
		}
		wantConsumeErr(t, s, "a deleted token", "l1", t0, store.ErrNotFound)
		wantConsumeErr(t, s, "a deleted token", "l2", t0, store.ErrNotFound)
		if n, err := s.DeleteLoginTokens(t.Context(), "@nobody:example.org"); err != nil || n != 0 {
			t.Fatalf("DeleteLoginTokens of an unknown user = %d, %v; want 0", n, err)
		}
		if u, err := s.ConsumeLoginToken(t.Context(), hash("l3"), t0); err != nil || u.ID != bob {
			t.Fatalf("ConsumeLoginToken of bob's token = %+v, %v", u, err)
		}
	}},
	{"Sweep", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		early := newLoginToken(alice, "l1")
		late := newLoginToken(alice, "l2")
		late.ExpiresAt = t1
		mustCreateLoginToken(t, s, early)
		mustCreateLoginToken(t, s, late)
		mustSweep(t, s, early.ExpiresAt, 0)
		mustSweep(t, s, early.ExpiresAt.Add(time.Microsecond), 1)
		// The sweep takes only what expired: the later token still works.
		if _, err := s.ConsumeLoginToken(t.Context(), hash("l2"), early.ExpiresAt); err != nil {
			t.Fatalf("ConsumeLoginToken of the unexpired token after the sweep: %v", err)
		}
	}},
}
