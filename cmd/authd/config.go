package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/ratelimit"
)

// config is authd's configuration, read once from AUTHD_* variables and the
// flags of the same names, validated, then passed down. There is no global
// configuration.
type config struct {
	ServerName    string
	Listen        string
	DatabaseURL   string
	Migrate       bool
	BcryptCost    int
	RateLimit     bool
	PublicBaseURL string
	Tokens        api.TokenPolicy
	// LoginTokens turns m.login.token on; LoginTokenTTL is its lifetime.
	LoginTokens   bool
	LoginTokenTTL time.Duration
	// AdminAPI serves the Synapse-compatible admin API.
	AdminAPI bool
	// RegistrationSecret turns shared-secret registration on.
	RegistrationSecret []byte
	Limits             limits
	Pepper             []byte
	// ImportedPepper is the pepper of plain bcrypt hashes imported from
	// Synapse.
	ImportedPepper []byte
	ServeVersions  bool
	LogFormat      string
	LogLevel       string
	// MetricsListen, when set, is the address /metrics is served on
	// instead of Listen.
	MetricsListen string
	// PprofListen, when set, is the address Go's profiler
	// (net/http/pprof) is served on; never AUTHD_LISTEN.
	PprofListen string
	// DBTimeout bounds every database call of a request.
	DBTimeout time.Duration
	// TokenCacheTTL is how long a validated access token is believed
	// without the database; zero turns the token cache off.
	TokenCacheTTL time.Duration
	// UIASessionTTL is how long a User-Interactive Authentication session
	// lasts.
	UIASessionTTL time.Duration
	// ShutdownDelay is how long serve goes on serving after SIGTERM, with
	// /readyz saying unavailable, before it closes its listeners.
	ShutdownDelay time.Duration
	// LastSeenInterval is how often the devices' last sightings are
	// written; zero records none (last seen is then the last login).
	LastSeenInterval time.Duration
	// LastSeenIP keeps the client address a device was last seen from.
	LastSeenIP bool
	// Outbox is where the events for the homeserver go; its URL is empty
	// when there is no outbox.
	Outbox outboxConfig
}

// outboxConfig is the delivery of the outbox (see internal/outbox).
type outboxConfig struct {
	URL        string
	Secret     []byte
	MaxBackoff time.Duration
}

// limits are the abuse-resistance settings.
type limits struct {
	LoginIP, LoginFailed, LoginSuccess, RefreshIP, TokenFailures ratelimit.Rule
	// Backend is "memory" or "redis"; RedisURL is Redis's address then.
	Backend, RedisURL string
	TrustedProxies    []netip.Prefix
	HashConcurrency   int
	HashQueueTimeout  time.Duration
	// KnownNetworkTTL is how long a network a user logged in from keeps a
	// failed-login budget of its own; zero: never.
	KnownNetworkTTL time.Duration
}

// commands is a set of subcommands. A setting is tagged with the ones that
// read it, and a subcommand registers the settings tagged with it.
type commands uint8

const (
	forServe commands = 1 << iota
	forMigrate
	forUser         // every user subcommand
	forUserPassword // user create, user passwd and user import, which hash passwords
	forHealthcheck
	forAdmin // the admin subcommands
)

