package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

// parseConfig reads every setting from getenv as a subcommand does, flags
// and validation included.
func parseConfig(t *testing.T, getenv func(string) string) (config, error) {
	t.Helper()
	var c config
	fs := newFlagSet("test", io.Discard)
	check := c.flags(fs, getenv, ^commands(0))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err := check()
	return c, err
}

func TestConfig_TokenLifetimes(t *testing.T) {
	tests := []struct {
		name    string
		vars    []string
		want    string // an error substring, "" for success
		wantTTL time.Duration
	}{
		{"Defaults", nil, "", 5 * time.Minute},
		{"Access", []string{"AUTHD_ACCESS_TOKEN_TTL=90s"}, "", 90 * time.Second},
		{"AccessNone", []string{"AUTHD_ACCESS_TOKEN_TTL=none"}, "AUTHD_ACCESS_TOKEN_TTL", 0},
		{"AccessTiny", []string{"AUTHD_ACCESS_TOKEN_TTL=10ms"}, "AUTHD_ACCESS_TOKEN_TTL", 0},
		{"RefreshNegative", []string{"AUTHD_REFRESH_TOKEN_TTL=-1h"}, "AUTHD_REFRESH_TOKEN_TTL", 0},
		{"NonRefreshableJunk", []string{"AUTHD_NON_REFRESHABLE_TOKEN_TTL=forever"}, "AUTHD_NON_REFRESHABLE_TOKEN_TTL", 0},
		{"RefreshSwitch", []string{"AUTHD_REFRESH_TOKENS=maybe"}, "AUTHD_REFRESH_TOKENS", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(t, env(tt.vars...))
			if tt.want != "" {
				wantErr(t, err, tt.want)
				return
			}
			if err != nil || c.Tokens.AccessTTL != tt.wantTTL || !c.Tokens.IssueRefresh || c.Tokens.RefreshTTL != 0 || c.Tokens.NonRefreshableTTL != 0 {
				t.Fatalf("config = %+v, %v", c.Tokens, err)
			}
		})
	}
}

// serve --help shows where each setting comes from, but never a password or
// the pepper taken from the environment.
func TestConfig_HelpHidesSecrets(t *testing.T) {
	getenv := env("AUTHD_DATABASE_URL=postgres://authd:hunter2@db:5432/authd",
		"AUTHD_PASSWORD_PEPPER=pepper-hunter3", "AUTHD_REDIS_URL=redis://:hunter4@redis:6379/0")
	_, help, err := runCLI(t, getenv, "", "serve", "--help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve --help: %v", err)
	}
	for _, secret := range []string{"hunter2", "hunter3", "hunter4"} {
		if strings.Contains(help, secret) {
			t.Errorf("serve --help shows %q:\n%s", secret, help)
		}
	}
	for _, want := range []string{"postgres://authd:xxxxx@db:5432/authd", "redis://:xxxxx@redis:6379/0", "(default (set))"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, help)
		}
	}
}

func TestConfig_RateLimitBackend(t *testing.T) {
	tests := []struct {
		name        string
		vars        []string
		want        string // an error substring, "" for success
		backend, to string
	}{
		{"Default", nil, "", "memory", ""},
		{"Redis", []string{"AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL=redis://127.0.0.1:6379/0"}, "", "redis", "redis://127.0.0.1:6379/0"},
		{"RedisSocket", []string{"AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL=unix:///run/redis.sock"}, "", "redis", "unix:///run/redis.sock"},
		{"RedisTLS", []string{"AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL=rediss://redis.internal:6380/1"}, "", "redis", "rediss://redis.internal:6380/1"},
		{"MemoryIgnoresURL", []string{"AUTHD_REDIS_URL=redis://127.0.0.1:6379/0"}, "", "memory", "redis://127.0.0.1:6379/0"},
		{"Unknown", []string{"AUTHD_RATELIMIT_BACKEND=Redis"}, "AUTHD_RATELIMIT_BACKEND", "", ""},
		{"NoURL", []string{"AUTHD_RATELIMIT_BACKEND=redis"}, "AUTHD_REDIS_URL", "", ""},
		{"BadDB", []string{"AUTHD_RATELIMIT_BACKEND=redis", "AUTHD_REDIS_URL=redis://127.0.0.1:6379/x"}, "AUTHD_REDIS_URL", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(t, env(tt.vars...))
			if tt.want != "" {
				wantErr(t, err, tt.want)
				return
			}
			if err != nil || c.Limits.Backend != tt.backend || c.Limits.RedisURL != tt.to {
				t.Fatalf("config = %q %q, %v; want %q %q", c.Limits.Backend, c.Limits.RedisURL, err, tt.backend, tt.to)
			}
		})
	}
}

