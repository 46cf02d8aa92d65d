package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/ratelimit"
)

// The attack suite: each test plays one attack against the real router on
// real stores and asserts, with numbers, what the attacker got.

// compareCounter counts the bcrypt comparisons a Hasher performs, by cost.
type compareCounter struct {
	mu    sync.Mutex
	costs []int
}

func (c *compareCounter) hook(cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.costs = append(c.costs, cost)
}

func (c *compareCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.costs)
}

func (c *compareCounter) reset() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.costs
	c.costs = nil
	return out
}

// countCompares makes h's hasher count its comparisons.
func countCompares(h *harness) *compareCounter {
	c := &compareCounter{}
	h.hasher.SetCompareHook(c.hook)
	return c
}

// limiters configures the DESIGN.md rules on h's clock.
func limiters(h **harness) func(*api.Deps) {
	return func(d *api.Deps) {
		now := func() time.Time { return (*h).clock.t }
		d.LoginIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 10, Every: 5 * time.Second}, 0, now)
		d.LoginFailedLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 5, Every: time.Minute}, 0, now)
		d.LoginSuccessLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 10, Every: 20 * time.Second}, 0, now)
		d.RefreshIPLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: 30, Every: 2 * time.Second}, 0, now)
	}
}

func wantRateLimited(t *testing.T, r response) {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	ms, _ := r.body["retry_after_ms"].(float64)
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if ms <= 0 || err != nil || secs < 1 || float64(secs) < ms/1000 {
		t.Fatalf("429 with retry_after_ms %v and Retry-After %q: want both, consistent", r.body["retry_after_ms"], r.header.Get("Retry-After"))
	}
}

