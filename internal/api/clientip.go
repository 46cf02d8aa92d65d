package api

import (
	"net"
	"net/http"
	"net/netip"
)

// clientIPKey is the rate-limit key of the request's client: its IP, with
// IPv6 grouped by /64, since one host usually holds a whole /64. It is the
// TCP peer; trusted-proxy handling belongs to the abuse-resistance work.
func clientIPKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}
