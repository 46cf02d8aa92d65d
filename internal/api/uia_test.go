package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/api"
)

// The multi-step rules of User-Interactive Authentication (docs/conformance.md
// UI-2, UI-4, UI-6, UI-7, UI-8, PW-2, PW-4), on both stores. Each test
// starts from the conformance fixture: alice's token on PHONE, her devices
// OLDDEVICE and TABLET, bob's token on BOBPHONE.

// passwordAuth is a password stage as alice in session (none when "").
func passwordAuth(session, pw string) string {
	s := ""
	if session != "" {
		s = `"session":"` + session + `",`
	}
	return `"auth":{` + s + `"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"` + pw + `"}`
}

// startUIA sends a request without auth and returns the session of its
// challenge.
func startUIA(t *testing.T, h *harness, method, path, tok, body string) string {
	t.Helper()
	r := h.do(method, path, body, bearer(tok))
	if r.status != http.StatusUnauthorized || r.str("session") == "" || r.body["errcode"] != nil {
		t.Fatalf("%s %s without auth: %d %s, want a challenge", method, path, r.status, r.raw)
	}
	return r.str("session")
}

// withAuth adds an auth member to a JSON object body.
func withAuth(body, auth string) string {
	if body == "{}" {
		return "{" + auth + "}"
	}
	return strings.TrimSuffix(body, "}") + "," + auth + "}"
}

func TestUIA_TwoSteps(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		body := `{"devices":["TABLET"]}`
		session := startUIA(t, h, "POST", v3+"/delete_devices", f.token, body)
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")

		// A wrong password keeps the session; the right one then completes it.
		r := h.do("POST", v3+"/delete_devices", withAuth(body, passwordAuth(session, "wrong")), bearer(f.token))
		if r.status != 401 || r.str("errcode") != "M_FORBIDDEN" || r.str("session") != session {
			t.Fatalf("wrong password: %d %s, want 401 M_FORBIDDEN in session %s", r.status, r.raw, session)
		}
		// Only the session: nothing can complete out of band.
		r = h.do("POST", v3+"/delete_devices", withAuth(body, `"auth":{"session":"`+session+`"}`), bearer(f.token))
		if r.status != 401 || r.str("session") != session || r.body["errcode"] != nil {
			t.Fatalf("session only: %d %s", r.status, r.raw)
		}
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
		wantOK(t, h.do("POST", v3+"/delete_devices", withAuth(body, passwordAuth(session, alicePW)), bearer(f.token)))
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")

		// UI-8: the session is spent. Replayed, with the same body or
		// another, it runs nothing.
		wantError(t, h.do("POST", v3+"/delete_devices", withAuth(body, passwordAuth(session, alicePW)), bearer(f.token)), 400, "M_UNKNOWN")
		wantError(t, h.do("POST", v3+"/delete_devices", withAuth(`{"devices":["OLDDEVICE"]}`, passwordAuth(session, alicePW)), bearer(f.token)), 400, "M_UNKNOWN")
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
	})
}

// UI-7: a session is bound to its operation: another endpoint, another
// device path, another body, even the r0 spelling of the same path.
func TestUIA_SessionBoundToOperation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		session := startUIA(t, h, "DELETE", v3+"/devices/TABLET", f.token, "")
		uses := []struct{ name, method, path, body string }{
			{"OtherDevicePath", "DELETE", v3 + "/devices/OLDDEVICE", "{}"},
			{"OtherEndpoint", "POST", v3 + "/delete_devices", `{"devices":["TABLET"]}`},
			{"PasswordChange", "POST", v3 + "/account/password", `{"new_password":"new pw"}`},
			{"Deactivate", "POST", v3 + "/account/deactivate", "{}"},
			{"OtherPathVersion", "DELETE", r0 + "/devices/TABLET", "{}"},
			{"ChangedBody", "DELETE", v3 + "/devices/TABLET", `{"erase":true}`},
		}
		for _, u := range uses {
			t.Run(u.name, func(t *testing.T) {
				r := h.do(u.method, u.path, withAuth(u.body, passwordAuth(session, alicePW)), bearer(f.token))
				wantError(t, r, 403, "M_FORBIDDEN")
				wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
				wantPassword(t, h, alicePW, "new pw")
			})
		}
		// Still good for what it was started for.
		wantOK(t, h.do("DELETE", v3+"/devices/TABLET", withAuth("{}", passwordAuth(session, alicePW)), bearer(f.token)))
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE")
	})
}