func TestConfig_Operations(t *testing.T) {
	tests := []struct {
		name string
		vars []string
		want string // an error substring, "" for success
	}{
		{"Defaults", nil, ""},
		{"MetricsListen", []string{"AUTHD_METRICS_LISTEN=127.0.0.1:9108"}, ""},
		{"MetricsListenAllInterfaces", []string{"AUTHD_METRICS_LISTEN=:9108"}, ""},
		{"MetricsListenNotHostPort", []string{"AUTHD_METRICS_LISTEN=9108"}, "AUTHD_METRICS_LISTEN"},
		{"MetricsListenIsListen", []string{"AUTHD_LISTEN=:8008", "AUTHD_METRICS_LISTEN=:8008"}, "leave it empty"},
		{"PprofListen", []string{"AUTHD_PPROF_LISTEN=127.0.0.1:6060"}, ""},
		{"PprofListenNotHostPort", []string{"AUTHD_PPROF_LISTEN=6060"}, "AUTHD_PPROF_LISTEN"},
		{"PprofListenIsListen", []string{"AUTHD_LISTEN=:8008", "AUTHD_PPROF_LISTEN=:8008"}, "an address of its own"},
		{"DBTimeout", []string{"AUTHD_DB_TIMEOUT=750ms"}, ""},
		{"DBTimeoutTiny", []string{"AUTHD_DB_TIMEOUT=5ms"}, "AUTHD_DB_TIMEOUT"},
		{"DBTimeoutHuge", []string{"AUTHD_DB_TIMEOUT=5m"}, "AUTHD_DB_TIMEOUT"},
		{"DBTimeoutJunk", []string{"AUTHD_DB_TIMEOUT=soon"}, "AUTHD_DB_TIMEOUT"},
		{"LogFormatText", []string{"AUTHD_LOG_FORMAT=text"}, ""},
		{"LogFormatXML", []string{"AUTHD_LOG_FORMAT=xml"}, "AUTHD_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for _, kv := range tt.vars {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			c, err := parseConfig(t, func(k string) string { return vars[k] })
			if tt.want != "" {
				wantErr(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "Defaults" && (c.LogFormat != "auto" || c.DBTimeout != 3*time.Second || c.MetricsListen != "") {
				t.Fatalf("defaults: %+v", c)
			}
		})
	}
}

func TestConfig_ShutdownDelay(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want time.Duration
		err  bool
	}{{"0", 0, false}, {"0s", 0, false}, {"5s", 5 * time.Second, false}, {"1m", time.Minute, false}, {"2m", 0, true}, {"-1s", 0, true}, {"soon", 0, true}} {
		c, err := parseConfig(t, env("AUTHD_SHUTDOWN_DELAY="+tt.v))
		if tt.err {
			wantErr(t, err, "AUTHD_SHUTDOWN_DELAY")
			continue
		}
		if err != nil || c.ShutdownDelay != tt.want {
			t.Errorf("AUTHD_SHUTDOWN_DELAY=%s: %v, %v; want %v", tt.v, c.ShutdownDelay, err, tt.want)
		}
	}
}

