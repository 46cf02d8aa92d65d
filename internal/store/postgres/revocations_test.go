package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/storetest"
)

// The listener and the revocations share one store, as in serve; the
// sentinel and an operator's SQL go through connections of their own.
func TestListenRevocations(t *testing.T) {
	storetest.RunRevocations(t, func(t *testing.T) storetest.RevocationFixture {
		db, url := newMigratedDB(t)
		return storetest.RevocationFixture{
			Listener: db,
			Store:    db,
			Exec:     func(tb testing.TB, query string) { exec(tb, url, query) },
			Sentinel: sentinel(url),
		}
	})
}

// newMigratedDB is newDB, migrated up.
func newMigratedDB(tb testing.TB, opts ...postgres.Option) (*postgres.DB, string) {
	tb.Helper()
	db, url := newDB(tb, opts...)
	if err := db.MigrateUp(tb.Context()); err != nil {
		tb.Fatalf("MigrateUp: %v", err)
	}
	return db, url
}

// sentinel returns a function that notifies storetest.SentinelRevocation
// on the database at url.
func sentinel(url string) func(tb testing.TB) {
	return func(tb testing.TB) {
		tb.Helper()
		exec(tb, url, fmt.Sprintf(`SELECT pg_notify('authd_revoked', '["%s","%s"]')`,
			storetest.SentinelRevocation.UserID, storetest.SentinelRevocation.DeviceID))
	}
}

// listen starts ListenRevocations on db and waits for its subscription;
// the sentinel is notified on the database at url. It is stopped when the
// test ends.
func listen(tb testing.TB, db *postgres.DB, url string) *storetest.Listener {
	tb.Helper()
	return storetest.Listen(tb, db, sentinel(url))
}

const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
)

// fixture is a migrated store whose users alice and bob exist, with a URL
// for statements outside it, for what the shared suite does not cover.
type fixture struct {
	db   *postgres.DB
	url  string
	now  time.Time
	next byte // the first byte of the next token hash
}

func newFixture(tb testing.TB, opts ...postgres.Option) *fixture {
	tb.Helper()
	db, url := newMigratedDB(tb, opts...)
	f := &fixture{db: db, url: url, now: time.Now().UTC()}
	for _, u := range []string{alice, bob} {
		f.createUser(tb, u)
	}
	return f
}

func (f *fixture) createUser(tb testing.TB, id string) {
	tb.Helper()
	if err := f.db.CreateUser(tb.Context(), store.User{ID: id, PasswordHash: "$h$", CreatedAt: f.now}); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
}

// login creates (or re-logs in to) a device with an access token that
// does not expire.
func (f *fixture) login(tb testing.TB, user, device string) {
	tb.Helper()
	f.next++
	var h store.TokenHash
	h[0], h[1] = f.next, 0xA5
	if err := f.db.CreateSession(tb.Context(), store.NewSession{
		Device:      store.Device{UserID: user, ID: device, CreatedAt: f.now, LastSeenAt: f.now},
		AccessToken: store.AccessToken{Hash: h, CreatedAt: f.now},
	}); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
}

// standard logs alice in on PHONE and LAPTOP and bob on PHONE.
func (f *fixture) standard(tb testing.TB) {
	tb.Helper()
	for _, d := range []store.Revocation{device(alice, "PHONE"), device(alice, "LAPTOP"), device(bob, "PHONE")} {
		f.login(tb, d.UserID, d.DeviceID)
	}
}

func device(user, id string) store.Revocation { return store.Revocation{UserID: user, DeviceID: id} }

// A transaction rolled back sends no notice.
func TestListenRevocations_RolledBack(t *testing.T) {
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
	l.WantRevocations(t)
}

// TRUNCATE, which fires no DELETE trigger and names no rows, is announced
// as a revocation of every token.
func TestListenRevocations_Truncate(t *testing.T) {
	f := newFixture(t)
	f.standard(t)
	l := listen(t, f.db, f.url)
	exec(t, f.url, `TRUNCATE access_tokens`)
	l.WantRevocations(t, store.Revocation{})
	f.standard(t)
	// Truncated by cascade, the tokens are announced all the same.
	exec(t, f.url, `TRUNCATE devices CASCADE`)
	l.WantRevocations(t, store.Revocation{})
}

