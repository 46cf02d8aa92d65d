package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/token"
)

var refreshPolicy = api.TokenPolicy{IssueRefresh: true, AccessTTL: 5 * time.Minute, RefreshTTL: 24 * time.Hour}

func withTokens(p api.TokenPolicy) func(*api.Deps) {
	return func(d *api.Deps) { d.Tokens = p }
}

const refreshLogin = `{"type":"m.login.password","user":"alice","password":"pw","refresh_token":true}`

func (h *harness) refresh(path, rt string, headers ...string) response {
	h.t.Helper()
	return h.do("POST", path, `{"refresh_token":"`+rt+`"}`, headers...)
}

func wantOK(t *testing.T, r response) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, body %s", r.status, r.raw)
	}
}

func wantSoftLogout(t *testing.T, r response, want bool) {
	t.Helper()
	wantError(t, r, 401, "M_UNKNOWN_TOKEN")
	if r.body["soft_logout"] != want {
		t.Fatalf("soft_logout = %v, want %v (%s)", r.body["soft_logout"], want, r.raw)
	}
}

func TestLogin_RefreshOptIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		on := newHarness(t, st, withTokens(refreshPolicy))
		on.addUser("@alice:example.org", "pw")
		r := on.login(refreshLogin)
		if token.Check(token.Refresh, r.str("refresh_token")) != nil || r.body["expires_in_ms"] != float64(300000) {
			t.Fatalf("opted-in login = %s, want a refresh token and expires_in_ms 300000", r.raw)
		}
		for _, body := range []string{
			`{"type":"m.login.password","user":"alice","password":"pw"}`,
			`{"type":"m.login.password","user":"alice","password":"pw","refresh_token":false}`,
		} {
			r := on.login(body)
			if _, ok := r.body["refresh_token"]; ok {
				t.Fatalf("login %s got a refresh token: %s", body, r.raw)
			}
			if _, ok := r.body["expires_in_ms"]; ok {
				t.Fatalf("login %s got expires_in_ms for a token that does not expire: %s", body, r.raw)
			}
		}

		off := newHarness(t, st, withTokens(api.TokenPolicy{IssueRefresh: false, AccessTTL: time.Minute}))
		r = off.login(refreshLogin)
		if _, ok := r.body["refresh_token"]; ok {
			t.Fatalf("refresh disabled, yet login returned %s", r.raw)
		}

		// Non-refreshable tokens with a lifetime say so, and expire.
		ttl := newHarness(t, st, withTokens(api.TokenPolicy{NonRefreshableTTL: time.Hour}))
		r = ttl.login(`{"type":"m.login.password","user":"alice","password":"pw"}`)
		if r.body["expires_in_ms"] != float64(3600000) {
			t.Fatalf("login with a non-refreshable lifetime = %s", r.raw)
		}
		ttl.clock.t = ttl.clock.t.Add(time.Hour)
		wantSoftLogout(t, ttl.whoami(r.str("access_token")), true)
	})
}

func TestRefresh_Rotation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		a1, r1 := login.str("access_token"), login.str("refresh_token")

		// Every path serves it, and a stale Authorization header (which
		// matrix-js-sdk sends) is ignored.
		for _, path := range []string{"/_matrix/client/v3/refresh", "/_matrix/client/r0/refresh", "/_matrix/client/v1/refresh"} {
			r := h.refresh(path, r1, bearer("syt_stale_token"))
			wantOK(t, r)
			if token.Check(token.Access, r.str("access_token")) != nil || token.Check(token.Refresh, r.str("refresh_token")) != nil ||
				r.body["expires_in_ms"] != float64(300000) {
				t.Fatalf("refresh via %s = %s", path, r.raw)
			}
		}
		// The predecessor still works until the new pair is used: a client
		// that lost the response retries.
		retry := h.refresh("/_matrix/client/v3/refresh", r1)
		wantOK(t, retry)
		a2, r2 := retry.str("access_token"), retry.str("refresh_token")
		wantOK(t, h.whoami(a1))

		// First use of the new pair: it is the session now.
		w := h.whoami(a2)
		wantOK(t, w)
		if w.str("device_id") != login.str("device_id") || w.str("user_id") != "@alice:example.org" {
			t.Fatalf("refreshed token names %s", w.raw)
		}
		wantSoftLogout(t, h.whoami(a1), false)

		// The next rotation starts from r2.
		next := h.refresh("/_matrix/client/v3/refresh", r2)
		wantOK(t, next)
		wantOK(t, h.whoami(next.str("access_token")))
		wantSoftLogout(t, h.whoami(a2), false)
	})
}