// 1. Password guessing from one address: 100 wrong passwords for 100
// accounts in a burst. Only the IP burst reaches bcrypt.
func TestAttack_GuessingFromOneIP(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, limiters(&h))
		compares := countCompares(h)
		h.addUser("@alice:example.org", "pw")
		limited := 0
		for i := range 100 {
			r := h.do("POST", "/_matrix/client/v3/login", fmt.Sprintf(`{"type":"m.login.password","user":"user%d","password":"guess"}`, i), "Remote-Addr: 203.0.113.7:4000")
			if r.status == 429 {
				wantRateLimited(t, r)
				limited++
			} else {
				wantError(t, r, 403, "M_FORBIDDEN")
			}
		}
		if n := compares.count(); n != 10 || limited != 90 {
			t.Fatalf("%d guesses reached bcrypt and %d were limited; want 10 and 90", n, limited)
		}
		// Another address is not affected.
		r := h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`, "Remote-Addr: 198.51.100.1:4000")
		wantOK(t, r)
		// IPv6 clients are keyed by /64: another address in the same /64
		// shares the limit.
		for range 10 {
			h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"x","password":"y"}`, "Remote-Addr: [2001:db8:1:2::1]:4000")
		}
		wantRateLimited(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"x","password":"y"}`, "Remote-Addr: [2001:db8:1:2:ffff::9]:4000"))
	})
}

// 2. Password spraying at one account from 200 addresses behind a trusted
// proxy, all at once: only the account's failed-attempt burst reaches
// bcrypt, however the requests interleave.
func TestAttack_SprayOneAccountFromManyIPs(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		// The proxy is httptest's client on loopback.
		h = newHarness(t, st, limiters(&h), func(d *api.Deps) {
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		compares := countCompares(h)
		h.addUser("@alice:example.org", "pw", "alice@example.org")
		srv := httptest.NewServer(h.h)
		t.Cleanup(srv.Close)

		const n = 200
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Half name the account by user ID, half by its email: both
				// count against the same account.
				body := `{"type":"m.login.password","user":"ALICE","password":"wrong` + strconv.Itoa(i) + `"}`
				if i%2 == 1 {
					body = `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"wrong"}`
				}
				req, _ := http.NewRequest("POST", srv.URL+"/_matrix/client/v3/login", strings.NewReader(body))
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", i/250, i%250+1))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if c := compares.count(); c > 5 {
			t.Fatalf("%d guesses reached bcrypt, want at most the account burst of 5 (statuses %v)", c, counts)
		}
		if counts[403]+counts[429] != n || counts[429] < n-5 {
			t.Fatalf("statuses %v, want at most 5 403s and the rest 429", counts)
		}
	})
}

// 3. A forged X-Forwarded-For from an untrusted peer changes nothing: the
// limit keys on the peer.
func TestAttack_ForgedForwardedFor(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, limiters(&h), func(d *api.Deps) {
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		compares := countCompares(h)
		for i := range 11 {
			r := h.do("POST", "/_matrix/client/v3/login", fmt.Sprintf(`{"type":"m.login.password","user":"u%d","password":"p"}`, i),
				"Remote-Addr: 203.0.113.9:5000", fmt.Sprintf("X-Forwarded-For: 192.0.2.%d, 10.0.0.1", i+1))
			if i < 10 {
				wantError(t, r, 403, "M_FORBIDDEN")
			} else {
				wantRateLimited(t, r)
			}
		}
		if c := compares.count(); c != 10 {
			t.Fatalf("%d comparisons, want 10", c)
		}
	})
}

// 4. Unknown user and wrong password cost the same bcrypt work: one
// comparison at the configured cost each.
func TestAttack_TimingSameWork(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		compares := countCompares(h)
		h.addUser("@alice:example.org", "pw", "alice@example.org")
		h.addUser("@gone:example.org", "pw")
		if err := st.DeactivateUser(context.Background(), "@gone:example.org", h.clock.t); err != nil {
			t.Fatal(err)
		}
		cases := map[string]string{
			"WrongPassword":       `{"type":"m.login.password","user":"alice","password":"nope"}`,
			"UnknownUser":         `{"type":"m.login.password","user":"mallory","password":"nope"}`,
			"ForeignServer":       `{"type":"m.login.password","user":"@alice:elsewhere.org","password":"nope"}`,
			"UnknownEmail":        `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"x@example.org"},"password":"nope"}`,
			"KnownEmailWrongPW":   `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"nope"}`,
			"Phone":               `{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","phone":"0770"},"password":"nope"}`,
			"DeactivatedWrongPW":  `{"type":"m.login.password","user":"gone","password":"nope"}`,
			"PasswordOver1KiB":    `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 1025) + `"}`,
			"UserIDOver255Bytes":  `{"type":"m.login.password","user":"` + strings.Repeat("u", 300) + `","password":"nope"}`,
			"RightPassword":       `{"type":"m.login.password","user":"alice","password":"pw"}`,
			"DeactivatedRightPW":  `{"type":"m.login.password","user":"gone","password":"pw"}`,
			"LegacyUserUppercase": `{"type":"m.login.password","user":"ALICE","password":"nope"}`,
		}
		for name, body := range cases {
			compares.reset()
			h.do("POST", "/_matrix/client/v3/login", body)
			if costs := compares.reset(); len(costs) != 1 || costs[0] != h.hasher.Cost() {
				t.Fatalf("%s: bcrypt comparisons at costs %v, want exactly one at cost %d", name, costs, h.hasher.Cost())
			}
		}
	})
}

