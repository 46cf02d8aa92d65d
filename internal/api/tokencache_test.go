package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
	"github.com/authd/authd/internal/tokencache"
)

// testTokenCacheTTL is the token cache lifetime of every harness: the
// production default.
const testTokenCacheTTL = 5 * time.Second

// countingStore counts the token lookups that reach the store, so that a
// test can tell a cache hit from a miss, and can hold a lookup between the
// store's answer and its return (pause).
type countingStore struct {
	testStore
	finds atomic.Int64
	pause func()
}

func (c *countingStore) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	c.finds.Add(1)
	s, err := c.testStore.FindSessionByAccessToken(ctx, h)
	if c.pause != nil {
		c.pause()
	}
	return s, err
}

// newCachedHarness is a harness on a counting store.
func newCachedHarness(t *testing.T, st testStore, mutate ...func(*api.Deps)) (*harness, *countingStore) {
	t.Helper()
	cs := &countingStore{testStore: st}
	return newHarness(t, cs, mutate...), cs
}

// wantCached asserts that tok is live and answered from the cache.
func wantCached(t *testing.T, h *harness, cs *countingStore, tok string) {
	t.Helper()
	before := cs.finds.Load()
	wantOK(t, h.whoami(tok))
	if n := cs.finds.Load() - before; n != 0 {
		t.Fatalf("whoami asked the store %d time(s): the token was not cached", n)
	}
}

// cache validates tok once, which caches it, and checks that it was.
func cache(t *testing.T, h *harness, cs *countingStore, tok string) {
	t.Helper()
	wantOK(t, h.whoami(tok))
	wantCached(t, h, cs, tok)
}

func loginDevice(h *harness, user, device string) string {
	h.t.Helper()
	return h.login(`{"type":"m.login.password","user":"` + user + `","password":"pw","device_id":"` + device + `"}`).str("access_token")
}

func TestTokenCache_Hits(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tok := loginDevice(h, "alice", "PHONE")
		cache(t, h, cs, tok)
		// Forward auth and logout read the same cache.
		before := cs.finds.Load()
		if r := h.do("GET", "/_authd/verify", "", bearer(tok)); r.status != 200 || r.header.Get("X-Matrix-Device-Id") != "PHONE" {
			t.Fatalf("verify = %d %v", r.status, r.header)
		}
		if cs.finds.Load() != before {
			t.Fatal("verify missed the cache")
		}
	})
}

func TestTokenCache_Off(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st, func(d *api.Deps) { d.TokenCache = nil })
		h.addUser("@alice:example.org", "pw")
		tok := loginDevice(h, "alice", "PHONE")
		wantOK(t, h.whoami(tok))
		wantOK(t, h.whoami(tok))
		if n := cs.finds.Load(); n != 2 {
			t.Fatalf("store lookups = %d, want 2 with the cache off", n)
		}
	})
}

// Logout revokes the device's cached token for the very next request; the
// user's other devices stay cached.
func TestTokenCache_Logout(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		phone, laptop := loginDevice(h, "alice", "PHONE"), loginDevice(h, "alice", "LAPTOP")
		cache(t, h, cs, phone)
		cache(t, h, cs, laptop)
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(phone)))
		wantRevoked(t, h, phone)
		if r := h.do("GET", "/_authd/verify", "", bearer(phone)); r.status != 401 {
			t.Fatalf("verify after logout = %d", r.status)
		}
		wantError(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(phone)), 401, "M_UNKNOWN_TOKEN")
		wantCached(t, h, cs, laptop)
	})
}

func TestTokenCache_LogoutAll(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		h.addUser("@bob:example.org", "pw")
		phone, laptop := loginDevice(h, "alice", "PHONE"), loginDevice(h, "alice", "LAPTOP")
		bob := loginDevice(h, "bob", "PHONE")
		for _, tok := range []string{phone, laptop, bob} {
			cache(t, h, cs, tok)
		}
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout/all", "", bearer(laptop)))
		wantRevoked(t, h, phone)
		wantRevoked(t, h, laptop)
		wantCached(t, h, cs, bob)
	})
}

