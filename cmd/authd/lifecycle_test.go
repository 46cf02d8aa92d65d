package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store/sqlite"
)

// poll calls f until it returns true, at most until the deadline, and
// fails the test with what if it never does.
func poll(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func loginBody(user, pw string) string {
	return `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"` + user + `"},"password":"` + pw + `"}`
}

func wantUnavailable(t *testing.T, r result, what string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.str("errcode") != "M_UNKNOWN" {
		t.Fatalf("%s = %d %s, want 503 M_UNKNOWN", what, r.status, r.raw)
	}
	if _, ok := r.body["access_token"]; ok {
		t.Fatalf("%s issued a token while the database was down", what)
	}
}

// TestServe_PostgresLost stops Postgres under a running authd: requests get
// 503 M_UNKNOWN within the database timeout and /readyz says not ready;
// once Postgres is back, logins succeed again, and the tokens issued before
// still work, all without restarting authd.
func TestServe_PostgresLost(t *testing.T) {
	pg := pgtest.NewCluster(t)
	const dbTimeout = time.Second
	getenv := env("AUTHD_DATABASE_URL="+pg.URL(), "AUTHD_LISTEN=127.0.0.1:0",
		"AUTHD_DB_TIMEOUT="+dbTimeout.String(), "AUTHD_RATELIMIT=off")
	mustCLI(t, getenv, "", "migrate", "up")
	const pw = "postgres comes and goes"
	secretsSeen = append(secretsSeen, pw)
	mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin")
	s := startServe(t, getenv, "ready")
	// Each request must be answered within the database timeout, plus a
	// margin for the rest of its work (bcrypt at cost 4, the race detector).
	client := &http.Client{Timeout: dbTimeout + 5*time.Second}

	login := callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), "")
	if login.status != 200 {
		t.Fatalf("login = %d %s", login.status, login.raw)
	}
	tok := login.str("access_token")
	secretsSeen = append(secretsSeen, tok)

	pg.Stop()
	// Several rounds: the first meets the pool's dead connections, the
	// next ones fresh connection attempts that are refused.
	for i := range 3 {
		wantUnavailable(t, callWith(t, client, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok), fmt.Sprintf("whoami #%d", i))
		wantUnavailable(t, callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), ""), fmt.Sprintf("login #%d", i))
		wantUnavailable(t, callWith(t, client, "GET", s.base+"/_authd/verify", "", tok), fmt.Sprintf("verify #%d", i))
		wantUnavailable(t, callWith(t, client, "POST", s.base+"/_matrix/client/v3/logout", "", tok), fmt.Sprintf("logout #%d", i))
	}
	if r := callWith(t, client, "GET", s.base+"/readyz", "", ""); r.status != 503 || r.str("reason") != "database unreachable" {
		t.Fatalf("readyz with Postgres down = %d %s", r.status, r.raw)
	}
	if r := callWith(t, client, "GET", s.base+"/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz with Postgres down = %d %s", r.status, r.raw)
	}

	pg.Start()
	var again result
	poll(t, 30*time.Second, "a login after Postgres came back", func() bool {
		again = callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), "")
		if again.status != 200 && again.status != 503 {
			t.Fatalf("login while Postgres restarts = %d %s", again.status, again.raw)
		}
		return again.status == 200
	})
	secretsSeen = append(secretsSeen, again.str("access_token"))
	// The session from before the outage survived it: nothing was revoked,
	// nothing issued that was not stored.
	if r := callWith(t, client, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok); r.status != 200 || r.str("device_id") != login.str("device_id") {
		t.Fatalf("whoami with the token from before the outage = %d %s", r.status, r.raw)
	}
	if r := callWith(t, client, "GET", s.base+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz after Postgres came back = %d %s", r.status, r.raw)
	}
	if log := s.log(); strings.Contains(log, `"level":"ERROR"`) {
		t.Fatalf("the outage was logged as an internal error:\n%s", log)
	}
}

