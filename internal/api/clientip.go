package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address of the client a request comes from: the TCP peer,
// unless the peer is a trusted proxy; then X-Forwarded-For is walked from
// the right (the entry the nearest proxy appended) past every trusted
// proxy, and the first untrusted address is the client. Entries left of it
// were written by the client and are never believed. If every entry is
// trusted, the leftmost is the client; if a trusted proxy appended garbage,
// the last trusted address seen stands for the client. IPv4-mapped IPv6
// addresses are unmapped, so one client has one key.
func clientIP(remoteAddr string, forwardedFor []string, trusted []netip.Prefix) netip.Addr {
	peer := parseHostIP(remoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	for i := len(forwardedFor) - 1; i >= 0; i-- {
		hops := strings.Split(forwardedFor[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			ip := parseHostIP(strings.TrimSpace(hops[j]))
			if !ip.IsValid() {
				return client
			}
			client = ip
			if !isTrusted(ip, trusted) {
				return ip
			}
		}
	}
	return client
}

// parseHostIP reads "ip", "ip:port" or "[ipv6]:port", unmapped and without
// a zone; the zero Addr when it is none of them.
func parseHostIP(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap().WithZone("")
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// invalidIPKey is the key of a client whose address could not be read (a
// peer that is not IP, or a trusted proxy that sent garbage).
const invalidIPKey = "invalid"

// ipKey is the rate-limit key of a client address: IPv6 is grouped by /64,
// since one host usually holds a whole /64.
func ipKey(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return invalidIPKey
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked().String()
	default:
		return ip.String()
	}
}

// clientIPKey is the rate-limit key of the request's client.
func (a *api) clientIPKey(r *http.Request) string {
	return ipKey(clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), a.TrustedProxies))
}