func TestRefresh_ReplayRevokesSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		r1 := login.str("refresh_token")
		next := h.refresh("/_matrix/client/v3/refresh", r1)
		wantOK(t, next)
		// Using the new refresh token confirms the pair, like using the
		// new access token would.
		third := h.refresh("/_matrix/client/v3/refresh", next.str("refresh_token"))
		wantOK(t, third)
		wantOK(t, h.whoami(third.str("access_token")))

		// r1 was exchanged and superseded: presenting it again is a replay,
		// which ends the whole session.
		wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", r1), false)
		wantSoftLogout(t, h.whoami(third.str("access_token")), false)
		wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", third.str("refresh_token")), false)
		devices, err := st.ListDevices(context.Background(), "@alice:example.org")
		if err != nil || len(devices) != 0 {
			t.Fatalf("devices after replay = %v, %v; want none", devices, err)
		}
	})
}

func TestRefresh_Expiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		h.clock.t = h.clock.t.Add(5 * time.Minute)
		// An expired access token is a soft logout: the client refreshes
		// or logs in again to the same device.
		wantSoftLogout(t, h.whoami(login.str("access_token")), true)
		r := h.refresh("/_matrix/client/v3/refresh", login.str("refresh_token"))
		wantOK(t, r)
		wantOK(t, h.whoami(r.str("access_token")))

		// An expired refresh token is a soft logout too.
		h.clock.t = h.clock.t.Add(25 * time.Hour)
		wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", r.str("refresh_token")), true)
		// Logout still works with the expired access token.
		out := h.do("POST", "/_matrix/client/v3/logout", "", bearer(r.str("access_token")))
		if out.status != 200 || out.raw != "{}" {
			t.Fatalf("logout with an expired token = %d %s", out.status, out.raw)
		}
		wantSoftLogout(t, h.whoami(r.str("access_token")), false)
	})
}

func TestRefresh_Errors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		const path = "/_matrix/client/v3/refresh"
		wantError(t, h.do("POST", path, `{}`), 400, "M_MISSING_PARAM")
		wantError(t, h.do("POST", path, `{"refresh_token":7}`), 400, "M_INVALID_PARAM")
		wantError(t, h.do("POST", path, `nope`), 400, "M_NOT_JSON")
		wantSoftLogout(t, h.refresh(path, "garbage"), false)
		wantSoftLogout(t, h.refresh(path, token.New(token.Refresh)), false)
		// An access token is not a refresh token.
		wantSoftLogout(t, h.refresh(path, login.str("access_token")), false)
		// Logout revokes the device's refresh tokens too.
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(login.str("access_token"))))
		wantSoftLogout(t, h.refresh(path, login.str("refresh_token")), false)
	})
}

// A login that names an existing device revokes its refresh tokens too.
func TestRefresh_ReloginRevokes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		body := `{"type":"m.login.password","user":"alice","password":"pw","refresh_token":true,"device_id":"PHONE"}`
		first := h.login(body)
		h.login(body)
		wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", first.str("refresh_token")), false)
	})
}

