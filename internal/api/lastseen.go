package api

import (
	"net/http"
	"net/netip"
	"time"
)

// LastSeenRecorder remembers when, and from where, each device was last
// seen. Seen is called on the request path, so it must return at once:
// never wait on a database (internal/lastseen writes in batches).
type LastSeenRecorder interface {
	// Seen records that a device of the user was seen at at, from ip (the
	// zero Addr when unknown or not kept).
	Seen(userID, deviceID string, ip netip.Addr, at time.Time)
}

// lastSeenAddr is the client address to keep as a device's last-seen
// address, the zero Addr when addresses are not kept.
func (a *api) lastSeenAddr(r *http.Request) netip.Addr {
	if !a.LastSeenIP {
		return netip.Addr{}
	}
	return clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), a.TrustedProxies)
}

// lastSeenIP is lastSeenAddr as the store keeps it: "" for none.
func (a *api) lastSeenIP(r *http.Request) string {
	if ip := a.lastSeenAddr(r); ip.IsValid() {
		return ip.String()
	}
	return ""
}
