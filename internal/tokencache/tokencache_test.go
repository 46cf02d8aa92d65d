package tokencache

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

func cacheSession(user, device string) store.Session {
	return store.Session{User: store.User{ID: user}, AccessToken: store.AccessToken{UserID: user, DeviceID: device}}
}

// len returns the number of cached tokens.
func (c *Cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// trusted reports whether the cache serves lookups: it exists and is not
// suspended.
func (c *Cache) trusted() bool {
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.suspended
}

// wantIndexed checks that the index names exactly the cached entries.
func (c *Cache) wantIndexed(t *testing.T) {
	t.Helper()
	indexed := 0
	for d, hashes := range c.devices {
		if !slices.Contains(c.users[d.userID], d.deviceID) {
			t.Fatalf("device %v is not in its user's list", d)
		}
		for _, h := range hashes {
			if e := c.entries[h]; e == nil || e.device != d {
				t.Fatalf("device %v lists a hash it does not own", d)
			}
		}
		indexed += len(hashes)
	}
	devices := 0
	for _, ids := range c.users {
		devices += len(ids)
	}
	if indexed != len(c.entries) || devices != len(c.devices) {
		t.Fatalf("index: %d hashes for %d entries, %d devices listed for %d", indexed, len(c.entries), devices, len(c.devices))
	}
}

// The cache holds at most its size, and its index never outgrows it.
func TestCache_Bound(t *testing.T) {
	c := New(time.Minute, 100)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		c.Add(token.Hash(fmt.Sprint(i)), cacheSession(fmt.Sprintf("@u%d:x", i%37), fmt.Sprintf("D%d", i)), c.Generation(), now)
	}
	if n := c.len(); n != 100 {
		t.Fatalf("len = %d, want 100", n)
	}
	c.wantIndexed(t)
	for u := range 37 {
		c.DropUser(fmt.Sprintf("@u%d:x", u))
	}
	if c.len() != 0 || len(c.devices) != 0 || len(c.users) != 0 {
		t.Fatalf("after dropping every user: %d entries, %d devices, %d users indexed", c.len(), len(c.devices), len(c.users))
	}
}

func TestCache_Lifetime(t *testing.T) {
	c := New(5*time.Second, 0)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := token.Hash("a")
	c.Add(h, cacheSession("@a:x", "D"), c.Generation(), now)
	if _, ok := c.Lookup(h, now.Add(5*time.Second-1)); !ok {
		t.Fatal("missed before the lifetime ran out")
	}
	if _, ok := c.Lookup(h, now.Add(5*time.Second)); ok {
		t.Fatal("hit after the lifetime ran out")
	}
	if c.len() != 0 || len(c.devices) != 0 || len(c.users) != 0 {
		t.Fatal("a stale entry was kept")
	}
	// A fill that saw an older generation is discarded.
	gen := c.Generation()
	c.DropDevice("@b:x", "E")
	c.Add(h, cacheSession("@a:x", "D"), gen, now)
	if c.len() != 0 {
		t.Fatal("a fill older than an invalidation was cached")
	}
	if New(0, 10) != nil {
		t.Fatal("a zero lifetime must turn the cache off")
	}
	var off *Cache
	off.Add(h, cacheSession("@a:x", "D"), 0, now)
	if _, ok := off.Lookup(h, now); ok {
		t.Fatal("a nil cache hit")
	}
}

// A nil cache takes every call and caches nothing; a new one is trusted
// until suspended, and again once resumed.
func TestCache_Nil(t *testing.T) {
	if c := New(0, 10); c != nil {
		t.Fatalf("New(0, 10) = %p, want nil", c)
	}
	var c *Cache
	c.Revoked(store.Revocation{UserID: "@a:x", DeviceID: "D"})
	c.Revoked(store.Revocation{UserID: "@a:x"})
	c.Revoked(store.Revocation{})
	c.Suspend()
	c.Resume()
	if c.trusted() {
		t.Fatal("a nil cache is trusted")
	}
	c = New(time.Second, 0)
	if !c.trusted() {
		t.Fatal("a new cache is not trusted")
	}
	c.Suspend()
	if c.trusted() {
		t.Fatal("trusted after Suspend")
	}
	c.Suspend()
	if c.trusted() {
		t.Fatal("trusted after a second Suspend")
	}
	c.Resume()
	if !c.trusted() {
		t.Fatal("not trusted after Resume")
	}
}

// BenchmarkCache_Lookup is the cost of a hit.
func BenchmarkCache_Lookup(b *testing.B) {
	c := New(time.Minute, 0)
	now := time.Now()
	h := token.Hash(token.New(token.Access))
	c.Add(h, cacheSession("@alice:example.org", "PHONE"), c.Generation(), now)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Lookup(h, now); !ok {
			b.Fatal("miss")
		}
	}
}

// Random adds and invalidations keep the index exact.
func TestCache_IndexConsistent(t *testing.T) {
	c := New(time.Minute, 50)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5000 {
		user, device := fmt.Sprintf("@u%d:x", i%7), fmt.Sprintf("D%d", i%11)
		switch i % 13 {
		case 0:
			c.DropDevice(user, device)
		case 5:
			c.DropUser(user)
		case 12:
			c.Lookup(token.Hash(fmt.Sprint(i-40)), now.Add(time.Duration(i)*time.Millisecond*20))
		default:
			c.Add(token.Hash(fmt.Sprint(i%97)), cacheSession(user, device), c.Generation(), now.Add(time.Duration(i)*time.Millisecond*20))
		}
		c.wantIndexed(t)
	}
}
