package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
)

// noticeWait bounds every wait for a notice or a subscription change: far
// above the milliseconds they take, it only keeps a broken test from
// hanging.
const noticeWait = 15 * time.Second

// sentinel is the revocation the sentinel notice carries. A test sends it
// after the operation under test and collects until it arrives: notices
// are delivered in commit order, so whatever the operation sent came
// before it, and "nothing" is proved without sleeping.
var sentinel = store.Revocation{UserID: "@sentinel:x", DeviceID: "S"}

// subscription is one call of ListenRevocations' subscribed.
type subscription struct {
	ok  bool
	err error
}

// listener records what a ListenRevocations goroutine reports.
type listener struct {
	url     string // of the database, for the sentinel
	revoked chan store.Revocation
	subs    chan subscription
	stop    func() // cancels the listener and waits for it to return
}

// listen starts ListenRevocations on db and waits for its subscription.
// It is stopped when the test ends.
func listen(tb testing.TB, db *postgres.DB, url string) *listener {
	tb.Helper()
	l := &listener{url: url, revoked: make(chan store.Revocation, 4096), subs: make(chan subscription, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.ListenRevocations(ctx,
			func(r store.Revocation) { l.revoked <- r },
			func(ok bool, err error) { l.subs <- subscription{ok, err} })
	}()
	l.stop = sync1(func() { cancel(); <-done })
	tb.Cleanup(l.stop)
	if s := l.nextSubscription(tb); !s.ok || s.err != nil {
		tb.Fatalf("first subscribed(%v, %v), want (true, nil)", s.ok, s.err)
	}
	return l
}

// sync1 returns f made safe to call more than once: it runs the first time.
func sync1(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

func (l *listener) nextSubscription(tb testing.TB) subscription {
	tb.Helper()
	select {
	case s := <-l.subs:
		return s
	case <-time.After(noticeWait):
		tb.Fatalf("no call of subscribed within %v", noticeWait)
		return subscription{}
	}
}

// collect sends the sentinel and returns the revocations received before
// it, sorted.
func (l *listener) collect(tb testing.TB) []store.Revocation {
	tb.Helper()
	exec(tb, l.url, fmt.Sprintf(`SELECT pg_notify('authd_revoked', '["%s","%s"]')`, sentinel.UserID, sentinel.DeviceID))
	var got []store.Revocation
	deadline := time.After(noticeWait)
	for {
		select {
		case r := <-l.revoked:
			if r == sentinel {
				slices.SortFunc(got, compareRevocations)
				return got
			}
			got = append(got, r)
		case <-deadline:
			tb.Fatalf("the sentinel notice did not arrive within %v; got %v before it", noticeWait, got)
		}
	}
}

func compareRevocations(a, b store.Revocation) int {
	if c := strings.Compare(a.UserID, b.UserID); c != 0 {
		return c
	}
	return strings.Compare(a.DeviceID, b.DeviceID)
}

// wantRevocations asserts that exactly want (in any order) arrives before
// the sentinel.
func (l *listener) wantRevocations(tb testing.TB, want ...store.Revocation) {
	tb.Helper()
	got := l.collect(tb)
	want = slices.Clone(want)
	slices.SortFunc(want, compareRevocations)
	if !slices.Equal(got, want) {
		tb.Fatalf("revocations %v, want %v", got, want)
	}
}

const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
)

var notifyNow = time.Now().UTC()

// fixture is a migrated store whose users alice and bob exist, with a URL
// for statements outside it.
type fixture struct {
	db   *postgres.DB
	url  string
	next byte // the first byte of the next token hash
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	db, url := newDB(tb)
	if err := db.MigrateUp(tb.Context()); err != nil {
		tb.Fatalf("MigrateUp: %v", err)
	}
	f := &fixture{db: db, url: url}
	for _, u := range []string{alice, bob} {
		f.createUser(tb, u)
	}
	return f
}

func (f *fixture) createUser(tb testing.TB, id string) {
	tb.Helper()
	if err := f.db.CreateUser(tb.Context(), store.User{ID: id, PasswordHash: "$h$", CreatedAt: notifyNow}); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
}

func (f *fixture) hash() store.TokenHash {
	f.next++
	var h store.TokenHash
	h[0], h[1] = f.next, 0xA5
	return h
}

// login creates (or re-logs in to) a device with an access token expiring
// at expires (zero: never) and, when refresh is set, a refresh token. It
// returns the two hashes.
func (f *fixture) login(tb testing.TB, user, device string, expires time.Time, refresh bool) (access, refreshHash store.TokenHash) {
	tb.Helper()
	access = f.hash()
	s := store.NewSession{
		Device:      store.Device{UserID: user, ID: device, CreatedAt: notifyNow, LastSeenAt: notifyNow},
		AccessToken: store.AccessToken{Hash: access, CreatedAt: notifyNow, ExpiresAt: expires},
	}
	if refresh {
		refreshHash = f.hash()
		s.RefreshToken = &store.RefreshToken{Hash: refreshHash, CreatedAt: notifyNow}
	}
	if err := f.db.CreateSession(tb.Context(), s); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return access, refreshHash
}

// standard logs alice in on PHONE and LAPTOP and bob on PHONE.
func (f *fixture) standard(tb testing.TB) {
	tb.Helper()
	f.login(tb, alice, "PHONE", time.Time{}, false)
	f.login(tb, alice, "LAPTOP", time.Time{}, false)
	f.login(tb, bob, "PHONE", time.Time{}, false)
}

func device(user, id string) store.Revocation { return store.Revocation{UserID: user, DeviceID: id} }

// Every store operation that revokes an access token, and an operator's
// SQL, gets exactly the notices of the devices it touched; operations
// that revoke nothing get none.
func TestListenRevocations_Operations(t *testing.T) {
	t.Run("DeleteDevice", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		if err := f.db.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t, device(alice, "PHONE"))
	})

	t.Run("DeleteAllDevices", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		if n, err := f.db.DeleteAllDevices(t.Context(), alice); err != nil || n != 2 {
			t.Fatalf("DeleteAllDevices = %d, %v", n, err)
		}
		l.wantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
	})

	t.Run("DeactivateUser", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		if err := f.db.DeactivateUser(t.Context(), alice, notifyNow); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
		// Again: no device is left, and nothing is revoked.
		if err := f.db.DeactivateUser(t.Context(), alice, notifyNow); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t)
	})

	t.Run("CreateSession", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		// A new device revokes nothing; a login naming a known device
		// replaces its tokens.
		f.login(t, alice, "TABLET", time.Time{}, false)
		l.wantRevocations(t)
		f.login(t, alice, "PHONE", time.Time{}, true)
		l.wantRevocations(t, device(alice, "PHONE"))
	})

	t.Run("RefreshSession", func(t *testing.T) {
		f := newFixture(t)
		_, r1 := f.login(t, alice, "PHONE", notifyNow.Add(time.Hour), true)
		l := listen(t, f.db, f.url)
		// A rotation issues a pending pair and revokes nothing yet.
		r2 := f.hash()
		refresh := func(old, access, refresh store.TokenHash, immediate bool) error {
			_, err := f.db.RefreshSession(t.Context(), store.Refresh{
				Old:       old,
				Access:    store.AccessToken{Hash: access, CreatedAt: notifyNow, ExpiresAt: notifyNow.Add(time.Hour)},
				Refresh:   store.RefreshToken{Hash: refresh, CreatedAt: notifyNow},
				Now:       notifyNow,
				Immediate: immediate,
			})
			return err
		}
		if err := refresh(r1, f.hash(), r2, false); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t)
		// Refreshing with the pending r2 confirms its pair: the first
		// access token goes.
		r3 := f.hash()
		if err := refresh(r2, f.hash(), r3, false); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t, device(alice, "PHONE"))
		// /tokenrefresh confirms at once, revoking the access token
		// issued with the old refresh token.
		if err := refresh(r3, f.hash(), f.hash(), true); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t, device(alice, "PHONE"))
		// A replay of the exchanged and superseded r1 deletes the device.
		if err := refresh(r1, f.hash(), f.hash(), false); !errors.Is(err, store.ErrTokenReplayed) {
			t.Fatalf("replay = %v, want ErrTokenReplayed", err)
		}
		l.wantRevocations(t, device(alice, "PHONE"))
	})

	t.Run("ConfirmAccessToken", func(t *testing.T) {
		f := newFixture(t)
		_, r1 := f.login(t, alice, "PHONE", notifyNow.Add(time.Hour), true)
		f.login(t, bob, "PHONE", time.Time{}, false)
		l := listen(t, f.db, f.url)
		a2 := f.hash()
		if _, err := f.db.RefreshSession(t.Context(), store.Refresh{
			Old:     r1,
			Access:  store.AccessToken{Hash: a2, CreatedAt: notifyNow, ExpiresAt: notifyNow.Add(time.Hour)},
			Refresh: store.RefreshToken{Hash: f.hash(), CreatedAt: notifyNow},
			Now:     notifyNow,
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.ConfirmAccessToken(t.Context(), a2, notifyNow); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t, device(alice, "PHONE"))
		// Confirming a confirmed token writes nothing.
		if err := f.db.ConfirmAccessToken(t.Context(), a2, notifyNow); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t)
	})

	t.Run("OperatorDelete", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		exec(t, f.url, `DELETE FROM access_tokens WHERE user_id = '`+alice+`'`)
		l.wantRevocations(t, device(alice, "LAPTOP"), device(alice, "PHONE"))
		// Deleting the user cascades through its devices.
		exec(t, f.url, `DELETE FROM users WHERE user_id = '`+bob+`'`)
		l.wantRevocations(t, device(bob, "PHONE"))
	})

	t.Run("RolledBack", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		conn, err := pgx.Connect(t.Context(), f.url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		tx, err := conn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tag, err := tx.Exec(t.Context(), `DELETE FROM access_tokens`); err != nil || tag.RowsAffected() != 3 {
			t.Fatalf("DELETE = %v, %v", tag, err)
		}
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		l.wantRevocations(t)
	})

	t.Run("Truncate", func(t *testing.T) {
		f := newFixture(t)
		f.standard(t)
		l := listen(t, f.db, f.url)
		exec(t, f.url, `TRUNCATE access_tokens`)
		l.wantRevocations(t, store.Revocation{})
		f.standard(t)
		// Truncated by cascade, the tokens are announced all the same.
		exec(t, f.url, `TRUNCATE devices CASCADE`)
		l.wantRevocations(t, store.Revocation{})
	})
}

