package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/pgtest"
)

// bcryptOf hashes pw followed by pepper at the lowest cost, as Synapse
// (with its password_config.pepper) or Dendrite (without) store it.
func bcryptOf(t *testing.T, pw, pepper string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw+pepper), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// A CSV export imports with its hashes kept: a bad line is reported by
// number without stopping the rest and without the secret; the same file
// again changes nothing; and the imported Synapse hashes log in through
// serve with Synapse's pepper, the Dendrite ones without.
func TestUserImport_CSV(t *testing.T) {
	const pepper = "the synapse pepper"
	const synapsePW, dendritePW, plainPW = "synapse password", "dendrite password", "plain password"
	synapseHash, dendriteHash := bcryptOf(t, synapsePW, pepper), bcryptOf(t, dendritePW, "")
	secretsSeen = append(secretsSeen, pepper, synapsePW, dendritePW, plainPW, synapseHash, dendriteHash)
	file := filepath.Join(t.TempDir(), "users.csv")
	csv := strings.Join([]string{
		"user,password_hash,password,emails,admin",
		"syn," + synapseHash + ",,syn@example.org;Syn2@Example.org,true", // line 2
		"@den:example.org," + dendriteHash + ",,,",                       // line 3
		"plain,,\"" + plainPW + "\",,no",                                 // line 4
		"broken,$2b$04$tooshort,,,",                                      // line 5
		"@far:elsewhere.org," + dendriteHash + ",,,",                     // line 6
		"thief," + dendriteHash + ",,syn@example.org,",                   // line 7
		"Upper," + dendriteHash + ",,,",                                  // line 8
		"nopass,,,,",                                                     // line 9
	}, "\n") + "\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := sqliteEnv(t, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_IMPORTED_HASH_PEPPER="+pepper, "AUTHD_RATELIMIT=off")
	mustCLI(t, getenv, "", "migrate", "up")

	out, errOut, err := runCLI(t, getenv, "", "user", "import", file)
	if err == nil {
		t.Fatal("an import with bad lines exited 0")
	}
	if want := "imported 3 users; 0 existed already; 5 lines failed\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	for _, want := range []string{"line 5: password_hash is not a bcrypt hash", "line 6: ", "line 7: @thief:example.org: an email address is bound", "line 8: ", "line 9: no password_hash or password"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, s := range []string{synapseHash, dendriteHash, plainPW, "$2b$04$tooshort"} {
		if strings.Contains(out+errOut, s) {
			t.Fatalf("the import's output holds a secret: %q", s)
		}
	}
	listed := mustCLI(t, getenv, "", "user", "list")
	for _, want := range []string{`@syn:example.org\s+active,admin .*syn2@example.org,syn@example.org`, `@den:example.org\s+active `, `@plain:example.org\s+active `} {
		if !regexp.MustCompile(want).MatchString(listed) {
			t.Fatalf("user list lacks %q:\n%s", want, listed)
		}
	}

	// The same file again: nothing is created or changed.
	out2, _, _ := runCLI(t, getenv, "", "user", "import", file)
	if want := "imported 0 users; 3 existed already; 5 lines failed\n"; out2 != want {
		t.Fatalf("second import: stdout %q, want %q", out2, want)
	}
	if again := mustCLI(t, getenv, "", "user", "list"); again != listed {
		t.Fatalf("the second import changed the users:\n%s\nwas\n%s", again, listed)
	}

	// Without Synapse's pepper, its hashes do not match; Dendrite's do.
	// (The successful login replaces the hash with authd's own.)
	noPepper := startServe(t, sqliteEnvFrom(getenv, "AUTHD_IMPORTED_HASH_PEPPER="), "ready")
	if got := loginStatus(t, noPepper.base, "syn", synapsePW); got != 403 {
		t.Fatalf("Synapse hash without the pepper: %d, want 403", got)
	}
	if got := loginStatus(t, noPepper.base, "den", dendritePW); got != 200 {
		t.Fatalf("Dendrite hash without a pepper: %d, want 200", got)
	}
	s := startServe(t, getenv, "ready")
	for _, c := range []struct {
		user, pw string
		want     int
	}{
		{"syn", synapsePW + pepper, 403}, {"syn", synapsePW, 200}, {"syn", synapsePW, 200},
		{"plain", plainPW, 200}, {"den", "wrong", 403}, {"den", dendritePW, 200},
	} {
		if got := loginStatus(t, s.base, c.user, c.pw); got != c.want {
			t.Fatalf("login of %s: %d, want %d", c.user, got, c.want)
		}
	}
}

// loginStatus is the status of a password login at base.
func loginStatus(t *testing.T, base, user, pw string) int {
	t.Helper()
	return call(t, "POST", base+"/_matrix/client/v3/login", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"`+user+`"},"password":"`+pw+`"}`, "").status
}

// sqliteEnvFrom is getenv with some variables replaced.
func sqliteEnvFrom(getenv func(string) string, vars ...string) func(string) string {
	over := map[string]string{}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		over[k] = v
	}
	return func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}
}

// The same JSON-lines export of 100,000 hashed users imports on SQLite and
// Postgres, and again changes nothing. The time it took is logged, not
// asserted: make bench and the closing notes hold the figures.
func TestUserImport_100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	hash := bcryptOf(t, "one password for all", "")
	var b strings.Builder
	const n = 100_000
	for i := range n {
		fmt.Fprintf(&b, `{"user":"bulk%06d","password_hash":"%s","emails":["bulk%06d@example.org"]}`+"\n", i, hash, i)
	}
	input := b.String()
	for _, c := range []struct {
		name   string
		getenv func(t *testing.T) func(string) string
	}{
		{"sqlite", func(t *testing.T) func(string) string { return sqliteEnv(t) }},
		{"postgres", func(t *testing.T) func(string) string { return env("AUTHD_DATABASE_URL=" + pgtest.NewDatabase(t)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := c.getenv(t)
			mustCLI(t, getenv, "", "migrate", "up")
			start := time.Now()
			out := mustCLI(t, getenv, input, "user", "import", "--format", "jsonl", "-")
			t.Logf("%s: imported %d users in %v", c.name, n, time.Since(start))
			if want := fmt.Sprintf("imported %d users; 0 existed already; 0 lines failed\n", n); out != want {
				t.Fatalf("stdout %q, want %q", out, want)
			}
			start = time.Now()
			out = mustCLI(t, getenv, input, "user", "import", "--format", "jsonl", "-")
			t.Logf("%s: re-ran the import of %d users in %v", c.name, n, time.Since(start))
			if want := fmt.Sprintf("imported 0 users; %d existed already; 0 lines failed\n", n); out != want {
				t.Fatalf("second run: stdout %q, want %q", out, want)
			}
		})
	}
}
