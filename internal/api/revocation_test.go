package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/tokencache"
)

// revocationWait bounds the wait for a notice or a subscription, so that
// one that never comes fails the test instead of hanging it. It is no
// latency requirement: the tests assert the order of events, and the
// benchmark reports how long delivery takes.
const revocationWait = 5 * time.Second

// noticeGate stands between a replica's revocation listener and its token
// cache: each notice is announced on arrived, held until the test sends on
// release, and announced again on applied once the cache has dropped what
// it names. A test can so ask the replica before and after a notice
// reaches its cache.
type noticeGate struct {
	arrived, applied chan store.Revocation
	release          chan struct{}
}

func newNoticeGate() *noticeGate {
	return &noticeGate{arrived: make(chan store.Revocation), applied: make(chan store.Revocation), release: make(chan struct{})}
}

// feed passes r to c, between announcing and releasing it. ctx ends the
// wait of a notice the test no longer takes.
func (g *noticeGate) feed(ctx context.Context, c *tokencache.Cache, r store.Revocation) {
	select {
	case g.arrived <- r:
	case <-ctx.Done():
		return
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return
	}
	c.Revoked(r)
	select {
	case g.applied <- r:
	case <-ctx.Done():
	}
}

// next returns the notice waiting at the gate, which holds it.
func (g *noticeGate) next(t *testing.T) store.Revocation {
	t.Helper()
	select {
	case r := <-g.arrived:
		return r
	case <-time.After(revocationWait):
		t.Fatalf("no revocation notice within %v", revocationWait)
		return store.Revocation{}
	}
}

// let passes the held notice r to the cache, and returns once the cache
// has dropped what it names.
func (g *noticeGate) let(t *testing.T, r store.Revocation) {
	t.Helper()
	g.release <- struct{}{}
	if got := <-g.applied; got != r {
		t.Fatalf("applied notice %+v, want the held %+v", got, r)
	}
}

// replica is one authd process of several on one database: its own store
// (pool), token cache, handler and HTTP server.
type replica struct {
	*harness
	cs    *countingStore
	cache *tokencache.Cache
	gate  *noticeGate // nil: notices go straight to the cache
	srv   *httptest.Server
}

