package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/store/storetest"
)

// The listener runs on one store, as in serve, and the revocations are
// made through a second store on the same file, as by the CLI, another
// process.
func TestListenRevocations(t *testing.T) {
	storetest.RunRevocations(t, func(t *testing.T) storetest.RevocationFixture {
		path := filepath.Join(t.TempDir(), "authd.db")
		return storetest.RevocationFixture{
			Listener: newMigratedDB(t, path),
			Store:    newDB(t, path),
			Exec:     func(tb testing.TB, query string) { exec(tb, path, query) },
			Sentinel: func(tb testing.TB) { sentinel(tb, path) },
		}
	})
}

// sentinel commits storetest.SentinelRevocation on the file at path.
func sentinel(tb testing.TB, path string) {
	tb.Helper()
	insertRevocations(tb, path, time.Now().UnixMicro(), storetest.SentinelRevocation)
}

// insertRevocations commits rows naming rs, revoked at revokedAt
// (microseconds since the Unix epoch), in one transaction.
func insertRevocations(tb testing.TB, path string, revokedAt int64, rs ...store.Revocation) {
	tb.Helper()
	var q strings.Builder
	q.WriteString(`INSERT INTO revocations (user_id, device_id, revoked_at) VALUES `)
	for i, r := range rs {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "('%s', '%s', %d)", r.UserID, r.DeviceID, revokedAt)
	}
	exec(tb, path, q.String())
}

// listenFixture is a migrated file with alice logged in on PHONE and
// LAPTOP, a store listening on it and a second store on it.
type listenFixture struct {
	path     string
	listener *sqlite.DB
	other    *sqlite.DB
}

const alice = "@alice:example.org"