// TestServe_PostgresHangs freezes Postgres under a running authd, so that
// it accepts connections and queries and answers none (a network partition,
// a stuck server): each request still gets 503 M_UNKNOWN, bounded by
// AUTHD_DB_TIMEOUT, and everything works again once Postgres answers.
func TestServe_PostgresHangs(t *testing.T) {
	pg := pgtest.NewCluster(t)
	const dbTimeout = 500 * time.Millisecond
	getenv := env("AUTHD_DATABASE_URL="+pg.URL(), "AUTHD_LISTEN=127.0.0.1:0",
		"AUTHD_DB_TIMEOUT="+dbTimeout.String(), "AUTHD_RATELIMIT=off")
	mustCLI(t, getenv, "", "migrate", "up")
	const pw = "postgres stops answering"
	secretsSeen = append(secretsSeen, pw)
	mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin")
	s := startServe(t, getenv, "ready")
	// Without the bound, these requests would wait for as long as
	// Postgres is frozen: the client's timeout would fail the test.
	client := &http.Client{Timeout: dbTimeout + 5*time.Second}
	login := callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), "")
	if login.status != 200 {
		t.Fatalf("login = %d %s", login.status, login.raw)
	}
	tok := login.str("access_token")
	secretsSeen = append(secretsSeen, tok)

	pg.Freeze()
	for i := range 2 {
		wantUnavailable(t, callWith(t, client, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok), fmt.Sprintf("whoami #%d", i))
		wantUnavailable(t, callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), ""), fmt.Sprintf("login #%d", i))
	}
	if r := callWith(t, client, "GET", s.base+"/readyz", "", ""); r.status != 503 {
		t.Fatalf("readyz with Postgres frozen = %d %s", r.status, r.raw)
	}

	pg.Thaw()
	poll(t, 30*time.Second, "whoami after Postgres answers again", func() bool {
		r := callWith(t, client, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok)
		if r.status != 200 && r.status != 503 {
			t.Fatalf("whoami while Postgres thaws = %d %s", r.status, r.raw)
		}
		return r.status == 200
	})
	if r := callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), ""); r.status != 200 {
		t.Fatalf("login after Postgres answers again = %d %s", r.status, r.raw)
	} else {
		secretsSeen = append(secretsSeen, r.str("access_token"))
	}
}

// TestServe_PostgresDownAtStart starts authd while Postgres is down: it
// listens, says it is alive but not ready, answers 503, retries with a log
// line per attempt, and becomes ready once Postgres is up.
func TestServe_PostgresDownAtStart(t *testing.T) {
	pg := pgtest.NewCluster(t)
	getenv := env("AUTHD_DATABASE_URL="+pg.URL(), "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_RATELIMIT=off")
	mustCLI(t, getenv, "", "migrate", "up")
	const pw = "patience"
	secretsSeen = append(secretsSeen, pw)
	mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin")
	pg.Stop()

	s := startServe(t, getenv, "listening")
	client := &http.Client{Timeout: 10 * time.Second}
	if r := callWith(t, client, "GET", s.base+"/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz = %d %s", r.status, r.raw)
	}
	if r := callWith(t, client, "GET", s.base+"/readyz", "", ""); r.status != 503 || r.str("reason") != "database unreachable" {
		t.Fatalf("readyz = %d %s", r.status, r.raw)
	}
	wantUnavailable(t, callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), ""), "login")
	poll(t, 10*time.Second, "two retries logged", func() bool {
		return strings.Count(s.log(), `"msg":"database unreachable, retrying"`) >= 2
	})
	for line := range strings.SplitSeq(s.log(), "\n") {
		if strings.Contains(line, "retrying") && (strings.Contains(line, "postgres://") || !strings.Contains(line, `"attempt":`)) {
			t.Fatalf("retry line %s: want an attempt number and no URL", line)
		}
	}

	pg.Start()
	poll(t, 30*time.Second, "ready after Postgres started", func() bool {
		return callWith(t, client, "GET", s.base+"/readyz", "", "").status == 200
	})
	r := callWith(t, client, "POST", s.base+"/_matrix/client/v3/login", loginBody("alice", pw), "")
	if r.status != 200 {
		t.Fatalf("login once ready = %d %s", r.status, r.raw)
	}
	secretsSeen = append(secretsSeen, r.str("access_token"))
}

// TestServe_PostgresFrozenAtStart starts authd while Postgres accepts
// connections and answers nothing: each connection attempt times out
// (connect_timeout), is retried like a refusal, and authd becomes ready once
// Postgres answers.
func TestServe_PostgresFrozenAtStart(t *testing.T) {
	pg := pgtest.NewCluster(t)
	getenv := env("AUTHD_DATABASE_URL="+pg.URL()+"&connect_timeout=1", "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true")
	pg.Freeze()
	s := startServe(t, getenv, "listening")
	poll(t, 20*time.Second, "two retries logged", func() bool {
		return strings.Count(s.log(), `"msg":"database unreachable, retrying"`) >= 2
	})
	if r := call(t, "GET", s.base+"/readyz", "", ""); r.status != 503 {
		t.Fatalf("readyz = %d %s", r.status, r.raw)
	}
	pg.Thaw()
	poll(t, 30*time.Second, "ready after Postgres answers", func() bool {
		return call(t, "GET", s.base+"/readyz", "", "").status == 200
	})
}