// openStore opens and migrates (once is enough; again is a no-op) a
// store on the database at url, closed when the test ends.
func openStore(t *testing.T, url string) *postgres.DB {
	t.Helper()
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// newReplica serves a replica on the database at url. With listen, its
// cache is fed by its store's revocation listener, as cmd/authd wires it:
// not trusted until subscribed, suspended while the subscription is lost.
// With gate too, every notice passes through it.
func newReplica(t *testing.T, url string, listen bool, gate *noticeGate) *replica {
	t.Helper()
	st := openStore(t, url)
	c := tokencache.New(testTokenCacheTTL, 0)
	if listen {
		c.Suspend()
		ctx, cancel := context.WithCancel(context.Background())
		revoked := c.Revoked
		if gate != nil {
			revoked = func(r store.Revocation) { gate.feed(ctx, c, r) }
		}
		live, done := make(chan struct{}, 1), make(chan struct{})
		go func() {
			defer close(done)
			st.ListenRevocations(ctx, revoked, func(err error) {
				if err != nil {
					c.Suspend()
					return
				}
				c.Resume()
				select {
				case live <- struct{}{}:
				default:
				}
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-live:
		case <-time.After(revocationWait):
			t.Fatalf("the revocation listener did not subscribe within %v", revocationWait)
		}
	}
	h, cs := newCachedHarness(t, st, func(d *api.Deps) { d.TokenCache = c })
	srv := httptest.NewServer(h.h)
	t.Cleanup(srv.Close)
	return &replica{harness: h, cs: cs, cache: c, gate: gate, srv: srv}
}

// call sends a request to the replica's server, checks the response
// against the Matrix schemas, and returns it.
func (r *replica) call(method, path, body, tok string) response {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	checkSpec(r.t, req, res)
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		r.t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
	}
	return out
}

// bare sends a request with no body to the replica's server and returns
// the status and errcode, without the schema check.
func (r *replica) bare(method, path, tok string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Errcode string `json:"errcode"`
	}
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res.StatusCode, e.Errcode
}

// logoutOn logs tok out on r (path is /logout or /logout/all).
func (r *replica) logoutOn(path, tok string) {
	r.t.Helper()
	if status, errcode := r.bare("POST", path, tok); status != http.StatusOK {
		r.t.Fatalf("POST %s = %d %s", path, status, errcode)
	}
}

// loginOn logs a device in on r and returns its access token.
func (r *replica) loginOn(user, device string) string {
	r.t.Helper()
	res := r.call("POST", "/_matrix/client/v3/login",
		`{"type":"m.login.password","user":"`+user+`","password":"pw","device_id":"`+device+`"}`, "")
	if res.status != http.StatusOK || res.str("access_token") == "" {
		r.t.Fatalf("login: %d %s", res.status, res.raw)
	}
	return res.str("access_token")
}

// cacheOn validates tok on r twice and checks that the second answer came
// from r's cache.
func (r *replica) cacheOn(tok, userID string) {
	r.t.Helper()
	for i := range 2 {
		before := r.cs.finds.Load()
		res := r.call("GET", whoamiPath, "", tok)
		if res.status != http.StatusOK || res.str("user_id") != userID {
			r.t.Fatalf("whoami = %d %s", res.status, res.raw)
		}
		if i == 1 && r.cs.finds.Load() != before {
			r.t.Fatal("the token was not cached")
		}
	}
}

// wantCachedAnswer checks that r accepts tok for userID from its cache,
// without asking the store.
func (r *replica) wantCachedAnswer(tok, userID string) {
	r.t.Helper()
	before := r.cs.finds.Load()
	if status, errcode := r.bare("GET", whoamiPath, tok); status != http.StatusOK {
		r.t.Fatalf("whoami before the notice reached the cache = %d %s, want 200", status, errcode)
	}
	if r.cs.finds.Load() != before {
		r.t.Fatal("the token was not answered from the cache")
	}
}

// wantRefused checks that r refuses tok as a revoked token, against the
// schemas.
func (r *replica) wantRefused(tok string) {
	r.t.Helper()
	res := r.call("GET", whoamiPath, "", tok)
	wantError(r.t, res, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	if res.body["soft_logout"] != false {
		r.t.Fatalf("revoked token: soft_logout %v, want false", res.body["soft_logout"])
	}
}

// replicas serves two replicas, A and B, on one fresh database, and
// creates alice and bob there. With listen, B's notices pass through a
// gate.
func replicas(t *testing.T, listen bool) (a, b *replica, url string) {
	t.Helper()
	url = pgtest.NewDatabase(t)
	var gate *noticeGate
	if listen {
		gate = newNoticeGate()
	}
	a, b = newReplica(t, url, listen, nil), newReplica(t, url, listen, gate)
	a.addUser("@alice:example.org", "pw")
	a.addUser("@bob:example.org", "pw")
	return a, b, url
}

// A logout on replica A is refused by replica B, which had the token
// cached, once the logout's notice reaches B's cache, and not before:
// fifty times in a row.
func TestRevocation_AcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t, true)
	var worst time.Duration
	for i := range 50 {
		device := "PHONE" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		tok := a.loginOn("alice", device)
		b.cacheOn(tok, "@alice:example.org")
		start := time.Now()
		a.logoutOn("/_matrix/client/v3/logout", tok)
		r := b.gate.next(t)
		worst = max(worst, time.Since(start))
		if want := (store.Revocation{UserID: "@alice:example.org", DeviceID: device}); r != want {
			t.Fatalf("notice %+v, want %+v", r, want)
		}
		b.wantCachedAnswer(tok, "@alice:example.org")
		b.gate.let(t, r)
		b.wantRefused(tok)
	}
	t.Logf("slowest notice over 50 logouts: %v (not asserted)", worst)
}

