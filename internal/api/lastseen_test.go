package api_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/lastseen"
	"github.com/authd/authd/internal/token"
)

// sightings is an api.LastSeenRecorder that remembers every call.
type sightings struct {
	mu   sync.Mutex
	seen []sighting
}

type sighting struct {
	userID, deviceID string
	ip               netip.Addr
	at               time.Time
}

func (s *sightings) Seen(userID, deviceID string, ip netip.Addr, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, sighting{userID, deviceID, ip, at})
}

func (s *sightings) take() []sighting {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}

// proxied sends a request as the trusted proxy on loopback does, for the
// client at addr.
func proxied(addr string) []string {
	return []string{"Remote-Addr: 127.0.0.1:4000", "X-Forwarded-For: " + addr}
}

func TestLastSeen_Recorded(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		rec := &sightings{}
		h := newHarness(t, st, func(d *api.Deps) {
			d.LastSeen = rec
			d.LastSeenIP = true
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		h.addUser("@alice:example.org", "alice pw")
		tok := h.login(userLogin("alice", "alice pw")).str("access_token")
		dev := h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)).str("device_id")
		rec.take()

		for _, c := range []struct {
			name, method, path string
			headers            []string
			want               netip.Addr
		}{
			{"whoami through the proxy", "GET", "/_matrix/client/v3/account/whoami", proxied("2001:db8::9"), netip.MustParseAddr("2001:db8::9")},
			{"verify, the address the proxy forwards", "GET", verifyPath, proxied("198.51.100.7, 203.0.113.5"), netip.MustParseAddr("203.0.113.5")},
			{"a peer that is no proxy", "GET", "/_matrix/client/r0/devices", []string{"Remote-Addr: 192.0.2.4:5000", "X-Forwarded-For: 198.51.100.1"}, netip.MustParseAddr("192.0.2.4")},
		} {
			h.clock.t = h.clock.t.Add(time.Minute)
			r := h.do(c.method, c.path, "", append(c.headers, bearer(tok))...)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
			got := rec.take()
			want := sighting{"@alice:example.org", dev, c.want, h.clock.t}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("%s: sightings %+v, want [%+v]", c.name, got, want)
			}
		}

		// A refused token is no sighting.
		h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(token.New(token.Access)))
		h.do("GET", verifyPath, "", bearer(token.New(token.Access)))
		h.do("GET", "/_matrix/client/v3/account/whoami", "")
		if got := rec.take(); len(got) != 0 {
			t.Fatalf("refused requests recorded: %+v", got)
		}
	})
}

func TestLastSeen_AddressesOff(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		rec := &sightings{}
		h := newHarness(t, st, func(d *api.Deps) {
			d.LastSeen = rec
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		h.addUser("@alice:example.org", "alice pw")
		r := h.do("POST", "/_matrix/client/v3/login", userLogin("alice", "alice pw"), proxied("198.51.100.7")...)
		tok, dev := r.str("access_token"), r.str("device_id")
		got := h.do("GET", "/_matrix/client/v3/devices/"+dev, "", append(proxied("198.51.100.7"), bearer(tok))...)
		if _, ok := got.body["last_seen_ip"]; ok || got.status != 200 {
			t.Fatalf("with addresses off: %d %s, want 200 without last_seen_ip", got.status, got.raw)
		}
		for _, s := range rec.take() {
			if s.ip.IsValid() {
				t.Fatalf("with addresses off, a sighting kept %v", s.ip)
			}
		}
	})
}

// TestLastSeen_ShownByDevices runs the recorder serve runs: a login sets
// the address, a later request moves both once the recorder has written.
func TestLastSeen_ShownByDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		rec := lastseen.New(st, lastseen.Options{})
		h := newHarness(t, st, func(d *api.Deps) {
			d.LastSeen = rec
			d.LastSeenIP = true
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		h.addUser("@alice:example.org", "alice pw")
		loginAt := h.clock.t
		r := h.do("POST", "/_matrix/client/v3/login", userLogin("alice", "alice pw"), proxied("198.51.100.7")...)
		tok, dev := r.str("access_token"), r.str("device_id")
		got := h.do("GET", "/_matrix/client/v3/devices/"+dev, "", bearer(tok))
		wantLastSeen(t, "after login", got, loginAt, "198.51.100.7")

		h.clock.t = h.clock.t.Add(2 * time.Minute)
		usedAt := h.clock.t
		h.do("GET", verifyPath, "", append(proxied("2001:db8::9"), bearer(tok))...)
		// Not written yet: the answer is an interval behind.
		h.clock.t = h.clock.t.Add(time.Second)
		got = h.do("GET", "/_matrix/client/v3/devices/"+dev, "", bearer(tok))
		wantLastSeen(t, "before the write", got, loginAt, "198.51.100.7")
		if err := rec.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		got = h.do("GET", "/_matrix/client/v3/devices/"+dev, "", append(proxied("2001:db8::9"), bearer(tok))...)
		// The last request before the write is the GET /devices from the
		// harness's own address (not a proxy): the newest sighting wins.
		wantLastSeen(t, "after the write", got, usedAt.Add(time.Second), "192.0.2.1")
	})
}

func wantLastSeen(t *testing.T, what string, r response, at time.Time, ip string) {
	t.Helper()
	ts, _ := r.body["last_seen_ts"].(float64)
	gotIP, _ := r.body["last_seen_ip"].(string)
	if r.status != 200 || int64(ts) != at.UnixMilli() || gotIP != ip {
		t.Fatalf("%s: %d %s, want last_seen_ts %d and last_seen_ip %q", what, r.status, r.raw, at.UnixMilli(), ip)
	}
}