// A SIGTERM while authd waits for its database stops it cleanly (the
// cleanup of startServe checks that run returns nil).
func TestServe_StopWhileWaitingForDatabase(t *testing.T) {
	getenv := env("AUTHD_DATABASE_URL=postgres://authd:secret@127.0.0.1:1/authd?sslmode=disable", "AUTHD_LISTEN=127.0.0.1:0")
	s := startServe(t, getenv, "listening")
	poll(t, 10*time.Second, "a retry logged", func() bool {
		return strings.Contains(s.log(), "database unreachable, retrying")
	})
	if strings.Contains(s.log(), "secret") {
		t.Fatalf("the log holds the database password:\n%s", s.log())
	}
}

// buildAuthd compiles authd into a temporary directory, for the tests that
// must signal a real process.
func buildAuthd(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on the PATH to build authd: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "authd")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// burstRequest is one request of the SIGTERM burst and what became of it.
type burstRequest struct {
	id       string
	method   string
	path     string
	body     string
	tok      string
	wantCode int // 200, or 403 for a wrong password
	status   int
	err      error
}

// logLine is the part of a JSON log line the SIGTERM test reads.
type logLine struct {
	Msg       string `json:"msg"`
	Addr      string `json:"addr"`
	RequestID string `json:"request_id"`
	Status    int    `json:"status"`
}

