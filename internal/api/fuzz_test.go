package api

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// FuzzLoginDecoder feeds arbitrary bodies to the login decoder: it must
// never panic, and every refusal must be a Matrix 4xx error. The seeds run
// as an ordinary test in `make test`; `go test -fuzz=FuzzLoginDecoder
// ./internal/api` explores further.
func FuzzLoginDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"pw"}`,
		`{"type":"m.login.password","user":"alice","password":"pw","device_id":"D","initial_device_display_name":"n","refresh_token":true}`,
		`{"type":"m.login.password","medium":"email","address":"a@b.c","password":"pw"}`,
		`{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","number":"1"},"password":"pw"}`,
		`{"type":"m.login.password","identifier":{"type":"m.id.thirdparty"},"password":"pw"}`,
		`{"type":null}`, `{"type":1}`, `{}`, `[]`, `null`, `"x"`, ``, `{`, "\xff", `{"user":{"a":[1,2,{}]}}`,
		strings.Repeat("[", 20_000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/_matrix/client/v3/login", strings.NewReader(string(body)))
		obj, err := readJSONObject(httptest.NewRecorder(), req, false)
		if err == nil {
			_, err = parseLogin(obj, true)
		}
		if err == nil {
			return
		}
		var e *matrixError
		if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 || e.Errcode == "" || e.Message == "" {
			t.Fatalf("body %q: error %v is not a Matrix 4xx", body, err)
		}
	})
}

// FuzzClientIP checks the client-IP resolver on arbitrary peers and
// X-Forwarded-For values: it never panics, it returns the peer unless the
// peer is trusted, and what it returns is a valid address whenever the peer
// is one.
func FuzzClientIP(f *testing.F) {
	for _, seed := range [][2]string{
		{"10.0.0.1:443", "203.0.113.5"},
		{"10.0.0.1:443", "198.51.100.1, 203.0.113.5, 10.0.0.2"},
		{"10.0.0.1:443", "garbage, 10.0.0.3"},
		{"[::ffff:10.0.0.1]:443", "[2001:db8::1]:1234"},
		{"203.0.113.9:80", "10.0.0.1"},
		{"not an address", ""},
		{"10.0.0.1:443", ",,, ,"},
	} {
		f.Add(seed[0], seed[1])
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		got := clientIP(peer, []string{xff}, trusted)
		p := parseHostIP(peer)
		if !p.IsValid() {
			if got.IsValid() {
				t.Fatalf("invalid peer %q resolved to %v", peer, got)
			}
			return
		}
		if !got.IsValid() {
			t.Fatalf("peer %q, X-Forwarded-For %q: invalid result", peer, xff)
		}
		if !isTrusted(p, trusted) && got != p {
			t.Fatalf("untrusted peer %q: X-Forwarded-For %q moved the client to %v", peer, xff, got)
		}
		if got.Is4In6() {
			t.Fatalf("result %v is IPv4-mapped", got)
		}
		_ = ipKey(got)
	})
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"UntrustedPeer", "203.0.113.9:1", []string{"198.51.100.1"}, "203.0.113.9"},
		{"TrustedPeer", "10.0.0.1:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"RightmostUntrusted", "10.0.0.1:1", []string{"1.1.1.1, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"SeveralHeaders", "10.0.0.1:1", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"AllTrusted", "10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"NoHeader", "10.0.0.1:1", nil, "10.0.0.1"},
		{"GarbageAppendedByProxy", "10.0.0.1:1", []string{"198.51.100.1, junk"}, "10.0.0.1"},
		{"MappedPeer", "[::ffff:203.0.113.9]:1", nil, "203.0.113.9"},
		{"MappedTrustedPeer", "[::ffff:10.0.0.1]:1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"IPv6WithPort", "10.0.0.1:1", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"TrustedIPv6Proxy", "[2001:db8:ffff::1]:1", []string{"2001:db8:1::9"}, "2001:db8:1::9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(tt.peer, tt.xff, trusted); got.String() != tt.want {
				t.Fatalf("clientIP = %v, want %s", got, tt.want)
			}
		})
	}
	if k := ipKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); k != "2001:db8:1:2::/64" {
		t.Fatalf("ipKey(v6) = %q, want the /64", k)
	}
}