// logout/all on A, and the CLI's DeleteAllDevices and DeactivateUser
// (another process, with a store of its own), revoke every device of the
// user on B; another user's cached token stays cached.
func TestRevocation_AllDevicesAcrossReplicas(t *testing.T) {
	revoke := map[string]func(t *testing.T, a *replica, cli *postgres.DB, tok string){
		"LogoutAll": func(t *testing.T, a *replica, _ *postgres.DB, tok string) {
			a.logoutOn("/_matrix/client/v3/logout/all", tok)
		},
		"CLIPasswd": func(t *testing.T, _ *replica, cli *postgres.DB, _ string) {
			// authd user passwd: a new hash, then every device gone.
			if err := cli.UpdatePasswordHash(context.Background(), "@alice:example.org", "$authd-v1$changed"); err != nil {
				t.Fatal(err)
			}
			if n, err := cli.DeleteAllDevices(context.Background(), "@alice:example.org"); err != nil || n != 2 {
				t.Fatalf("DeleteAllDevices = %d, %v; want 2", n, err)
			}
		},
		"CLIDeactivate": func(t *testing.T, _ *replica, cli *postgres.DB, _ string) {
			if err := cli.DeactivateUser(context.Background(), "@alice:example.org", time.Now(), false, store.UIAGrant{}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, name := range []string{"LogoutAll", "CLIPasswd", "CLIDeactivate"} {
		t.Run(name, func(t *testing.T) {
			a, b, url := replicas(t, true)
			cli := openStore(t, url) // the CLI's: another process
			phone, laptop := a.loginOn("alice", "PHONE"), a.loginOn("alice", "LAPTOP")
			bob := a.loginOn("bob", "PHONE")
			b.cacheOn(phone, "@alice:example.org")
			b.cacheOn(laptop, "@alice:example.org")
			b.cacheOn(bob, "@bob:example.org")
			revoke[name](t, a, cli, laptop)
			// One notice per device, in either order: each device's token
			// is answered from B's cache until its notice is let through,
			// and refused after.
			toks := map[string]string{"PHONE": phone, "LAPTOP": laptop}
			for range 2 {
				r := b.gate.next(t)
				tok, ok := toks[r.DeviceID]
				if !ok || r.UserID != "@alice:example.org" {
					t.Fatalf("notice %+v, want one of alice's PHONE and LAPTOP", r)
				}
				delete(toks, r.DeviceID)
				b.wantCachedAnswer(tok, "@alice:example.org")
				b.gate.let(t, r)
				b.wantRefused(tok)
			}
			// Bob's token is untouched, and still answered from B's cache.
			before := b.cs.finds.Load()
			if res := b.call("GET", whoamiPath, "", bob); res.status != http.StatusOK || res.str("user_id") != "@bob:example.org" {
				t.Fatalf("bob's whoami on B = %d %s", res.status, res.raw)
			}
			if b.cs.finds.Load() != before {
				t.Fatal("bob's token was dropped from B's cache")
			}
		})
	}
}

// The control: without the listener, B keeps answering from its cache
// after the logout on A, after the notice reached a listener. This is what
// the tests above would see if the notices did not work.
func TestRevocation_WithoutListener(t *testing.T) {
	a, b, url := replicas(t, false)
	observer := openStore(t, url)
	notices := make(chan store.Revocation, 16)
	ctx, cancel := context.WithCancel(context.Background())
	live, done := make(chan struct{}, 1), make(chan struct{})
	go func() {
		defer close(done)
		observer.ListenRevocations(ctx, func(r store.Revocation) { notices <- r }, func(err error) {
			if err == nil {
				live <- struct{}{}
			}
		})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-live:
	case <-time.After(revocationWait):
		t.Fatalf("the observer did not subscribe within %v", revocationWait)
	}

	tok := a.loginOn("alice", "PHONE")
	b.cacheOn(tok, "@alice:example.org")
	a.logoutOn("/_matrix/client/v3/logout", tok)
	select {
	case r := <-notices:
		if want := (store.Revocation{UserID: "@alice:example.org", DeviceID: "PHONE"}); r != want {
			t.Fatalf("notice %+v, want %+v", r, want)
		}
	case <-time.After(revocationWait):
		t.Fatal("no notice of the logout")
	}
	// The token is gone from the database: A refuses it.
	wantError(t, a.call("GET", whoamiPath, "", tok), http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	before := b.cs.finds.Load()
	const polls = 50
	for range polls {
		if status, errcode := b.bare("GET", whoamiPath, tok); status != http.StatusOK {
			t.Fatalf("B without a listener refused the token (%d %s): the control cannot fail the tests above", status, errcode)
		}
	}
	if n := b.cs.finds.Load() - before; n != 0 {
		t.Fatalf("B asked the store %d time(s) in %d polls, want every answer from its cache", n, polls)
	}
}