// The body hash ignores formatting: key order and whitespace.
func TestUIA_BodyFormattingDoesNotMatter(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		session := startUIA(t, h, "POST", v3+"/account/password", f.token, `{"logout_devices":false,"new_password":"new pw"}`)
		// new_password is not part of the binding (its hash would be an
		// offline target): the one sent with the password stage counts.
		r := h.do("POST", v3+"/account/password", `{ "new_password" : "newer pw", `+passwordAuth(session, alicePW)+`, "logout_devices" : false }`, bearer(f.token))
		wantOK(t, r)
		wantPassword(t, h, "newer pw", alicePW)
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
	})
}

// UI-6: a session of another device, or of another user, is unknown to
// the caller; so is an expired one.
func TestUIA_SessionOfAnotherCaller(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		bobs := startUIA(t, h, "POST", v3+"/delete_devices", f.bob, `{"devices":["TABLET"]}`)
		wantError(t, h.do("POST", v3+"/delete_devices", withAuth(`{"devices":["TABLET"]}`, passwordAuth(bobs, alicePW)), bearer(f.token)), 400, "M_UNKNOWN")

		other := h.addSession("@alice:example.org", "LAPTOP", time.Time{})
		laptops := startUIA(t, h, "POST", v3+"/delete_devices", other, `{"devices":["TABLET"]}`)
		wantError(t, h.do("POST", v3+"/delete_devices", withAuth(`{"devices":["TABLET"]}`, passwordAuth(laptops, alicePW)), bearer(f.token)), 400, "M_UNKNOWN")
		wantDevices(t, h, "@alice:example.org", "LAPTOP", "OLDDEVICE", "PHONE", "TABLET")
	})
}

func TestUIA_SessionExpires(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, func(d *api.Deps) { d.UIASessionTTL = 5 * time.Minute })
		f := newFixture(h)
		session := startUIA(t, h, "DELETE", v3+"/devices/TABLET", f.token, "")
		h.clock.t = h.clock.t.Add(5 * time.Minute)
		wantError(t, h.do("DELETE", v3+"/devices/TABLET", withAuth("{}", passwordAuth(session, alicePW)), bearer(f.token)), 400, "M_UNKNOWN")
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
	})
}

// UI-8: two requests completing one session at once: exactly one runs.
func TestUIA_ConcurrentUseOfOneSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		body := `{"devices":["TABLET"]}`
		session := startUIA(t, h, "POST", v3+"/delete_devices", f.token, body)
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		statuses := make([]int, n)
		errcodes := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := h.do("POST", v3+"/delete_devices", withAuth(body, passwordAuth(session, alicePW)), bearer(f.token))
				statuses[i], errcodes[i] = r.status, r.str("errcode")
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i := range n {
			switch {
			case statuses[i] == 200:
				ok++
			case statuses[i] == 400 && errcodes[i] == "M_UNKNOWN":
			default:
				t.Fatalf("request %d: %d %s", i, statuses[i], errcodes[i])
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent uses of one session succeeded, want exactly 1 (statuses %v)", ok, n, statuses)
		}
	})
}

// UI-4: wrong passwords at UIA spend the same failed-login budget as
// /login, per identifier, and a success gives its action back.
func TestUIA_FailedAttemptsLimited(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var h *harness
		h = newHarness(t, st, limiters(&h))
		f := newFixture(h)
		compares := countCompares(h)
		// Successes first: they spend nothing of the budget.
		for range 6 {
			wantOK(t, h.do("POST", v3+"/delete_devices", `{"devices":[],`+passwordAuth("", alicePW)+`}`, bearer(f.token)))
		}
		// The burst is 5 failures, shared with /login.
		wantError(t, h.do("POST", loginPath, `{"type":"m.login.password","user":"alice","password":"wrong"}`), 403, "M_FORBIDDEN")
		for i := range 4 {
			r := h.do("DELETE", v3+"/devices/TABLET", `{`+passwordAuth("", "wrong")+`}`, bearer(f.token))
			if r.status != 401 || r.str("errcode") != "M_FORBIDDEN" {
				t.Fatalf("wrong password %d: %d %s", i+1, r.status, r.raw)
			}
		}
		before := compares.count()
		wantRateLimited(t, h.do("DELETE", v3+"/devices/TABLET", `{`+passwordAuth("", alicePW)+`}`, bearer(f.token)))
		wantRateLimited(t, h.do("POST", loginPath, aliceLogin))
		if got := compares.count(); got != before {
			t.Fatalf("%d password hashes computed over the limit, want 0", got-before)
		}
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
	})
}

