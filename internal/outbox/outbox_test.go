package outbox_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/outbox"
	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/sqlite"
)

const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
	carol = "@carol:example.org"
)

var (
	t0     = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	secret = []byte("a shared secret for the test")
)

// idleWait is the deliverer's poll interval in these tests: a wait this
// long never ends by itself (fakeClock), so an idle deliverer wakes only
// when its store kicks it.
const idleWait = time.Hour

// fakeClock is the deliverer's time, moved by the test: a wait of
// idleWait or more never ends (the deliverer is idle until kicked); a
// shorter one (a backoff) ends when the test allows it, the clock moved on
// by it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	budget  int // backoffs that may end at once
	pending chan time.Time
	pendD   time.Duration
	// waits, if not nil, receives every wait asked for, if it has room:
	// the deliverer has finished a step.
	waits chan time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	if c.waits != nil {
		select {
		case c.waits <- d:
		default:
		}
	}
	if d >= idleWait {
		return ch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending, c.pendD = ch, d
	c.release()
	return ch
}

// set moves the clock to t.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// allow lets n more backoffs end: the one waited for now, if any, and the
// next ones.
func (c *fakeClock) allow(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budget += n
	c.release()
}

// release ends the pending wait if the budget allows.
func (c *fakeClock) release() {
	if c.pending == nil || c.budget == 0 {
		return
	}
	c.budget--
	c.now = c.now.Add(c.pendD)
	c.pending <- c.now
	c.pending = nil
}

// delivery is one request the receiver answered.
type delivery struct {
	eventID string
	body    struct {
		EventID   string `json:"event_id"`
		Type      string `json:"type"`
		UserID    string `json:"user_id"`
		CreatedAt string `json:"created_at"`
		Content   struct {
			UserID    string   `json:"user_id"`
			DeviceIDs []string `json:"device_ids"`
			Reason    string   `json:"reason"`
			Erase     bool     `json:"erase"`
		} `json:"content"`
	}
	accepted bool
}

// receiver is the homeserver's end: it checks every request's signature,
// answers 503 while down and 204 when up, and records what it answered.
type receiver struct {
	tb  testing.TB
	up  atomic.Bool
	mu  sync.Mutex
	got []delivery
	// answered receives a value (if none is waiting) after each request
	// answered: "look again".
	answered chan struct{}
}

func newReceiver(tb testing.TB) (*receiver, *httptest.Server) {
	r := &receiver{tb: tb, answered: make(chan struct{}, 1)}
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.tb.Errorf("receiver: read body: %v", err)
		return
	}
	ts := req.Header.Get(outbox.HeaderTimestamp)
	sig, ok := strings.CutPrefix(req.Header.Get(outbox.HeaderSignature), "sha256=")
	// The receiver's own check, as docs/homeserver-events.md describes it.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(body)))
	if !ok || !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		r.tb.Errorf("receiver: bad signature %q over %q", req.Header.Get(outbox.HeaderSignature), body)
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.tb.Errorf("receiver: %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
	}
	var d delivery
	d.eventID = req.Header.Get(outbox.HeaderEventID)
	if err := json.Unmarshal(body, &d.body); err != nil {
		r.tb.Errorf("receiver: body %q: %v", body, err)
	}
	if d.eventID == "" || d.eventID != d.body.EventID {
		r.tb.Errorf("receiver: header event ID %q, body's %q", d.eventID, d.body.EventID)
	}
	d.accepted = r.up.Load()
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	if d.accepted {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "down for maintenance, and this body is not logged")
	}
	select {
	case r.answered <- struct{}{}:
	default:
	}
}

// deliveries returns what the receiver answered so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitAnswered waits until the receiver has answered n requests in all.
func (r *receiver) waitAnswered(tb testing.TB, n int) {
	tb.Helper()
	for len(r.deliveries()) < n {
		r.wait(tb)
	}
}

// wait waits for the next request answered.
func (r *receiver) wait(tb testing.TB) {
	tb.Helper()
	select {
	case <-r.answered:
	case <-time.After(time.Minute): // a hang guard, not a timing
		tb.Fatalf("receiver: no request")
	}
}

// waitAccepted waits until the receiver has accepted every event of ids.
func (r *receiver) waitAccepted(tb testing.TB, ids []string) {
	tb.Helper()
	for {
		accepted := map[string]bool{}
		for _, d := range r.deliveries() {
			if d.accepted {
				accepted[d.eventID] = true
			}
		}
		if len(accepted) == len(ids) {
			for _, id := range ids {
				if !accepted[id] {
					tb.Fatalf("receiver accepted %v, want %v", accepted, ids)
				}
			}
			return
		}
		r.wait(tb)
	}
}