// String lists the subcommands, as the configuration page shows them.
func (cs commands) String() string {
	var names []string
	for _, c := range []struct {
		bit  commands
		name string
	}{
		{forServe, "serve"}, {forMigrate, "migrate"}, {forUser, "user"},
		{forUserPassword, "user create, user passwd, user import"}, {forHealthcheck, "healthcheck"},
		{forAdmin, "admin"},
	} {
		if cs&c.bit != 0 {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

// setting is one configuration variable. Its row is all there is to it:
// the flag, the environment variable, the validation, --help and
// docs/configuration.md all come from the row.
type setting struct {
	env  string // the variable; the flag is flagName(env)
	def  string
	help string // one line, for --help
	// doc is the meaning on the configuration page, in Markdown, when it
	// says more than help.
	doc string
	// secret values show redacted in --help: they may hold a password.
	secret bool
	// verbatim values keep their surrounding spaces.
	verbatim bool
	usedBy   commands
	// parse converts and validates the value into c. Its error does not
	// name the variable (the caller adds it) and never quotes a secret.
	parse func(v string, c *config) error
}

// settings is every setting of every subcommand, in the order --help,
// validation and docs/configuration.md take them. A row that checks
// another setting's value comes after that setting's row.
var settings = []setting{
	{
		env: "AUTHD_SERVER_NAME", def: "localhost", usedBy: forServe | forUser,
		help: "the homeserver's server name, the domain of user IDs",
		doc:  "the homeserver's server name: the domain of every local user ID and the `home_server` of login responses",
		parse: func(v string, c *config) error {
			c.ServerName = v
			return validServerName(v)
		},
	},
	{
		env: "AUTHD_LISTEN", def: ":8008", usedBy: forServe | forHealthcheck,
		help: "address to serve HTTP on",
		doc:  "the address `serve` listens on (`healthcheck` asks it too)",
		parse: func(v string, c *config) error {
			c.Listen = v
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("%q is not host:port", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_DATABASE_URL", def: "sqlite:authd.db", secret: true, usedBy: forServe | forMigrate | forUser | forAdmin,
		help: "postgres://… or postgresql://… for Postgres, sqlite:PATH for embedded SQLite",
		doc:  "`postgres://…` or `postgresql://…` for Postgres (any libpq URL parameters), `sqlite:PATH` for the embedded SQLite store (a new file is created mode 0600; `serve` warns about an existing one that group or others may read)",
		parse: func(v string, c *config) error {
			c.DatabaseURL = v
			_, _, err := parseDatabaseURL(v)
			return err
		},
	},
	{
		env: "AUTHD_MIGRATE", def: "false", usedBy: forServe,
		help: "apply pending schema migrations at start",
		doc:  "`serve` applies pending migrations at start; otherwise it refuses a schema that is behind",
		parse: func(v string, c *config) (err error) {
			c.Migrate, err = parseTrueFalse(v)
			return err
		},
	},
	{
		env: "AUTHD_BCRYPT_COST", def: "12", usedBy: forServe | forUserPassword,
		help: "bcrypt cost of new password hashes (4-31)",
		doc:  "bcrypt cost (4–31) of new password hashes; hashes at another cost are upgraded at the user's next login",
		parse: func(v string, c *config) (err error) {
			c.BcryptCost, err = parseInt(v, 4, 31)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT", def: "on", usedBy: forServe,
		help: "all rate limits (on|off); off overrides the rules below",
		doc:  "`off` switches every rate limit below off at once (for test rigs, or when the proxy limits already)",
		parse: func(v string, c *config) (err error) {
			c.RateLimit, err = parseOnOff(v)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT_LOGIN_IP", def: "10/5s", usedBy: forServe,
		help: "login attempts per client IP: BURST/PERIOD (one more each PERIOD) or off",
		doc:  "login attempts per client IP (IPv6 per /64): `BURST/PERIOD` = a burst, then one more each period; `off`",
		parse: func(v string, c *config) (err error) {
			c.Limits.LoginIP, err = ratelimit.ParseRule(v)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT_LOGIN_FAILED", def: "5/1m", usedBy: forServe,
		help: "failed logins per identifier (user ID, email, phone), or per account on a known network: BURST/PERIOD or off",
		doc:  "failed logins per identifier as named (user ID, email, phone), existing or not, or per account on a known network; `off`",
		parse: func(v string, c *config) (err error) {
			c.Limits.LoginFailed, err = ratelimit.ParseRule(v)
			return err
		},
	},
	{
		env: "AUTHD_LOGIN_KNOWN_NETWORK_TTL", def: "720h", usedBy: forServe,
		help: "how long an IP (IPv6: its /64) a user logged in from stays known, with a failed-login budget of its own (0: no known networks)",
		doc:  "how long an IP (IPv6: its /64) a user logged in from stays known, with a failed-login budget of its own (see [security](security.md)); `0` turns it off",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, 0, maxDuration, true)
			c.Limits.KnownNetworkTTL = d
			if !ok {
				return fmt.Errorf("%q is not a duration such as 720h, or 0", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_RATELIMIT_LOGIN_SUCCESS", def: "10/20s", usedBy: forServe,
		help: "successful logins per account: BURST/PERIOD or off",
		doc:  "successful logins per account; `off`",
		parse: func(v string, c *config) (err error) {
			c.Limits.LoginSuccess, err = ratelimit.ParseRule(v)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT_REFRESH_IP", def: "30/2s", usedBy: forServe,
		help: "token refreshes per client IP: BURST/PERIOD or off",
		doc:  "`/refresh` and `/tokenrefresh` per client IP; `off`",
		parse: func(v string, c *config) (err error) {
			c.Limits.RefreshIP, err = ratelimit.ParseRule(v)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT_TOKEN_FAILURES", def: "30/1s", usedBy: forServe,
		help: "unknown access tokens per client IP (expired ones do not count): BURST/PERIOD or off",
		doc:  "unknown access tokens (malformed, made up, revoked, or of a deactivated user; expired ones do not count) per client IP, on whoami, logout and `/_authd/verify`; `off`",
		parse: func(v string, c *config) (err error) {
			c.Limits.TokenFailures, err = ratelimit.ParseRule(v)
			return err
		},
	},
	{
		env: "AUTHD_RATELIMIT_BACKEND", def: "memory", usedBy: forServe,
		help: "where rate-limit state lives: memory (this process) or redis (shared by every replica, AUTHD_REDIS_URL)",
		doc:  "where rate-limit state lives: `memory` (this process) or `redis` (shared by every replica; see [scaling out](scaling.md))",
		parse: func(v string, c *config) error {
			c.Limits.Backend = v
			if v != "memory" && v != "redis" {
				return fmt.Errorf("%q is not memory or redis", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_REDIS_URL", secret: true, usedBy: forServe,
		help: "redis://[:PASSWORD@]HOST:PORT/DB, rediss://… (TLS) or unix:///PATH for AUTHD_RATELIMIT_BACKEND=redis",
		doc:  "Redis for `AUTHD_RATELIMIT_BACKEND=redis`: `redis://[:PASSWORD@]HOST:PORT/DB`, `rediss://…` (TLS) or `unix:///PATH`; go-redis URL options such as `?dial_timeout=1s` override the 250 ms defaults",
		parse: func(v string, c *config) error {
			c.Limits.RedisURL = v
			if v == "" {
				if c.Limits.Backend == "redis" {
					return errors.New("needed by AUTHD_RATELIMIT_BACKEND=redis")
				}
				return nil
			}
			// The URL may hold a password: the error does not quote it.
			if _, err := redis.ParseURL(v); err != nil {
				return errors.New("not a redis://, rediss:// or unix:// URL")
			}
			return nil
		},
	},
	{
		env: "AUTHD_TRUSTED_PROXIES", usedBy: forServe,
		help: "comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is believed",
		doc:  "comma-separated CIDRs or addresses of the proxies in front of authd; only their `X-Forwarded-For` is believed",
		parse: func(v string, c *config) (err error) {
			c.Limits.TrustedProxies, err = parseTrustedProxies(v)
			return err
		},
	},
	{
		env: "AUTHD_HASH_CONCURRENCY", def: "0", usedBy: forServe,
		help: "password checks at once (0: GOMAXPROCS)",
		doc:  "password checks that run at once; `0` is GOMAXPROCS. `serve` gives Go one more P than this, so that hashing never holds them all (see [performance](performance.md))",
		parse: func(v string, c *config) (err error) {
			c.Limits.HashConcurrency, err = parseInt(v, 0, 1024)
			return err
		},
	},
	{
		env: "AUTHD_HASH_QUEUE_TIMEOUT", def: "5s", usedBy: forServe,
		help: "the longest wait for a hashing slot a login queues for; beyond it, 429 at once",
		doc:  "the longest a login queues for a hashing slot. A login that finds every slot busy is queued when the wait it can expect (logins queued × the measured time of one password check ÷ slots) is within this bound, and otherwise answered `429` at once, with that expected wait as `retry_after_ms`; an admitted login whose estimate proved wrong gives up at twice the bound",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, 1, maxDuration, false)
			c.Limits.HashQueueTimeout = d
			if !ok {
				return fmt.Errorf("%q is not a positive duration such as 1s", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_PASSWORD_PEPPER", secret: true, verbatim: true, usedBy: forServe | forUserPassword,
		help: "secret mixed into every password hash (changing it invalidates every password)",
		doc:  "a secret mixed into every password hash (HMAC key); the CLI needs the same value; changing it invalidates every password",
		parse: func(v string, c *config) error {
			c.Pepper = []byte(v)
			return nil
		},
	},
	{
		env: "AUTHD_IMPORTED_HASH_PEPPER", secret: true, verbatim: true, usedBy: forServe,
		help: "Synapse's password_config.pepper, for bcrypt hashes imported from it",
		doc:  "the `password_config.pepper` of the Synapse whose bcrypt hashes were imported (`authd user import`): such hashes are checked against the password in Unicode form NFKC followed by this pepper, as Synapse made them, and replaced by authd's own hash at the next login; leave it empty for hashes from a Synapse without a pepper, or from Dendrite",
		parse: func(v string, c *config) error {
			c.ImportedPepper = []byte(v)
			return nil
		},
	},
	{
		env: "AUTHD_REFRESH_TOKENS", def: "on", usedBy: forServe,
		help: "issue refresh tokens to logins that ask for them (on|off)",
		doc:  "issue a refresh token to a login that sends `\"refresh_token\": true`; `off` gives such a login a non-refreshable token",
		parse: func(v string, c *config) (err error) {
			c.Tokens.IssueRefresh, err = parseOnOff(v)
			return err
		},
	},
	{
		env: "AUTHD_ACCESS_TOKEN_TTL", def: "5m", usedBy: forServe,
		help: "lifetime of access tokens issued with a refresh token",
		doc:  "lifetime of access tokens issued with a refresh token (a Go duration, at least `1s`)",
		parse: func(v string, c *config) (err error) {
			c.Tokens.AccessTTL, err = parseTTL(v, true)
			return err
		},
	},
	{
		env: "AUTHD_REFRESH_TOKEN_TTL", def: "none", usedBy: forServe,
		help: "lifetime of refresh tokens (none: no expiry)",
		doc:  "lifetime of refresh tokens, renewed at each refresh; `none` never expires",
		parse: func(v string, c *config) (err error) {
			c.Tokens.RefreshTTL, err = parseTTL(v, false)
			return err
		},
	},
	{
		env: "AUTHD_NON_REFRESHABLE_TOKEN_TTL", def: "none", usedBy: forServe,
		help: "lifetime of access tokens issued without a refresh token (none: no expiry)",
		doc:  "lifetime of access tokens issued without a refresh token; `none` never expires (what clients that did not opt in expect)",
		parse: func(v string, c *config) (err error) {
			c.Tokens.NonRefreshableTTL, err = parseTTL(v, false)
			return err
		},
	},
	{
		env: "AUTHD_UIA_SESSION_TTL", def: "10m", usedBy: forServe,
		help: "how long a User-Interactive Authentication session lasts (1s to 24h)",
		doc:  "how long a User-Interactive Authentication session (deleting devices, changing the password, deactivating) lasts from its challenge; each session authorises one operation once",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, time.Second, 24*time.Hour, false)
			c.UIASessionTTL = d
			if !ok {
				return fmt.Errorf("%q is not a duration from 1s to 24h, such as 10m", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_LOGIN_TOKENS", def: "off", usedBy: forServe,
		help: "single-use login tokens, m.login.token (on|off)",
		doc:  "accept single-use login tokens (`m.login.token`) at `/login` and advertise them in `GET /login`; a logged-in client asks for one to log a new device in without the password",
		parse: func(v string, c *config) (err error) {
			c.LoginTokens, err = parseOnOff(v)
			return err
		},
	},
	{
		env: "AUTHD_ADMIN_API", def: "off", usedBy: forServe,
		help: "the Synapse-compatible admin API under /_synapse/admin (on|off)",
		doc:  "serve the admin API (`/_synapse/admin/...` and the spec's admin whois and lock endpoints; see [Admin API](admin-api.md)) to the access tokens of admin users; keep `/_synapse/admin` off the public internet (see [Deployment](deployment.md#the-admin-api))",
		parse: func(v string, c *config) (err error) {
			c.AdminAPI, err = parseOnOff(v)
			return err
		},
	},
	{
		env: "AUTHD_REGISTRATION_SHARED_SECRET", secret: true, verbatim: true, usedBy: forServe,
		help: "turn on Synapse's shared-secret registration with this secret (empty: off)",
		doc:  "serve `GET/POST /_synapse/admin/v1/register`, Synapse's shared-secret registration (`register_new_matrix_user`), with this secret as the HMAC key (at least 32 bytes); empty turns it off. Give it here or in `AUTHD_REGISTRATION_SHARED_SECRET_FILE`, not both",
		parse: func(v string, c *config) error {
			if v != "" && len(v) < 32 {
				return errors.New("the shared secret must hold at least 32 bytes")
			}
			c.RegistrationSecret = []byte(v)
			return nil
		},
	},
	{
		env: "AUTHD_REGISTRATION_SHARED_SECRET_FILE", usedBy: forServe,
		help: "a file holding the registration shared secret (trailing newline dropped)",
		doc:  "a file whose content (one trailing newline dropped) is the shared secret of `AUTHD_REGISTRATION_SHARED_SECRET`, for secrets mounted as files",
		parse: func(v string, c *config) error {
			if v == "" {
				return nil
			}
			if len(c.RegistrationSecret) > 0 {
				return errors.New("set AUTHD_REGISTRATION_SHARED_SECRET or its _FILE, not both")
			}
			b, err := os.ReadFile(v)
			if err != nil {
				return fmt.Errorf("read the shared secret file: %w", err)
			}
			secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if len(secret) < 32 {
				return errors.New("the shared secret must hold at least 32 bytes")
			}
			c.RegistrationSecret = []byte(secret)
			return nil
		},
	},
	{
		env: "AUTHD_LOGIN_TOKEN_TTL", def: "120s", usedBy: forServe,
		help: "lifetime of a login token",
		doc:  "lifetime of a login token (a Go duration, at least `1s`; the spec recommends two minutes)",
		parse: func(v string, c *config) (err error) {
			c.LoginTokenTTL, err = parseTTL(v, true)
			return err
		},
	},
	{
		env: "AUTHD_PUBLIC_BASEURL", usedBy: forServe,
		help: "the homeserver's public base URL, sent as well_known at login (empty: not sent)",
		parse: func(v string, c *config) error {
			if v == "" {
				return nil
			}
			c.PublicBaseURL = strings.TrimRight(v, "/")
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("%q is not an http(s) base URL such as https://matrix.example.org", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_SERVE_VERSIONS", def: "false", usedBy: forServe,
		help: "serve GET /_matrix/client/versions (standalone use)",
		parse: func(v string, c *config) (err error) {
			c.ServeVersions, err = parseTrueFalse(v)
			return err
		},
	},
	{
		env: "AUTHD_LOG_FORMAT", def: "auto", usedBy: forServe,
		help: "log format (auto|text|json); auto is text on a terminal, JSON otherwise",
		doc:  "logs on stderr: `auto` is JSON when stderr is not a terminal (a container, a pipe, a file) and text on a terminal; or `text`, `json`",
		parse: func(v string, c *config) error {
			c.LogFormat = v
			if v != "auto" && v != "text" && v != "json" {
				return fmt.Errorf("%q is not auto, text or json", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_LOG_LEVEL", def: "info", usedBy: forServe,
		help: "log level (debug|info|warn|error)",
		doc:  "`debug`, `info`, `warn` or `error`",
		parse: func(v string, c *config) error {
			c.LogLevel = v
			switch v {
			case "debug", "info", "warn", "error":
				return nil
			}
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		},
	},
	{
		env: "AUTHD_METRICS_LISTEN", usedBy: forServe,
		help: "serve /metrics on this address only, not on AUTHD_LISTEN (empty: on AUTHD_LISTEN)",
		doc:  "a `host:port` that serves `/metrics` alone, instead of `AUTHD_LISTEN` (which then has no `/metrics`); empty serves it on `AUTHD_LISTEN`",
		parse: func(v string, c *config) error {
			if v == "" {
				return nil
			}
			c.MetricsListen = v
			if _, port, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("%q is not host:port", v)
			} else if v == c.Listen && port != "0" {
				return fmt.Errorf("%q is AUTHD_LISTEN too; leave it empty to serve /metrics there", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_PPROF_LISTEN", usedBy: forServe,
		help: "serve Go's profiler (/debug/pprof/) on this address, for performance work (empty: off)",
		doc:  "a `host:port` that serves Go's profiler, `/debug/pprof/` (CPU, heap and goroutine profiles, execution traces), for performance work; keep it on loopback: the profiles show what runs and where, never a secret (the command line is not served). Empty, the default, serves none",
		parse: func(v string, c *config) error {
			if v == "" {
				return nil
			}
			c.PprofListen = v
			if _, port, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("%q is not host:port", v)
			} else if (v == c.Listen || v == c.MetricsListen) && port != "0" {
				return fmt.Errorf("%q is already AUTHD_LISTEN or AUTHD_METRICS_LISTEN; give the profiler an address of its own", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_DB_TIMEOUT", def: "3s", usedBy: forServe,
		help: "deadline of each database call of a request; past it the request gets 503",
		doc:  "deadline of each database call a request makes (`100ms` to `30s`); past it the request gets `503 M_UNKNOWN`",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, 100*time.Millisecond, 30*time.Second, false)
			c.DBTimeout = d
			if !ok {
				return fmt.Errorf("%q is not a duration from 100ms to 30s, such as 3s", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_SHUTDOWN_DELAY", def: "0s", usedBy: forServe,
		help: "after SIGTERM, keep serving this long with /readyz unavailable before closing the listeners, 0 to 1m (a proxy's or Kubernetes' time to stop sending)",
		doc:  "after `SIGTERM`, go on serving this long (`0` to `1m`) with `/readyz` answering `503`, before the listeners close: the time a load balancer or Kubernetes takes to stop sending requests, so that a rolling restart of replicas drops none (`5s` in `deploy/kubernetes`)",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, 0, time.Minute, false)
			c.ShutdownDelay = d
			if !ok {
				return fmt.Errorf("%q is not a duration from 0 to 1m, such as 5s", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_TOKEN_CACHE_TTL", def: "5s", usedBy: forServe,
		help: "how long a validated access token is believed without asking the database, 0 to 1m (0: no cache)",
		doc:  "how long a validated access token is believed without asking the database (`0` to `1m`; `0` turns the cache off). On Postgres every revocation, from any process, takes effect at once (see [scaling out](scaling.md)); on SQLite, those made by another process (`authd user deactivate`, `user passwd`) within about 50 ms (serve polls the `revocations` table). See [performance](performance.md)",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, 0, time.Minute, true)
			c.TokenCacheTTL = d
			if !ok {
				return fmt.Errorf("%q is not a duration from 0 to 1m, such as 5s", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_LAST_SEEN_INTERVAL", def: "1m", usedBy: forServe,
		help: "how often the devices' last-seen times and addresses are written, 1s to 1h (off: last seen is the last login)",
		doc:  "how often `serve` writes when, and from which address, each device was last seen (`1s` to `1h`), as `GET /devices` shows it: each request only updates memory, and the sightings of an interval are written in batches (and once more at shutdown). `off` records no use, only logins. See [operations](operations.md#last-seen)",
		parse: func(v string, c *config) error {
			if v == "off" || v == "0" {
				c.LastSeenInterval = 0
				return nil
			}
			d, ok := parseDuration(v, time.Second, time.Hour, false)
			c.LastSeenInterval = d
			if !ok {
				return fmt.Errorf("%q is not off or a duration from 1s to 1h, such as 1m", v)
			}
			return nil
		},
	},
	{
		env: "AUTHD_OUTBOX_URL", secret: true, usedBy: forServe | forUser,
		help: "http(s) URL the homeserver receives device and account events on (empty: no events)",
		doc:  "the `http://` or `https://` URL that receives an event, POSTed as signed JSON, for every device deleted and account deactivated (see [homeserver events](homeserver-events.md)); empty writes no events. Set it for the `user` commands too, or the devices they log out are not reported",
		parse: func(v string, c *config) error {
			if v == "" {
				return nil
			}
			c.Outbox.URL = v
			// The URL may hold a credential: the error does not quote it.
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return errors.New("not an http:// or https:// URL")
			}
			return nil
		},
	},
	{
		env: "AUTHD_LAST_SEEN_IP", def: "on", usedBy: forServe,
		help: "keep the client address each device was last seen from (on|off)",
		doc:  "keep the client address (after `AUTHD_TRUSTED_PROXIES`) each device was last seen from, shown to its user as `last_seen_ip`; `off` keeps none (an address is personal data), and each device's stored address is cleared at its next login or sighting",
		parse: func(v string, c *config) (err error) {
			c.LastSeenIP, err = parseOnOff(v)
			return err
		},
	},
	{
		env: "AUTHD_OUTBOX_SECRET", secret: true, verbatim: true, usedBy: forServe,
		help: "HMAC key that signs each event for the receiver (at least 32 bytes; needed with AUTHD_OUTBOX_URL)",
		doc:  "the key of the HMAC-SHA256 signature of each event, shared with the receiver: at least 32 bytes, such as `openssl rand -hex 32`; needed with `AUTHD_OUTBOX_URL`",
		parse: func(v string, c *config) error {
			c.Outbox.Secret = []byte(v)
			switch {
			case v != "" && len(v) < 32:
				return errors.New("shorter than 32 bytes")
			case v == "" && c.Outbox.URL != "":
				return errors.New("needed by AUTHD_OUTBOX_URL")
			}
			return nil
		},
	},
	{
		env: "AUTHD_OUTBOX_MAX_BACKOFF", def: "5m", usedBy: forServe,
		help: "longest wait between two attempts to deliver an event, 1s to 1h",
		doc:  "the longest wait (`1s` to `1h`) between two attempts to deliver an event the receiver refused or did not answer; the wait doubles from 1 s up to it",
		parse: func(v string, c *config) error {
			d, ok := parseDuration(v, time.Second, time.Hour, false)
			c.Outbox.MaxBackoff = d
			if !ok {
				return fmt.Errorf("%q is not a duration from 1s to 1h, such as 5m", v)
			}
			return nil
		},
	},
}

// flags registers on fs the settings tagged with any of tags, each
// defaulting to its environment variable, then to its built-in default. The returned
// function converts and validates them after fs.Parse, and reports every
// bad value at once.
func (c *config) flags(fs *flag.FlagSet, getenv func(string) string, tags commands) func() error {
	type registered struct {
		setting
		value *string
	}
	var used []registered
	for _, s := range settings {
		if s.usedBy&tags == 0 {
			continue
		}
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		p, usage := new(string), s.help+" ($"+s.env+")"
		if s.secret {
			*p = v
			fs.Var((*secretValue)(p), flagName(s.env), usage)
		} else {
			fs.StringVar(p, flagName(s.env), v, usage)
		}
		used = append(used, registered{s, p})
	}
	return func() error {
		var errs []error
		for _, r := range used {
			v := *r.value
			if !r.verbatim {
				v = strings.TrimSpace(v)
			}
			if err := r.parse(v, c); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.env, err))
			}
		}
		return errors.Join(errs...)
	}
}

// maxDuration is the upper bound of a duration setting that has none.
const maxDuration = time.Duration(1<<63 - 1)

// parseDuration reads a Go duration and reports whether it lies within
// [lo, hi]. "0" is zero, and so is "off" where offIsZero.
func parseDuration(v string, lo, hi time.Duration, offIsZero bool) (time.Duration, bool) {
	if v == "0" || offIsZero && v == "off" {
		return 0, lo <= 0
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d >= lo && d <= hi
}

// parseInt reads a whole number from lo to hi.
func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return n, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}

// parseTrueFalse reads a boolean as strconv.ParseBool does.
func parseTrueFalse(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

// parseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses (taken as /32 or /128).
func parseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR", f)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// parseOnOff reads a switch: on, true or 1; off, false or 0.
func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1":
		return true, nil
	case "off", "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not on or off", v)
}

// parseTTL reads a token lifetime: a Go duration of at least a second
// ("90s", "5m", "720h"), or "none" for no expiry where that is allowed.
func parseTTL(v string, required bool) (time.Duration, error) {
	if !required && (v == "none" || v == "0" || v == "") {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		if required {
			return 0, fmt.Errorf("%q is not a duration of at least 1s, such as 5m", v)
		}
		return 0, fmt.Errorf("%q is not none or a duration of at least 1s, such as 720h", v)
	}
	return d, nil
}

// secretValue is a string flag whose value --help shows redacted: a URL
// without its password, a SQLite path as it is, anything else as "(set)".
type secretValue string

func (s *secretValue) Set(v string) error { *s = secretValue(v); return nil }

func (s *secretValue) String() string {
	if s == nil || *s == "" {
		return ""
	}
	if u, err := url.Parse(string(*s)); err == nil && u.Scheme != "" && u.Opaque == "" {
		return u.Redacted()
	}
	if strings.HasPrefix(string(*s), "sqlite:") {
		return string(*s)
	}
	return "(set)"
}

// flagName is the flag of an environment variable: AUTHD_DATABASE_URL is
// --database-url.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "AUTHD_")), "_", "-")
}

// databaseKind is the store a database URL selects.
type databaseKind int

const (
	postgresDB databaseKind = iota + 1
	sqliteDB
)

// parseDatabaseURL tells which store a URL selects and what to open it
// with: the whole URL for Postgres, the file path for SQLite.
func parseDatabaseURL(u string) (databaseKind, string, error) {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return postgresDB, u, nil
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
		if path == "" {
			return 0, "", errors.New("sqlite: needs a file path (sqlite:authd.db)")
		}
		return sqliteDB, path, nil
	default:
		// Never echo the value: a mistyped URL may still hold a password.
		return 0, "", errors.New("must be a postgres://, postgresql:// or sqlite: URL")
	}
}

// validServerName checks the grammar of a server name (spec appendix,
// Server Name): a DNS name or IP literal, optionally with a port.
func validServerName(s string) error {
	if s == "" || len(s) > 255 {
		return fmt.Errorf("%q is not a server name", s)
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", s)
		}
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		if net.ParseIP(host[1:len(host)-1]) == nil {
			return fmt.Errorf("%q is not a valid IPv6 literal", s)
		}
		return nil
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("%q is not a server name (letters, digits, '-', '.', optional :port)", s)
		}
	}
	return nil
}

// newFlagSet returns a flag set that reports errors to the subcommand's
// stderr and returns them instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