// A login naming an existing device revokes that device's earlier tokens.
func TestTokenCache_ReloginSameDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		first, other := loginDevice(h, "alice", "PHONE"), loginDevice(h, "alice", "LAPTOP")
		cache(t, h, cs, first)
		cache(t, h, cs, other)
		second := loginDevice(h, "alice", "PHONE")
		wantRevoked(t, h, first)
		wantOK(t, h.whoami(second))
		wantCached(t, h, cs, other)
	})
}

// The refresh revocations: the first use of a refreshed pair retires the
// predecessor, a replay of an exchanged refresh token ends the session, and
// /tokenrefresh retires the old access token at once.
func TestTokenCache_Refresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		t.Run("FirstUse", func(t *testing.T) {
			h, cs := newCachedHarness(t, st, withTokens(refreshPolicy))
			h.addUser("@alice:example.org", "pw")
			login := h.login(refreshLogin)
			a1 := login.str("access_token")
			cache(t, h, cs, a1)
			next := h.refresh("/_matrix/client/v3/refresh", login.str("refresh_token"))
			wantOK(t, next)
			// Until the new pair is used the predecessor still works (a
			// client that lost the response retries).
			wantOK(t, h.whoami(a1))
			// A pending token is never served from the cache: its first
			// use reaches the store, which confirms it.
			before := cs.finds.Load()
			wantOK(t, h.whoami(next.str("access_token")))
			if cs.finds.Load() == before {
				t.Fatal("a pending token was answered from the cache")
			}
			wantRevoked(t, h, a1)
			cache(t, h, cs, next.str("access_token"))
		})
		t.Run("Replay", func(t *testing.T) {
			h, cs := newCachedHarness(t, st, withTokens(refreshPolicy))
			h.addUser("@bob:example.org", "pw")
			login := h.login(`{"type":"m.login.password","user":"bob","password":"pw","refresh_token":true}`)
			r1 := login.str("refresh_token")
			next := h.refresh("/_matrix/client/v3/refresh", r1)
			wantOK(t, next)
			a2 := next.str("access_token")
			wantOK(t, h.whoami(a2)) // the first use confirms the pair
			cache(t, h, cs, a2)
			h.addUser("@dave:example.org", "pw")
			other := loginDevice(h, "dave", "DAVEPHONE")
			cache(t, h, cs, other)
			// r1 was exchanged and superseded: a replay ends the session,
			// and drops that device's tokens alone from the cache.
			wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", r1), false)
			wantRevoked(t, h, a2)
			wantCached(t, h, cs, other)
		})
		t.Run("TokenRefresh", func(t *testing.T) {
			h, cs := newCachedHarness(t, st, withTokens(refreshPolicy))
			h.addUser("@carol:example.org", "pw")
			login := h.login(`{"type":"m.login.password","user":"carol","password":"pw","refresh_token":true}`)
			a1 := login.str("access_token")
			cache(t, h, cs, a1)
			next := h.refresh("/_matrix/client/r0/tokenrefresh", login.str("refresh_token"))
			wantOK(t, next)
			wantRevoked(t, h, a1)
			wantOK(t, h.whoami(next.str("access_token")))
		})
	})
}