// running is a Deliverer's Run in its goroutine.
type running struct {
	stop func()
	done chan error
}

func start(st store.OutboxStore, cfg outbox.Config, kick *atomic.Pointer[outbox.Deliverer]) running {
	d := outbox.New(st, cfg)
	kick.Store(d)
	ctx, cancel := context.WithCancel(context.Background())
	r := running{stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	return r
}

// halt stops the deliverer and waits for Run to return.
func (r running) halt(tb testing.TB) {
	tb.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		tb.Fatalf("Run: %v", err)
	}
}

// fixture is a store that can be closed and opened again on the same
// database, as a restarted process would.
type fixture struct {
	// open opens (and migrates) the database with the outbox on, calling
	// written after each commit that wrote events.
	open func(tb testing.TB, written func()) store.Store
}

// TestDeliverer_ReceiverDownAcrossRestart is the outbox's promise: with the
// receiver down for a while, and authd restarted meanwhile, every device
// deletion (logout, logout/all, refresh replay) reaches the receiver, at
// least once, named by an event ID to deduplicate on, in order per user,
// signed.
func TestDeliverer_ReceiverDownAcrossRestart(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "authd.db")
		runReceiverDownAcrossRestart(t, fixture{open: func(tb testing.TB, written func()) store.Store {
			db, err := sqlite.Open(tb.Context(), path, sqlite.Outbox(written))
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			if err := db.MigrateUp(tb.Context()); err != nil {
				tb.Fatalf("MigrateUp: %v", err)
			}
			return db
		}})
	})
	t.Run("Postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		runReceiverDownAcrossRestart(t, fixture{open: func(tb testing.TB, written func()) store.Store {
			db, err := postgres.Open(tb.Context(), url, postgres.Outbox(written))
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			if err := db.MigrateUp(tb.Context()); err != nil {
				tb.Fatalf("MigrateUp: %v", err)
			}
			return db
		}})
	})
}

