package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/migrations"
)

// env returns a getenv over the given variables, with the low bcrypt cost
// tests use.
func env(vars ...string) func(string) string {
	m := map[string]string{"AUTHD_BCRYPT_COST": "4", "AUTHD_SERVER_NAME": "example.org", "AUTHD_LOG_FORMAT": "json"}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// runCLI runs one authd command in-process and returns its output.
func runCLI(t *testing.T, getenv func(string) string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// mustCLI runs a command that must succeed.
func mustCLI(t *testing.T, getenv func(string) string, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, getenv, stdin, args...)
	if err != nil {
		t.Fatalf("authd %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// serve boots run("serve") on 127.0.0.1:0 and returns its base URL, once
// the listening log line has said where it is and the ready line that its
// store is open. The server stops, and run must return nil, when the test
// ends.
func serve(t *testing.T, getenv func(string) string) string {
	t.Helper()
	return startServe(t, getenv, "ready").base
}

// served is a run("serve") in progress.
type served struct {
	base string // http://127.0.0.1:PORT
	mu   sync.Mutex
	logs strings.Builder

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// stop ends the server as SIGTERM does and returns what run returned; a
// second call returns the same.
func (s *served) stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		s.stopErr = <-s.done
	})
	return s.stopErr
}

// log returns what the server logged so far.
func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startServe boots run("serve") and returns once it has logged the message
// waitFor ("listening" or "ready"). It stops when the test ends, and run
// must then return nil.
func startServe(t *testing.T, getenv func(string) string, waitFor string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, getenv, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	s := &served{cancel: cancel, done: done}
	addr := make(chan string, 1)
	go func() {
		var listening string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Msg == "listening" {
				listening = line.Addr
			}
			if line.Msg == waitFor {
				addr <- listening
			}
		}
		close(addr)
		io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	a, ok := <-addr
	if !ok {
		err := <-done
		t.Fatalf("serve exited before %s: %v\n%s", waitFor, err, s.log())
	}
	s.base = "http://" + a
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("serve returned %v", err)
		}
		// Secrets never reach the log.
		logs := s.log()
		for _, secret := range secretsSeen {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds a secret")
			}
		}
	})
	return s
}

// secretsSeen collects the passwords and tokens a test handled, so that the
// log check in serve's cleanup can look for them.
var secretsSeen []string

type result struct {
	status int
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, body, tok string) result {
	t.Helper()
	return callWith(t, http.DefaultClient, method, url, body, tok)
}

// callWith is call with the given client.
func callWith(t *testing.T, client *http.Client, method, url, body, tok string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, raw: string(b)}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, url, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, url, b, err)
	}
	return r
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

// walk is the README's walk-through: create a user with the CLI, log in
// every way the issue names, whoami, logout, whoami again. It returns the
// tokens and password it used.
func walk(t *testing.T, getenv func(string) string) (secrets []string) {
	const pw = "correct horse battery staple"
	secretsSeen = append(secretsSeen, pw)
	if out := mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin", "--email", "Alice@Example.org"); out != "created @alice:example.org\n" {
		t.Fatalf("user create printed %q", out)
	}
	base := serve(t, getenv)
	secrets = append(secrets, pw)

	bodies := map[string]string{
		"/_matrix/client/v3/login": `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"` + pw + `"}`,
		"/_matrix/client/r0/login": `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"` + pw + `"}`,
		"legacy":                   `{"type":"m.login.password","user":"alice","password":"` + pw + `"}`,
		"email":                    `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"alice@example.org"},"password":"` + pw + `"}`,
	}
	for name, body := range bodies {
		path := name
		if !strings.HasPrefix(name, "/") {
			path = "/_matrix/client/v3/login"
		}
		login := call(t, "POST", base+path, body, "")
		if login.status != 200 || login.str("user_id") != "@alice:example.org" || login.str("home_server") != "example.org" ||
			login.str("device_id") == "" || login.str("access_token") == "" {
			t.Fatalf("login %s = %d %s", name, login.status, login.raw)
		}
		tok := login.str("access_token")
		secrets = append(secrets, tok)
		secretsSeen = append(secretsSeen, tok)

		who := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", tok)
		if who.status != 200 || who.str("user_id") != "@alice:example.org" || who.str("device_id") != login.str("device_id") {
			t.Fatalf("whoami = %d %s", who.status, who.raw)
		}
		out := call(t, "POST", base+"/_matrix/client/v3/logout", "", tok)
		if out.status != 200 || out.raw != "{}" {
			t.Fatalf("logout = %d %s", out.status, out.raw)
		}
		again := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", tok)
		if again.status != 401 || again.str("errcode") != "M_UNKNOWN_TOKEN" {
			t.Fatalf("whoami after logout = %d %s", again.status, again.raw)
		}
	}

	wrong := call(t, "POST", base+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"nope"}`, "")
	unknown := call(t, "POST", base+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"mallory","password":"nope"}`, "")
	if wrong.status != 403 || wrong.str("errcode") != "M_FORBIDDEN" || wrong.raw != unknown.raw || unknown.status != 403 {
		t.Fatalf("wrong password = %d %s; unknown user = %d %s", wrong.status, wrong.raw, unknown.status, unknown.raw)
	}

	// A token that is still live, for the plaintext check.
	live := call(t, "POST", base+"/_matrix/client/v3/login", bodies["legacy"], "")
	secrets = append(secrets, live.str("access_token"))
	secretsSeen = append(secretsSeen, live.str("access_token"))

	// The CLI's deactivation revokes the live session.
	mustCLI(t, getenv, "", "user", "deactivate", "alice")
	if r := call(t, "GET", base+"/_matrix/client/v3/account/whoami", "", live.str("access_token")); r.status != 401 || r.str("errcode") != "M_UNKNOWN_TOKEN" {
		t.Fatalf("whoami after deactivation = %d %s", r.status, r.raw)
	}
	if r := call(t, "POST", base+"/_matrix/client/v3/login", bodies["legacy"], ""); r.status != 403 || r.str("errcode") != "M_FORBIDDEN" {
		t.Fatalf("login after deactivation = %d %s", r.status, r.raw)
	}
	return secrets
}

func TestRun_SQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authd.db")
	getenv := env("AUTHD_DATABASE_URL=sqlite:"+path, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true")
	// The CLI needs a migrated schema; serve migrates with AUTHD_MIGRATE, the
	// operator runs `authd migrate` otherwise.
	mustCLI(t, getenv, "", "migrate", "up")
	secrets := walk(t, getenv)

	// The database holds no plaintext token or password: read every byte
	// SQLite wrote, write-ahead log included.
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s holds a plaintext secret", filepath.Base(f))
			}
		}
	}
}

func TestRun_Postgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	getenv := env("AUTHD_DATABASE_URL="+url, "AUTHD_LISTEN=127.0.0.1:0")
	latest, err := migrations.Latest("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if out, want := mustCLI(t, getenv, "", "migrate", "up"), fmt.Sprintf("schema version %d of %d (current)\n", latest, latest); out != want {
		t.Fatalf("migrate up printed %q, want %q", out, want)
	}
	secrets := walk(t, getenv)

	// Dump every row of every table as text and look for the secrets.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 4 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	var dump strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		dump.WriteString(strings.Join(texts, "\n"))
	}
	if !strings.Contains(dump.String(), "@alice:example.org") {
		t.Fatal("the dump does not hold the user: the check reads nothing")
	}
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Fatal("the database holds a plaintext secret")
		}
	}
}