// TestServe_SIGTERMDrains sends SIGTERM to a real authd process while a
// burst of logins (bcrypt cost 11, so that they take a while) and whoamis
// is in flight. Every request authd accepted is answered, successfully,
// and the process exits 0. A request it never accepted (its connection
// still in the kernel's queue when the listener closed) may fail to
// connect; authd's log shows which requests it accepted.
func TestServe_SIGTERMDrains(t *testing.T) {
	bin := buildAuthd(t)
	dbPath := filepath.Join(t.TempDir(), "authd.db")
	vars := []string{
		"AUTHD_DATABASE_URL=sqlite:" + dbPath,
		"AUTHD_LISTEN=127.0.0.1:0",
		"AUTHD_SERVER_NAME=example.org",
		"AUTHD_BCRYPT_COST=11",
		"AUTHD_MIGRATE=true",
		"AUTHD_RATELIMIT=off",
		// Queue for a hashing slot rather than be shed: every login of
		// the burst must be a 200 or a 403.
		"AUTHD_HASH_QUEUE_TIMEOUT=1m",
		// The test's client stands in for the proxy whose X-Request-Id
		// names each request of the burst in authd's log.
		"AUTHD_TRUSTED_PROXIES=127.0.0.1/32",
	}
	getenv := env(vars...)
	const pw = "drain me gently"
	secretsSeen = append(secretsSeen, pw)
	mustCLI(t, getenv, "", "migrate", "up")
	mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin")

	cmd := exec.Command(bin, "serve")
	// AUTHD_LOG_FORMAT is left to its default, auto: JSON, stderr being a
	// pipe.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, vars...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	var logMu sync.Mutex
	var lines []logLine
	var rawLog strings.Builder
	ready := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		var addr string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l logLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Msg = "not JSON: " + sc.Text()
			}
			logMu.Lock()
			lines = append(lines, l)
			rawLog.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			switch l.Msg {
			case "listening":
				addr = l.Addr
			case "ready":
				ready <- addr
			}
		}
	}()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case <-logDone:
		t.Fatalf("authd exited before it was ready:\n%s", rawLog.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("authd not ready within 30s:\n%s", rawLog.String())
	}

	first := call(t, "POST", base+"/_matrix/client/v3/login", loginBody("alice", pw), "")
	if first.status != 200 {
		t.Fatalf("login = %d %s", first.status, first.raw)
	}
	tok := first.str("access_token")
	secretsSeen = append(secretsSeen, tok)

	// The burst: one connection per request, so that no request can meet
	// a keep-alive connection that shutdown closes as idle. First the
	// logins, which queue for the two hashing slots; then the whoamis.
	// Once every whoami is answered, authd has read the connections opened
	// before them too, and the logins are queued or hashing: then SIGTERM.
	var logins, whoamis []*burstRequest
	for i := range 24 {
		body, want := loginBody("alice", pw), 200
		if i%3 == 2 {
			body, want = loginBody("alice", "wrong"), 403
		}
		logins = append(logins, &burstRequest{id: fmt.Sprintf("burst-login-%02d", i), method: "POST", path: "/_matrix/client/v3/login", body: body, wantCode: want})
		whoamis = append(whoamis, &burstRequest{id: fmt.Sprintf("burst-whoami-%02d", i), method: "GET", path: "/_matrix/client/v3/account/whoami", tok: tok, wantCode: 200})
	}
	burst := append(slices.Clone(logins), whoamis...)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	send := func(wg *sync.WaitGroup, reqs []*burstRequest) (allWritten chan struct{}) {
		allWritten = make(chan struct{})
		var written atomic.Int32
		for _, br := range reqs {
			wg.Go(func() {
				trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
					if int(written.Add(1)) == len(reqs) {
						close(allWritten)
					}
				}}
				var rd io.Reader
				if br.body != "" {
					rd = strings.NewReader(br.body)
				}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), br.method, base+br.path, rd)
				req.Header.Set("X-Request-Id", br.id)
				if br.tok != "" {
					req.Header.Set("Authorization", "Bearer "+br.tok)
				}
				resp, err := client.Do(req)
				if err != nil {
					br.err = err
					return
				}
				defer resp.Body.Close()
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					br.err = fmt.Errorf("reading the response: %w", err)
					return
				}
				br.status = resp.StatusCode
			})
		}
		return allWritten
	}
	within := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("not within 30s: %s", what)
		}
	}
	var loginsDone, whoamisDone sync.WaitGroup
	within(send(&loginsDone, logins), "every login written")
	send(&whoamisDone, whoamis)
	answered := make(chan struct{})
	go func() { whoamisDone.Wait(); close(answered) }()
	within(answered, "every whoami answered")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	loginsDone.Wait()
	select {
	case <-logDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("authd still running 30s after SIGTERM:\n%s", rawLog.String())
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("authd exited with %v, want 0:\n%s", err, rawLog.String())
	}

	// What authd accepted, from its log: one line per request, and where
	// shutdown began.
	served := map[string]int{}
	servedAfterSignal := 0
	shuttingDown := false
	for _, l := range lines {
		switch {
		case l.Msg == "shutting down":
			shuttingDown = true
		case l.Msg == "request" && strings.HasPrefix(l.RequestID, "burst-"):
			served[l.RequestID] = l.Status
			if shuttingDown {
				servedAfterSignal++
			}
		}
	}
	if !shuttingDown || lines[len(lines)-1].Msg != "stopped" {
		t.Fatalf("no shutting down ... stopped in the log:\n%s", rawLog.String())
	}
	ok, loggedIn := 0, 0
	for _, br := range burst {
		status, accepted := served[br.id]
		switch {
		case br.err != nil && accepted:
			t.Errorf("%s: authd answered %d, but the client got %v", br.id, status, br.err)
		case br.err != nil:
			// Never accepted: refused or reset in the listen queue.
			t.Logf("%s: not accepted before the listener closed (%v)", br.id, br.err)
		case br.status != br.wantCode:
			t.Errorf("%s: %d, want %d", br.id, br.status, br.wantCode)
		case !accepted:
			t.Errorf("%s: answered %d, but authd did not log it", br.id, br.status)
		default:
			ok++
			if br.method == "POST" && br.status == 200 {
				loggedIn++
			}
		}
	}
	// The test shows draining only if requests were in flight at SIGTERM.
	if servedAfterSignal == 0 {
		t.Fatalf("no request of the burst was still in flight at SIGTERM: the test shows nothing")
	}
	t.Logf("%d of %d requests answered, %d of them after SIGTERM", ok, len(burst), servedAfterSignal)
	// No session was written that its client did not hear of: the devices
	// are the first login's and one per login answered 200.
	st, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	devices, err := st.ListDevices(t.Context(), "@alice:example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 1+loggedIn {
		t.Fatalf("%d devices after %d logins answered 200 (and the first), want %d", len(devices), loggedIn, 1+loggedIn)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, s := range secretsSeen {
		if strings.Contains(rawLog.String(), s) {
			t.Errorf("the log holds a secret")
		}
	}
}

// metricsAddr is the address of the "metrics listening" log line.
func metricsAddr(t *testing.T, log string) string { return listeningAddr(t, log, "metrics listening") }

// listeningAddr returns the address of serve's log line msg.
func listeningAddr(t *testing.T, log, msg string) string {
	t.Helper()
	for line := range strings.SplitSeq(log, "\n") {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return l.Addr
		}
	}
	t.Fatalf("no %q line in\n%s", msg, log)
	return ""
}

