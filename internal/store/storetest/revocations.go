package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// RevocationFixture is a store under RunRevocations, on a fresh, migrated,
// empty database.
type RevocationFixture struct {
	// Listener is the store whose ListenRevocations is tested.
	Listener store.RevocationListener
	// Store makes the revocations. Where other processes share the
	// database (the CLI next to serve), it is a handle of its own on it.
	Store store.Store
	// Exec runs a statement on the database outside both, as an operator
	// would (foreign keys enforced).
	Exec func(tb testing.TB, query string)
	// Sentinel commits a revocation of SentinelRevocation outside both.
	Sentinel func(tb testing.TB)
}

// SentinelRevocation is the revocation a fixture's Sentinel commits. A test
// commits it after the operation under test and collects until it
// arrives: revocations are delivered in commit order, so whatever the
// operation revoked came before it, and "nothing" is proved without
// sleeping.
var SentinelRevocation = store.Revocation{UserID: "@sentinel:x", DeviceID: "S"}

// noticeWait bounds every wait for a revocation or a subscription change:
// far above the milliseconds they take, it only keeps a broken test from
// hanging.
const noticeWait = 15 * time.Second

// Subscription is one call of ListenRevocations' subscribed: OK when it
// went live (Err is nil), or why it is not.
type Subscription struct {
	OK  bool
	Err error
}