func TestConfig_Outbox(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	c, err := parseConfig(t, env())
	if err != nil || c.Outbox.URL != "" || c.Outbox.MaxBackoff != 5*time.Minute {
		t.Fatalf("defaults: %+v, %v; want no outbox, 5m", c.Outbox, err)
	}
	c, err = parseConfig(t, env("AUTHD_OUTBOX_URL=https://hs.example.org/_authd/events", "AUTHD_OUTBOX_SECRET="+secret, "AUTHD_OUTBOX_MAX_BACKOFF=1m"))
	if err != nil || c.Outbox.URL != "https://hs.example.org/_authd/events" || string(c.Outbox.Secret) != secret || c.Outbox.MaxBackoff != time.Minute {
		t.Fatalf("set: %+v, %v", c.Outbox, err)
	}
	for _, tt := range []struct {
		name, want string
		vars       []string
	}{
		{"NoSecret", "AUTHD_OUTBOX_SECRET", []string{"AUTHD_OUTBOX_URL=https://hs.example.org/e"}},
		{"ShortSecret", "AUTHD_OUTBOX_SECRET", []string{"AUTHD_OUTBOX_URL=https://hs.example.org/e", "AUTHD_OUTBOX_SECRET=tiny"}},
		{"NotHTTP", "AUTHD_OUTBOX_URL", []string{"AUTHD_OUTBOX_URL=ftp://user:hunter2@hs.example.org/e", "AUTHD_OUTBOX_SECRET=" + secret}},
		{"Backoff", "AUTHD_OUTBOX_MAX_BACKOFF", []string{"AUTHD_OUTBOX_MAX_BACKOFF=2h"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(t, env(tt.vars...))
			wantErr(t, err, tt.want)
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "tiny") {
				t.Fatalf("error %q quotes a secret", err)
			}
		})
	}
}

func TestConfig_TokenCacheTTL(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"", 5 * time.Second, false},
		{"1s", time.Second, false},
		{"0", 0, false},
		{"off", 0, false},
		{"1m", time.Minute, false},
		{"2m", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := parseConfig(t, env("AUTHD_TOKEN_CACHE_TTL="+tt.value))
			if tt.bad {
				wantErr(t, err, "AUTHD_TOKEN_CACHE_TTL")
				return
			}
			if err != nil || c.TokenCacheTTL != tt.want {
				t.Fatalf("TokenCacheTTL = %v, %v; want %v", c.TokenCacheTTL, err, tt.want)
			}
		})
	}
}

// configDoc is docs/configuration.md's path from this package.
const configDoc = "../../docs/configuration.md"

// otherVariable is an AUTHD_* variable that authd itself does not read:
// deployment files, tests, the bench and the end-to-end suite do.
type otherVariable struct {
	name, readBy, meaning string
}

var deploymentVariables = []otherVariable{
	{"AUTHD_IMAGE", "docker-compose.yml", "the image docker compose builds from the Dockerfile and runs (default `authd:local`)"},
	{"AUTHD_HTTP_PORT", "docker-compose.yml", "the host port nginx is published on, the only published port (default `8080`)"},
	{"AUTHD_BACKEND_SUBNET", "docker-compose.yml", "the backend network's subnet (default `172.30.18.0/24`); authd's `AUTHD_TRUSTED_PROXIES` is set to it"},
	{"AUTHD_SITE", "deploy/caddy/Caddyfile", "the site Caddy serves (default `matrix.example.org`, which Caddy gets a certificate for)"},
	{"AUTHD_UPSTREAM", "deploy/caddy/Caddyfile", "authd's address (default `authd:8008`)"},
}