// scrapeText GETs a /metrics URL and returns the exposition.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestServe_Metrics(t *testing.T) {
	t.Run("OnTheMainListener", func(t *testing.T) {
		s := startServe(t, sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true"), "ready")
		call(t, "POST", s.base+"/_matrix/client/v3/login", loginBody("nobody", "x"), "")
		out := scrapeText(t, s.base+"/metrics")
		for _, want := range []string{
			`authd_login_attempts_total{outcome="forbidden"} 1`,
			`authd_http_requests_total{method="POST",route="/_matrix/client/v3/login",status="403"} 1`,
			"\nauthd_active_sessions 0\n",
			"go_goroutines",
			"process_resident_memory_bytes",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
	})

	t.Run("OwnListener", func(t *testing.T) {
		s := startServe(t, sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true", "AUTHD_METRICS_LISTEN=127.0.0.1:0"), "ready")
		maddr := metricsAddr(t, s.log())
		if out := scrapeText(t, "http://"+maddr+"/metrics"); !strings.Contains(out, "authd_login_attempts_total") {
			t.Fatalf("the metrics listener serves\n%s", out)
		}
		// Only there: the main listener, which the proxy exposes, has none.
		if r := call(t, "GET", s.base+"/metrics", "", ""); r.status != 404 || r.str("errcode") != "M_UNRECOGNIZED" {
			t.Fatalf("/metrics on the main listener = %d %s", r.status, r.raw)
		}
		// And the metrics listener serves nothing else.
		resp, err := http.Get("http://" + maddr + "/_matrix/client/v3/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("the metrics listener answered /login with %d", resp.StatusCode)
		}
	})
}

// AUTHD_PPROF_LISTEN serves Go's profiler on an address of its own, never
// on the main listener, and not the command line (a flag may hold a
// secret).
func TestServe_PprofListener(t *testing.T) {
	s := startServe(t, sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true", "AUTHD_PPROF_LISTEN=127.0.0.1:0"), "ready")
	paddr := listeningAddr(t, s.log(), "profiler listening")
	status := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := status("http://" + paddr + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("the profiler's goroutine profile: %d %.200s", code, body)
	}
	if code, body := status("http://" + paddr + "/debug/pprof/cmdline"); code == 200 && strings.Contains(body, "serve") {
		t.Fatalf("the profiler serves the command line: %d %q", code, body)
	}
	if r := call(t, "GET", s.base+"/debug/pprof/", "", ""); r.status != 404 {
		t.Fatalf("/debug/pprof/ on the main listener = %d %s", r.status, r.raw)
	}
}

// The auto log format is JSON when stderr is not a terminal: a container's
// log, a pipe, a file.
func TestNewLogger_Auto(t *testing.T) {
	var b strings.Builder
	newLogger(&b, "auto", "info").Info("hello", "k", "v")
	var line map[string]any
	if err := json.Unmarshal([]byte(b.String()), &line); err != nil || line["msg"] != "hello" {
		t.Fatalf("auto wrote %q, want a JSON line", b.String())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	newLogger(f, "auto", "info").Info("hello")
	if b, _ := os.ReadFile(f.Name()); !strings.HasPrefix(string(b), "{") {
		t.Fatalf("auto wrote %q to a file, want JSON", b)
	}
}

// With AUTHD_SHUTDOWN_DELAY, a stopped serve says unavailable on /readyz at
// once but goes on answering for the delay (the time a proxy or Kubernetes
// takes to stop sending it requests), then exits 0.
func TestServe_ShutdownDelay(t *testing.T) {
	const delay = 2 * time.Second
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true", "AUTHD_SHUTDOWN_DELAY="+delay.String())
	s := startServe(t, getenv, "ready")
	if r := call(t, "GET", s.base+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("/readyz before the stop: %d %s", r.status, r.raw)
	}
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()

	// Ready no more, but serving: /readyz turns 503 while /login answers.
	// No deadline: a serve that never turned 503 exits after the delay,
	// and the next call fails.
	for {
		r := call(t, "GET", s.base+"/readyz", "", "")
		if r.status == 503 && r.str("reason") == "shutting down" {
			break
		}
		if r.status != 200 {
			t.Fatalf("/readyz after the stop: %d %s", r.status, r.raw)
		}
	}
	if r := call(t, "GET", s.base+"/_matrix/client/v3/login", "", ""); r.status != 200 {
		t.Fatalf("GET /login while draining: %d %s", r.status, r.raw)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	// A lower bound only: a loaded machine makes the drain longer, never
	// shorter.
	if took := time.Since(start); took < delay {
		t.Fatalf("serve stopped after %v, before its %v delay", took, delay)
	}
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Fatal("still listening after the shutdown")
	}
	if !strings.Contains(s.log(), `"msg":"draining: /readyz says unavailable, still serving","for":"2s"`) {
		t.Errorf("no draining line in the log:\n%s", s.log())
	}
}
