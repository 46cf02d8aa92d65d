package api_test

import (
	"net/http"
	"testing"
)

// The deprecated access_token query parameter is read only under its
// literal name: a key that merely decodes to access_token escapes the
// proxies' log redaction, so it is refused, on the endpoints and in
// forward auth (the request's own query, or the original URI's).
func TestAccessToken_EncodedQueryKeyRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")

		for _, key := range []string{"access%5Ftoken", "access%5ftoken", "%61ccess_token", "access_tok%65n"} {
			t.Run(key, func(t *testing.T) {
				r := h.do("GET", "/_matrix/client/v3/account/whoami?"+key+"="+tok, "")
				wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
				r = h.do("GET", "/_authd/verify?"+key+"="+tok, "")
				wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
				r = h.do("GET", "/_authd/verify", "", "X-Original-URI: /_matrix/client/v3/sync?since=s1&"+key+"="+tok)
				wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
				// Beside a literal one, too: the encoded key is never ignored.
				r = h.do("GET", "/_matrix/client/v3/account/whoami?access_token="+tok+"&"+key+"=x", "")
				wantError(t, r, http.StatusUnauthorized, "M_MISSING_TOKEN")
			})
		}
		// The literal key works, with an encoded value and other parameters.
		if r := h.do("GET", "/_matrix/client/v3/account/whoami?a=%5F&access_token="+tok, ""); r.status != 200 || r.str("user_id") != "@alice:example.org" {
			t.Fatalf("literal access_token: %d %s", r.status, r.raw)
		}
		if r := h.do("GET", "/_authd/verify", "", "X-Original-URI: /_matrix/client/v3/sync?access_token="+tok); r.status != 200 || r.header.Get("X-Matrix-User-Id") != "@alice:example.org" {
			t.Fatalf("verify with the literal key in X-Original-URI: %d %s", r.status, r.raw)
		}
	})
}

// Token responses, and every other answer, carry Cache-Control: no-store
// (RFC 6749 §5.1): no shared cache may keep a token.
func TestResponses_NoStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		refresh := h.do("POST", "/_matrix/client/v3/refresh", `{"refresh_token":"`+login.str("refresh_token")+`"}`)
		if refresh.status != 200 {
			t.Fatalf("refresh: %d %s", refresh.status, refresh.raw)
		}
		for name, r := range map[string]response{
			"login":   login,
			"refresh": refresh,
			"whoami":  h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(refresh.str("access_token"))),
			"error":   h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"nope"}`),
		} {
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", name, got)
			}
		}
	})
}