// Deactivation and password changes are made by the CLI, another process.
// Without a revocation feed (serve runs one on either store; this harness
// does not, see revocation_test.go), a token this process has cached keeps
// working until its entry's lifetime runs out, and not a moment longer. A
// token not cached is refused at once.
func TestTokenCache_RevokedElsewhere(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		revoke := map[string]func(ctx context.Context, userID string, at time.Time) error{
			"Deactivate": func(ctx context.Context, userID string, at time.Time) error {
				return st.DeactivateUser(ctx, userID, at, false, store.UIAGrant{})
			},
			"PasswordChange": func(ctx context.Context, userID string, _ time.Time) error {
				if err := st.UpdatePasswordHash(ctx, userID, "$authd-v1$changed"); err != nil {
					return err
				}
				_, err := st.DeleteAllDevices(ctx, userID)
				return err
			},
		}
		for name, fn := range revoke {
			t.Run(name, func(t *testing.T) {
				h, cs := newCachedHarness(t, st)
				user := "@" + map[string]string{"Deactivate": "dave", "PasswordChange": "erin"}[name] + ":example.org"
				h.addUser(user, "pw")
				local := user[1 : len(user)-len(":example.org")]
				cached, uncached := loginDevice(h, local, "PHONE"), loginDevice(h, local, "LAPTOP")
				cache(t, h, cs, cached)
				if err := fn(context.Background(), user, h.clock.t); err != nil {
					t.Fatal(err)
				}
				wantRevoked(t, h, uncached)
				h.clock.t = h.clock.t.Add(testTokenCacheTTL - time.Millisecond)
				wantCached(t, h, cs, cached)
				h.clock.t = h.clock.t.Add(time.Millisecond)
				wantRevoked(t, h, cached)
			})
		}
	})
}

// A cached token that expires is answered by the store, exactly as without
// the cache: soft logout for whoami, and logout still works.
func TestTokenCache_Expiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st, withTokens(api.TokenPolicy{NonRefreshableTTL: 2 * time.Second}))
		h.addUser("@alice:example.org", "pw")
		tok := loginDevice(h, "alice", "PHONE")
		cache(t, h, cs, tok)
		h.clock.t = h.clock.t.Add(2 * time.Second)
		wantSoftLogout(t, h.whoami(tok), true)
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(tok)))
		wantRevoked(t, h, tok)
	})
}

// A request that read a token from the store just before a logout, and
// would cache it just after, must not: the next request is refused.
func TestTokenCache_FillRacesLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h, cs := newCachedHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tok := loginDevice(h, "alice", "PHONE")
		// The logout authenticates from the cache; the whoami below is
		// held between the store's answer and its return.
		cache(t, h, cs, tok)
		h.clock.t = h.clock.t.Add(testTokenCacheTTL) // the entry is stale: whoami reads the store
		finish := holdWhoami(t, h, cs, tok)
		// Logout authenticates with its own store read (the entry is
		// stale), then revokes.
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(tok)))
		if code := finish(); code != http.StatusOK {
			t.Fatalf("the whoami that raced the logout = %d, want 200 (it read the token first)", code)
		}
		wantRevoked(t, h, tok)
	})
}

// wantStoreRead asserts that tok is live and that the store was asked:
// the cache did not hold it. (The answer is cached again, if trusted.)
func wantStoreRead(t *testing.T, h *harness, cs *countingStore, tok string) {
	t.Helper()
	before := cs.finds.Load()
	wantOK(t, h.whoami(tok))
	if n := cs.finds.Load() - before; n != 1 {
		t.Fatalf("whoami asked the store %d time(s), want 1: the token was cached", n)
	}
}

// sharedCache is a harness whose token cache is c, which the test also
// holds, as cmd/authd's revocation feed does.
func sharedCache(t *testing.T, st testStore, c *tokencache.Cache) (*harness, *countingStore) {
	t.Helper()
	return newCachedHarness(t, st, func(d *api.Deps) { d.TokenCache = c })
}