// 5. A flood of logins holding every hashing slot: whoami, logout and
// refresh still complete, and the flood's excess is shed with 429 instead
// of queueing without bound.
func TestAttack_HashFloodSpareOtherEndpoints(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy), func(d *api.Deps) {
			d.HashConcurrency = 1
			d.HashQueueTimeout = 20 * time.Millisecond
		})
		h.addUser("@alice:example.org", "pw")
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		other := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		rt := h.login(refreshLogin).str("refresh_token")

		// Hold the only slot with a password check that blocks until we
		// let it go, so the flood finds the gate full.
		release, holding := make(chan struct{}), make(chan struct{})
		var held atomic.Bool
		h.hasher.SetCompareHook(func(int) {
			if held.CompareAndSwap(false, true) {
				close(holding)
				<-release
			}
		})
		srv := httptest.NewServer(h.h)
		t.Cleanup(srv.Close)
		holder := make(chan int, 1)
		go func() {
			s, _ := post(srv.URL+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`)
			holder <- s
		}()
		<-holding // the holder is inside its password check, with the slot

		const flood = 40
		statuses := make(chan int, flood)
		for range flood {
			go func() {
				s, _ := post(srv.URL+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"wrong"}`)
				statuses <- s
			}()
		}
		// Meanwhile the other endpoints answer, though no hashing slot is free.
		deadline := time.After(10 * time.Second)
		done := make(chan string, 3)
		go func() {
			s, _ := get(srv.URL+"/_matrix/client/v3/account/whoami", tok)
			done <- "whoami " + strconv.Itoa(s)
		}()
		go func() {
			s, _ := postAuth(srv.URL+"/_matrix/client/v3/logout", other)
			done <- "logout " + strconv.Itoa(s)
		}()
		go func() {
			s, _ := post(srv.URL+"/_matrix/client/v3/refresh", `{"refresh_token":"`+rt+`"}`)
			done <- "refresh " + strconv.Itoa(s)
		}()
		for range 3 {
			select {
			case got := <-done:
				if !strings.HasSuffix(got, " 200") {
					t.Fatalf("%s during the flood, want 200", got)
				}
			case <-deadline:
				t.Fatal("whoami, logout or refresh did not complete while logins held every hashing slot")
			}
		}
		shed := 0
		for range flood {
			select {
			case s := <-statuses:
				if s == 429 {
					shed++
				} else if s != 403 {
					t.Fatalf("a flooding login got %d", s)
				}
			case <-deadline:
				t.Fatal("a flooding login was still queued long after the queue timeout")
			}
		}
		if shed != flood {
			t.Fatalf("%d of %d flooding logins shed with 429 while the slot was held, want all", shed, flood)
		}
		close(release)
		if s := <-holder; s != 200 {
			t.Fatalf("the login holding the slot got %d", s)
		}
	})
}

// 6. Absurd input gets its documented 4xx, never a 500.
func TestAttack_AbsurdInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", strings.Repeat("p", 72)+"tail")
		tests := []struct {
			name        string
			body        string
			wantStatus  int
			wantErrcode string
		}{
			{"Same72BytePrefix", `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 72) + `"}`, 403, "M_FORBIDDEN"},
			{"Same72BytesOtherTail", `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 72) + `liat"}`, 403, "M_FORBIDDEN"},
			{"PasswordOver1KiB", `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 1025) + `"}`, 403, "M_FORBIDDEN"},
			{"OneMiBBody", `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 1<<20) + `"}`, 413, "M_TOO_LARGE"},
			{"DeepNesting100k", strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000), 413, "M_TOO_LARGE"},
			{"DeepNestingUnderLimit", strings.Repeat("[", 30_000) + strings.Repeat("]", 30_000), 400, "M_NOT_JSON"},
			{"DeepObjectInField", `{"type":"m.login.password","user":"alice","password":"x","x":` + strings.Repeat(`{"a":`, 10_000) + `1` + strings.Repeat("}", 10_000) + `}`, 400, "M_NOT_JSON"},
			{"InvalidUTF8", "{\"type\":\"m.login.password\",\"user\":\"\xc3\x28\",\"password\":\"x\"}", 400, "M_NOT_JSON"},
			{"NULInUser", `{"type":"m.login.password","user":"ali\u0000ce","password":"x"}`, 403, "M_FORBIDDEN"},
			{"NULInEmail", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"a\u0000@example.org"},"password":"x"}`, 403, "M_FORBIDDEN"},
			{"NULInDeviceID", `{"type":"m.login.password","user":"alice","password":"x","device_id":"D\u0000"}`, 400, "M_INVALID_PARAM"},
			{"NULInDisplayName", `{"type":"m.login.password","user":"alice","password":"x","initial_device_display_name":"\u0000"}`, 400, "M_INVALID_PARAM"},
			{"NULInRefreshToken", `{"type":"m.login.password","user":"alice","password":"x","refresh_token":"\u0000"}`, 400, "M_UNKNOWN"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, h.do("POST", "/_matrix/client/v3/login", tt.body), tt.wantStatus, tt.wantErrcode)
			})
		}
		wantOK(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"`+strings.Repeat("p", 72)+`tail"}`))
	})
}

