package api_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
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

// limiters configures the default rules on h's clock.
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
// proxy, all at once, by its user ID and by its email: only the
// failed-attempt burst of each identifier reaches bcrypt, however the
// requests interleave.
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
				// Half name the account by user ID, half by its email.
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
		// Failures count per identifier as named: the user ID and the
		// email each get the burst of 5.
		if c := compares.count(); c > 10 {
			t.Fatalf("%d guesses reached bcrypt, want at most the burst of 5 for each of 2 identifiers (statuses %v)", c, counts)
		}
		if counts[403]+counts[429] != n || counts[429] < n-10 {
			t.Fatalf("statuses %v, want at most 10 403s and the rest 429", counts)
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

// bcryptWork sums the work of bcrypt comparisons at the given costs, in
// key-expansion rounds: 2^cost each.
func bcryptWork(costs []int) int {
	total := 0
	for _, c := range costs {
		total += 1 << c
	}
	return total
}

// hashAt is the stored hash of pw made at another bcrypt cost than the
// harness's: authd's format, or plain bcrypt as imported from Synapse.
func hashAt(t *testing.T, cost int, pw string, plain bool) string {
	t.Helper()
	if plain {
		b, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	other, err := password.NewHasher(cost, nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := other.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

// 4. Unknown user, deactivated user and wrong password cost the same
// bcrypt work, whatever cost each account's stored hash has: the
// configured cost is the lowest here, and hashes at two higher costs (one
// authd's, one imported plain bcrypt) sit beside it. The hasher is told
// the store's costs as serve tells it at start.
func TestAttack_TimingSameWork(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		ctx := context.Background()
		h := newHarness(t, st)
		compares := countCompares(h)
		configured := h.hasher.Cost()
		h.addUser("@alice:example.org", "pw", "alice@example.org")
		for id, hash := range map[string]string{
			"@legacy:example.org":   hashAt(t, configured+1, "pw", false),
			"@imported:example.org": hashAt(t, configured+2, "pw", true),
			"@gone:example.org":     hashAt(t, configured+2, "pw", false),
		} {
			if err := st.CreateUser(ctx, store.User{ID: id, PasswordHash: hash, CreatedAt: h.clock.t}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.DeactivateUser(ctx, "@gone:example.org", h.clock.t, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		prefixes, err := st.FindPasswordHashPrefixes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range prefixes {
			if c, ok := password.StoredCost(p); ok {
				h.hasher.NoteStoredCost(c)
			}
		}
		want := 1 << (configured + 2)
		cases := map[string]string{
			"WrongPassword":        `{"type":"m.login.password","user":"alice","password":"nope"}`,
			"WrongPasswordCost+1":  `{"type":"m.login.password","user":"legacy","password":"nope"}`,
			"WrongPasswordPlain+2": `{"type":"m.login.password","user":"imported","password":"nope"}`,
			"UnknownUser":          `{"type":"m.login.password","user":"mallory","password":"nope"}`,
			"ForeignServer":        `{"type":"m.login.password","user":"@alice:elsewhere.org","password":"nope"}`,
			"UnknownEmail":         `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"x@example.org"},"password":"nope"}`,
			"KnownEmailWrongPW":    `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"nope"}`,
			"Phone":                `{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","phone":"0770"},"password":"nope"}`,
			"DeactivatedWrongPW":   `{"type":"m.login.password","user":"gone","password":"nope"}`,
			"PasswordOver1KiB":     `{"type":"m.login.password","user":"alice","password":"` + strings.Repeat("p", 1025) + `"}`,
			"PlainOver72Bytes":     `{"type":"m.login.password","user":"imported","password":"` + strings.Repeat("p", 73) + `"}`,
			"UserIDOver255Bytes":   `{"type":"m.login.password","user":"` + strings.Repeat("u", 300) + `","password":"nope"}`,
			"DeactivatedRightPW":   `{"type":"m.login.password","user":"gone","password":"pw"}`,
			"LegacyUserUppercase":  `{"type":"m.login.password","user":"ALICE","password":"nope"}`,
			"RightPassword":        `{"type":"m.login.password","user":"alice","password":"pw"}`,
			// Last: a right password rehashes at the configured cost.
			"RightPasswordCost+1": `{"type":"m.login.password","user":"legacy","password":"pw"}`,
		}
		names := slices.Sorted(maps.Keys(cases))
		names = append(slices.DeleteFunc(names, func(n string) bool { return n == "RightPasswordCost+1" }), "RightPasswordCost+1")
		for _, name := range names {
			compares.reset()
			h.do("POST", "/_matrix/client/v3/login", cases[name])
			if costs := compares.reset(); bcryptWork(costs) != want {
				t.Fatalf("%s: bcrypt comparisons at costs %v, work %d; want %d, one comparison's at cost %d", name, costs, bcryptWork(costs), want, configured+2)
			}
		}
		// The right password upgraded legacy's hash to the configured cost.
		u, err := st.FindUserByLogin(ctx, "@legacy:example.org")
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := password.StoredCost(u.PasswordHash); !ok || c != configured {
			t.Fatalf("legacy's hash after a right password has cost %d, want %d", c, configured)
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

		// Hold the only slot, so the flood finds the gate full.
		srv, holder, release := holdHashSlot(t, h, `{"type":"m.login.password","user":"alice","password":"pw"}`)

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
		release()
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
// the per-identifier and per-account limiters, which bound how many keys they hold but not
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

// newLimitedBehindProxy is a harness with the default limits behind a
// trusted proxy on loopback, with known networks kept for knownTTL.
func newLimitedBehindProxy(t *testing.T, st testStore, knownTTL time.Duration) *harness {
	t.Helper()
	var h *harness
	h = newHarness(t, st, limiters(&h), func(d *api.Deps) {
		d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		d.KnownNetworkTTL = knownTTL
	})
	return h
}

// loginFrom posts a login body from addr, through the trusted proxy on
// loopback that the harness's X-Forwarded-For comes from.
func (h *harness) loginFrom(addr, body string) response {
	h.t.Helper()
	return h.do("POST", "/_matrix/client/v3/login", body, "Remote-Addr: 127.0.0.1:4000", "X-Forwarded-For: "+addr)
}

func userLogin(user, pw string) string {
	return `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"` + user + `"},"password":"` + pw + `"}`
}

func emailLogin(addr, pw string) string {
	return `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"` + addr + `"},"password":"` + pw + `"}`
}

// statusOf names a response for comparing sequences: the status and
// errcode.
func statusOf(r response) string { return strconv.Itoa(r.status) + " " + r.str("errcode") }

// 9. Linking an email address to its account through 429s: spend the
// address's failed-login burst, then probe user IDs. The account that owns
// the address answers exactly like one that does not (and like a user
// that does not exist), and its owner still logs in by user ID; the
// address itself stays limited.
func TestAttack_FailedLoginsDoNotLinkIdentifiers(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newLimitedBehindProxy(t, st, 30*24*time.Hour)
		h.addUser("@alice:example.org", "pw", "alice@example.org")
		h.addUser("@carol:example.org", "pw")
		ip := 0
		next := func() string { ip++; return fmt.Sprintf("198.18.%d.%d", ip/250, ip%250+1) }

		// Five wrong passwords on the address, each from a new address: the
		// sixth is refused, for the address.
		for i := range 5 {
			wantError(t, h.loginFrom(next(), emailLogin("alice@example.org", "wrong"+strconv.Itoa(i))), 403, "M_FORBIDDEN")
		}
		wantRateLimited(t, h.loginFrom(next(), emailLogin("alice@example.org", "pw")))

		// Probing the candidates: the owner (alice), another account
		// (carol) and nobody (zed) answer alike, wrong password after
		// wrong password, until each one's own burst is spent.
		probe := func(user string) []string {
			var seq []string
			for range 6 {
				seq = append(seq, statusOf(h.loginFrom(next(), userLogin(user, "wrong"))))
			}
			return seq
		}
		alice, carol, zed := probe("alice"), probe("carol"), probe("zed")
		want := []string{"403 M_FORBIDDEN", "403 M_FORBIDDEN", "403 M_FORBIDDEN", "403 M_FORBIDDEN", "403 M_FORBIDDEN", "429 M_LIMIT_EXCEEDED"}
		for name, seq := range map[string][]string{"alice (owner)": alice, "carol (other account)": carol, "zed (no account)": zed} {
			if !slices.Equal(seq, want) {
				t.Errorf("%s answered %v, want %v: the address's failures must not show on any user ID", name, seq, want)
			}
		}

		// A minute later each identifier has one attempt back. The owner
		// logs in by user ID; the address, spent again, stays refused.
		h.clock.t = h.clock.t.Add(time.Minute)
		wantOK(t, h.loginFrom(next(), userLogin("alice", "pw")))
		wantError(t, h.loginFrom(next(), emailLogin("alice@example.org", "wrong")), 403, "M_FORBIDDEN")
		wantRateLimited(t, h.loginFrom(next(), emailLogin("alice@example.org", "pw")))
	})
}

// 10. A spray from 200 addresses at one account, by user ID and by email,
// while its owner logs in from the address they logged in from before:
// the owner is never refused, the spray gets the failed-login burst of
// each identifier and no more (10 guesses in the first minute, 2 a minute
// after), and a guesser inside the owner's network is bounded too.
func TestAttack_OwnerFromKnownNetworkNotLockedOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newLimitedBehindProxy(t, st, 30*24*time.Hour)
		h.addUser("@alice:example.org", "pw", "alice@example.org")
		const home = "2001:db8:aa:bb::10" // the owner's network: its /64
		wantOK(t, h.loginFrom(home, userLogin("alice", "pw")))
		compares := countCompares(h)

		sprayed := 0
		spray := func(rounds int) {
			for i := range rounds {
				addr := fmt.Sprintf("203.0.%d.%d", sprayed/250, sprayed%250+1)
				sprayed++
				body := userLogin("ALICE", "guess"+strconv.Itoa(i))
				if i%2 == 1 {
					body = emailLogin("alice@example.org", "guess"+strconv.Itoa(i))
				}
				if r := h.loginFrom(addr, body); r.status != 403 && r.status != 429 {
					t.Fatalf("spray answered %d %s", r.status, r.raw)
				}
			}
		}
		spray(200)
		if got := compares.count(); got != 10 {
			t.Fatalf("the first minute's spray got %d guesses checked, want 10 (5 per identifier)", got)
		}
		// The owner, from another address of their /64, with the right
		// password: let in, by user ID and by email.
		compares.reset()
		wantOK(t, h.loginFrom("2001:db8:aa:bb::99", userLogin("alice", "pw")))
		wantOK(t, h.loginFrom(home, emailLogin("alice@example.org", "pw")))
		// Ten more minutes of spraying: one guess per identifier a minute.
		for range 10 {
			h.clock.t = h.clock.t.Add(time.Minute)
			spray(20)
		}
		if got := compares.count(); got != 2+20 {
			t.Fatalf("ten more minutes of spray got %d guesses checked, want 20 (plus the owner's 2)", got)
		}
		wantOK(t, h.loginFrom(home, userLogin("alice", "pw")))

		// A guesser inside the owner's network has that network's own
		// burst, no more; the owner is locked out there only by failures
		// from there.
		compares.reset()
		limited := 0
		for i := range 20 {
			r := h.loginFrom("2001:db8:aa:bb::666", userLogin("alice", "inside"+strconv.Itoa(i)))
			if r.status == 429 {
				limited++
			}
		}
		if got := compares.count(); got != 5 || limited != 15 {
			t.Fatalf("a guesser in the known network got %d guesses checked and %d refused, want 5 and 15", got, limited)
		}
		// A network never logged in from has no budget of its own: a user
		// ID whose budget the spray spent stays refused there.
		wantRateLimited(t, h.loginFrom("192.0.2.50", userLogin("alice", "pw")))
	})
}

// 11. Known networks can be turned off: then every failure counts on the
// identifier, and the spray locks the owner out everywhere.
func TestAttack_KnownNetworksOff(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newLimitedBehindProxy(t, st, 0)
		h.addUser("@alice:example.org", "pw")
		wantOK(t, h.loginFrom("192.0.2.1", userLogin("alice", "pw")))
		for i := range 5 {
			wantError(t, h.loginFrom(fmt.Sprintf("203.0.113.%d", i+1), userLogin("alice", "wrong")), 403, "M_FORBIDDEN")
		}
		wantRateLimited(t, h.loginFrom("192.0.2.1", userLogin("alice", "pw")))
	})
}

// holdHashSlot serves h on a test server and sends one login (body) that
// takes the only hashing slot (HashConcurrency 1) and holds it, inside its
// password check, until release is called; it returns once the slot is
// held. holder gets that login's status. release is idempotent and also
// runs at cleanup, before the server closes, so that a failing test does
// not leave the login blocking the server. It sets h's compare hook.
func holdHashSlot(t *testing.T, h *harness, body string) (srv *httptest.Server, holder <-chan int, release func()) {
	t.Helper()
	freed, holding := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	h.hasher.SetCompareHook(func(int) {
		if held.CompareAndSwap(false, true) {
			close(holding)
			<-freed
		}
	})
	srv = httptest.NewServer(h.h)
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(freed) }) }
	t.Cleanup(release) // runs before srv.Close: cleanups run last first
	status := make(chan int, 1)
	go func() {
		s, _ := post(srv.URL+"/_matrix/client/v3/login", body)
		status <- s
	}()
	<-holding
	return srv, status, release
}