// UI-5: naming another account computes no hash for it, whatever the
// password: the endpoint is no password oracle.
func TestUIA_OtherAccountHashesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		compares := countCompares(h)
		for _, pw := range []string{bobPW, "wrong"} {
			r := h.do("POST", v3+"/account/password", `{"new_password":"x","auth":{"type":"m.login.password","user":"bob","password":"`+pw+`"}}`, bearer(f.token))
			wantError(t, r, 403, "M_FORBIDDEN")
		}
		if n := compares.count(); n != 0 {
			t.Fatalf("%d password hashes computed, want 0", n)
		}
		wantPassword(t, h, alicePW, "x")
	})
}

// PW-2: the caller keeps its session, refresh token included, when every
// other device is logged out.
func TestChangePassword_KeepsCallersRefreshToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st, withTokens(refreshPolicy))
		f := newFixture(h)
		login := h.login(`{"type":"m.login.password","user":"alice","password":"secret pw","device_id":"LAPTOP","refresh_token":true}`)
		access, refresh := login.str("access_token"), login.str("refresh_token")
		wantOK(t, h.do("POST", v3+"/account/password", `{"new_password":"new pw",`+passwordAuth("", alicePW)+`}`, bearer(access)))
		wantDevices(t, h, "@alice:example.org", "LAPTOP")
		wantRevoked(t, h, f.token)
		wantLive(t, h, access, "@alice:example.org")
		r := h.refresh(v3+"/refresh", refresh)
		wantOK(t, r)
		wantLive(t, h, r.str("access_token"), "@alice:example.org")
		wantLive(t, h, f.bob, "@bob:example.org")
	})
}

// PW-4: a password change ends the user's other UIA sessions.
func TestChangePassword_EndsOtherSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		f := newFixture(h)
		pending := startUIA(t, h, "DELETE", v3+"/devices/TABLET", f.token, "")
		wantOK(t, h.do("POST", v3+"/account/password", `{"new_password":"new pw","logout_devices":false,`+passwordAuth("", alicePW)+`}`, bearer(f.token)))
		wantError(t, h.do("DELETE", v3+"/devices/TABLET", withAuth("{}", passwordAuth(pending, "new pw")), bearer(f.token)), 400, "M_UNKNOWN")
		wantDevices(t, h, "@alice:example.org", "OLDDEVICE", "PHONE", "TABLET")
	})
}

// Nothing of a password, a session ID or an auth dict reaches the logs.
func TestLogs_NoUIASecrets(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		var logs syncBuffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		h := newHarness(t, st, func(d *api.Deps) { d.Logger = logger })
		f := newFixture(h)
		session := startUIA(t, h, "POST", v3+"/account/password", f.token, `{"new_password":"brand new secret"}`)
		r := h.do("POST", v3+"/account/password", `{"new_password":"brand new secret",`+passwordAuth(session, "wrong guess 42")+`}`, bearer(f.token))
		wantError(t, r, 401, "M_FORBIDDEN")
		wantOK(t, h.do("POST", v3+"/account/password", `{"new_password":"brand new secret",`+passwordAuth(session, alicePW)+`}`, bearer(f.token)))
		out := logs.String()
		if !strings.Contains(out, "/account/password") {
			t.Fatalf("the log does not show the requests (the check would read nothing):\n%s", out)
		}
		for _, secret := range []string{session, "brand new secret", "wrong guess 42", alicePW, "m.login.password", f.token} {
			if strings.Contains(out, secret) {
				t.Fatalf("log holds %q:\n%s", secret, out)
			}
		}
	})
}
