// Package tokencache is the token-validation fast path: it remembers, for a
// short while, which access tokens the store said are live, and forgets
// them as soon as this process or a revocation notice says they are not.
package tokencache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/internal/store"
)

// defaultSize bounds the cache when New is given no size.
// An entry costs about 520 bytes with its index (one device per user, the
// worst case), so a full cache at the default holds about 33 MiB.
const defaultSize = 65536

// Cache maps an access token's hash to its session; the API consults it
// before the store. It only ever holds what the store said a moment ago
// about a live token, for at most ttl:
//
//   - never a pending token (its first use must reach the store, which
//     confirms it), a deactivated user, an expired token or a not-found
//     answer;
//   - every revocation this process makes (logout, logout/all, refresh,
//     re-login on a device, confirmation of a refreshed pair) drops the
//     tokens it touches before the response is written, so the very next
//     request to this process is refused;
//   - a revocation made elsewhere (the CLI's deactivate and passwd, another
//     replica) drops them when its notice is passed to Revoked, and at the
//     latest when the entry's ttl runs out. Whoever feeds it notices
//     Suspends it while notices may be missed, and Resumes it once they
//     are delivered again.
//
// Entries are indexed by user and device, so an invalidation costs the
// tokens it drops. A generation counter closes the race between a request
// that read a token from the store and a revocation that lands before the
// request caches it: every invalidation bumps it, and a fill that saw an
// older generation before its store read is discarded. Keys are SHA-256
// hashes, like the store's: the cache holds no bearer token.
//
// Every method works on a nil *Cache, which caches nothing.
type Cache struct {
	ttl time.Duration
	max int

	gen atomic.Uint64 // bumped, under mu, by every invalidation

	mu        sync.RWMutex
	suspended bool // between Suspend and Resume: hold nothing, add nothing
	entries   map[store.TokenHash]*cachedToken
	devices   map[deviceKey][]store.TokenHash // the hashes cached for a device
	users     map[string][]string             // user ID -> devices in devices
}

type deviceKey struct{ userID, deviceID string }

// cachedToken is what a cache hit yields: the token's owner and lifetime,
// and how long the entry may be believed.
type cachedToken struct {
	device               deviceKey
	createdAt, expiresAt time.Time
	until                time.Time
}

// New returns a cache whose entries live ttl, holding at most
// size of them (defaultSize when size <= 0); nil, which caches
// nothing, when ttl <= 0. It starts trusted.
func New(ttl time.Duration, size int) *Cache {
	if ttl <= 0 {
		return nil
	}
	if size <= 0 {
		size = defaultSize
	}
	return &Cache{
		ttl:     ttl,
		max:     size,
		entries: make(map[store.TokenHash]*cachedToken),
		devices: make(map[deviceKey][]store.TokenHash),
		users:   make(map[string][]string),
	}
}

// Revoked drops the tokens a revocation made elsewhere names: a device's,
// a user's when DeviceID is empty, every token when UserID is empty.
func (c *Cache) Revoked(r store.Revocation) {
	switch {
	case r.UserID == "":
		c.dropAll()
	case r.DeviceID == "":
		c.DropUser(r.UserID)
	default:
		c.DropDevice(r.UserID, r.DeviceID)
	}
}

// Suspend stops trusting the cache, for while revocations made elsewhere
// may go unannounced: it drops everything, and until Resume every lookup
// misses and nothing is added.
func (c *Cache) Suspend() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.suspended = true
	c.clear()
}

// Resume trusts the cache again. It drops everything first: revocations
// may have been missed while it was suspended, and a request that read the
// store before now must not add what it read (the generation moves on).
func (c *Cache) Resume() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.suspended = false
	c.clear()
}