func runReceiverDownAcrossRestart(t *testing.T, f fixture) {
	recv, srv := newReceiver(t)
	clock := &fakeClock{now: t0}
	cfg := outbox.Config{
		URL: srv.URL, Secret: secret, Clock: clock,
		MinBackoff: time.Second, MaxBackoff: time.Minute, PollInterval: idleWait,
		LeaseTTL: 30 * time.Second,
	}
	var current atomic.Pointer[outbox.Deliverer]
	kick := func() {
		if d := current.Load(); d != nil {
			d.Kick()
		}
	}
	ctx := t.Context()

	// The first process: the receiver is down from the start.
	st := f.open(t, kick)
	for _, u := range []string{alice, bob, carol} {
		if err := st.CreateUser(ctx, store.User{ID: u, PasswordHash: "$h$", CreatedAt: t0}); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	login(t, st, alice, "PHONE", "")
	login(t, st, alice, "LAPTOP", "")
	login(t, st, alice, "TABLET", "")
	login(t, st, bob, "PHONE", "bob-r0")
	login(t, st, bob, "LAPTOP", "")
	for _, d := range []string{"PHONE", "LAPTOP", "TABLET", "WATCH"} {
		login(t, st, carol, d, "")
	}
	first := start(st, cfg, &current)

	// POST /logout of alice's phone: the receiver refuses it, again and
	// again, each retry after a backoff.
	if err := st.DeleteDevice(ctx, alice, "PHONE"); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	recv.waitAnswered(t, 1)
	clock.allow(1)
	recv.waitAnswered(t, 2)
	// A stolen refresh token of bob's phone is replayed.
	refresh(t, st, "bob-r0", "bob-a1", "bob-r1", false)
	confirm(t, st, "bob-a1")
	if _, err := st.RefreshSession(ctx, exchange("bob-r0", "x", "y")); !errors.Is(err, store.ErrTokenReplayed) {
		t.Fatalf("RefreshSession of a replayed token: %v, want ErrTokenReplayed", err)
	}
	// POST /logout/all of alice.
	if n, err := st.DeleteAllDevices(ctx, alice); err != nil || n != 2 {
		t.Fatalf("DeleteAllDevices = %d, %v", n, err)
	}
	// Carol deletes her watch (DELETE /devices/WATCH), then changes her
	// password from her phone, logging out the rest.
	if ids, err := st.DeleteDevices(ctx, carol, []string{"WATCH"}, store.UIAGrant{}); err != nil || len(ids) != 1 {
		t.Fatalf("DeleteDevices = %v, %v", ids, err)
	}
	if _, err := st.ChangePassword(ctx, store.PasswordChange{UserID: carol, Hash: "$h2$", LogoutDevices: true, KeepDeviceID: "PHONE", KeepAccessToken: sha256.Sum256([]byte(carol + "PHONE"))}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	// Those events wait behind the first, whose backoff ends now.
	clock.allow(1)
	recv.waitAnswered(t, 3)
	first.halt(t)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	down := recv.deliveries()
	for _, d := range down {
		// Head-of-line: while the first event fails, nothing after it is
		// sent.
		if d.accepted || d.eventID != down[0].eventID {
			t.Fatalf("while the receiver was down: %+v after %+v", d, down[0])
		}
	}

	// Between the two processes, the CLI (or another replica) logs bob's
	// laptop out.
	st = f.open(t, nil)
	if err := st.DeleteDevice(ctx, bob, "LAPTOP"); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	// ... and carol deactivates her account, asking for erasure.
	if err := st.DeactivateUser(ctx, carol, t0, true, store.UIAGrant{}); err != nil {
		t.Fatalf("DeactivateUser: %v", err)
	}
	pending, err := st.FindOutboxEvents(ctx, 100)
	if err != nil {
		t.Fatalf("FindOutboxEvents: %v", err)
	}
	// The last attempt's failure may not be recorded: the stop cut it short.
	if len(pending) != 8 || pending[0].Attempts < len(down)-1 || pending[0].Attempts > len(down) ||
		pending[0].LastError != "status_503" || pending[1].Attempts != 0 {
		t.Fatalf("outbox before the restart: %+v, want 8 events, the first tried %d times", pending, len(down))
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The second process, with the receiver back up.
	recv.up.Store(true)
	st = f.open(t, kick)
	defer st.Close()
	second := start(st, cfg, &current)
	// If process 1 recorded its last failure before it stopped, the head
	// event's next attempt is still ahead: let that one backoff end (an
	// unused allowance changes nothing, the receiver refuses no more).
	clock.allow(1)
	var wantIDs []string
	for _, e := range pending {
		wantIDs = append(wantIDs, e.EventID)
	}
	recv.waitAccepted(t, wantIDs)
	second.halt(t)

	// Deduplicated by event ID, in the order first accepted, each user's
	// events are in the order of the changes.
	type change struct {
		reason  string
		devices string
	}
	perUser := map[string][]change{}
	seen := map[string]bool{}
	for _, d := range recv.deliveries() {
		if !d.accepted || seen[d.eventID] {
			continue
		}
		seen[d.eventID] = true
		b := d.body
		if b.UserID != b.Content.UserID || b.CreatedAt == "" {
			t.Fatalf("delivered %+v", b)
		}
		switch b.Type {
		case store.EventDevicesDeleted:
			perUser[b.UserID] = append(perUser[b.UserID], change{b.Content.Reason, strings.Join(b.Content.DeviceIDs, ",")})
		case store.EventUserDeactivated:
			perUser[b.UserID] = append(perUser[b.UserID], change{"user.deactivated", fmt.Sprint("erase=", b.Content.Erase)})
		default:
			t.Fatalf("delivered %+v", b)
		}
	}
	wantAlice := []change{{"logout", "PHONE"}, {"logout_all", "LAPTOP,TABLET"}}
	wantBob := []change{{"refresh_replay", "PHONE"}, {"logout", "LAPTOP"}}
	wantCarol := []change{{"deleted", "WATCH"}, {"password_change", "LAPTOP,TABLET"}, {"deactivated", "PHONE"}, {"user.deactivated", "erase=true"}}
	if !slices.Equal(perUser[alice], wantAlice) || !slices.Equal(perUser[bob], wantBob) || !slices.Equal(perUser[carol], wantCarol) {
		t.Fatalf("received alice %v, bob %v, carol %v; want %v, %v and %v", perUser[alice], perUser[bob], perUser[carol], wantAlice, wantBob, wantCarol)
	}
	// What is still in the outbox was delivered (its deletion was cut
	// short by the stop): it goes again, and is deduplicated.
	left, err := st.FindOutboxEvents(ctx, 100)
	if err != nil {
		t.Fatalf("FindOutboxEvents: %v", err)
	}
	for _, e := range left {
		if !seen[e.EventID] {
			t.Fatalf("event %s left undelivered", e.EventID)
		}
	}
}

func login(tb testing.TB, st store.Store, user, device, refreshToken string) {
	tb.Helper()
	ns := store.NewSession{
		Device:      store.Device{UserID: user, ID: device, CreatedAt: t0, LastSeenAt: t0},
		AccessToken: store.AccessToken{Hash: sha256.Sum256([]byte(user + device)), CreatedAt: t0},
	}
	if refreshToken != "" {
		ns.RefreshToken = &store.RefreshToken{Hash: sha256.Sum256([]byte(refreshToken)), CreatedAt: t0}
	}
	if err := st.CreateSession(tb.Context(), ns); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
}

func exchange(old, access, refresh string) store.Exchange {
	return store.Exchange{
		Old:     sha256.Sum256([]byte(old)),
		Access:  store.AccessToken{Hash: sha256.Sum256([]byte(access)), CreatedAt: t0},
		Refresh: store.RefreshToken{Hash: sha256.Sum256([]byte(refresh)), CreatedAt: t0},
		Now:     t0,
	}
}

func refresh(tb testing.TB, st store.Store, old, access, refreshToken string, immediate bool) {
	tb.Helper()
	e := exchange(old, access, refreshToken)
	e.Immediate = immediate
	if _, err := st.RefreshSession(tb.Context(), e); err != nil {
		tb.Fatalf("RefreshSession: %v", err)
	}
}

func confirm(tb testing.TB, st store.Store, access string) {
	tb.Helper()
	if err := st.ConfirmAccessToken(tb.Context(), sha256.Sum256([]byte(access)), t0); err != nil {
		tb.Fatalf("ConfirmAccessToken: %v", err)
	}
}

// openSQLite opens (and migrates) the SQLite file at path with the outbox
// on, kicking the deliverer kick holds after each commit with events.
func openSQLite(tb testing.TB, path string, kick *atomic.Pointer[outbox.Deliverer]) store.Store {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), path, sqlite.Outbox(func() {
		if d := kick.Load(); d != nil {
			d.Kick()
		}
	}))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.MigrateUp(tb.Context()); err != nil {
		tb.Fatalf("MigrateUp: %v", err)
	}
	return db
}

// logout logs user in on device, then out, writing one event.
func logout(tb testing.TB, st store.Store, user, device string) {
	tb.Helper()
	login(tb, st, user, device, "")
	if err := st.DeleteDevice(tb.Context(), user, device); err != nil {
		tb.Fatalf("DeleteDevice: %v", err)
	}
}

// waitWait waits until the deliverer asks for a wait of d, or for any
// backoff if d is 0: it has finished a step and rests.
func waitWait(tb testing.TB, c *fakeClock, d time.Duration) {
	tb.Helper()
	for {
		select {
		case got := <-c.waits:
			if got == d || d == 0 && got < idleWait {
				return
			}
		case <-time.After(time.Minute): // a hang guard, not a timing
			tb.Fatalf("the deliverer never waited %v", d)
		}
	}
}

// TestDeliverer_OneSender runs two processes' deliverers on one SQLite
// file, each with a receiver of its own: only the one holding the claim
// sends, and the other takes over once it stops.
func TestDeliverer_OneSender(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authd.db")
	clock := &fakeClock{now: t0}
	var kickA, kickB atomic.Pointer[outbox.Deliverer]
	stA, stB := openSQLite(t, path, &kickA), openSQLite(t, path, &kickB)
	for _, u := range []string{alice, bob} {
		if err := stA.CreateUser(t.Context(), store.User{ID: u, PasswordHash: "$h$", CreatedAt: t0}); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	recvA, srvA := newReceiver(t)
	recvB, srvB := newReceiver(t)
	recvA.up.Store(true)
	recvB.up.Store(true)
	cfg := func(url, holder string) outbox.Config {
		return outbox.Config{URL: url, Secret: secret, Clock: clock, PollInterval: idleWait, Holder: holder}
	}
	var ids []string
	for i, st := range []store.Store{stA, stB, stA, stB} {
		logout(t, st, []string{alice, bob}[i%2], "D"+string(rune('1'+i)))
	}
	pending, err := stA.FindOutboxEvents(t.Context(), 100)
	if err != nil || len(pending) != 4 {
		t.Fatalf("FindOutboxEvents = %d events, %v", len(pending), err)
	}
	for _, e := range pending {
		ids = append(ids, e.EventID)
	}

	a := start(stA, cfg(srvA.URL, "A"), &kickA)
	b := start(stB, cfg(srvB.URL, "B"), &kickB)
	// Whichever claims first sends them all.
	var sender, other *receiver
	select {
	case <-recvA.answered:
		sender, other = recvA, recvB
	case <-recvB.answered:
		sender, other = recvB, recvA
	case <-time.After(time.Minute): // a hang guard, not a timing
		t.Fatal("no request")
	}
	sender.waitAccepted(t, ids)
	if n := len(other.deliveries()); n != 0 {
		t.Fatalf("the deliverer without the claim sent %d events", n)
	}

	// The sender stops and hands its claim back; the other delivers what
	// comes next, kicked by its own store.
	next, still := stB, b
	if sender == recvB {
		next, still = stA, a
		b.halt(t)
	} else {
		a.halt(t)
	}
	defer still.halt(t)
	logout(t, next, alice, "D9")
	for {
		got := other.deliveries()
		if n := len(got); n > 0 && slices.Equal(got[n-1].body.Content.DeviceIDs, []string{"D9"}) {
			// Before it, at most what the sender delivered without
			// deleting it yet, sent again: at least once.
			for _, d := range got[:n-1] {
				if !slices.Contains(ids, d.eventID) {
					t.Fatalf("after the handover: %+v", got)
				}
			}
			break
		}
		other.wait(t)
	}
}

// TestDeliverer_LapsedClaim: a process that stopped without handing its
// claim back (a crash) holds the outbox until its lease lapses; then
// another delivers.
func TestDeliverer_LapsedClaim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authd.db")
	clock := &fakeClock{now: t0, waits: make(chan time.Duration, 100)}
	var kick atomic.Pointer[outbox.Deliverer]
	st := openSQLite(t, path, &kick)
	if err := st.CreateUser(t.Context(), store.User{ID: alice, PasswordHash: "$h$", CreatedAt: t0}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if held, err := st.ClaimOutbox(t.Context(), "crashed", t0, 30*time.Second); err != nil || !held {
		t.Fatalf("ClaimOutbox = %t, %v", held, err)
	}
	recv, srv := newReceiver(t)
	recv.up.Store(true)
	r := start(st, outbox.Config{URL: srv.URL, Secret: secret, Clock: clock, PollInterval: idleWait, LeaseTTL: 30 * time.Second}, &kick)
	defer r.halt(t)
	waitWait(t, clock, idleWait) // its first look: not its turn
	logout(t, st, alice, "PHONE")
	waitWait(t, clock, idleWait) // kicked: still not its turn
	if n := len(recv.deliveries()); n != 0 {
		t.Fatalf("%d events sent while another held the claim", n)
	}
	clock.set(t0.Add(30 * time.Second))
	kick.Load().Kick()
	pending, err := st.FindOutboxEvents(t.Context(), 1)
	if err != nil || len(pending) != 1 {
		t.Fatalf("FindOutboxEvents = %d events, %v", len(pending), err)
	}
	recv.waitAccepted(t, []string{pending[0].EventID})
}

// TestDeliverer_Failures: each failure is recorded by its kind alone, and
// the log names neither the receiver's body nor its URL.
func TestDeliverer_Failures(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tt := range []struct {
		name, want string
		handler    http.HandlerFunc
	}{
		{"Status", "status_500", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "stack trace with hunter3")
		}},
		{"Redirect", "status_307", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}},
		{"Connection", "connection", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := strings.Replace(closed.URL, "http://", "http://authd:hunter2@", 1)
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				url = strings.Replace(srv.URL, "http://", "http://authd:hunter2@", 1)
			}
			var logs syncBuffer
			clock := &fakeClock{now: t0, waits: make(chan time.Duration, 100)}
			var kick atomic.Pointer[outbox.Deliverer]
			st := openSQLite(t, filepath.Join(t.TempDir(), "authd.db"), &kick)
			if err := st.CreateUser(t.Context(), store.User{ID: alice, PasswordHash: "$h$", CreatedAt: t0}); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			r := start(st, outbox.Config{
				URL: url, Secret: secret, Clock: clock, PollInterval: idleWait,
				MinBackoff: time.Second, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			}, &kick)
			waitWait(t, clock, idleWait)
			logout(t, st, alice, "PHONE")
			// The first backoff (between 0.5 and 1 s) follows the
			// recorded failure.
			waitWait(t, clock, 0)
			r.halt(t)
			pending, err := st.FindOutboxEvents(t.Context(), 1)
			if err != nil || len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastError != tt.want ||
				!pending[0].NextAttemptAt.After(t0) {
				t.Fatalf("after a failure: %+v, %v; want one attempt, %s", pending, err, tt.want)
			}
			out := logs.String()
			if !strings.Contains(out, tt.want) || strings.Contains(out, "hunter") || strings.Contains(out, "127.0.0.1") {
				t.Fatalf("log:\n%s\nwant the kind %s, and neither the URL nor the body", out, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the deliverer's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
