package api_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// lookupCounter is a store that counts its access-token lookups.
type lookupCounter struct {
	testStore
	n atomic.Int64
}

func (c *lookupCounter) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	c.n.Add(1)
	return c.testStore.FindSessionByAccessToken(ctx, h)
}

// tokenFailures sets a budget of burst unknown tokens per client IP, one
// more each every, on h's clock.
func tokenFailures(h **harness, burst int, every time.Duration) func(*api.Deps) {
	return func(d *api.Deps) {
		d.TokenFailureLimiter = ratelimit.NewMemory(ratelimit.Rule{Burst: burst, Every: every},
			0, func() time.Time { return (*h).clock.t })
	}
}

// Made-up tokens with valid checksums from one address: each one under
// the budget costs exactly one store lookup and is 401; past the budget
// they are 429 and cost none, and so is a valid token the cache does not
// hold yet. Another address is not affected.
func TestAttack_MadeUpTokensFromOneIP(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		const burst = 5
		var h *harness
		lookups := &lookupCounter{testStore: st}
		h = newHarness(t, lookups, tokenFailures(&h, burst, time.Minute))
		h.addUser("@alice:example.org", "pw")
		fresh := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		known := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		// known is used once from another address: the cache holds it.
		wantOK(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(known), "Remote-Addr: 198.51.100.1:4000"))

		const attacker = "Remote-Addr: 203.0.113.7:4000"
		paths := []string{"/_matrix/client/v3/account/whoami", "/_authd/verify"}
		for i := range burst {
			before := lookups.n.Load()
			r := h.do("GET", paths[i%2], "", bearer(token.New(token.Access)), attacker)
			wantError(t, r, 401, "M_UNKNOWN_TOKEN")
			if n := lookups.n.Load() - before; n != 1 {
				t.Fatalf("made-up token %d cost %d store lookups, want 1", i, n)
			}
		}
		before := lookups.n.Load()
		for i := range 100 {
			wantRateLimited(t, h.do("GET", paths[i%2], "", bearer(token.New(token.Access)), attacker))
		}
		// A malformed token and a logout are refused alike.
		wantRateLimited(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer("not-a-token"), attacker))
		wantRateLimited(t, h.do("POST", "/_matrix/client/v3/logout", "{}", bearer(token.New(token.Access)), attacker))
		// While over budget, a valid token the cache does not hold is
		// refused too: the budget is checked before the store is asked.
		wantRateLimited(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(fresh), attacker))
		if n := lookups.n.Load() - before; n != 0 {
			t.Fatalf("%d store lookups past the budget, want 0", n)
		}
		// One the cache holds costs no lookup and still works.
		wantOK(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(known), attacker))

		// Another address is not affected, and the valid token works there.
		wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(token.New(token.Access)), "Remote-Addr: 198.51.100.2:4000"), 401, "M_UNKNOWN_TOKEN")
		wantOK(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(fresh), "Remote-Addr: 198.51.100.2:4000"))
		// The budget refills: one more each minute.
		h.clock.t = h.clock.t.Add(time.Minute)
		wantError(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), attacker), 401, "M_UNKNOWN_TOKEN")
		wantRateLimited(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), attacker))
	})
}

// Tokens a client really holds do not spend the budget: expired ones (soft
// logout), however many.
func TestAttack_TokenFailuresSpareExpiredTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, tokenFailures(&h, 2, 24*time.Hour),
			withTokens(api.TokenPolicy{NonRefreshableTTL: time.Hour}))
		h.addUser("@alice:example.org", "pw")
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		h.clock.t = h.clock.t.Add(time.Hour)
		for range 10 {
			wantSoftLogout(t, h.whoami(tok), true)
		}
		// The budget is whole: two unknown tokens, then 429.
		for range 2 {
			wantError(t, h.whoami(token.New(token.Access)), 401, "M_UNKNOWN_TOKEN")
		}
		wantRateLimited(t, h.whoami(token.New(token.Access)))
	})
}

// Behind a trusted proxy, /_authd/verify charges the client that
// X-Forwarded-For names, not the proxy.
func TestAttack_TokenFailuresKeyedByForwardedClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, tokenFailures(&h, 3, time.Minute), func(d *api.Deps) {
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}
		})
		const proxy = "Remote-Addr: 10.0.0.2:5000"
		for range 3 {
			wantError(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), proxy, "X-Forwarded-For: 203.0.113.7"), 401, "M_UNKNOWN_TOKEN")
		}
		// A client's spoofed left-hand address does not escape the budget.
		wantRateLimited(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), proxy, "X-Forwarded-For: 192.0.2.99, 203.0.113.7"))
		// Other clients behind the same proxy are not affected.
		wantError(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), proxy, "X-Forwarded-For: 203.0.113.8"), 401, "M_UNKNOWN_TOKEN")
		wantError(t, h.do("GET", "/_authd/verify", "", bearer(token.New(token.Access)), proxy), 401, "M_UNKNOWN_TOKEN")
	})
}
