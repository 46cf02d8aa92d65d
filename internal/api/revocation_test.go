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
)

// revocationBound is how soon a revocation made on one replica must be
// refused by another that cached the token.
const revocationBound = 100 * time.Millisecond

// revocationWait bounds the wait for what the bound is measured against:
// a revocation slower than revocationBound is reported as such, not as
// one that never came.
const revocationWait = 5 * time.Second

// replica is one authd process of several on one database: its own store
// (pool), token cache, handler and HTTP server.
type replica struct {
	*harness
	cs    *countingStore
	cache *api.TokenCache
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
func newReplica(t *testing.T, url string, listen bool) *replica {
	t.Helper()
	st := openStore(t, url)
	c := api.NewTokenCache(testTokenCacheTTL, 0)
	if listen {
		c.Suspend()
		ctx, cancel := context.WithCancel(context.Background())
		live, done := make(chan struct{}, 1), make(chan struct{})
		go func() {
			defer close(done)
			st.ListenRevocations(ctx, c.Revoked, func(err error) {
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
	return &replica{harness: h, cs: cs, cache: c, srv: srv}
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
// the status and errcode, without the schema check: for what is timed.
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

// refusedWithin polls whoami of tok on r from start until it is refused,
// and returns how long after start that was. It fails the test if that
// takes revocationWait, and checks the refusal against the schemas.
func (r *replica) refusedWithin(tok string, start time.Time) time.Duration {
	r.t.Helper()
	for {
		status, errcode := r.bare("GET", whoamiPath, tok)
		latency := time.Since(start)
		if status != http.StatusOK {
			if status != http.StatusUnauthorized || errcode != "M_UNKNOWN_TOKEN" {
				r.t.Fatalf("whoami after the revocation = %d %s, want 401 M_UNKNOWN_TOKEN", status, errcode)
			}
			res := r.call("GET", whoamiPath, "", tok)
			wantError(r.t, res, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
			if res.body["soft_logout"] != false {
				r.t.Fatalf("revoked token: soft_logout %v, want false", res.body["soft_logout"])
			}
			return latency
		}
		if latency > revocationWait {
			r.t.Fatalf("still accepted %v after the revocation", latency)
		}
		// A breath between polls: polling flat out on two CPUs starves
		// the very listener whose delivery is being timed.
		time.Sleep(time.Millisecond)
	}
}

// replicas serves two replicas, A and B, on one fresh database, and
// creates alice and bob there.
func replicas(t *testing.T, listen bool) (a, b *replica, url string) {
	t.Helper()
	url = pgtest.NewDatabase(t)
	a, b = newReplica(t, url, listen), newReplica(t, url, listen)
	a.addUser("@alice:example.org", "pw")
	a.addUser("@bob:example.org", "pw")
	return a, b, url
}

// A logout on replica A is refused by replica B, which had the token
// cached, within revocationBound: fifty times in a row.
func TestRevocation_AcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t, true)
	var worst time.Duration
	for i := range 50 {
		device := "PHONE" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		tok := a.loginOn("alice", device)
		b.cacheOn(tok, "@alice:example.org")
		start := time.Now()
		a.logoutOn("/_matrix/client/v3/logout", tok)
		latency := b.refusedWithin(tok, start)
		if latency > revocationBound {
			t.Errorf("token %d: B refused it %v after the logout on A began, want within %v", i, latency, revocationBound)
		}
		worst = max(worst, latency)
	}
	t.Logf("worst revocation latency over 50 tokens: %v", worst)
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
			if err := cli.DeactivateUser(context.Background(), "@alice:example.org", time.Now()); err != nil {
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
			start := time.Now()
			revoke[name](t, a, cli, laptop)
			for _, tok := range []string{phone, laptop} {
				if latency := b.refusedWithin(tok, start); latency > revocationBound {
					t.Errorf("B refused a token %v after the revocation began, want within %v", latency, revocationBound)
				} else {
					t.Logf("refused after %v", latency)
				}
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
// after the logout on A, past revocationBound and after the notice reached
// a listener. This is what the tests above would see if the notices did
// not work.
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
	start := time.Now()
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
	polls := 0
	for polls == 0 || time.Since(start) <= revocationBound {
		if status, errcode := b.bare("GET", whoamiPath, tok); status != http.StatusOK {
			t.Fatalf("B without a listener refused the token (%d %s): the control cannot fail the tests above", status, errcode)
		}
		polls++
	}
	if n := b.cs.finds.Load() - before; n != 0 {
		t.Fatalf("B asked the store %d time(s) in %d polls, want every answer from its cache", n, polls)
	}
}