// Revoked drops what a notice names: a device, a user, or everything.
func TestTokenCache_Revoked(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		c := tokencache.New(testTokenCacheTTL, 0)
		h, cs := sharedCache(t, st, c)
		h.addUser("@alice:example.org", "pw")
		h.addUser("@bob:example.org", "pw")
		phone, laptop := loginDevice(h, "alice", "PHONE"), loginDevice(h, "alice", "LAPTOP")
		bob := loginDevice(h, "bob", "PHONE")
		for _, tok := range []string{phone, laptop, bob} {
			cache(t, h, cs, tok)
		}

		c.Revoked(store.Revocation{UserID: "@alice:example.org", DeviceID: "NOPE"})
		c.Revoked(store.Revocation{UserID: "@carol:example.org"})
		for _, tok := range []string{phone, laptop, bob} {
			wantCached(t, h, cs, tok)
		}

		c.Revoked(store.Revocation{UserID: "@alice:example.org", DeviceID: "PHONE"})
		wantStoreRead(t, h, cs, phone)
		wantCached(t, h, cs, laptop)
		wantCached(t, h, cs, bob)

		c.Revoked(store.Revocation{UserID: "@alice:example.org"})
		wantStoreRead(t, h, cs, phone)
		wantStoreRead(t, h, cs, laptop)
		wantCached(t, h, cs, bob)

		c.Revoked(store.Revocation{})
		for _, tok := range []string{phone, laptop, bob} {
			wantStoreRead(t, h, cs, tok)
		}
		for _, tok := range []string{phone, laptop, bob} {
			wantCached(t, h, cs, tok)
		}
	})
}

// A suspended cache answers nothing and holds nothing; Resume trusts it
// again, from empty.
func TestTokenCache_SuspendResume(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		c := tokencache.New(testTokenCacheTTL, 0)
		h, cs := sharedCache(t, st, c)
		h.addUser("@alice:example.org", "pw")
		tok := loginDevice(h, "alice", "PHONE")
		cache(t, h, cs, tok)

		c.Suspend()
		wantStoreRead(t, h, cs, tok)
		wantStoreRead(t, h, cs, tok)
		c.Suspend()
		wantStoreRead(t, h, cs, tok)

		c.Resume()
		wantStoreRead(t, h, cs, tok)
		wantCached(t, h, cs, tok)
		// Logout still drops the token at once.
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(tok)))
		wantRevoked(t, h, tok)
	})
}

// holdWhoami starts a whoami of tok that stops between the store's answer
// and caching it, and returns once it has read the store. finish lets it
// go on and returns its status.
func holdWhoami(t *testing.T, h *harness, cs *countingStore, tok string) (finish func() int) {
	t.Helper()
	read, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cs.pause = func() { once.Do(func() { close(read); <-release }) }
	done := make(chan int)
	go func() {
		req := httptest.NewRequest("GET", whoamiPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	<-read
	cs.pause = nil
	return func() int {
		close(release)
		return <-done
	}
}

// A lookup that read the store before or during a suspension must not
// cache its answer after it: notices were missed meanwhile, and the answer
// may predate one of them.
func TestTokenCache_SuspendRacesFill(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		for name, tc := range map[string]struct {
			before, during func(c *tokencache.Cache)
			suspended      bool // still suspended once during has run
		}{
			// Read and added while suspended.
			"WhileSuspended": {before: (*tokencache.Cache).Suspend, during: func(*tokencache.Cache) {}, suspended: true},
			// Read while suspended, added after Resume.
			"ReadSuspended": {before: (*tokencache.Cache).Suspend, during: (*tokencache.Cache).Resume},
			// Read while trusted, added while suspended.
			"SuspendedMeanwhile": {before: func(*tokencache.Cache) {}, during: (*tokencache.Cache).Suspend, suspended: true},
			// Read while trusted, added after a suspension came and went.
			"SuspendedAndResumedMeanwhile": {before: func(*tokencache.Cache) {}, during: func(c *tokencache.Cache) {
				c.Suspend()
				c.Resume()
			}},
		} {
			t.Run(name, func(t *testing.T) {
				c := tokencache.New(testTokenCacheTTL, 0)
				h, cs := sharedCache(t, st, c)
				user := "@" + strings.ToLower(name) + ":example.org"
				h.addUser(user, "pw")
				tok := loginDevice(h, strings.ToLower(name), "PHONE")
				tc.before(c)
				finish := holdWhoami(t, h, cs, tok)
				tc.during(c)
				if code := finish(); code != http.StatusOK {
					t.Fatalf("the held whoami = %d, want 200", code)
				}
				// Had the held answer been cached, this would hit.
				wantStoreRead(t, h, cs, tok)
				if tc.suspended {
					c.Resume()
					wantStoreRead(t, h, cs, tok)
				}
				wantCached(t, h, cs, tok)
			})
		}
	})
}

