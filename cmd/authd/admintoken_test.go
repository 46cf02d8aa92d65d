package main

import (
	"regexp"
	"strings"
	"testing"
)

// authd admin token: issue prints the token alone on stdout, list shows
// its ID and name but never the token, the token authorises the admin API
// of a running serve and nothing else, and revoke ends it there at once.
func TestAdminToken_CLI(t *testing.T) {
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_ADMIN_API=on")
	mustCLI(t, getenv, "", "migrate", "up")
	out, errOut, err := runCLI(t, getenv, "", "admin", "token", "issue", "--name", "ansible", "--expires", "720h")
	if err != nil {
		t.Fatalf("issue: %v %s", err, errOut)
	}
	tok := strings.TrimSpace(out)
	secretsSeen = append(secretsSeen, tok)
	if !strings.HasPrefix(tok, "adm_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("issue printed %q, want the token alone", out)
	}
	m := regexp.MustCompile(`issued admin token (\S+);`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("issue's stderr names no ID: %q", errOut)
	}
	id := m[1]
	listed := mustCLI(t, getenv, "", "admin", "token", "list")
	if !strings.Contains(listed, id) || !strings.Contains(listed, "ansible") || strings.Contains(listed, tok) {
		t.Fatalf("list:\n%s", listed)
	}
	s := startServe(t, getenv, "ready")
	if r := call(t, "GET", s.base+"/_synapse/admin/v2/users", "", tok); r.status != 200 || r.body["total"] != float64(0) {
		t.Fatalf("users with the admin token: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", s.base+"/_matrix/client/v3/account/whoami", "", tok); r.status != 401 {
		t.Fatalf("whoami with the admin token: %d %s", r.status, r.raw)
	}
	mustCLI(t, getenv, "", "admin", "token", "revoke", id)
	if r := call(t, "GET", s.base+"/_synapse/admin/v2/users", "", tok); r.status != 401 || r.body["errcode"] != "M_UNKNOWN_TOKEN" {
		t.Fatalf("users with the revoked admin token: %d %s", r.status, r.raw)
	}
	if _, _, err := runCLI(t, getenv, "", "admin", "token", "revoke", id); err == nil {
		t.Fatal("revoking twice succeeded")
	}
	if strings.Contains(mustCLI(t, getenv, "", "admin", "token", "list"), id) {
		t.Fatal("the revoked token is still listed")
	}
}

// authd user admin sets and clears the admin flag, which user list shows
// and the admin API honours at once.
func TestUserAdmin_CLI(t *testing.T) {
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_ADMIN_API=on")
	mustCLI(t, getenv, "", "migrate", "up")
	const password = "promotable password"
	secretsSeen = append(secretsSeen, password)
	mustCLI(t, getenv, password+"\n", "user", "create", "pat", "--password-stdin")
	s := startServe(t, getenv, "ready")
	r := call(t, "POST", s.base+"/_matrix/client/v3/login", `{"type":"m.login.password","user":"pat","password":"`+password+`"}`, "")
	tok, _ := r.body["access_token"].(string)
	secretsSeen = append(secretsSeen, tok)
	if r := call(t, "GET", s.base+"/_synapse/admin/v2/users", "", tok); r.status != 403 {
		t.Fatalf("before the promotion: %d %s", r.status, r.raw)
	}
	if out := mustCLI(t, getenv, "", "user", "admin", "pat", "on"); out != "@pat:example.org is an admin\n" {
		t.Fatalf("user admin on: %q", out)
	}
	if !regexp.MustCompile(`@pat:example.org\s+active,admin`).MatchString(mustCLI(t, getenv, "", "user", "list")) {
		t.Fatal("user list does not show the admin")
	}
	if r := call(t, "GET", s.base+"/_synapse/admin/v2/users", "", tok); r.status != 200 {
		t.Fatalf("after the promotion: %d %s", r.status, r.raw)
	}
	mustCLI(t, getenv, "", "user", "admin", "pat", "off")
	if r := call(t, "GET", s.base+"/_synapse/admin/v2/users", "", tok); r.status != 403 {
		t.Fatalf("after the demotion: %d %s", r.status, r.raw)
	}
	if _, _, err := runCLI(t, getenv, "", "user", "admin", "pat", "maybe"); err == nil {
		t.Fatal("user admin pat maybe succeeded")
	}
}
