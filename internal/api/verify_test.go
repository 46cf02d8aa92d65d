package api_test

import (
	"net/url"
	"testing"

	"github.com/authd/authd/internal/token"
)

const verifyPath = "/_authd/verify"

func TestVerify(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		login := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
		tok, device := login.str("access_token"), login.str("device_id")
		// What a proxy passes on: the original request's URI.
		orig := "/_matrix/client/v3/sync?since=s1&access_token=" + url.QueryEscape(tok) + "&timeout=30000"
		tests := []struct {
			name    string
			method  string
			path    string
			headers []string
		}{
			{"Bearer", "GET", verifyPath, []string{bearer(tok)}},
			{"OwnQuery", "GET", verifyPath + "?access_token=" + tok, nil},
			// nginx: proxy_set_header X-Original-URI $request_uri.
			{"OriginalURIQuery", "GET", verifyPath, []string{"X-Original-URI: " + orig}},
			// Caddy forward_auth and Traefik ForwardAuth.
			{"ForwardedURIQuery", "GET", verifyPath, []string{"X-Forwarded-Uri: " + orig, "X-Forwarded-Method: PUT"}},
			// An original URI without a token leaves the header to speak.
			{"BearerWithOriginalURI", "GET", verifyPath, []string{bearer(tok), "X-Original-URI: /_matrix/client/v3/sync?since=s1"}},
			// auth_request keeps the original request's method.
			{"Post", "POST", verifyPath, []string{bearer(tok)}},
			{"Put", "PUT", verifyPath, []string{bearer(tok)}},
			{"Head", "HEAD", verifyPath, []string{bearer(tok)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do(tt.method, tt.path, "", tt.headers...)
				if r.status != 200 {
					t.Fatalf("verify = %d %s, want 200", r.status, r.raw)
				}
				if got := r.header.Get("X-Matrix-User-Id"); got != "@alice:example.org" {
					t.Fatalf("X-Matrix-User-Id = %q", got)
				}
				if got := r.header.Get("X-Matrix-Device-Id"); got != device {
					t.Fatalf("X-Matrix-Device-Id = %q, want %q", got, device)
				}
				if r.header.Get("X-Request-Id") == "" {
					t.Fatalf("no X-Request-Id in %v", r.header)
				}
			})
		}
	})
}

func TestVerify_Unauthorized(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		live := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		revoked := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		if r := h.do("POST", "/_matrix/client/v3/logout", "", bearer(revoked)); r.status != 200 {
			t.Fatalf("logout = %d %s", r.status, r.raw)
		}
		expired := h.addExpiredToken("@alice:example.org", "OLD")
		origURI := func(tok string) string {
			return "X-Original-URI: /_matrix/client/v3/sync?access_token=" + url.QueryEscape(tok)
		}
		tests := []struct {
			name        string
			headers     []string
			wantErrcode string
			wantSoft    any // the soft_logout value, nil when absent
		}{
			{"NoToken", nil, "M_MISSING_TOKEN", nil},
			{"OriginalURIWithoutToken", []string{"X-Original-URI: /_matrix/client/v3/sync?since=s1"}, "M_MISSING_TOKEN", nil},
			{"OriginalURIEmptyToken", []string{"X-Original-URI: /_matrix/client/v3/sync?access_token="}, "M_MISSING_TOKEN", nil},
			// The original request held a token twice: the homeserver
			// would refuse it, and so does the check.
			{"HeaderAndOriginalQuery", []string{bearer(live), origURI(live)}, "M_MISSING_TOKEN", nil},
			{"BasicScheme", []string{"Authorization: Basic YWxpY2U6cHc="}, "M_MISSING_TOKEN", nil},
			{"Revoked", []string{bearer(revoked)}, "M_UNKNOWN_TOKEN", false},
			{"RevokedInOriginalURI", []string{origURI(revoked)}, "M_UNKNOWN_TOKEN", false},
			{"Unknown", []string{bearer(token.New(token.Access))}, "M_UNKNOWN_TOKEN", false},
			{"Garbage", []string{"X-Forwarded-Uri: /_matrix/client/v3/sync?access_token=syt_abc_def"}, "M_UNKNOWN_TOKEN", false},
			{"RefreshToken", []string{bearer(token.New(token.Refresh))}, "M_UNKNOWN_TOKEN", false},
			{"Expired", []string{bearer(expired)}, "M_UNKNOWN_TOKEN", true},
			{"ExpiredInOriginalURI", []string{origURI(expired)}, "M_UNKNOWN_TOKEN", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("GET", verifyPath, "", tt.headers...)
				wantError(t, r, 401, tt.wantErrcode)
				if r.body["soft_logout"] != tt.wantSoft {
					t.Fatalf("soft_logout = %v, want %v (%s)", r.body["soft_logout"], tt.wantSoft, r.raw)
				}
				for _, k := range []string{"X-Matrix-User-Id", "X-Matrix-Device-Id"} {
					if v := r.header.Get(k); v != "" {
						t.Fatalf("a refusal carries %s: %q", k, v)
					}
				}
			})
		}
		// The live token was never disturbed by the refusals.
		if r := h.do("GET", verifyPath, "", bearer(live)); r.status != 200 {
			t.Fatalf("verify of the live token = %d %s", r.status, r.raw)
		}
	})
}

// nginx asks a second time, for the client, after a refused check; the
// original request is then never sent upstream, so that ask never gets a
// 200: a token that passes this time is a 503 to retry, and a refused one
// gets the same error as the first time.
func TestVerify_SecondAsk(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		const second = "X-Authd-Second-Ask: 1"

		r := h.do("GET", verifyPath, "", bearer(tok), second)
		wantError(t, r, 503, "M_UNKNOWN")
		if got := r.header.Get("X-Matrix-User-Id"); got != "" {
			t.Fatalf("a second ask's answer names the user %q", got)
		}
		wantError(t, h.do("GET", verifyPath, "", bearer(token.New(token.Access)), second), 401, "M_UNKNOWN_TOKEN")
		wantError(t, h.do("GET", verifyPath, "", second), 401, "M_MISSING_TOKEN")
		// The same token on a first ask passes.
		if r := h.do("GET", verifyPath, "", bearer(tok)); r.status != 200 || r.header.Get("X-Matrix-User-Id") != "@alice:example.org" {
			t.Fatalf("first ask: %d %s %v", r.status, r.raw, r.header)
		}
	})
}