// Lookups, notices and suspensions from many goroutines at once (for the
// race detector): every answer is still right.
func TestTokenCache_Concurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		c := tokencache.New(testTokenCacheTTL, 0)
		h, _ := sharedCache(t, st, c)
		h.addUser("@alice:example.org", "pw")
		toks := []string{loginDevice(h, "alice", "A"), loginDevice(h, "alice", "B")}
		var wg sync.WaitGroup
		codes := make(chan int, 400)
		for g := range 4 {
			wg.Go(func() {
				for i := range 100 {
					req := httptest.NewRequest("GET", whoamiPath, nil)
					req.Header.Set("Authorization", "Bearer "+toks[(g+i)%2])
					rec := httptest.NewRecorder()
					h.h.ServeHTTP(rec, req)
					codes <- rec.Code
				}
			})
		}
		wg.Go(func() {
			for i := range 300 {
				switch i % 5 {
				case 0:
					c.Suspend()
				case 1:
					c.Resume()
				case 2:
					c.Revoked(store.Revocation{UserID: "@alice:example.org", DeviceID: "A"})
				case 3:
					c.Revoked(store.Revocation{UserID: "@alice:example.org"})
				default:
					c.Revoked(store.Revocation{})
				}
			}
		})
		wg.Wait()
		close(codes)
		for code := range codes {
			if code != http.StatusOK {
				t.Fatalf("whoami = %d, want 200", code)
			}
		}
	})
}

// failingRefreshStore answers every refresh exchange with err.
type failingRefreshStore struct {
	*countingStore
	err error
}

func (f failingRefreshStore) RefreshSession(context.Context, store.Exchange) (store.Session, error) {
	return store.Session{}, f.err
}

// Nothing an unauthenticated client sends empties the cache: a made-up,
// well-formed refresh token on a request the client cancels, or while the
// database fails or times out, leaves every cached token cached (a
// cancelled refresh used to drop everything).
func TestTokenCache_RefreshFailuresKeepCache(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		forged := `{"refresh_token":"` + token.New(token.Refresh) + `"}`
		t.Run("Cancelled", func(t *testing.T) {
			h, cs := newCachedHarness(t, st, withTokens(refreshPolicy))
			h.addUser("@alice:example.org", "pw")
			tok := loginDevice(h, "alice", "PHONE")
			cache(t, h, cs, tok)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, "POST", "/_matrix/client/v3/refresh", strings.NewReader(forged))
			rec := httptest.NewRecorder()
			h.h.ServeHTTP(rec, req)
			if rec.Code == http.StatusOK {
				t.Fatalf("a forged refresh token on a cancelled request answered 200: %s", rec.Body)
			}
			wantCached(t, h, cs, tok)
		})
		for i, tc := range []struct {
			name string
			err  error
		}{
			{"Unavailable", fmt.Errorf("sqlite: refresh session: %w", store.ErrUnavailable)},
			{"Timeout", fmt.Errorf("postgres: refresh session: %w", context.DeadlineExceeded)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cs := &countingStore{testStore: st}
				h := newHarness(t, failingRefreshStore{cs, tc.err}, withTokens(refreshPolicy))
				user := fmt.Sprintf("user%d", i)
				h.addUser("@"+user+":example.org", "pw")
				tok := loginDevice(h, user, "PHONE")
				cache(t, h, cs, tok)
				wantError(t, h.do("POST", "/_matrix/client/v3/refresh", forged), http.StatusServiceUnavailable, "M_UNKNOWN")
				wantCached(t, h, cs, tok)
			})
		}
	})
}
