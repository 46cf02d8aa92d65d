package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/redistest"
	"github.com/authd/authd/internal/store/postgres"
)

// Two `serve` processes on one Postgres and one Redis, wired as serve wires
// them: /readyz names the shared parts, a logout on one is refused by the
// other although it cached the token, the CLI's passwd reaches both, and
// with Redis gone both fall back to local limits and say so.
func TestServe_Replicas(t *testing.T) {
	redis := redistest.New(t)
	getenv := env("AUTHD_DATABASE_URL="+pgtest.NewDatabase(t), "AUTHD_LISTEN=127.0.0.1:0",
		"AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL="+redis.URL(),
		"AUTHD_RATELIMIT_LOGIN_IP=4/1h", "AUTHD_RATELIMIT_LOGIN_SUCCESS=100/1h")
	mustCLI(t, getenv, "", "migrate", "up")
	const password = "replicated password"
	secretsSeen = append(secretsSeen, password)
	mustCLI(t, getenv, password+"\n", "user", "create", "rita", "--password-stdin")
	a, b := startServe(t, getenv, "ready").base, startServe(t, getenv, "ready").base

	for _, base := range []string{a, b} {
		waitReadyz(t, base, "ratelimit", "redis")
		waitReadyz(t, base, "revocations", "subscribed")
	}

	login := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"rita"},"password":"` + password + `"}`
	for i := range 3 {
		tok := call(t, "POST", a+"/_matrix/client/v3/login", login, "").body["access_token"].(string)
		secretsSeen = append(secretsSeen, tok)
		for range 2 { // the second answer comes from b's cache
			if r := call(t, "GET", b+"/_matrix/client/v3/account/whoami", "", tok); r.status != 200 {
				t.Fatalf("whoami on b: %d %s", r.status, r.raw)
			}
		}
		received := revocationsReceived(t, b)
		if i < 2 {
			if r := call(t, "POST", a+"/_matrix/client/v3/logout", "{}", tok); r.status != 200 {
				t.Fatalf("logout on a: %d %s", r.status, r.raw)
			}
		} else {
			mustCLI(t, getenv, password+"\n", "user", "passwd", "rita", "--password-stdin")
		}
		waitRefusedOnNotice(t, b, tok, received)
	}

	// The login-IP budget (4) is shared: three logins above spent three.
	if r := call(t, "POST", b+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"nobody","password":"x"}`, ""); r.status != 403 {
		t.Fatalf("4th login: %d %s", r.status, r.raw)
	}
	if r := call(t, "POST", a+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"nobody","password":"x"}`, ""); r.status != 429 || r.body["errcode"] != "M_LIMIT_EXCEEDED" {
		t.Fatalf("5th login, on the other replica: %d %s, want 429", r.status, r.raw)
	}

	// Redis gone: local limits, fresh buckets, on each replica.
	redis.Stop()
	for _, base := range []string{a, b} {
		if r := call(t, "POST", base+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"nobody","password":"x"}`, ""); r.status != 403 {
			t.Fatalf("login with Redis down: %d %s, want 403 from a local bucket", r.status, r.raw)
		}
		waitReadyz(t, base, "ratelimit", "local (redis unreachable)")
		m := scrapeText(t, base+"/metrics")
		for _, want := range []string{"authd_ratelimit_shared 0", "authd_ratelimit_fallbacks_total 1", "authd_ratelimit_forgiven_total 0", "authd_revocations_subscribed 1"} {
			if !strings.Contains(m, "\n"+want+"\n") {
				t.Errorf("%s/metrics lacks %q", base, want)
			}
		}
	}
	redis.Start()
	for _, base := range []string{a, b} {
		waitReadyz(t, base, "ratelimit", "redis")
	}
}