// The sweeper deletes tokens long expired, which no cache holds: they are
// not announced. Tokens expired within the hour (a replica's clock may run
// behind the database's) are.
func TestListenRevocations_Sweep(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	f.login(t, alice, "WEEK", now.Add(-8*24*time.Hour), false)
	f.login(t, alice, "HOURS", now.Add(-2*time.Hour), false)
	f.login(t, alice, "RECENT", now.Add(-30*time.Minute), false)
	f.login(t, alice, "LIVE", now.Add(time.Hour), false)
	f.login(t, bob, "FOREVER", time.Time{}, false)
	l := listen(t, f.db, f.url)

	// As serve sweeps: a week's retention.
	if n, err := f.db.DeleteExpiredTokens(t.Context(), now.Add(-7*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredTokens(a week ago) = %d, %v; want 1", n, err)
	}
	l.wantRevocations(t)
	if n, err := f.db.DeleteExpiredTokens(t.Context(), now); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredTokens(now) = %d, %v; want 2", n, err)
	}
	l.wantRevocations(t, device(alice, "RECENT"))
}

// pg_notify fails on a payload of 8000 bytes: a device or user ID that
// long must neither fail the logout nor go unannounced.
func TestListenRevocations_LongIDs(t *testing.T) {
	f := newFixture(t)
	// IDs this long fit the btree indexes only because they compress.
	long := strings.Repeat("D", 8<<10)
	justShort := strings.Repeat("d", 6900)
	f.login(t, alice, long, time.Time{}, false)
	f.login(t, alice, justShort, time.Time{}, false)
	longUser := "@" + strings.Repeat("u", 7100) + ":example.org"
	f.createUser(t, longUser)
	f.login(t, longUser, "PHONE", time.Time{}, false)
	l := listen(t, f.db, f.url)

	if err := f.db.DeleteDevice(t.Context(), alice, long); err != nil {
		t.Fatalf("logout of a device with an 8 KiB ID: %v", err)
	}
	l.wantRevocations(t, store.Revocation{UserID: alice})
	if err := f.db.DeleteDevice(t.Context(), alice, justShort); err != nil {
		t.Fatal(err)
	}
	l.wantRevocations(t, device(alice, justShort))
	if err := f.db.DeleteDevice(t.Context(), longUser, "PHONE"); err != nil {
		t.Fatalf("logout of a user with a 7 KiB ID: %v", err)
	}
	l.wantRevocations(t, store.Revocation{})
}

