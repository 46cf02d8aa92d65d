package api_test

import (
	"context"
	"testing"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

func TestWhoami(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		login := h.login(`{"type":"m.login.password","user":"ALICE","password":"pw"}`)
		tok := login.str("access_token")
		ok := []struct {
			name    string
			path    string
			headers []string
		}{
			{"Bearer", "/_matrix/client/v3/account/whoami", []string{bearer(tok)}},
			{"R0", "/_matrix/client/r0/account/whoami", []string{bearer(tok)}},
			{"SchemeCaseInsensitive", "/_matrix/client/v3/account/whoami", []string{"Authorization: bEaReR " + tok}},
			{"QueryParameter", "/_matrix/client/v3/account/whoami?access_token=" + tok, nil},
		}
		for _, tt := range ok {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("GET", tt.path, "", tt.headers...)
				if r.status != 200 {
					t.Fatalf("whoami = %d %s", r.status, r.raw)
				}
				if r.str("user_id") != "@alice:example.org" || r.str("device_id") != login.str("device_id") || r.body["is_guest"] != false {
					t.Fatalf("whoami body %s", r.raw)
				}
			})
		}
	})
}

func TestWhoami_Unauthorized(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		h.addUser("@alice:example.org", "pw")
		h.addUser("@gone:example.org", "pw")
		tok := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")
		expired := h.addExpiredToken("@alice:example.org", "OLD")
		const path = "/_matrix/client/v3/account/whoami"
		tests := []struct {
			name        string
			path        string
			headers     []string
			wantErrcode string
			wantSoft    any // the soft_logout value, nil when absent
		}{
			{"NoToken", path, nil, "M_MISSING_TOKEN", nil},
			{"EmptyQuery", path + "?access_token=", nil, "M_MISSING_TOKEN", nil},
			{"HeaderAndQuery", path + "?access_token=" + tok, []string{bearer(tok)}, "M_MISSING_TOKEN", nil},
			{"TwoHeaders", path, []string{bearer(tok), bearer(tok)}, "M_MISSING_TOKEN", nil},
			{"BasicScheme", path, []string{"Authorization: Basic YWxpY2U6cHc="}, "M_MISSING_TOKEN", nil},
			{"BearerNoToken", path, []string{"Authorization: Bearer"}, "M_MISSING_TOKEN", nil},
			{"Unknown", path, []string{bearer(token.New(token.Access))}, "M_UNKNOWN_TOKEN", false},
			{"Garbage", path, []string{bearer("syt_abc_def")}, "M_UNKNOWN_TOKEN", false},
			{"RefreshTokenAsAccess", path, []string{bearer(token.New(token.Refresh))}, "M_UNKNOWN_TOKEN", false},
			{"ChecksumBroken", path, []string{bearer(tok[:len(tok)-1] + flip(tok[len(tok)-1]))}, "M_UNKNOWN_TOKEN", false},
			{"Expired", path, []string{bearer(expired)}, "M_UNKNOWN_TOKEN", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("GET", tt.path, "", tt.headers...)
				wantError(t, r, 401, tt.wantErrcode)
				if r.body["soft_logout"] != tt.wantSoft {
					t.Fatalf("soft_logout = %v, want %v (%s)", r.body["soft_logout"], tt.wantSoft, r.raw)
				}
			})
		}

		// Deactivation revokes every session at once.
		gone := h.login(`{"type":"m.login.password","user":"gone","password":"pw"}`).str("access_token")
		if err := st.DeactivateUser(context.Background(), "@gone:example.org", h.clock.t, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		r := h.do("GET", path, "", bearer(gone))
		wantError(t, r, 401, "M_UNKNOWN_TOKEN")
		if r.body["soft_logout"] != false {
			t.Fatalf("a revoked token said soft_logout %v", r.body["soft_logout"])
		}
	})
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}