// Refresh is limited per client IP too.
func TestAttack_RefreshFlood(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, limiters(&h))
		for i := range 31 {
			r := h.refresh("/_matrix/client/v3/refresh", "garbage")
			if i < 30 {
				wantError(t, r, 401, "M_UNKNOWN_TOKEN")
			} else {
				wantRateLimited(t, r)
			}
		}
		wantRateLimited(t, h.refresh("/_matrix/client/r0/tokenrefresh", "garbage"))
	})
}

func get(url, tok string) (int, map[string]string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return send(req)
}

func postAuth(url, tok string) (int, map[string]string) {
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return send(req)
}

func send(req *http.Request) (int, map[string]string) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// keyRecorder is a Limiter that remembers the longest key it was asked about.
type keyRecorder struct {
	ratelimit.Limiter
	mu      sync.Mutex
	longest int
}

func (k *keyRecorder) saw(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.longest = max(k.longest, len(key))
}

func (k *keyRecorder) Allow(ctx context.Context, key string) (ratelimit.Decision, error) {
	k.saw(key)
	return k.Limiter.Allow(ctx, key)
}

func (k *keyRecorder) Peek(ctx context.Context, key string) (ratelimit.Decision, error) {
	k.saw(key)
	return k.Limiter.Peek(ctx, key)
}

func (k *keyRecorder) Undo(ctx context.Context, key string) error {
	k.saw(key)
	return k.Limiter.Undo(ctx, key)
}

// 8. Identifiers as long as the body allows, sprayed from many addresses:
// the per-account limiters, which bound how many keys they hold but not
// their size, get keys of a bounded length, and one long identifier is
// still limited as one account.
func TestAttack_LongIdentifiersBoundedKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		failed, success := &keyRecorder{}, &keyRecorder{}
		h = newHarness(t, st, limiters(&h), func(d *api.Deps) {
			d.LoginIPLimiter = nil
			failed.Limiter, d.LoginFailedLimiter = d.LoginFailedLimiter, failed
			success.Limiter, d.LoginSuccessLimiter = d.LoginSuccessLimiter, success
		})
		long := strings.Repeat("u", 60_000)
		bodies := map[string]func(i int) string{
			"UserID": func(i int) string {
				return fmt.Sprintf(`{"type":"m.login.password","user":"%d%s","password":"x"}`, i, long)
			},
			"Email": func(i int) string {
				return fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"%d%s@example.org"},"password":"x"}`, i, long)
			},
		}
		for name, body := range bodies {
			for i := range 20 {
				wantError(t, h.do("POST", "/_matrix/client/v3/login", body(i), fmt.Sprintf("Remote-Addr: 198.51.100.%d:4000", i)), 403, "M_FORBIDDEN")
			}
			// The same long identifier, again: its five failures are spent.
			for i := range 6 {
				r := h.do("POST", "/_matrix/client/v3/login", body(0), fmt.Sprintf("Remote-Addr: 203.0.113.%d:4000", i))
				if i < 4 {
					wantError(t, r, 403, "M_FORBIDDEN")
				} else {
					wantRateLimited(t, r)
				}
			}
			if failed.longest > 80 || success.longest > 80 {
				t.Fatalf("%s: limiter keys of %d and %d bytes for 60 kB identifiers", name, failed.longest, success.longest)
			}
		}
	})
}