var testVariables = []otherVariable{
	{"AUTHD_TEST_DATABASE_URL", "go test", "a Postgres server (`postgres://…`) the tests create and drop their own databases on; `make test` starts a throwaway one with pg_virtualenv"},
	{"AUTHD_TEST_REQUIRE_ALL", "go test", "`=1` turns the skips of tests that need Postgres or Redis into failures; `make test` sets it"},
	{"AUTHD_BENCH_DATABASE_URL", "authd-bench", "the Postgres server `make bench` measures on; when it is unset, `make bench` starts a throwaway one with pg_virtualenv"},
	{"AUTHD_E2E_BIN", "e2e/run.sh", "test this authd binary instead of building `bin/authd`"},
	{"AUTHD_E2E_NGINX", "e2e/run.sh", "another nginx than `/usr/sbin/nginx`"},
	{"AUTHD_E2E_REDIS_SERVER", "e2e/run.sh", "another redis-server than `/usr/bin/redis-server`"},
	{"AUTHD_E2E_CADDY", "e2e/run.sh", "another caddy than `/usr/bin/caddy`"},
	{"AUTHD_E2E_PYTHON3", "e2e/run.sh", "another python3 than `/usr/bin/python3` (it runs the WSGI stand-in homeserver)"},
	{"AUTHD_E2E_SYNADM", "e2e/run.sh", "the synadm command the admin API's e2e test runs (default: `synadm` on the PATH, else Debian's package unpacked into `e2e/.synadm`)"},
	{"AUTHD_E2E_SYNADM_PYTHONPATH", "e2e/run.sh", "where the unpacked synadm finds its Python modules (set by `e2e/run.sh`)"},
	{"AUTHD_E2E_SDK_LOG", "e2e/lib/sdk.mjs", "the matrix-js-sdk log level, such as `debug` (default: silent)"},
}

// e2eRunVariables are what e2e/run.sh tells the test files about the
// servers it started; nobody sets them by hand.
var e2eRunVariables = []otherVariable{
	{"AUTHD_E2E_INSIDE_PG", "e2e/run.sh", "set when run.sh runs again inside pg_virtualenv"},
	{"AUTHD_E2E_BASEURL", "e2e/lib/env.mjs", "an authd with rate limits off, `/versions` served and 1 s access tokens"},
	{"AUTHD_E2E_LIMITED_BASEURL", "e2e/lib/env.mjs", "an authd on the same database with the default rate limits"},
	{"AUTHD_E2E_SERVER_NAME", "e2e/lib/env.mjs", "the server name of every authd the suite starts"},
	{"AUTHD_E2E_PROXY_BASEURL", "e2e/lib/env.mjs", "nginx with `deploy/nginx/authd.conf` in front of a third authd and a stand-in homeserver"},
	{"AUTHD_E2E_HOMESERVER_PORT", "e2e/lib/env.mjs", "the port that stand-in homeserver listens on"},
	{"AUTHD_E2E_NGINX_ACCESS_LOG", "e2e/lib/env.mjs", "that nginx's access log"},
	{"AUTHD_E2E_TRUSTED_PROXIES", "e2e/lib/env.mjs", "`1` when the authd behind nginx trusts it as its proxy"},
	{"AUTHD_E2E_HARDENED_BASEURL", "e2e/tests/hardening.test.mjs", "an authd with a small budget of failed token checks"},
	{"AUTHD_E2E_HARDENED_PROXIES", "e2e/tests/hardening.test.mjs", "the nginx and Caddy in front of it: `name url homeserverPort logDir`, separated by `;`"},
	{"AUTHD_E2E_ACCOUNT_BASEURL", "e2e/lib/env.mjs", "an authd with login tokens on and every rate limit off but the login-token one, for the account self-service tests"},
	{"AUTHD_E2E_ACCOUNT_PROXIES", "e2e/lib/env.mjs", "the nginx and Caddy in front of it: `name url homeserverPort`, separated by `;`"},
	{"AUTHD_E2E_AUTHD", "e2e/lib/replicas.mjs", "the authd binary the replica tests start"},
	{"AUTHD_E2E_LOGS", "e2e/lib/replicas.mjs", "the directory the suite's logs go to"},
}