// On SQLite the CLI is another process, with a store of its own on the
// file: its passwd and deactivate reach a running serve's token cache
// through the revocations table, which serve polls: serve refuses the token
// once the notice reaches it, before the cache's lifetime (5 s) is out.
func TestServe_SQLiteCLIRevokes(t *testing.T) {
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0")
	mustCLI(t, getenv, "", "migrate", "up")
	s := startServe(t, getenv, "ready")
	waitReadyz(t, s.base, "revocations", "subscribed")
	const password = "sqlite cli password"
	secretsSeen = append(secretsSeen, password)
	for _, c := range []struct {
		user  string
		stdin string
		args  []string
	}{
		{"sam", password + "\n", []string{"user", "passwd", "sam", "--password-stdin"}},
		{"dana", "", []string{"user", "deactivate", "dana"}},
	} {
		mustCLI(t, getenv, password+"\n", "user", "create", c.user, "--password-stdin")
		login := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"` + c.user + `"},"password":"` + password + `"}`
		r := call(t, "POST", s.base+"/_matrix/client/v3/login", login, "")
		tok, _ := r.body["access_token"].(string)
		if r.status != 200 || tok == "" {
			t.Fatalf("login of %s: %d %s", c.user, r.status, r.raw)
		}
		secretsSeen = append(secretsSeen, tok)
		for range 2 { // the second answer comes from the cache
			if r := call(t, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok); r.status != 200 {
				t.Fatalf("whoami of %s: %d %s", c.user, r.status, r.raw)
			}
		}
		received := revocationsReceived(t, s.base)
		mustCLI(t, getenv, c.stdin, c.args...)
		waitRefusedOnNotice(t, s.base, tok, received)
	}
}

// waitRefusedOnNotice polls base's whoami with tok, revoked by another
// process after base's authd_revocations_received_total read received,
// until base refuses it, and asserts the order of events: base answers 200
// from its cache until the revocation notice reaches it, and 401
// M_UNKNOWN_TOKEN from then on, never anything else. How long that takes is
// measured by `make bench`, not asserted here.
func waitRefusedOnNotice(t *testing.T, base, tok string, received float64) {
	t.Helper()
	waitRefusedWith(t, base, tok, received, "M_UNKNOWN_TOKEN")
}

// waitRefusedWith is waitRefusedOnNotice for a refusal with errcode: a
// lock answers M_USER_LOCKED.
func waitRefusedWith(t *testing.T, base, tok string, received float64, errcode string) {
	t.Helper()
	// No deadline: once the cache's lifetime (5 s) is out, base checks the
	// database and refuses the token, notice or not, which ends the loop.
	start := time.Now()
	noticed := false
	for polls := 1; ; polls++ {
		r := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", tok)
		refused := r.status == 401 && r.body["errcode"] == errcode
		switch {
		case r.status != 200 && !refused:
			t.Fatalf("%s answers %d %s after the revocation", base, r.status, r.raw)
		case refused && !noticed:
			// The notice may have come between the last scrape and this
			// answer; it must have come by now.
			if n := revocationsReceived(t, base); n <= received {
				t.Fatalf("%s refused the token before the revocation notice reached it (authd_revocations_received_total %v, was %v)", base, n, received)
			}
			fallthrough
		case refused:
			t.Logf("%s refused the token after %d polls, %v", base, polls, time.Since(start))
			return
		case noticed:
			t.Fatalf("%s still answers 200 %s after the revocation notice reached it", base, r.raw)
		}
		noticed = revocationsReceived(t, base) > received
	}
}

// revocationsReceived is base's authd_revocations_received_total.
func revocationsReceived(t *testing.T, base string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(scrapeText(t, base+"/metrics")))
	if err != nil {
		t.Fatalf("%s/metrics: %v", base, err)
	}
	f := families["authd_revocations_received_total"]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("%s/metrics has no authd_revocations_received_total", base)
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

// waitReadyz polls /readyz until its check name says want, for at most 10 s
// (Redis is probed every second).
func waitReadyz(t *testing.T, base, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, "GET", base+"/readyz", "", "")
		checks, _ := r.body["checks"].(map[string]any)
		if r.status == 200 && checks[name] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: %d %s, want checks.%s %q", base, r.status, r.raw, name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A serve whose revocation subscription is cut (its Postgres backend
// terminated) says so once, bypasses its cache meanwhile, and resubscribes.
func TestServe_RevocationFeedLost(t *testing.T) {
	url := pgtest.NewDatabase(t)
	getenv := env("AUTHD_DATABASE_URL="+url, "AUTHD_LISTEN=127.0.0.1:0")
	mustCLI(t, getenv, "", "migrate", "up")
	s := startServe(t, getenv, "ready")
	waitReadyz(t, s.base, "revocations", "subscribed")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		postgres.ListenerApplicationName).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminated %d listeners, %v; want 1", n, err)
	}
	waitLog(t, s, "not receiving revocations; token cache bypassed until resubscribed")
	waitLog(t, s, "receiving revocations again; token cache back on")
	waitReadyz(t, s.base, "revocations", "subscribed")
	if m := scrapeText(t, s.base+"/metrics"); !strings.Contains(m, "\nauthd_revocations_subscribed 1\n") {
		t.Errorf("/metrics after resubscribing:\n%s", m)
	}
	if got := strings.Count(s.log(), "not receiving revocations"); got != 1 {
		t.Errorf("the outage was logged %d times, want once", got)
	}
}

// waitLog polls the server's log for msg, for at most 10 s.
func waitLog(t *testing.T, s *served, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.log(), `"msg":"`+msg+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", msg, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A lock made through the admin API of one replica, or by the CLI, is
// honoured by the other replica as fast as a revocation: it answers the
// locked account's cached token M_USER_LOCKED once the notice arrives,
// lets it log out, and after the unlock takes the same token again.
func TestServe_ReplicasLock(t *testing.T) {
	getenv := env("AUTHD_DATABASE_URL="+pgtest.NewDatabase(t), "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_ADMIN_API=on", "AUTHD_RATELIMIT=off")
	testLockAcrossProcesses(t, getenv, true)
}

