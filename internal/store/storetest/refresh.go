package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// A refresh in these tests is named after its tokens: "a1" and "r1" are the
// access and refresh token of the first pair after the login's "a0", "r0".

// newRefreshSession is newSession with a refresh token that does not
// expire, paired with the access token.
func newRefreshSession(userID, deviceID, access, refresh string, at time.Time) store.NewSession {
	ns := newSession(userID, deviceID, deviceID, access, at)
	ns.RefreshToken = &store.RefreshToken{Hash: hash(refresh), UserID: userID, DeviceID: deviceID, CreatedAt: at}
	return ns
}

// exchange is the exchange of the refresh token old, at now, for a new pair
// that does not expire. User and device are the store's to fill in.
func exchange(old, access, refresh string, now time.Time) store.Exchange {
	return store.Exchange{
		Old:     hash(old),
		Access:  store.AccessToken{Hash: hash(access), CreatedAt: now},
		Refresh: store.RefreshToken{Hash: hash(refresh), CreatedAt: now},
		Now:     now,
	}
}

// immediately is r as an r0.2.0 /tokenrefresh exchange.
func immediately(r store.Exchange) store.Exchange {
	r.Immediate = true
	return r
}

// issued is the access token a refresh of a device stores.
func issued(userID, deviceID, access string, at time.Time, pending bool) store.AccessToken {
	return store.AccessToken{Hash: hash(access), UserID: userID, DeviceID: deviceID, CreatedAt: at, Pending: pending}
}

// mustRefresh runs r and fails the test on error.
func mustRefresh(tb testing.TB, s store.Store, r store.Exchange) store.Session {
	tb.Helper()
	got, err := s.RefreshSession(tb.Context(), r)
	if err != nil {
		tb.Fatalf("RefreshSession(%x, immediate %t): %v", r.Old[:4], r.Immediate, err)
	}
	return got
}

// wantRefreshErr fails unless r fails with want.
func wantRefreshErr(tb testing.TB, s store.Store, what string, r store.Exchange, want error) {
	tb.Helper()
	got, err := s.RefreshSession(tb.Context(), r)
	wantErr(tb, "RefreshSession of "+what, err, want)
	if errors.Is(want, store.ErrTokenReplayed) {
		// A replay names the device it deleted, and nothing else.
		named := store.Session{AccessToken: store.AccessToken{UserID: got.AccessToken.UserID, DeviceID: got.AccessToken.DeviceID}}
		if got != named || got.AccessToken.UserID == "" || got.AccessToken.DeviceID == "" {
			tb.Fatalf("RefreshSession of %s returned %+v with ErrTokenReplayed, want the deleted device's user and ID alone", what, got)
		}
		wantNoDevice(tb, s, got.AccessToken.UserID, got.AccessToken.DeviceID)
		return
	}
	if got != (store.Session{}) {
		tb.Fatalf("RefreshSession of %s returned %+v with its error", what, got)
	}
}

// mustConfirm confirms the access token and fails the test on error.
func mustConfirm(tb testing.TB, s store.Store, access string, now time.Time) {
	tb.Helper()
	if err := s.ConfirmAccessToken(tb.Context(), hash(access), now); err != nil {
		tb.Fatalf("ConfirmAccessToken(%s): %v", access, err)
	}
}

// wantNoDevice fails unless the user has no device of that ID.
func wantNoDevice(tb testing.TB, s store.Store, userID, deviceID string) {
	tb.Helper()
	_, err := s.FindDevice(tb.Context(), userID, deviceID)
	wantErr(tb, "FindDevice of a revoked session's device", err, store.ErrNotFound)
}

// mustSweep runs DeleteExpiredTokens and fails the test unless it deleted
// want rows.
func mustSweep(tb testing.TB, s store.Store, before time.Time, want int) {
	tb.Helper()
	n, err := s.DeleteExpiredTokens(tb.Context(), before)
	if err != nil {
		tb.Fatalf("DeleteExpiredTokens(%v): %v", before, err)
	}
	if n != want {
		tb.Fatalf("DeleteExpiredTokens(%v) = %d, want %d", before, n, want)
	}
}

