package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

func cacheSession(user, device string) store.Session {
	return store.Session{User: store.User{ID: user}, AccessToken: store.AccessToken{UserID: user, DeviceID: device}}
}

// The cache holds at most its size, and its index never outgrows it.
func TestTokenCache_Bound(t *testing.T) {
	c := newTokenCache(time.Minute, 100)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		c.add(token.Hash(fmt.Sprint(i)), cacheSession(fmt.Sprintf("@u%d:x", i%37), fmt.Sprintf("D%d", i)), c.generation(), now)
	}
	if n := c.len(); n != 100 {
		t.Fatalf("len = %d, want 100", n)
	}
	indexed := 0
	for _, devices := range c.index {
		for _, hashes := range devices {
			indexed += len(hashes)
		}
	}
	if indexed != 100 {
		t.Fatalf("index holds %d tokens, want 100", indexed)
	}
	for u := range 37 {
		c.dropUser(fmt.Sprintf("@u%d:x", u))
	}
	if c.len() != 0 || len(c.index) != 0 {
		t.Fatalf("after dropping every user: %d entries, %d users indexed", c.len(), len(c.index))
	}
}

func TestTokenCache_Lifetime(t *testing.T) {
	c := newTokenCache(5*time.Second, 0)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := token.Hash("a")
	c.add(h, cacheSession("@a:x", "D"), c.generation(), now)
	if _, ok := c.lookup(h, now.Add(5*time.Second-1)); !ok {
		t.Fatal("missed before the lifetime ran out")
	}
	if _, ok := c.lookup(h, now.Add(5*time.Second)); ok {
		t.Fatal("hit after the lifetime ran out")
	}
	if c.len() != 0 || len(c.index) != 0 {
		t.Fatal("a stale entry was kept")
	}
	// A fill that saw an older generation is discarded.
	gen := c.generation()
	c.dropDevice("@b:x", "E")
	c.add(h, cacheSession("@a:x", "D"), gen, now)
	if c.len() != 0 {
		t.Fatal("a fill older than an invalidation was cached")
	}
	if newTokenCache(0, 10) != nil {
		t.Fatal("a zero lifetime must turn the cache off")
	}
	var off *tokenCache
	off.add(h, cacheSession("@a:x", "D"), 0, now)
	if _, ok := off.lookup(h, now); ok {
		t.Fatal("a nil cache hit")
	}
}

// BenchmarkTokenCache_Lookup is the cost of a hit.
func BenchmarkTokenCache_Lookup(b *testing.B) {
	c := newTokenCache(time.Minute, 0)
	now := time.Now()
	h := token.Hash(token.New(token.Access))
	c.add(h, cacheSession("@alice:example.org", "PHONE"), c.generation(), now)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.lookup(h, now); !ok {
			b.Fatal("miss")
		}
	}
}