func TestParseRevocation(t *testing.T) {
	for payload, want := range map[string]store.Revocation{
		`["@a:x","D"]`:      device("@a:x", "D"),
		`["@a:x"]`:          {UserID: "@a:x"},
		`["@a:x",""]`:       {UserID: "@a:x"},
		`[]`:                {},
		`[""]`:              {},
		`["", "D"]`:         {},
		`["@a:x","D","E"]`:  {},
		`["@a:x",1]`:        {},
		`{"user":"@a:x"}`:   {},
		`not json`:          {},
		``:                  {},
		`["@a:\u00e9","D"]`: device("@a:é", "D"),
	} {
		if got := postgres.ParseRevocation(payload); got != want {
			t.Errorf("parseRevocation(%q) = %+v, want %+v", payload, got, want)
		}
	}
}

// A notice authd cannot read names unknown tokens: it arrives as a
// revocation of everything.
func TestListenRevocations_Malformed(t *testing.T) {
	f := newFixture(t)
	l := listen(t, f.db, f.url)
	exec(t, f.url, `SELECT pg_notify('authd_revoked', 'garbage')`)
	l.wantRevocations(t, store.Revocation{})
}

// terminateListener ends the listener's backend, as a server restart or
// an operator would, and returns how many backends it ended.
func terminateListener(tb testing.TB, url string) int {
	tb.Helper()
	return queryInt(tb, url, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = '`+postgres.ListenerApplicationName+`' AND datname = current_database()`)
}

// A lost subscription is reported, renewed, and reported again; notices
// after the renewal are delivered.
func TestListenRevocations_Reconnect(t *testing.T) {
	f := newFixture(t)
	f.standard(t)
	l := listen(t, f.db, f.url)
	for round := range 3 {
		if n := terminateListener(t, f.url); n != 1 {
			t.Fatalf("round %d: terminated %d listener backends, want 1", round, n)
		}
		lost := l.nextSubscription(t)
		if lost.ok || !errors.Is(lost.err, store.ErrUnavailable) || !strings.HasPrefix(lost.err.Error(), "postgres: listen: ") {
			t.Fatalf("round %d: after the backend was terminated: subscribed(%v, %v), want (false, a postgres: listen: error wrapping ErrUnavailable)", round, lost.ok, lost.err)
		}
		if back := l.nextSubscription(t); !back.ok || back.err != nil {
			t.Fatalf("round %d: subscribed(%v, %v), want (true, nil)", round, back.ok, back.err)
		}
		f.login(t, alice, "PHONE", time.Time{}, false)
		l.wantRevocations(t, device(alice, "PHONE"))
	}
	// Ending the context ends a live subscription, and says so.
	l.stop()
	if s := l.nextSubscription(t); s.ok || !errors.Is(s.err, context.Canceled) {
		t.Fatalf("at the end: subscribed(%v, %v), want (false, context.Canceled)", s.ok, s.err)
	}
	select {
	case s := <-l.subs:
		t.Fatalf("subscribed(%v, %v) after ListenRevocations returned", s.ok, s.err)
	default:
	}
}

// A server that stops answering without closing the connection (frozen,
// or across a partition) is noticed by the idle check: the subscription
// is reported lost, and renewed once the server answers again.
func TestListenRevocations_FrozenServer(t *testing.T) {
	postgres.SetListenTimings(t, 300*time.Millisecond, 300*time.Millisecond)
	c := pgtest.NewCluster(t)
	db, err := postgres.Open(t.Context(), c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := listen(t, db, c.URL())

	c.Freeze()
	lost := l.nextSubscription(t)
	if lost.ok || !errors.Is(lost.err, context.DeadlineExceeded) || !strings.HasPrefix(lost.err.Error(), "postgres: listen: ping: ") {
		t.Fatalf("frozen server: subscribed(%v, %v), want (false, a failed ping)", lost.ok, lost.err)
	}
	c.Thaw()
	// Attempts made while it was frozen may fail and be reported too.
	for {
		s := l.nextSubscription(t)
		if s.ok {
			if s.err != nil {
				t.Fatalf("subscribed(true, %v), want a nil error", s.err)
			}
			break
		}
	}
	l.wantRevocations(t)
	exec(t, c.URL(), `SELECT pg_notify('authd_revoked', '["@a:x","D"]')`)
	l.wantRevocations(t, device("@a:x", "D"))
}

// A server that is down at the start is retried until it is up.
func TestListenRevocations_ServerDown(t *testing.T) {
	c := pgtest.NewCluster(t)
	db, err := postgres.Open(t.Context(), c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c.Stop()
	l := &listener{url: c.URL(), revoked: make(chan store.Revocation, 16), subs: make(chan subscription, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.ListenRevocations(ctx,
			func(r store.Revocation) { l.revoked <- r },
			func(ok bool, err error) { l.subs <- subscription{ok, err} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	for range 2 {
		if s := l.nextSubscription(t); s.ok || !errors.Is(s.err, store.ErrUnavailable) {
			t.Fatalf("server down: subscribed(%v, %v), want (false, ErrUnavailable)", s.ok, s.err)
		}
	}
	c.Start()
	for {
		s := l.nextSubscription(t)
		if s.ok {
			break
		}
	}
	l.wantRevocations(t)
}