// pg_notify fails on a payload of 8000 bytes: a device or user ID that
// long must neither fail the logout nor go unannounced.
func TestListenRevocations_LongIDs(t *testing.T) {
	f := newFixture(t)
	// IDs this long fit the btree indexes only because they compress.
	long := strings.Repeat("D", 8<<10)
	justShort := strings.Repeat("d", 6900)
	f.login(t, alice, long)
	f.login(t, alice, justShort)
	longUser := "@" + strings.Repeat("u", 7100) + ":example.org"
	f.createUser(t, longUser)
	f.login(t, longUser, "PHONE")
	l := listen(t, f.db, f.url)

	if err := f.db.DeleteDevice(t.Context(), alice, long); err != nil {
		t.Fatalf("logout of a device with an 8 KiB ID: %v", err)
	}
	l.WantRevocations(t, store.Revocation{UserID: alice})
	if err := f.db.DeleteDevice(t.Context(), alice, justShort); err != nil {
		t.Fatal(err)
	}
	l.WantRevocations(t, device(alice, justShort))
	if err := f.db.DeleteDevice(t.Context(), longUser, "PHONE"); err != nil {
		t.Fatalf("logout of a user with a 7 KiB ID: %v", err)
	}
	l.WantRevocations(t, store.Revocation{})
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
	l.WantRevocations(t, store.Revocation{})
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
		lost := l.NextSubscription(t)
		if lost.OK || !errors.Is(lost.Err, store.ErrUnavailable) || !strings.HasPrefix(lost.Err.Error(), "postgres: listen: ") {
			t.Fatalf("round %d: after the backend was terminated: subscribed(%v, %v), want (false, a postgres: listen: error wrapping ErrUnavailable)", round, lost.OK, lost.Err)
		}
		if back := l.NextSubscription(t); !back.OK || back.Err != nil {
			t.Fatalf("round %d: subscribed(%v, %v), want (true, nil)", round, back.OK, back.Err)
		}
		f.login(t, alice, "PHONE")
		l.WantRevocations(t, device(alice, "PHONE"))
	}
	// Ending the context ends a live subscription, and says so.
	l.Stop()
	if s := l.NextSubscription(t); s.OK || !errors.Is(s.Err, context.Canceled) {
		t.Fatalf("at the end: subscribed(%v, %v), want (false, context.Canceled)", s.OK, s.Err)
	}
	if subs := l.PendingSubscriptions(); len(subs) > 0 {
		t.Fatalf("subscribed called %+v after ListenRevocations returned", subs)
	}
}

// A server that stops answering without closing the connection (frozen,
// or across a partition) is noticed by the idle check: the subscription
// is reported lost, and renewed once the server answers again.
func TestListenRevocations_FrozenServer(t *testing.T) {
	t.Parallel() // its timings are its DB's own
	c := pgtest.NewCluster(t)
	db, err := postgres.Open(t.Context(), c.URL(), postgres.ListenTimings(300*time.Millisecond, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := listen(t, db, c.URL())

	c.Freeze()
	lost := l.NextSubscription(t)
	if lost.OK || !errors.Is(lost.Err, context.DeadlineExceeded) || !strings.HasPrefix(lost.Err.Error(), "postgres: listen: ping: ") {
		t.Fatalf("frozen server: subscribed(%v, %v), want (false, a failed ping)", lost.OK, lost.Err)
	}
	c.Thaw()
	// Attempts made while it was frozen may fail and be reported too.
	for {
		s := l.NextSubscription(t)
		if s.OK {
			if s.Err != nil {
				t.Fatalf("subscribed(%v) while live, want a nil error", s.Err)
			}
			break
		}
	}
	l.WantRevocations(t)
	exec(t, c.URL(), `SELECT pg_notify('authd_revoked', '["@a:x","D"]')`)
	l.WantRevocations(t, device("@a:x", "D"))
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
	l := storetest.StartListener(t, db, sentinel(c.URL()))
	for range 2 {
		if s := l.NextSubscription(t); s.OK || !errors.Is(s.Err, store.ErrUnavailable) {
			t.Fatalf("server down: subscribed(%v, %v), want (false, ErrUnavailable)", s.OK, s.Err)
		}
	}
	c.Start()
	for {
		s := l.NextSubscription(t)
		if s.OK {
			break
		}
	}
	l.WantRevocations(t)
}

// A database that accepts LISTEN and delivers nothing (a pooler in
// transaction mode) never makes the listener live: its probe, sent through
// the pool, does not come back, so the subscription is reported failed and
// retried, and the cache stays bypassed. Once notices are delivered again,
// it goes live, first probing an idle connection too.
func TestListenRevocations_NotDelivering(t *testing.T) {
	t.Parallel() // its timings are its DB's own
	f := newFixture(t, postgres.ListenTimings(300*time.Millisecond, 300*time.Millisecond))
	f.db.SendProbesTo("authd_nowhere")
	l := storetest.StartListener(t, f.db, sentinel(f.url))
	for range 2 {
		s := l.NextSubscription(t)
		if s.OK || !errors.Is(s.Err, postgres.ErrNotDelivering) || !strings.HasPrefix(s.Err.Error(), "postgres: listen: ") {
			t.Fatalf("notices not delivered: subscribed(%v, %v), want (false, ErrNotDelivering)", s.OK, s.Err)
		}
	}
	f.db.SendProbesTo("")
	for {
		s := l.NextSubscription(t)
		if s.OK {
			break
		}
		if !errors.Is(s.Err, postgres.ErrNotDelivering) {
			t.Fatalf("subscribed(%v, %v) while recovering", s.OK, s.Err)
		}
	}
	exec(t, f.url, `SELECT pg_notify('authd_revoked', '["@a:x","D"]')`)
	l.WantRevocations(t, device("@a:x", "D"))
	// Live, then delivery stops: the next idle probe notices.
	f.db.SendProbesTo("authd_nowhere")
	if s := l.NextSubscription(t); s.OK || !errors.Is(s.Err, postgres.ErrNotDelivering) {
		t.Fatalf("delivery stopped while live: subscribed(%v, %v), want (false, ErrNotDelivering)", s.OK, s.Err)
	}
}
