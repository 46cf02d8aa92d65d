package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
)

// syncBuffer is a bytes.Buffer safe for a logger to write from handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The logs of a whole session, at debug level, hold no password, no token
// and no query string with a token: only route patterns and hash prefixes.
func TestLogs_NoSecrets(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var logs syncBuffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		var h *harness
		h = newHarness(t, st, withTokens(refreshPolicy), limiters(&h), func(d *api.Deps) { d.Logger = logger })
		const pw, wrongPW = "correct horse battery", "hunter2 wrong guess"
		h.addUser("@alice:example.org", pw)

		login := h.login(`{"type":"m.login.password","user":"alice","password":"` + pw + `","refresh_token":true}`)
		access, refresh := login.str("access_token"), login.str("refresh_token")
		wantOK(t, h.do("GET", "/_matrix/client/v3/account/whoami?access_token="+access, ""))
		r := h.refresh("/_matrix/client/v3/refresh", refresh)
		wantOK(t, r)
		access2, refresh2 := r.str("access_token"), r.str("refresh_token")
		wantOK(t, h.do("GET", "/_matrix/client/r0/account/whoami?access_token="+access2, ""))
		// A replay: logged as a warning, naming the token by hash prefix.
		wantError(t, h.refresh("/_matrix/client/v3/refresh", refresh), 401, "M_UNKNOWN_TOKEN")
		wantError(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"`+wrongPW+`"}`), 403, "M_FORBIDDEN")
		relogin := h.login(`{"type":"m.login.password","user":"alice","password":"` + pw + `"}`)
		wantOK(t, h.do("POST", "/_matrix/client/v3/logout?access_token="+relogin.str("access_token"), ""))

		out := logs.String()
		if !strings.Contains(out, `"route":"/_matrix/client/v3/login"`) || !strings.Contains(out, "refresh token replayed") {
			t.Fatalf("the log does not show the session (the check would read nothing):\n%s", out)
		}
		for name, secret := range map[string]string{
			"password": pw, "wrong password": wrongPW,
			"access token": access, "refreshed access token": access2, "relogin token": relogin.str("access_token"),
			"refresh token": refresh, "refreshed refresh token": refresh2,
			"query string": "access_token=",
		} {
			if strings.Contains(out, secret) {
				t.Errorf("the log holds the %s", name)
			}
		}
	})
}

// A flood of 401s writes a bounded number of request lines per second;
// the first line after it says how many it stands for. Successes are
// never sampled.
func TestLogs_ClientErrorsSampled(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var logs syncBuffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		h := newHarness(t, st, func(d *api.Deps) { d.Logger = logger })
		h.addUser("@alice:example.org", "pw")
		access := h.login(`{"type":"m.login.password","user":"alice","password":"pw"}`).str("access_token")

		const flood, budget = 100, 20
		for range flood {
			wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer("syt_bm9ib2R5_madeupmadeupmadeup_0abcde")), 401, "M_UNKNOWN_TOKEN")
		}
		for range flood {
			wantOK(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(access)))
		}
		h.clock.t = h.clock.t.Add(time.Second)
		wantError(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer("syt_bm9ib2R5_madeupmadeupmadeup_0abcde")), 401, "M_UNKNOWN_TOKEN")

		var unauthorized, ok int
		var suppressed []float64
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["msg"] != "request" || rec["route"] != "/_matrix/client/v3/account/whoami" {
				continue
			}
			switch rec["status"] {
			case float64(401):
				unauthorized++
				if n, has := rec["suppressed"]; has {
					suppressed = append(suppressed, n.(float64))
				}
			case float64(200):
				ok++
			}
		}
		if unauthorized != budget+1 || ok != flood {
			t.Fatalf("logged %d 401 lines and %d 200 lines, want %d and %d", unauthorized, ok, budget+1, flood)
		}
		if len(suppressed) != 1 || suppressed[0] != flood-budget {
			t.Fatalf("suppressed counts %v, want one line saying %d", suppressed, flood-budget)
		}
	})
}