func newListenFixture(t *testing.T) *listenFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "authd.db")
	f := &listenFixture{path: path, listener: newMigratedDB(t, path), other: newDB(t, path)}
	now := time.Now().UTC()
	if err := f.other.CreateUser(t.Context(), store.User{ID: alice, PasswordHash: "$h$", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i, device := range []string{"PHONE", "LAPTOP"} {
		var h store.TokenHash
		h[0] = byte(i + 1)
		if err := f.other.CreateSession(t.Context(), store.NewSession{
			Device:      store.Device{UserID: alice, ID: device, CreatedAt: now, LastSeenAt: now},
			AccessToken: store.AccessToken{Hash: h, CreatedAt: now},
		}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *listenFixture) listen(t *testing.T) *storetest.Listener {
	t.Helper()
	return storetest.Listen(t, f.listener, func(tb testing.TB) { sentinel(tb, f.path) })
}

// A transaction rolled back leaves no row, and so no revocation.
func TestListenRevocations_RolledBack(t *testing.T) {
	f := newListenFixture(t)
	l := f.listen(t)
	db, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(t.Context(), `DELETE FROM devices`)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 2 {
		t.Fatalf("DELETE = %d, %v; want 2", n, err)
	}
	if n := queryIntTx(t, tx, `SELECT count(*) FROM revocations`); n != 2 {
		t.Fatalf("%d revocations in the transaction, want 2 (one per cascaded token)", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	l.WantRevocations(t)
	// The rolled-back ids are reused; the listener does not care.
	if err := f.other.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
		t.Fatal(err)
	}
	l.WantRevocations(t, store.Revocation{UserID: alice, DeviceID: "PHONE"})
}

func queryIntTx(tb testing.TB, tx *sql.Tx, query string) int {
	tb.Helper()
	var n int
	if err := tx.QueryRowContext(tb.Context(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// Each poll reports the devices its rows name once each, in the order they
// were revoked; rows an operator writes by hand naming a user (no device)
// or nobody (every token) are passed on as they are.
func TestListenRevocations_Order(t *testing.T) {
	f := newListenFixture(t)
	l := f.listen(t)
	a, b := store.Revocation{UserID: "@a:x", DeviceID: "P"}, store.Revocation{UserID: "@b:x", DeviceID: "P"}
	insertRevocations(t, f.path, time.Now().UnixMicro(), a, b, a, store.Revocation{UserID: "@a:x"}, store.Revocation{}, b)
	want := []store.Revocation{a, b, {UserID: "@a:x"}, {}}
	if got := l.Collect(t); !slices.Equal(got, want) {
		t.Fatalf("revocations %v, want %v", got, want)
	}
}

// A burst of a full batch of rows is one revocation of every token, and
// the listener carries on past it; one row fewer is passed on row by row.
func TestListenRevocations_Burst(t *testing.T) {
	f := newListenFixture(t)
	l := f.listen(t)
	burst := func(n int) []store.Revocation {
		rs := make([]store.Revocation, n)
		for i := range rs {
			rs[i] = store.Revocation{UserID: "@burst:x", DeviceID: fmt.Sprintf("D%04d", i)}
		}
		insertRevocations(t, f.path, time.Now().UnixMicro(), rs...)
		return rs
	}
	// In one transaction, so that one poll reads it whole.
	burst(sqlite.PollBatch)
	if r := l.Next(t); r != (store.Revocation{}) {
		t.Fatalf("first revocation after a burst of %d rows: %+v, want every token", sqlite.PollBatch, r)
	}
	l.WantRevocations(t)
	// Two fewer, so that even read with the sentinel the batch is not full.
	want := burst(sqlite.PollBatch - 2)
	if got := l.Collect(t); !slices.Equal(got, want) {
		t.Fatalf("%d revocations from a burst of %d rows, want each in order", len(got), len(want))
	}
	if err := f.other.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
		t.Fatal(err)
	}
	l.WantRevocations(t, store.Revocation{UserID: alice, DeviceID: "PHONE"})
}

// A failed poll is reported, the subscription renewed with backoff and
// reported again, and revocations after the renewal delivered. Cancelled
// while not subscribed, the listener returns without a word.
func TestListenRevocations_Reconnect(t *testing.T) {
	f := newListenFixture(t)
	l := f.listen(t)
	wantLost := func(s storetest.Subscription) {
		t.Helper()
		if s.OK || s.Err == nil || !strings.HasPrefix(s.Err.Error(), "sqlite: listen: ") || !strings.Contains(s.Err.Error(), "no such table: revocations") {
			t.Fatalf("subscribed(%v, %v), want (false, a sqlite: listen: error naming the missing table)", s.OK, s.Err)
		}
	}
	for round := range 2 {
		exec(t, f.path, `ALTER TABLE revocations RENAME TO revocations_away`)
		wantLost(l.NextSubscription(t))
		exec(t, f.path, `ALTER TABLE revocations_away RENAME TO revocations`)
		// Attempts made while the table was away fail and are reported too.
		for {
			s := l.NextSubscription(t)
			if s.OK {
				if s.Err != nil {
					t.Fatalf("round %d: subscribed(%v) while live, want a nil error", round, s.Err)
				}
				break
			}
			wantLost(s)
		}
		device := []string{"PHONE", "LAPTOP"}[round]
		if err := f.other.DeleteDevice(t.Context(), alice, device); err != nil {
			t.Fatal(err)
		}
		l.WantRevocations(t, store.Revocation{UserID: alice, DeviceID: device})
	}
	exec(t, f.path, `ALTER TABLE revocations RENAME TO revocations_away`)
	wantLost(l.NextSubscription(t))
	l.Stop()
	// A retry that failed as it was stopped may still be reported; a
	// subscription, or its end, may not.
	for _, s := range l.PendingSubscriptions() {
		if s.OK || errors.Is(s.Err, context.Canceled) {
			t.Fatalf("subscribed(%v, %v) after the listener was stopped unsubscribed", s.OK, s.Err)
		}
	}
}

// revocationRows returns the id, device_id and revoked_at of every row of
// the revocations table, by id.
func revocationRows(tb testing.TB, path string) (ids []int64, devices []string, revokedAt []int64) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(tb.Context(), `SELECT id, device_id, revoked_at FROM revocations ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var d string
		if err := rows.Scan(&id, &d, &at); err != nil {
			tb.Fatal(err)
		}
		ids, devices, revokedAt = append(ids, id), append(devices, d), append(revokedAt, at)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids, devices, revokedAt
}

// The trigger writes revoked_at in the schema's representation,
// microseconds since the Unix epoch, by SQLite's clock (to the
// millisecond), which is this process's.
func TestRevocations_RevokedAt(t *testing.T) {
	f := newListenFixture(t)
	before := time.Now().UnixMicro()
	if err := f.other.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMicro()
	_, devices, at := revocationRows(t, f.path)
	if !slices.Equal(devices, []string{"PHONE"}) {
		t.Fatalf("revocations of devices %q, want PHONE", devices)
	}
	const ms = 1000
	if at[0] < before-ms || at[0] > after+ms || at[0]%ms != 0 {
		t.Fatalf("revoked_at %d, want a whole millisecond in [%d, %d]", at[0], before-ms, after+ms)
	}
}

// The sweep prunes revocations older than an hour and keeps the rest,
// without counting them; ids go on from where they were.
func TestDeleteExpiredTokens_PrunesRevocations(t *testing.T) {
	f := newListenFixture(t)
	now := time.Now()
	insertRevocations(t, f.path, now.Add(-2*time.Hour).UnixMicro(), store.Revocation{UserID: "@x:x", DeviceID: "OLD"})
	insertRevocations(t, f.path, now.Add(-61*time.Minute).UnixMicro(), store.Revocation{UserID: "@x:x", DeviceID: "HOUR"})
	insertRevocations(t, f.path, now.Add(-59*time.Minute).UnixMicro(), store.Revocation{UserID: "@x:x", DeviceID: "KEPT"})
	insertRevocations(t, f.path, now.UnixMicro(), store.Revocation{UserID: "@x:x", DeviceID: "NEW"})
	// As serve sweeps: a week's retention for tokens, none of which expired.
	if n, err := f.other.DeleteExpiredTokens(t.Context(), now.Add(-7*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredTokens = %d, %v; want 0 tokens", n, err)
	}
	if ids, devices, _ := revocationRows(t, f.path); !slices.Equal(devices, []string{"KEPT", "NEW"}) || !slices.Equal(ids, []int64{3, 4}) {
		t.Fatalf("revocations after the sweep: ids %v of devices %q, want 3 and 4 of KEPT and NEW", ids, devices)
	}

	// Pruned to nothing, the table goes on numbering after its last row,
	// and a listener subscribed on the empty table hears the next one.
	exec(t, f.path, `UPDATE revocations SET revoked_at = 0`)
	if n, err := f.other.DeleteExpiredTokens(t.Context(), now.Add(-7*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredTokens = %d, %v; want 0 tokens", n, err)
	}
	if ids, _, _ := revocationRows(t, f.path); len(ids) != 0 {
		t.Fatalf("revocations %v after pruning them all", ids)
	}
	l := f.listen(t)
	if err := f.other.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
		t.Fatal(err)
	}
	l.WantRevocations(t, store.Revocation{UserID: alice, DeviceID: "PHONE"})
	if ids, devices, _ := revocationRows(t, f.path); !slices.Equal(ids, []int64{5, 6}) || !slices.Equal(devices, []string{"PHONE", storetest.SentinelRevocation.DeviceID}) {
		t.Fatalf("revocations after pruning: ids %v of devices %q, want 5 and 6 of PHONE and the sentinel", ids, devices)
	}
}