// Listener records what a ListenRevocations goroutine reports.
type Listener struct {
	sentinel func(tb testing.TB)
	revoked  chan store.Revocation
	subs     chan Subscription
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartListener starts ListenRevocations on l and returns without waiting
// for its subscription; sentinel commits SentinelRevocation. It is stopped
// when the test ends.
func StartListener(tb testing.TB, l store.RevocationListener, sentinel func(tb testing.TB)) *Listener {
	tb.Helper()
	ln := &Listener{
		sentinel: sentinel,
		revoked:  make(chan store.Revocation, 4096),
		subs:     make(chan Subscription, 64),
		done:     make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln.cancel = cancel
	go func() {
		defer close(ln.done)
		l.ListenRevocations(ctx,
			func(r store.Revocation) { ln.revoked <- r },
			func(err error) { ln.subs <- Subscription{err == nil, err} })
	}()
	tb.Cleanup(ln.Stop)
	return ln
}

// Listen is StartListener, then a wait for the first subscription, which
// must be subscribed(nil).
func Listen(tb testing.TB, l store.RevocationListener, sentinel func(tb testing.TB)) *Listener {
	tb.Helper()
	ln := StartListener(tb, l, sentinel)
	if s := ln.NextSubscription(tb); !s.OK || s.Err != nil {
		tb.Fatalf("first subscribed(%v), want nil", s.Err)
	}
	return ln
}

// Stop cancels the listener and waits for ListenRevocations to return. It
// may be called more than once.
func (ln *Listener) Stop() {
	ln.cancel()
	<-ln.done
}

// NextSubscription waits for the next call of subscribed.
func (ln *Listener) NextSubscription(tb testing.TB) Subscription {
	tb.Helper()
	select {
	case s := <-ln.subs:
		return s
	case <-time.After(noticeWait):
		tb.Fatalf("no call of subscribed within %v", noticeWait)
		return Subscription{}
	}
}

// PendingSubscriptions returns the calls of subscribed made and not yet
// taken by NextSubscription, without waiting for more. After Stop, they
// are all the calls there will be.
func (ln *Listener) PendingSubscriptions() []Subscription {
	var subs []Subscription
	for {
		select {
		case s := <-ln.subs:
			subs = append(subs, s)
		default:
			return subs
		}
	}
}

// Next waits for the next revocation.
func (ln *Listener) Next(tb testing.TB) store.Revocation {
	tb.Helper()
	select {
	case r := <-ln.revoked:
		return r
	case <-time.After(noticeWait):
		tb.Fatalf("no revocation within %v", noticeWait)
		return store.Revocation{}
	}
}

// Collect commits the sentinel and returns the revocations received before
// it, in the order received.
func (ln *Listener) Collect(tb testing.TB) []store.Revocation {
	tb.Helper()
	ln.sentinel(tb)
	var got []store.Revocation
	deadline := time.After(noticeWait)
	for {
		select {
		case r := <-ln.revoked:
			if r == SentinelRevocation {
				return got
			}
			got = append(got, r)
		case <-deadline:
			tb.Fatalf("the sentinel did not arrive within %v; got %v before it", noticeWait, got)
		}
	}
}

// WantRevocations asserts that exactly want, in any order and each once,
// arrives before the sentinel.
func (ln *Listener) WantRevocations(tb testing.TB, want ...store.Revocation) {
	tb.Helper()
	got := ln.Collect(tb)
	slices.SortFunc(got, compareRevocations)
	want = slices.Clone(want)
	slices.SortFunc(want, compareRevocations)
	if !slices.Equal(got, want) {
		tb.Fatalf("revocations %v, want %v", got, want)
	}
}

func compareRevocations(a, b store.Revocation) int {
	if c := strings.Compare(a.UserID, b.UserID); c != 0 {
		return c
	}
	return strings.Compare(a.DeviceID, b.DeviceID)
}

// RunRevocations runs the revocation-listener suite: every store operation
// that revokes an access token, and an operator's SQL, is delivered as
// exactly the devices it touched; operations that revoke nothing, and
// tokens long expired, are not. open must return a fresh fixture for the
// given (sub)test and arrange for its cleanup.
func RunRevocations(t *testing.T, open func(t *testing.T) RevocationFixture) {
	t.Helper()
	for _, c := range revocationCases {
		t.Run(c.name, func(t *testing.T) {
			f := open(t)
			for _, u := range []string{alice, bob} {
				mustCreateUser(t, f.Store, newUser(u))
			}
			c.run(t, &revocationTest{RevocationFixture: f, now: time.Now().UTC()})
		})
	}
}

// revocationTest is a fixture whose users alice and bob exist.
type revocationTest struct {
	RevocationFixture
	now  time.Time // the test's start, by which live and expired tokens are set
	next int       // numbers the tokens login makes
}

// listen starts the listener and waits for its subscription.
func (r *revocationTest) listen(tb testing.TB) *Listener {
	tb.Helper()
	return Listen(tb, r.Listener, r.Sentinel)
}

// token names a new token.
func (r *revocationTest) token() string {
	r.next++
	return fmt.Sprintf("revocation-test-%d", r.next)
}

// login creates (or re-logs in to) a device with an access token expiring
// at expires (zero: never) and, when refresh is set, a refresh token. It
// returns the two tokens.
func (r *revocationTest) login(tb testing.TB, user, device string, expires time.Time, refresh bool) (access, refreshToken string) {
	tb.Helper()
	access = r.token()
	ns := newSession(user, device, device, access, r.now)
	ns.AccessToken.ExpiresAt = expires
	if refresh {
		refreshToken = r.token()
		ns.RefreshToken = &store.RefreshToken{Hash: hash(refreshToken), CreatedAt: r.now}
	}
	mustCreateSession(tb, r.Store, ns)
	return access, refreshToken
}

// standard logs alice in on PHONE and LAPTOP and bob on PHONE.
func (r *revocationTest) standard(tb testing.TB) {
	tb.Helper()
	r.login(tb, alice, "PHONE", time.Time{}, false)
	r.login(tb, alice, "LAPTOP", time.Time{}, false)
	r.login(tb, bob, "PHONE", time.Time{}, false)
}

// refresh exchanges the refresh token old for a pair that expires in an
// hour, and returns the new access and refresh tokens.
func (r *revocationTest) refresh(tb testing.TB, old string, immediate bool) (access, refreshToken string, err error) {
	tb.Helper()
	access, refreshToken = r.token(), r.token()
	x := exchange(old, access, refreshToken, r.now)
	x.Access.ExpiresAt = r.now.Add(time.Hour)
	x.Immediate = immediate
	_, err = r.Store.RefreshSession(tb.Context(), x)
	return access, refreshToken, err
}

func device(user, id string) store.Revocation { return store.Revocation{UserID: user, DeviceID: id} }

var revocationCases = []struct {
	name string
	run  func(t *testing.T, r *revocationTest)
}{
	{"Subscription", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		// Revocations committed before the subscription are not delivered.
		if err := r.Store.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatal(err)
		}
		l := r.listen(t)
		l.WantRevocations(t)
		// Ending the context ends a live subscription, and says so; then
		// ListenRevocations returns and calls nothing more.
		l.Stop()
		if s := l.NextSubscription(t); s.OK || !errors.Is(s.Err, context.Canceled) {
			t.Fatalf("at the end: subscribed(%v, %v), want (false, context.Canceled)", s.OK, s.Err)
		}
		if subs := l.PendingSubscriptions(); len(subs) > 0 {
			t.Fatalf("subscribed called %+v after ListenRevocations ended", subs)
		}
	}},
	{"DeleteDevice", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		if err := r.Store.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "PHONE"))
	}},
	{"OneRevocationPerDevice", func(t *testing.T, r *revocationTest) {
		// A pending refresh leaves the device two live access tokens;
		// deleting it names it once.
		_, r0 := r.login(t, alice, "PHONE", r.now.Add(time.Hour), true)
		if _, _, err := r.refresh(t, r0, false); err != nil {
			t.Fatal(err)
		}
		l := r.listen(t)
		if err := r.Store.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "PHONE"))
	}},
	{"DeleteAllDevices", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		if n, err := r.Store.DeleteAllDevices(t.Context(), alice); err != nil || n != 2 {
			t.Fatalf("DeleteAllDevices = %d, %v", n, err)
		}
		l.WantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
	}},
	{"DeactivateUser", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		if err := r.Store.DeactivateUser(t.Context(), alice, r.now, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
		// Again: no device is left, and nothing is revoked.
		if err := r.Store.DeactivateUser(t.Context(), alice, r.now, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t)
	}},
	{"Lock", func(t *testing.T, r *revocationTest) {
		// A lock revokes nothing but is announced as every token of the
		// user, so that caches drop them; unlocking and locking a locked
		// user announce nothing.
		r.standard(t)
		l := r.listen(t)
		locked, unlocked := true, false
		if _, err := r.Store.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: r.now, Locked: &locked}); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, store.Revocation{UserID: alice})
		if _, err := r.Store.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: r.now, Locked: &locked}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Store.ModifyUser(t.Context(), store.UserChange{UserID: alice, Now: r.now, Locked: &unlocked}); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t)
		if len(listDevices(t, r.Store, alice)) != 2 {
			t.Fatal("a lock deleted devices")
		}
	}},
	{"DeleteDevices", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		got, err := r.Store.DeleteDevices(t.Context(), alice, []string{"PHONE", "LAPTOP", "TABLET"}, store.UIAGrant{})
		if err != nil || len(got) != 2 {
			t.Fatalf("DeleteDevices = %q, %v", got, err)
		}
		l.WantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
		// Nothing left to delete: nothing revoked.
		if _, err := r.Store.DeleteDevices(t.Context(), alice, []string{"PHONE"}, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t)
	}},
	{"ChangePassword", func(t *testing.T, r *revocationTest) {
		// The caller's device keeps its token: only the others are named.
		keep, _ := r.login(t, alice, "PHONE", time.Time{}, true)
		r.login(t, alice, "LAPTOP", time.Time{}, false)
		r.login(t, bob, "PHONE", time.Time{}, false)
		l := r.listen(t)
		c := store.PasswordChange{UserID: alice, Hash: "$new$", KeepDeviceID: "PHONE", KeepAccessToken: hash(keep)}
		if _, err := r.Store.ChangePassword(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t)
		c.LogoutDevices = true
		if _, err := r.Store.ChangePassword(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "LAPTOP"))
	}},
	{"CreateSession", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		// A new device revokes nothing; a login naming a known device
		// replaces its tokens.
		r.login(t, alice, "TABLET", time.Time{}, false)
		l.WantRevocations(t)
		r.login(t, alice, "PHONE", time.Time{}, true)
		l.WantRevocations(t, device(alice, "PHONE"))
	}},
	{"RefreshSession", func(t *testing.T, r *revocationTest) {
		_, r1 := r.login(t, alice, "PHONE", r.now.Add(time.Hour), true)
		l := r.listen(t)
		// A rotation issues a pending pair and revokes nothing yet.
		_, r2, err := r.refresh(t, r1, false)
		if err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t)
		// Refreshing with the pending r2 confirms its pair: the first
		// access token goes.
		_, r3, err := r.refresh(t, r2, false)
		if err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "PHONE"))
		// /tokenrefresh confirms at once, revoking the access token
		// issued with the old refresh token.
		if _, _, err := r.refresh(t, r3, true); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, device(alice, "PHONE"))
		// A replay of the exchanged and superseded r1 deletes the device.
		if _, _, err := r.refresh(t, r1, false); !errors.Is(err, store.ErrTokenReplayed) {
			t.Fatalf("replay = %v, want ErrTokenReplayed", err)
		}
		l.WantRevocations(t, device(alice, "PHONE"))
	}},
	{"ConfirmAccessToken", func(t *testing.T, r *revocationTest) {
		_, r1 := r.login(t, alice, "PHONE", r.now.Add(time.Hour), true)
		r.login(t, bob, "PHONE", time.Time{}, false)
		l := r.listen(t)
		a2, _, err := r.refresh(t, r1, false)
		if err != nil {
			t.Fatal(err)
		}
		mustConfirm(t, r.Store, a2, r.now)
		l.WantRevocations(t, device(alice, "PHONE"))
		// Confirming a confirmed token writes nothing.
		mustConfirm(t, r.Store, a2, r.now)
		l.WantRevocations(t)
	}},
	{"OperatorDelete", func(t *testing.T, r *revocationTest) {
		r.standard(t)
		l := r.listen(t)
		r.Exec(t, `DELETE FROM access_tokens WHERE user_id = '`+alice+`'`)
		l.WantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
		// Deleting the user cascades through its devices.
		r.Exec(t, `DELETE FROM users WHERE user_id = '`+bob+`'`)
		l.WantRevocations(t, device(bob, "PHONE"))
	}},
	{"Sweep", func(t *testing.T, r *revocationTest) {
		// The sweeper deletes tokens long expired, which no cache holds:
		// they are not announced. Tokens expired within the hour (a
		// replica's clock may run behind the database's) are.
		r.login(t, alice, "WEEK", r.now.Add(-8*24*time.Hour), false)
		r.login(t, alice, "HOURS", r.now.Add(-2*time.Hour), false)
		r.login(t, alice, "RECENT", r.now.Add(-30*time.Minute), false)
		r.login(t, alice, "LIVE", r.now.Add(time.Hour), false)
		r.login(t, bob, "FOREVER", time.Time{}, false)
		l := r.listen(t)
		// As serve sweeps: a week's retention.
		mustSweep(t, r.Store, r.now.Add(-7*24*time.Hour), 1)
		l.WantRevocations(t)
		mustSweep(t, r.Store, r.now, 2)
		l.WantRevocations(t, device(alice, "RECENT"))
	}},
}