// A login network recorded within the last tenth of the TTL (at most an
// hour) is not written again; an older record is refreshed.
func TestLogin_KnownNetworkWrittenOncePerInterval(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newLimitedBehindProxy(t, st, 720*time.Hour)
		h.addUser("@alice:example.org", "pw")
		ctx := context.Background()
		t0 := h.clock.t
		h.loginFrom("198.51.100.7", userLogin("alice", "pw")).str("access_token")
		if err := st.FindLoginNetwork(ctx, "@alice:example.org", "198.51.100.7", t0); err != nil {
			t.Fatalf("after the first login the network is not known since it: %v", err)
		}
		// 30 minutes later: known, recorded at t0, not written again.
		h.clock.t = t0.Add(30 * time.Minute)
		h.loginFrom("198.51.100.7", userLogin("alice", "pw")).str("access_token")
		if err := st.FindLoginNetwork(ctx, "@alice:example.org", "198.51.100.7", t0.Add(time.Second)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a login 30 minutes later rewrote the network's time (err %v), want it left at the first login", err)
		}
		// Two hours later: older than an hour, so refreshed.
		h.clock.t = t0.Add(2 * time.Hour)
		h.loginFrom("198.51.100.7", userLogin("alice", "pw")).str("access_token")
		if err := st.FindLoginNetwork(ctx, "@alice:example.org", "198.51.100.7", h.clock.t); err != nil {
			t.Fatalf("a login two hours later did not refresh the network: %v", err)
		}
	})
}
