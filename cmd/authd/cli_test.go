package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authd/authd/migrations"
)

func sqliteEnv(t *testing.T, vars ...string) func(string) string {
	t.Helper()
	return env(append([]string{"AUTHD_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "authd.db")}, vars...)...)
}

func wantErr(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %v, want one containing %q", err, contains)
	}
	if strings.Contains(err.Error(), "\n") && !strings.HasPrefix(err.Error(), "unknown") && !strings.HasPrefix(err.Error(), "usage") {
		t.Fatalf("error %q is not one line", err)
	}
}

func TestCLI_UserLifecycle(t *testing.T) {
	getenv := sqliteEnv(t)
	mustCLI(t, getenv, "", "migrate")

	mustCLI(t, getenv, "pw1\n", "user", "create", "Bob", "--password-stdin")
	_, _, err := runCLI(t, getenv, "pw\n", "user", "create", "bob", "--password-stdin")
	wantErr(t, err, "user @bob:example.org already exists")
	mustCLI(t, getenv, "pw\n", "user", "create", "@carol:example.org", "--email", "carol@example.org", "--password-stdin")
	_, _, err = runCLI(t, getenv, "pw\n", "user", "create", "dave", "--email", "CAROL@example.org", "--password-stdin")
	wantErr(t, err, "email carol@example.org is already bound to another user")
	// The failed create wrote nothing.
	if out := mustCLI(t, getenv, "", "user", "list"); strings.Contains(out, "dave") {
		t.Fatalf("a failed create left a user:\n%s", out)
	}

	out := mustCLI(t, getenv, "", "user", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "USER ID") ||
		!strings.HasPrefix(lines[1], "@bob:example.org") || !strings.Contains(lines[1], "active") ||
		!strings.HasPrefix(lines[2], "@carol:example.org") || !strings.Contains(lines[2], "carol@example.org") {
		t.Fatalf("user list:\n%s", out)
	}

	if out := mustCLI(t, getenv, "bob@example.org", "user", "email", "add", "bob", "Bob@Example.org"); out != "bound bob@example.org to @bob:example.org\n" {
		t.Fatalf("email add printed %q", out)
	}
	_, _, err = runCLI(t, getenv, "", "user", "email", "add", "carol", "bob@example.org")
	wantErr(t, err, "already bound")
	mustCLI(t, getenv, "", "user", "email", "remove", "bob", "bob@example.org")
	_, _, err = runCLI(t, getenv, "", "user", "email", "remove", "bob", "bob@example.org")
	wantErr(t, err, "not bound")

	if out := mustCLI(t, getenv, "new pw\n", "user", "passwd", "BOB", "--password-stdin"); out != "password changed for @bob:example.org; 0 device(s) logged out\n" {
		t.Fatalf("passwd printed %q", out)
	}
	mustCLI(t, getenv, "", "user", "email", "add", "bob", "bob@example.org")
	if out := mustCLI(t, getenv, "", "user", "deactivate", "bob"); out != "deactivated @bob:example.org; every session revoked, every email address unbound, the password removed\n" {
		t.Fatalf("deactivate printed %q", out)
	}
	// Deactivation freed the address.
	mustCLI(t, getenv, "", "user", "email", "add", "carol", "bob@example.org")
	if out := mustCLI(t, getenv, "", "user", "list"); !strings.Contains(out, "deactivated") {
		t.Fatalf("user list after deactivate:\n%s", out)
	}
	_, _, err = runCLI(t, getenv, "", "user", "deactivate", "nobody")
	wantErr(t, err, "no user @nobody:example.org")
}

func TestCLI_Errors(t *testing.T) {
	getenv := sqliteEnv(t)
	mustCLI(t, getenv, "", "migrate", "up")
	tests := []struct {
		name   string
		getenv func(string) string
		stdin  string
		args   []string
		want   string
	}{
		{"NoCommand", getenv, "", nil, "no command given"},
		{"UnknownCommand", getenv, "", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"EmptyPassword", getenv, "\n", []string{"user", "create", "erin", "--password-stdin"}, "the password is empty"},
		{"LongPassword", getenv, strings.Repeat("p", 1025), []string{"user", "create", "erin", "--password-stdin"}, "longer than 1024 bytes"},
		{"NotATerminal", getenv, "pw\n", []string{"user", "create", "erin"}, "--password-stdin"},
		{"BadLocalpart", getenv, "pw\n", []string{"user", "create", "er in", "--password-stdin"}, "may only hold"},
		{"ForeignServer", getenv, "pw\n", []string{"user", "create", "@erin:elsewhere.org", "--password-stdin"}, "not a user ID on example.org"},
		{"MissingLocalpart", getenv, "pw\n", []string{"user", "create", "--password-stdin"}, "usage"},
		{"BadEmail", getenv, "pw\n", []string{"user", "create", "erin", "--email", "nope", "--password-stdin"}, "not an email address"},
		{"BadDatabaseURL", env("AUTHD_DATABASE_URL=mysql://root:hunter2@db/x"), "", []string{"migrate"}, "must be a postgres://"},
		{"UnreachablePostgres", env("AUTHD_DATABASE_URL=postgres://authd:pw@127.0.0.1:1/authd?connect_timeout=2"), "", []string{"user", "list"}, "cannot reach the database"},
		{"BadCost", env("AUTHD_BCRYPT_COST=99"), "pw\n", []string{"user", "create", "erin", "--password-stdin"}, "AUTHD_BCRYPT_COST"},
		{"BadMigrateAction", getenv, "", []string{"migrate", "down"}, "unknown migrate action"},
		{"ServeBadListen", env("AUTHD_LISTEN=nonsense"), "", []string{"serve"}, "AUTHD_LISTEN"},
		{"ServeBadBaseURL", env("AUTHD_PUBLIC_BASEURL=matrix.example.org"), "", []string{"serve"}, "AUTHD_PUBLIC_BASEURL"},
		{"ServeBadVersions", env("AUTHD_SERVE_VERSIONS=maybe"), "", []string{"serve"}, "AUTHD_SERVE_VERSIONS"},
		{"ServeBadServerName", env("AUTHD_SERVER_NAME=bad name"), "", []string{"serve"}, "AUTHD_SERVER_NAME"},
		{"ServeBadBackend", env("AUTHD_RATELIMIT_BACKEND=memcached"), "", []string{"serve"}, "AUTHD_RATELIMIT_BACKEND"},
		{"ServeRedisWithoutURL", env("AUTHD_RATELIMIT_BACKEND=redis"), "", []string{"serve"}, "AUTHD_REDIS_URL: needed"},
		{"ServeBadRedisURL", env("AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL=http://:hunter2@redis:6379"), "", []string{"serve"}, "AUTHD_REDIS_URL: not a redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.getenv, tt.stdin, tt.args...)
			wantErr(t, err, tt.want)
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q echoes a database password", err)
			}
		})
	}
}

// serve refuses a schema that is behind, and says how to migrate.
func TestServe_RefusesOldSchema(t *testing.T) {
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0")
	_, _, err := runCLI(t, getenv, "", "serve")
	wantErr(t, err, "run `authd migrate up` or set AUTHD_MIGRATE=true")
	_, _, err = runCLI(t, getenv, "pw\n", "user", "create", "erin", "--password-stdin")
	wantErr(t, err, "authd migrate up")
	latest, err := migrations.Latest("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if out, want := mustCLI(t, getenv, "", "migrate", "version"), fmt.Sprintf("schema version 0 of %d (behind: run `authd migrate up`)\n", latest); out != want {
		t.Fatalf("migrate version printed %q, want %q", out, want)
	}
}

func TestHealthcheck(t *testing.T) {
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true")
	base := serve(t, getenv)
	addr := strings.TrimPrefix(base, "http://")
	if out := mustCLI(t, env("AUTHD_LISTEN="+addr), "", "healthcheck"); out != "ready\n" {
		t.Fatalf("healthcheck printed %q", out)
	}
	_, _, err := runCLI(t, env("AUTHD_LISTEN=127.0.0.1:1"), "", "healthcheck")
	wantErr(t, err, "not ready")
}