// renderConfigDoc writes docs/configuration.md from the settings table and
// the tables of other variables above.
func renderConfigDoc() string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	b.WriteString("<!-- Generated from the settings table in cmd/authd/config.go: edit the table, then run `go test ./cmd/authd -run TestConfigDoc -update`. -->\n\n")
	b.WriteString(`# Configuration

authd reads its settings from ` + "`AUTHD_*`" + ` environment variables, or from flags of the same names
(` + "`AUTHD_DATABASE_URL` is `--database-url`" + `); a flag wins over its variable. Each subcommand
takes only the settings it uses: ` + "`authd serve --help`" + ` lists them with their current values.
Values are checked once, at start: a bad one stops the command with a message naming the variable,
and every bad one is reported at once. A secret setting may hold a password: ` + "`--help`" + ` shows it
redacted, and no error message quotes it.

| Variable | Flag | Default | Used by | Meaning |
|---|---|---|---|---|
`)
	for _, s := range settings {
		name := "`" + s.env + "`"
		if s.secret {
			name += " (secret)"
		}
		def := "(empty)"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		meaning := s.doc
		if meaning == "" {
			meaning = s.help
		}
		fmt.Fprintf(&b, "| %s | `--%s` | %s | %s | %s |\n", name, flagName(s.env), def, s.usedBy, cell(meaning))
	}
	table := func(vars []otherVariable) {
		b.WriteString("| Variable | Read by | Meaning |\n|---|---|---|\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", v.name, v.readBy, cell(v.meaning))
		}
	}
	b.WriteString("\n## Deployment files\n\nThe compose files and the Caddy configuration read these; authd itself does not.\n\n")
	table(deploymentVariables)
	b.WriteString("\n## Tests and benchmarks\n\nThe tests, `make bench` and the end-to-end suite (`make e2e`) read these.\n\n")
	table(testVariables)
	b.WriteString("\n`e2e/run.sh` sets these for the test files it runs, to tell them about the servers it started;\nthey are not set by hand.\n\n")
	table(e2eRunVariables)
	return b.String()
}

// docs/configuration.md is what the settings table renders to.
func TestConfigDoc(t *testing.T) {
	want := renderConfigDoc()
	if *update {
		if err := os.MkdirAll(filepath.Dir(configDoc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(configDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/authd -run TestConfigDoc -update writes it)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/configuration.md is not what the settings table renders; run go test ./cmd/authd -run TestConfigDoc -update\n%s", lineDiff(string(got), want))
	}
}

// lineDiff lists the lines only one of got and want has.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

var authdName = regexp.MustCompile(`AUTHD_[A-Z0-9_]*[A-Z0-9]`)

// Every AUTHD_* variable the code, scripts, Makefile, deployment and e2e
// files name is documented, and every documented one is named there.
func TestConfigDoc_NamesEveryVariable(t *testing.T) {
	doc, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, n := range authdName.FindAllString(string(doc), -1) {
		documented[n] = true
	}
	named := map[string]string{} // a variable, and a file naming it
	root := filepath.Join("..", "..")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !isScanned(rel) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range authdName.FindAllString(string(b), -1) {
			if _, ok := named[n]; !ok {
				named[n] = filepath.ToSlash(rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(named) < len(settings) {
		t.Fatalf("found %d variables in the repository, fewer than the %d settings: is the walk reading it?", len(named), len(settings))
	}
	for n, file := range named {
		if !documented[n] {
			t.Errorf("%s (in %s) is not in docs/configuration.md: give it a row in config.go's settings or in config_test.go's other variables", n, file)
		}
	}
	for n := range documented {
		_, ok := named[n]
		if !ok {
			t.Errorf("docs/configuration.md documents %s, which nothing reads", n)
		}
	}
}

// isScanned tells whether a file, by its path from the repository root, is
// code, a script, or a build, deployment or e2e file: everything but the
// documentation, and config_test.go, which holds the page's own text.
func isScanned(rel string) bool {
	rel = filepath.ToSlash(rel)
	if rel == "cmd/authd/config_test.go" {
		return false
	}
	switch filepath.Ext(rel) {
	case ".go", ".sh", ".mjs", ".js", ".py", ".yml", ".yaml", ".conf", ".sql":
		return true
	}
	switch filepath.Base(rel) {
	case "Makefile", "Dockerfile", "Caddyfile", ".env.example":
		return true
	}
	return strings.HasPrefix(rel, ".ci/")
}