// loginWithRefresh creates alice with a refresh-token login ("a0", "r0") on
// PHONE at t0, and bob with one on his PHONE ("b0", "br0"), whose tokens
// every case checks are left alone.
// It returns the users and alice's login.
func loginWithRefresh(t *testing.T, s store.Store) (store.User, store.User, store.NewSession) {
	t.Helper()
	a, b := newUser(alice), newUser(bob)
	mustCreateUser(t, s, a)
	mustCreateUser(t, s, b)
	login := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
	mustCreateSession(t, s, login)
	mustCreateSession(t, s, newRefreshSession(bob, "PHONE", "b0", "br0", t0))
	return a, b, login
}

// wantBobUntouched fails unless bob's session from loginWithRefresh works.
func wantBobUntouched(t *testing.T, s store.Store, b store.User) {
	t.Helper()
	wantSession(t, s, hash("b0"), issued(bob, "PHONE", "b0", t0, false), b)
	got := mustRefresh(t, s, exchange("br0", "b1", "br1", t2))
	wantToken(t, "bob's refresh", got.AccessToken, issued(bob, "PHONE", "b1", t2, true))
}

var refreshSessionCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b, login := loginWithRefresh(t, s)
		r := exchange("r0", "a1", "r1", t1)
		// The store takes user and device from the old token, whatever the
		// request says, and decides pending itself; it keeps microseconds.
		r.Access.UserID, r.Access.DeviceID = bob, "LAPTOP"
		r.Refresh.UserID, r.Refresh.DeviceID = bob, "LAPTOP"
		r.Access.CreatedAt = t1.Add(999 * time.Nanosecond)
		r.Access.ExpiresAt = t2.In(time.FixedZone("UTC+5:30", 5*3600+1800))
		got := mustRefresh(t, s, r)

		want := issued(alice, "PHONE", "a1", t1, true)
		want.ExpiresAt = t2
		wantToken(t, "RefreshSession token", got.AccessToken, want)
		wantUser(t, "RefreshSession user", got.User, a)
		wantSession(t, s, hash("a1"), want, a)
		// Until the new pair is used, the old access token stays valid too.
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{login.Device})
		if ds := listDevices(t, s, bob); len(ds) != 1 || ds[0].ID != "PHONE" {
			t.Fatalf("bob's devices after a refresh naming his LAPTOP: %+v", ds)
		}
		// The new refresh token is alice's and can be exchanged in turn.
		got = mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		wantToken(t, "RefreshSession with the new token", got.AccessToken, issued(alice, "PHONE", "a2", t2, true))
		wantBobUntouched(t, s, b)
	}},
	{"Retry", func(t *testing.T, s store.Store) {
		// A client that lost the response repeats the refresh with the old
		// token: it gets another pending pair, and both exist until one is used.
		a, b, login := loginWithRefresh(t, s)
		first := mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		second := mustRefresh(t, s, exchange("r0", "a2", "r2", t2))
		wantToken(t, "first refresh", first.AccessToken, issued(alice, "PHONE", "a1", t1, true))
		wantToken(t, "retried refresh", second.AccessToken, issued(alice, "PHONE", "a2", t2, true))
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantSession(t, s, hash("a1"), first.AccessToken, a)
		wantSession(t, s, hash("a2"), second.AccessToken, a)
		// Either new refresh token works.
		mustRefresh(t, s, exchange("r2", "a3", "r3", t2))
		wantBobUntouched(t, s, b)
	}},
	{"ConfirmsPendingPair", func(t *testing.T, s store.Store) {
		// Using the new refresh token confirms its pair, as using its access
		// token would: the rest of the device's tokens go.
		a, b, _ := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		got := mustRefresh(t, s, exchange("r1", "a3", "r3", t2))

		wantToken(t, "refresh with the pending token", got.AccessToken, issued(alice, "PHONE", "a3", t2, true))
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		wantSession(t, s, hash("a3"), got.AccessToken, a)
		wantNoSession(t, s, hash("a0"))
		wantNoSession(t, s, hash("a2"))
		// r1 is itself the old token of a pending pair now: still valid.
		mustRefresh(t, s, exchange("r1", "a4", "r4", t2))
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		// r0 was exchanged and superseded: a replay.
		wantRefreshErr(t, s, "the predecessor", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		for _, tok := range []string{"a1", "a3", "a4"} {
			wantNoSession(t, s, hash(tok))
		}
		wantBobUntouched(t, s, b)
	}},
	{"Replay", func(t *testing.T, s store.Store) {
		a, b, _ := loginWithRefresh(t, s)
		laptop := newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0)
		mustCreateSession(t, s, laptop)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		mustConfirm(t, s, "a1", t1)
		mustRefresh(t, s, exchange("r1", "a3", "r3", t2))

		wantRefreshErr(t, s, "an exchanged, superseded token", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		// The whole session is gone: device, confirmed and pending tokens.
		wantNoDevice(t, s, alice, "PHONE")
		for _, tok := range []string{"a0", "a1", "a2", "a3", "x"} {
			wantNoSession(t, s, hash(tok))
		}
		for _, tok := range []string{"r0", "r1", "r2", "r3", "y"} {
			wantRefreshErr(t, s, "a token of the revoked session", exchange(tok, "x2", "y2", t2), store.ErrNotFound)
		}
		// Alice's other device and bob are untouched.
		wantSession(t, s, hash("l0"), laptop.AccessToken, a)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{laptop.Device})
		mustRefresh(t, s, exchange("lr0", "l1", "lr1", t2))
		wantBobUntouched(t, s, b)
	}},
	{"ReplayAfterExpiry", func(t *testing.T, s store.Store) {
		// Replay is checked before expiry: a superseded token presented
		// after it expired still revokes the session, so waiting out the
		// expiry hides no theft.
		_, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, b)
		login := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
		login.RefreshToken.ExpiresAt = t1
		mustCreateSession(t, s, login)
		mustCreateSession(t, s, newRefreshSession(bob, "PHONE", "b0", "br0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t0))
		mustConfirm(t, s, "a1", t0)

		wantRefreshErr(t, s, "an exchanged, superseded, expired token", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		wantNoSession(t, s, hash("a1"))
		wantBobUntouched(t, s, b)
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		login := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
		login.RefreshToken.ExpiresAt = t1
		mustCreateSession(t, s, login)
		mustCreateSession(t, s, newRefreshSession(bob, "PHONE", "b0", "br0", t0))

		// Expired at its expiry time; nothing is written.
		wantRefreshErr(t, s, "a token at its expiry", exchange("r0", "a1", "r1", t1), store.ErrTokenExpired)
		wantRefreshErr(t, s, "an expired token", exchange("r0", "a1", "r1", t2), store.ErrTokenExpired)
		wantNoSession(t, s, hash("a1"))
		wantRefreshErr(t, s, "the refresh token of a failed refresh", exchange("r1", "x", "y", t0), store.ErrNotFound)
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		// A microsecond before, it still works.
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1.Add(-time.Microsecond)))
		wantBobUntouched(t, s, b)
	}},
	{"ExpiredPending", func(t *testing.T, s store.Store) {
		// An expired pending token confirms nothing: its pair stays pending
		// and the old token valid.
		a, b, login := loginWithRefresh(t, s)
		r := exchange("r0", "a1", "r1", t0)
		r.Refresh.ExpiresAt = t1
		mustRefresh(t, s, r)
		wantRefreshErr(t, s, "an expired pending token", exchange("r1", "a2", "r2", t1), store.ErrTokenExpired)
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t0, true), a)
		wantNoSession(t, s, hash("a2"))
		// Not revoked, so no replay either.
		mustRefresh(t, s, exchange("r0", "a3", "r3", t2))
		wantBobUntouched(t, s, b)
	}},
	{"Immediate", func(t *testing.T, s store.Store) {
		// r0.2.0 /tokenrefresh: the old pair is revoked at once and the new
		// one confirmed from the start.
		a, b, _ := loginWithRefresh(t, s)
		got := mustRefresh(t, s, immediately(exchange("r0", "a1", "r1", t1)))
		wantToken(t, "RefreshSession token", got.AccessToken, issued(alice, "PHONE", "a1", t1, false))
		wantUser(t, "RefreshSession user", got.User, a)
		wantSession(t, s, hash("a1"), got.AccessToken, a)
		wantNoSession(t, s, hash("a0"))

		got = mustRefresh(t, s, immediately(exchange("r1", "a2", "r2", t2)))
		wantSession(t, s, hash("a2"), got.AccessToken, a)
		wantNoSession(t, s, hash("a1"))

		// The old token was exchanged: using it again is a replay, and the
		// session is revoked, as after a /refresh.
		wantRefreshErr(t, s, "a token exchanged by /tokenrefresh", immediately(exchange("r1", "x", "y", t2)),
			store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		wantNoSession(t, s, hash("a2"))
		wantRefreshErr(t, s, "the successor of a replayed token", immediately(exchange("r2", "x", "y", t2)),
			store.ErrNotFound)
		wantBobUntouched(t, s, b)
	}},
	{"ImmediatePending", func(t *testing.T, s store.Store) {
		// A pending token exchanged by /tokenrefresh: its pair is confirmed
		// and then revoked, siblings and predecessor included.
		a, b, _ := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		got := mustRefresh(t, s, immediately(exchange("r1", "a3", "r3", t2)))
		wantSession(t, s, hash("a3"), issued(alice, "PHONE", "a3", t2, false), a)
		wantToken(t, "RefreshSession token", got.AccessToken, issued(alice, "PHONE", "a3", t2, false))
		for _, tok := range []string{"a0", "a1", "a2"} {
			wantNoSession(t, s, hash(tok))
		}
		mustRefresh(t, s, exchange("r3", "a4", "r4", t2))
		wantRefreshErr(t, s, "a superseded sibling", exchange("r2", "x", "y", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		wantBobUntouched(t, s, b)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		a, b, login := loginWithRefresh(t, s)
		wantRefreshErr(t, s, "an unknown token", exchange("r9", "a1", "r1", t1), store.ErrNotFound)
		// An access token is not a refresh token.
		wantRefreshErr(t, s, "an access token", exchange("a0", "a1", "r1", t1), store.ErrNotFound)
		wantNoSession(t, s, hash("a1"))
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantBobUntouched(t, s, b)
	}},
	{"LoginWithoutRefreshToken", func(t *testing.T, s store.Store) {
		u := newUser(alice)
		mustCreateUser(t, s, u)
		ns := newSession(alice, "PHONE", "Phone", "a0", t0)
		mustCreateSession(t, s, ns)
		// Nothing was stored for the access token's hash, nor any other.
		wantRefreshErr(t, s, "the token of a login without one", exchange("a0", "a1", "r1", t1), store.ErrNotFound)
		wantSession(t, s, hash("a0"), ns.AccessToken, u)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		// A taken hash fails the whole refresh, the confirmation of the
		// pending pair it would have done included.
		a, b, login := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		for _, r := range []store.Exchange{
			exchange("r1", "b0", "r2", t2),  // access hash taken (by bob)
			exchange("r1", "a2", "br0", t2), // refresh hash taken (by bob)
			exchange("r1", "a2", "r0", t2),  // refresh hash taken (by the old token)
		} {
			wantRefreshErr(t, s, "a pair with a taken hash", r, store.ErrConflict)
		}
		wantNoSession(t, s, hash("a2"))
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, true), a)
		// r0 was not revoked by the failed confirmation.
		mustRefresh(t, s, exchange("r0", "a3", "r3", t2))
		wantBobUntouched(t, s, b)
	}},
	{"DeactivatedUser", func(t *testing.T, s store.Store) {
		// As FindSessionByAccessToken, the session carries the user's state
		// for the caller to refuse. (DeactivateUser deletes the tokens, so
		// only an account created deactivated can get here.)
		u := newUser(alice)
		u.DeactivatedAt = t0
		mustCreateUser(t, s, u)
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		got := mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		wantUser(t, "RefreshSession user", got.User, u)
	}},
	{"ConcurrentRetries", func(t *testing.T, s store.Store) {
		// Many refreshes with one token at once (a client retrying in a
		// hurry, or replicas racing) all succeed; the first use of one new
		// pair then leaves only that pair.
		const n = 50
		a, b, _ := loginWithRefresh(t, s)
		got := make([]store.Session, n)
		errs := make([]error, n)
		parallel(n, func(i int) {
			got[i], errs[i] = s.RefreshSession(t.Context(),
				exchange("r0", fmt.Sprintf("a1-%02d", i), fmt.Sprintf("r1-%02d", i), t1))
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("RefreshSession #%d: %v", i, err)
			}
			wantToken(t, "RefreshSession token", got[i].AccessToken,
				issued(alice, "PHONE", fmt.Sprintf("a1-%02d", i), t1, true))
		}

		const winner = 17
		mustConfirm(t, s, fmt.Sprintf("a1-%02d", winner), t2)
		wantSession(t, s, hash(fmt.Sprintf("a1-%02d", winner)),
			issued(alice, "PHONE", fmt.Sprintf("a1-%02d", winner), t1, false), a)
		wantNoSession(t, s, hash("a0"))
		for i := range n {
			if i == winner {
				continue
			}
			wantNoSession(t, s, hash(fmt.Sprintf("a1-%02d", i)))
		}
		mustRefresh(t, s, exchange(fmt.Sprintf("r1-%02d", winner), "a2", "r2", t2))
		// A losing pair's refresh token is a tombstone: a replay.
		wantRefreshErr(t, s, "a losing pair's refresh token", exchange("r1-03", "x", "y", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		wantBobUntouched(t, s, b)
	}},
	{"ConcurrentPairs", func(t *testing.T, s store.Store) {
		// Using the refresh tokens of several pending pairs at once: the
		// first pair wins and the others are tombstones, so the next one is
		// a replay that revokes the session; the rest find nothing.
		const n = 10
		_, b, _ := loginWithRefresh(t, s)
		for i := range n {
			mustRefresh(t, s, exchange("r0", fmt.Sprintf("a1-%d", i), fmt.Sprintf("r1-%d", i), t1))
		}
		errs := make([]error, n)
		parallel(n, func(i int) {
			_, errs[i] = s.RefreshSession(t.Context(),
				exchange(fmt.Sprintf("r1-%d", i), fmt.Sprintf("a2-%d", i), fmt.Sprintf("r2-%d", i), t2))
		})
		var ok, replayed int
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrTokenReplayed):
				replayed++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("RefreshSession #%d: %v, want success, replay or not found", i, err)
			}
		}
		if ok != 1 || replayed != 1 {
			t.Fatalf("RefreshSession: %d successes and %d replays, want 1 and 1", ok, replayed)
		}
		wantNoDevice(t, s, alice, "PHONE")
		for i := range n {
			wantNoSession(t, s, hash(fmt.Sprintf("a1-%d", i)))
			wantNoSession(t, s, hash(fmt.Sprintf("a2-%d", i)))
		}
		wantBobUntouched(t, s, b)
	}},
}

var confirmAccessTokenCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b, _ := loginWithRefresh(t, s)
		laptop := newRefreshSession(alice, "LAPTOP", "l0", "lr0", t0)
		mustCreateSession(t, s, laptop)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		mustConfirm(t, s, "a1", t2)

		// The pair is confirmed, the device's other access tokens are gone.
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		wantNoSession(t, s, hash("a0"))
		wantNoSession(t, s, hash("a2"))
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		// The confirmed pair's refresh token works, and is no longer pending
		// (refreshing with it keeps a1).
		mustRefresh(t, s, exchange("r1", "a3", "r3", t2))
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		// Other devices are untouched.
		wantSession(t, s, hash("l0"), laptop.AccessToken, a)
		mustRefresh(t, s, exchange("lr0", "l1", "lr1", t2))
		wantBobUntouched(t, s, b)
	}},
	{"ThiefFirst", func(t *testing.T, s store.Store) {
		// A thief holding a copy of r0 exchanges it within the pending
		// window of the client's own refresh, and uses its pair first. The
		// client's pair lost; when the client presents its refresh token,
		// the session is revoked, the thief's pair with it.
		a, b, _ := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1)) // the client
		mustRefresh(t, s, exchange("r0", "x1", "y1", t1)) // the thief
		mustConfirm(t, s, "x1", t2)
		wantSession(t, s, hash("x1"), issued(alice, "PHONE", "x1", t1, false), a)
		wantNoSession(t, s, hash("a1"))

		wantRefreshErr(t, s, "the client's losing refresh token", exchange("r1", "a2", "r2", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		wantNoSession(t, s, hash("x1"))
		wantRefreshErr(t, s, "the thief's refresh token", exchange("y1", "x2", "y2", t2), store.ErrNotFound)
		wantBobUntouched(t, s, b)
	}},
	{"ThenReplay", func(t *testing.T, s store.Store) {
		a, b, _ := loginWithRefresh(t, s)
		laptop := newSession(alice, "LAPTOP", "Laptop", "l0", t0)
		mustCreateSession(t, s, laptop)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a1", t2)

		wantRefreshErr(t, s, "the predecessor", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		wantNoSession(t, s, hash("a1"))
		wantNoSession(t, s, hash("x"))
		wantRefreshErr(t, s, "the successor of a replayed token", exchange("r1", "x", "y", t2), store.ErrNotFound)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{laptop.Device})
		wantSession(t, s, hash("l0"), laptop.AccessToken, a)
		wantBobUntouched(t, s, b)
	}},
	{"Confirmed", func(t *testing.T, s store.Store) {
		// A confirmed token changes nothing, even with pending pairs about.
		a, b, login := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a0", t2)
		wantSession(t, s, hash("a0"), login.AccessToken, a)
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, true), a)
		// r0 was not revoked: its retry gives another pair, no alarm.
		mustRefresh(t, s, exchange("r0", "a2", "r2", t2))
		wantBobUntouched(t, s, b)
	}},
	{"Twice", func(t *testing.T, s store.Store) {
		a, b, _ := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a1", t1)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		// Confirming a1 again deletes nothing, a2 (pending) included.
		mustConfirm(t, s, "a1", t2)
		wantSession(t, s, hash("a1"), issued(alice, "PHONE", "a1", t1, false), a)
		wantSession(t, s, hash("a2"), issued(alice, "PHONE", "a2", t2, true), a)
		wantBobUntouched(t, s, b)
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		a, b, _ := loginWithRefresh(t, s)
		err := s.ConfirmAccessToken(t.Context(), hash("a9"), t1)
		wantErr(t, "ConfirmAccessToken of an unknown token", err, store.ErrNotFound)
		// The token of a pair that lost to another.
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustRefresh(t, s, exchange("r0", "a2", "r2", t1))
		mustConfirm(t, s, "a2", t2)
		err = s.ConfirmAccessToken(t.Context(), hash("a1"), t2)
		wantErr(t, "ConfirmAccessToken of a losing pair's token", err, store.ErrNotFound)
		wantSession(t, s, hash("a2"), issued(alice, "PHONE", "a2", t1, false), a)
		wantBobUntouched(t, s, b)
	}},
	{"Concurrent", func(t *testing.T, s store.Store) {
		// Several pending pairs of one device used at once: exactly one
		// survives, the other confirmations find their token gone.
		const n = 10
		a, b, _ := loginWithRefresh(t, s)
		for i := range n {
			mustRefresh(t, s, exchange("r0", fmt.Sprintf("a1-%d", i), fmt.Sprintf("r1-%d", i), t1))
		}
		errs := make([]error, n)
		parallel(n, func(i int) {
			errs[i] = s.ConfirmAccessToken(t.Context(), hash(fmt.Sprintf("a1-%d", i)), t2)
		})
		winner := onlySuccess(t, "ConfirmAccessToken", errs)
		for i := range n {
			if i == winner {
				wantSession(t, s, hash(fmt.Sprintf("a1-%d", i)), issued(alice, "PHONE", fmt.Sprintf("a1-%d", i), t1, false), a)
				continue
			}
			wantNoSession(t, s, hash(fmt.Sprintf("a1-%d", i)))
		}
		wantNoSession(t, s, hash("a0"))
		mustRefresh(t, s, exchange(fmt.Sprintf("r1-%d", winner), "a2", "r2", t2))
		loser := fmt.Sprintf("r1-%d", (winner+1)%n)
		wantRefreshErr(t, s, "a losing pair's refresh token", exchange(loser, "x", "y", t2), store.ErrTokenReplayed)
		wantBobUntouched(t, s, b)
	}},
}

var deleteExpiredTokensCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		a, b := newUser(alice), newUser(bob)
		mustCreateUser(t, s, a)
		mustCreateUser(t, s, b)
		// alice's PHONE: a0 (expires t1) is confirmed away, r0 is revoked at
		// t0; a1 expires t2, r1 never.
		phone := newRefreshSession(alice, "PHONE", "a0", "r0", t0)
		phone.AccessToken.ExpiresAt = t1
		phone.RefreshToken.ExpiresAt = t2
		mustCreateSession(t, s, phone)
		r := exchange("r0", "a1", "r1", t0)
		r.Access.ExpiresAt = t2
		mustRefresh(t, s, r)
		mustConfirm(t, s, "a1", t0)
		// alice's LAPTOP: l0 expires t1, no refresh token.
		laptop := newSession(alice, "LAPTOP", "Laptop", "l0", t0)
		laptop.AccessToken.ExpiresAt = t1
		mustCreateSession(t, s, laptop)
		// bob's PHONE: b0 never expires, br0 expires t1.
		bobs := newRefreshSession(bob, "PHONE", "b0", "br0", t0)
		bobs.RefreshToken.ExpiresAt = t1
		mustCreateSession(t, s, bobs)

		// Strictly before the cutoff: nothing expired or was revoked before t0.
		mustSweep(t, s, t0, 0)
		// r0, revoked at t0.
		mustSweep(t, s, t1, 1)
		wantRefreshErr(t, s, "a swept revoked token", exchange("r0", "x", "y", t2), store.ErrNotFound)
		findDevice(t, s, alice, "PHONE") // not a replay any more
		wantSession(t, s, hash("l0"), laptop.AccessToken, a)
		wantRefreshErr(t, s, "an expired token", exchange("br0", "x", "y", t1), store.ErrTokenExpired)
		// l0 and br0, expiring at t1.
		mustSweep(t, s, t1.Add(time.Microsecond), 2)
		wantNoSession(t, s, hash("l0"))
		wantRefreshErr(t, s, "a swept expired token", exchange("br0", "x", "y", t1), store.ErrNotFound)
		// Live tokens stay: a1, r1, b0; and the devices.
		a1 := issued(alice, "PHONE", "a1", t0, false)
		a1.ExpiresAt = t2
		wantSession(t, s, hash("a1"), a1, a)
		wantSession(t, s, hash("b0"), bobs.AccessToken, b)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{laptop.Device, phone.Device})
		mustSweep(t, s, t1.Add(time.Microsecond), 0)
		mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		// a1 at last.
		mustSweep(t, s, t2.Add(time.Microsecond), 1)
		wantNoSession(t, s, hash("a1"))
	}},
	{"RevokedKeepsFirstTime", func(t *testing.T, s store.Store) {
		// A revoked token keeps the time it was first revoked: later
		// confirmations do not extend its stay.
		_, b, _ := loginWithRefresh(t, s)
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a1", t1) // revokes r0 at t1
		mustRefresh(t, s, exchange("r1", "a2", "r2", t2))
		mustConfirm(t, s, "a2", t2) // revokes r1 at t2, leaves r0
		mustSweep(t, s, t1, 0)
		mustSweep(t, s, t1.Add(time.Microsecond), 1)
		wantRefreshErr(t, s, "a swept revoked token", exchange("r0", "x", "y", t2), store.ErrNotFound)
		// Until the sweep, a replay is recognised.
		wantRefreshErr(t, s, "a kept revoked token", exchange("r1", "x", "y", t2), store.ErrTokenReplayed)
		wantNoDevice(t, s, alice, "PHONE")
		mustSweep(t, s, t2.Add(time.Hour), 0)
		wantBobUntouched(t, s, b)
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		mustSweep(t, s, t2, 0)
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		// Tokens without an expiry never expire.
		mustSweep(t, s, t2.Add(100*365*24*time.Hour), 0)
	}},
}

// parallel runs f(0) to f(n-1) in n goroutines released at once and waits
// for them.
func parallel(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// onlySuccess fails the test unless exactly one of errs is nil and the rest
// are store.ErrNotFound, and returns the index of the nil one.
func onlySuccess(tb testing.TB, what string, errs []error) int {
	tb.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			tb.Fatalf("%s #%d and #%d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrNotFound):
			tb.Fatalf("%s #%d: %v, want success or %v", what, i, err, store.ErrNotFound)
		}
	}
	if winner < 0 {
		tb.Fatalf("%s: none succeeded", what)
	}
	return winner
}