// Lookup returns the cached session of h at now. A hit carries the user's
// ID and the token's fields, not the rest of the user (its password hash
// is never cached). An entry past its ttl, or whose token has expired, is
// dropped and missed: an expired token's answer comes from the store, as
// without the cache.
func (c *Cache) Lookup(h store.TokenHash, now time.Time) (store.Session, bool) {
	if c == nil {
		return store.Session{}, false
	}
	c.mu.RLock()
	e := c.entries[h] // nil while suspended: Suspend emptied it and Add adds nothing
	c.mu.RUnlock()
	if e == nil {
		return store.Session{}, false
	}
	if !now.Before(e.until) || (!e.expiresAt.IsZero() && !now.Before(e.expiresAt)) {
		c.mu.Lock()
		if c.entries[h] == e {
			c.remove(h, e)
		}
		c.mu.Unlock()
		return store.Session{}, false
	}
	return store.Session{
		User: store.User{ID: e.device.userID},
		AccessToken: store.AccessToken{
			Hash: h, UserID: e.device.userID, DeviceID: e.device.deviceID,
			CreatedAt: e.createdAt, ExpiresAt: e.expiresAt,
		},
	}, true
}

// Generation counts the invalidations so far. Read it before a store
// lookup whose answer may be passed to Add.
func (c *Cache) Generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// Add caches s under h from now, unless an invalidation ran since gen was
// read (the store's answer may predate it). At the size bound it evicts an
// arbitrary entry: Go's map iteration starts at a random place.
func (c *Cache) Add(h store.TokenHash, s store.Session, gen uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspended || c.gen.Load() != gen {
		return
	}
	if old := c.entries[h]; old != nil {
		c.remove(h, old)
	}
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			c.remove(k, e)
			if len(c.entries) < c.max {
				break
			}
		}
	}
	t := s.AccessToken
	d := deviceKey{t.UserID, t.DeviceID}
	c.entries[h] = &cachedToken{device: d, createdAt: t.CreatedAt, expiresAt: t.ExpiresAt, until: now.Add(c.ttl)}
	hashes, ok := c.devices[d]
	if !ok {
		c.users[d.userID] = append(c.users[d.userID], d.deviceID)
	}
	c.devices[d] = append(hashes, h)
}

// remove drops one entry and its index slots. The caller holds mu.
func (c *Cache) remove(h store.TokenHash, e *cachedToken) {
	delete(c.entries, h)
	hashes := without(c.devices[e.device], h)
	if len(hashes) > 0 {
		c.devices[e.device] = hashes
		return
	}
	delete(c.devices, e.device)
	c.forgetDevice(e.device)
}

// forgetDevice drops a device from its user's list. The caller holds mu.
func (c *Cache) forgetDevice(d deviceKey) {
	if ids := without(c.users[d.userID], d.deviceID); len(ids) > 0 {
		c.users[d.userID] = ids
	} else {
		delete(c.users, d.userID)
	}
}

// without removes the first v from s, in place and out of order.
func without[T comparable](s []T, v T) []T {
	for i := range s {
		if s[i] == v {
			s[i] = s[len(s)-1]
			return s[:len(s)-1]
		}
	}
	return s
}

// DropDevice forgets every cached token of one device.
func (c *Cache) DropDevice(userID, deviceID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	d := deviceKey{userID, deviceID}
	hashes, ok := c.devices[d]
	if !ok {
		return
	}
	for _, h := range hashes {
		delete(c.entries, h)
	}
	delete(c.devices, d)
	c.forgetDevice(d)
}

// DropUser forgets every cached token of a user.
func (c *Cache) DropUser(userID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, id := range c.users[userID] {
		d := deviceKey{userID, id}
		for _, h := range c.devices[d] {
			delete(c.entries, h)
		}
		delete(c.devices, d)
	}
	delete(c.users, userID)
}

// dropAll forgets everything, for a revocation whose device is unknown.
func (c *Cache) dropAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.clear()
}

// clear empties the cache. The caller holds mu.
func (c *Cache) clear() {
	clear(c.entries)
	clear(c.devices)
	clear(c.users)
}