// The same on SQLite, with the CLI locking beside one serve.
func TestServe_SQLiteCLILocks(t *testing.T) {
	testLockAcrossProcesses(t, sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_ADMIN_API=on", "AUTHD_RATELIMIT=off"), false)
}

func testLockAcrossProcesses(t *testing.T, getenv func(string) string, twoReplicas bool) {
	mustCLI(t, getenv, "", "migrate", "up")
	const password = "lockable password"
	secretsSeen = append(secretsSeen, password)
	mustCLI(t, getenv, password+"\n", "user", "create", "root", "--admin", "--password-stdin")
	mustCLI(t, getenv, password+"\n", "user", "create", "lou", "--password-stdin")
	a := startServe(t, getenv, "ready").base
	b := a
	if twoReplicas {
		b = startServe(t, getenv, "ready").base
	}
	for _, base := range []string{a, b} {
		waitReadyz(t, base, "revocations", "subscribed")
	}
	loginAs := func(user string) string {
		r := call(t, "POST", a+"/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"`+user+`"},"password":"`+password+`"}`, "")
		tok, _ := r.body["access_token"].(string)
		if r.status != 200 || tok == "" {
			t.Fatalf("login of %s: %d %s", user, r.status, r.raw)
		}
		secretsSeen = append(secretsSeen, tok)
		return tok
	}
	root, lou, louOther := loginAs("root"), loginAs("lou"), loginAs("lou")
	for range 2 { // the second answer comes from b's cache
		if r := call(t, "GET", b+"/_matrix/client/v3/account/whoami", "", lou); r.status != 200 {
			t.Fatalf("whoami on b: %d %s", r.status, r.raw)
		}
	}
	received := revocationsReceived(t, b)
	if twoReplicas {
		r := call(t, "PUT", a+"/_matrix/client/v1/admin/lock/@lou:example.org", `{"locked":true}`, root)
		if r.status != 200 || r.body["locked"] != true {
			t.Fatalf("lock on a: %d %s", r.status, r.raw)
		}
	} else {
		mustCLI(t, getenv, "", "user", "lock", "lou")
	}
	waitRefusedWith(t, b, lou, received, "M_USER_LOCKED")
	if r := call(t, "GET", b+"/_matrix/client/v3/account/whoami", "", lou); r.body["soft_logout"] != true {
		t.Fatalf("locked whoami on b: %d %s, want soft_logout true", r.status, r.raw)
	}
	// Logging out still works, and the locked login is refused.
	if r := call(t, "POST", b+"/_matrix/client/v3/logout", "{}", louOther); r.status != 200 {
		t.Fatalf("logout of a locked account on b: %d %s", r.status, r.raw)
	}
	if r := call(t, "POST", b+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"lou","password":"`+password+`"}`, ""); r.status != 401 || r.body["errcode"] != "M_USER_LOCKED" {
		t.Fatalf("login of a locked account: %d %s", r.status, r.raw)
	}
	mustCLI(t, getenv, "", "user", "unlock", "lou")
	for _, base := range []string{a, b} {
		if r := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", lou); r.status != 200 {
			t.Fatalf("whoami after the unlock on %s: %d %s", base, r.status, r.raw)
		}
		if r := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", louOther); r.status != 401 || r.body["errcode"] != "M_UNKNOWN_TOKEN" {
			t.Fatalf("the logged-out token after the unlock on %s: %d %s", base, r.status, r.raw)
		}
	}
}