// The seed's r0.2.0 /tokenrefresh: immediate rotation, 403 on failure.
func TestTokenRefresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		h.addUser("@alice:example.org", "pw")
		login := h.login(refreshLogin)
		const path = "/_matrix/client/r0/tokenrefresh"
		r := h.refresh(path, login.str("refresh_token"))
		wantOK(t, r)
		if len(r.body) != 2 || token.Check(token.Access, r.str("access_token")) != nil || token.Check(token.Refresh, r.str("refresh_token")) != nil {
			t.Fatalf("tokenrefresh = %s, want exactly access_token and refresh_token", r.raw)
		}
		// The supplied refresh token and the access token issued with it
		// are invalid at once.
		wantSoftLogout(t, h.whoami(login.str("access_token")), false)
		wantOK(t, h.whoami(r.str("access_token")))
		wantError(t, h.refresh(path, login.str("refresh_token")), 403, "M_FORBIDDEN")
		wantError(t, h.refresh(path, "garbage"), 403, "M_FORBIDDEN")
		wantError(t, h.refresh(path, token.New(token.Refresh)), 403, "M_FORBIDDEN")
		wantError(t, h.do("POST", path, `{}`), 400, "M_MISSING_PARAM")
		wantError(t, h.do("POST", "/_matrix/client/v3/tokenrefresh", `{}`), 404, "M_UNRECOGNIZED")
	})
}

// Fifty clients refresh with one token at once (a retry storm, or a thief
// racing the owner); then one of the returned access tokens is used. That
// one alone survives, and no request fails with a 500.
func TestRefresh_ConcurrentPostgres(t *testing.T) {
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrateUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, st, withTokens(refreshPolicy))
	h.addUser("@alice:example.org", "pw")
	login := h.login(refreshLogin)
	srv := httptest.NewServer(h.h)
	t.Cleanup(srv.Close)

	const n = 50
	pairs := make([]issuedPair, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, body := post(srv.URL+"/_matrix/client/v3/refresh", `{"refresh_token":"`+login.str("refresh_token")+`"}`)
			pairs[i] = issuedPair{status: status, access: body["access_token"], refresh: body["refresh_token"]}
		}()
	}
	close(start)
	wg.Wait()

	var won []issuedPair
	for i, p := range pairs {
		if p.status >= 500 {
			t.Fatalf("refresh %d answered %d", i, p.status)
		}
		if p.status == 200 {
			won = append(won, p)
		}
	}
	if len(won) == 0 {
		t.Fatal("no concurrent refresh succeeded")
	}
	used := won[len(won)/2]
	wantOK(t, h.whoami(used.access))

	accepted := 0
	tokens := []string{login.str("access_token")}
	for _, p := range won {
		tokens = append(tokens, p.access)
	}
	for _, tok := range tokens {
		r := h.whoami(tok)
		switch r.status {
		case 200:
			accepted++
			if tok != used.access {
				t.Fatalf("an access token other than the one used is still accepted")
			}
		case 401:
		default:
			t.Fatalf("whoami answered %d %s", r.status, r.raw)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d access tokens of the device accepted, want exactly 1", accepted)
	}
	// The pair that won is intact: its refresh token still works.
	wantOK(t, h.refresh("/_matrix/client/v3/refresh", used.refresh))
	// A losing pair's refresh token is kept as a tombstone: presenting it
	// is a replay, which revokes the session.
	for _, p := range won {
		if p == used {
			continue
		}
		wantSoftLogout(t, h.refresh("/_matrix/client/v3/refresh", p.refresh), false)
	}
	t.Logf("%d of %d concurrent refreshes succeeded", len(won), n)
}

// issuedPair is what one concurrent refresh got back.
type issuedPair struct {
	status          int
	access, refresh string
}

// post sends a JSON POST from any goroutine (it takes no testing.T) and
// returns the status and the body's string fields.
func post(url, body string) (int, map[string]string) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	fields := map[string]string{}
	for k, v := range out {
		if s, ok := v.(string); ok {
			fields[k] = s
		}
	}
	return resp.StatusCode, fields
}
