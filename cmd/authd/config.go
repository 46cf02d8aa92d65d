package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
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
	ServerName  string
	Listen      string
	DatabaseURL string
	Migrate     bool
	BcryptCost  int
	RateLimit   bool
	PublicBase  string
	Tokens      api.TokenPolicy
	Limits      limits
	Pepper      []byte
	Versions    bool
	LogFormat   string
	LogLevel    string
	// MetricsListen, when set, is the address /metrics is served on
	// instead of Listen.
	MetricsListen string
	// DBTimeout bounds every database call of a request.
	DBTimeout time.Duration
	// TokenCacheTTL is how long a validated access token is believed
	// without the database; zero turns the token cache off.
	TokenCacheTTL time.Duration
	// ShutdownDelay is how long serve goes on serving after SIGTERM, with
	// /readyz saying unavailable, before it closes its listeners.
	ShutdownDelay time.Duration
}

// setting is one configuration variable: its environment name, its flag,
// its default and the help text the flag shows.
type setting struct {
	env, def, help string
}

// secretSettings show a redacted value in --help: the value may come from
// the environment and hold a password.
var secretSettings = map[string]bool{
	"AUTHD_DATABASE_URL": true, "AUTHD_PASSWORD_PEPPER": true, "AUTHD_REDIS_URL": true,
}

// flags registers the settings a subcommand takes on its flag set, each
// defaulting to its environment variable, then to its built-in default.
// The returned function converts and validates them after fs.Parse.
func (c *config) flags(fs *flag.FlagSet, getenv func(string) string, names ...string) func() error {
	raw := map[string]*string{}
	all := []setting{
		{"AUTHD_SERVER_NAME", "localhost", "the homeserver's server name, the domain of user IDs"},
		{"AUTHD_LISTEN", ":8008", "address to serve HTTP on"},
		{"AUTHD_DATABASE_URL", "sqlite:authd.db", "postgres://… or postgresql://… for Postgres, sqlite:PATH for embedded SQLite"},
		{"AUTHD_MIGRATE", "false", "apply pending schema migrations at start"},
		{"AUTHD_BCRYPT_COST", "12", "bcrypt cost of new password hashes (4-31)"},
		{"AUTHD_RATELIMIT", "on", "all rate limits (on|off); off overrides the rules below"},
		{"AUTHD_RATELIMIT_LOGIN_IP", "10/5s", "login attempts per client IP: BURST/PERIOD (one more each PERIOD) or off"},
		{"AUTHD_RATELIMIT_LOGIN_FAILED", "5/1m", "failed logins per identifier (user ID, email, phone), or per account on a known network: BURST/PERIOD or off"},
		{"AUTHD_LOGIN_KNOWN_NETWORK_TTL", "720h", "how long an IP (IPv6: its /64) a user logged in from stays known, with a failed-login budget of its own (0: no known networks)"},
		{"AUTHD_RATELIMIT_LOGIN_SUCCESS", "10/20s", "successful logins per account: BURST/PERIOD or off"},
		{"AUTHD_RATELIMIT_REFRESH_IP", "30/2s", "token refreshes per client IP: BURST/PERIOD or off"},
		{"AUTHD_RATELIMIT_TOKEN_FAILURES", "30/1s", "unknown access tokens per client IP (expired ones do not count): BURST/PERIOD or off"},
		{"AUTHD_RATELIMIT_BACKEND", "memory", "where rate-limit state lives: memory (this process) or redis (shared by every replica, AUTHD_REDIS_URL)"},
		{"AUTHD_REDIS_URL", "", "redis://[:PASSWORD@]HOST:PORT/DB, rediss://… (TLS) or unix:///PATH for AUTHD_RATELIMIT_BACKEND=redis"},
		{"AUTHD_TRUSTED_PROXIES", "", "comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is believed"},
		{"AUTHD_HASH_CONCURRENCY", "0", "password checks at once (0: GOMAXPROCS)"},
		{"AUTHD_HASH_QUEUE_TIMEOUT", "1s", "how long a login waits for a hashing slot before 429"},
		{"AUTHD_PASSWORD_PEPPER", "", "secret mixed into every password hash (changing it invalidates every password)"},
		{"AUTHD_REFRESH_TOKENS", "on", "issue refresh tokens to logins that ask for them (on|off)"},
		{"AUTHD_ACCESS_TOKEN_TTL", "5m", "lifetime of access tokens issued with a refresh token"},
		{"AUTHD_REFRESH_TOKEN_TTL", "none", "lifetime of refresh tokens (none: no expiry)"},
		{"AUTHD_NON_REFRESHABLE_TOKEN_TTL", "none", "lifetime of access tokens issued without a refresh token (none: no expiry)"},
		{"AUTHD_PUBLIC_BASEURL", "", "the homeserver's public base URL, sent as well_known at login (empty: not sent)"},
		{"AUTHD_SERVE_VERSIONS", "false", "serve GET /_matrix/client/versions (standalone use)"},
		{"AUTHD_LOG_FORMAT", "auto", "log format (auto|text|json); auto is text on a terminal, JSON otherwise"},
		{"AUTHD_LOG_LEVEL", "info", "log level (debug|info|warn|error)"},
		{"AUTHD_METRICS_LISTEN", "", "serve /metrics on this address only, not on AUTHD_LISTEN (empty: on AUTHD_LISTEN)"},
		{"AUTHD_DB_TIMEOUT", "3s", "deadline of each database call of a request; past it the request gets 503"},
		{"AUTHD_SHUTDOWN_DELAY", "0s", "after SIGTERM, keep serving this long with /readyz unavailable before closing the listeners, 0 to 1m (a proxy's or Kubernetes' time to stop sending)"},
		{"AUTHD_TOKEN_CACHE_TTL", "5s", "how long a validated access token is believed without asking the database, 0 to 1m (0: no cache)"},
	}
	for _, s := range all {
		if !contains(names, s.env) {
			continue
		}
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		p := new(string)
		if secretSettings[s.env] {
			*p = v
			fs.Var((*secretValue)(p), flagName(s.env), s.help+" ($"+s.env+")")
		} else {
			fs.StringVar(p, flagName(s.env), v, s.help+" ($"+s.env+")")
		}
		raw[s.env] = p
	}
	return func() error {
		var errs []error
		get := func(name string) (string, bool) {
			p, ok := raw[name]
			if !ok {
				return "", false
			}
			return strings.TrimSpace(*p), true
		}
		if v, ok := get("AUTHD_SERVER_NAME"); ok {
			if err := validServerName(v); err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_SERVER_NAME: %w", err))
			}
			c.ServerName = v
		}
		if v, ok := get("AUTHD_LISTEN"); ok {
			if _, _, err := net.SplitHostPort(v); err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_LISTEN: %q is not host:port", v))
			}
			c.Listen = v
		}
		if v, ok := get("AUTHD_DATABASE_URL"); ok {
			if _, _, err := parseDatabaseURL(v); err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_DATABASE_URL: %w", err))
			}
			c.DatabaseURL = v
		}
		if v, ok := get("AUTHD_MIGRATE"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_MIGRATE: %q is not true or false", v))
			}
			c.Migrate = b
		}
		if v, ok := get("AUTHD_BCRYPT_COST"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 4 || n > 31 {
				errs = append(errs, fmt.Errorf("AUTHD_BCRYPT_COST: %q is not a whole number from 4 to 31", v))
			}
			c.BcryptCost = n
		}
		if v, ok := get("AUTHD_RATELIMIT"); ok {
			b, err := parseOnOff(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_RATELIMIT: %w", err))
			}
			c.RateLimit = b
		}
		rules := []struct {
			name string
			dst  *ratelimit.Rule
		}{
			{"AUTHD_RATELIMIT_LOGIN_IP", &c.Limits.LoginIP},
			{"AUTHD_RATELIMIT_LOGIN_FAILED", &c.Limits.LoginFailed},
			{"AUTHD_RATELIMIT_LOGIN_SUCCESS", &c.Limits.LoginSuccess},
			{"AUTHD_RATELIMIT_REFRESH_IP", &c.Limits.RefreshIP},
			{"AUTHD_RATELIMIT_TOKEN_FAILURES", &c.Limits.TokenFailures},
		}
		for _, rule := range rules {
			if v, ok := get(rule.name); ok {
				r, err := ratelimit.ParseRule(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", rule.name, err))
				}
				*rule.dst = r
			}
		}
		if v, ok := get("AUTHD_RATELIMIT_BACKEND"); ok {
			if v != "memory" && v != "redis" {
				errs = append(errs, fmt.Errorf("AUTHD_RATELIMIT_BACKEND: %q is not memory or redis", v))
			}
			c.Limits.Backend = v
		}
		if v, ok := get("AUTHD_REDIS_URL"); ok {
			// The URL may hold a password: errors never quote it.
			if v != "" {
				if _, err := redis.ParseURL(v); err != nil {
					errs = append(errs, errors.New("AUTHD_REDIS_URL: not a redis://, rediss:// or unix:// URL"))
				}
			} else if c.Limits.Backend == "redis" {
				errs = append(errs, errors.New("AUTHD_REDIS_URL: needed by AUTHD_RATELIMIT_BACKEND=redis"))
			}
			c.Limits.RedisURL = v
		}
		if v, ok := get("AUTHD_TRUSTED_PROXIES"); ok {
			p, err := parseTrustedProxies(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_TRUSTED_PROXIES: %w", err))
			}
			c.Limits.TrustedProxies = p
		}
		if v, ok := get("AUTHD_HASH_CONCURRENCY"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1024 {
				errs = append(errs, fmt.Errorf("AUTHD_HASH_CONCURRENCY: %q is not a whole number from 0 to 1024", v))
			}
			c.Limits.HashConcurrency = n
		}
		if v, ok := get("AUTHD_LOGIN_KNOWN_NETWORK_TTL"); ok {
			d, err := time.ParseDuration(v)
			if v == "0" || v == "off" {
				d, err = 0, nil
			}
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("AUTHD_LOGIN_KNOWN_NETWORK_TTL: %q is not a duration such as 720h, or 0", v))
			}
			c.Limits.KnownNetworkTTL = d
		}
		if v, ok := get("AUTHD_HASH_QUEUE_TIMEOUT"); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("AUTHD_HASH_QUEUE_TIMEOUT: %q is not a positive duration such as 1s", v))
			}
			c.Limits.HashQueueTimeout = d
		}
		if p, ok := raw["AUTHD_PASSWORD_PEPPER"]; ok {
			// Taken as it is, spaces included; never echoed.
			c.Pepper = []byte(*p)
		}
		if v, ok := get("AUTHD_REFRESH_TOKENS"); ok {
			b, err := parseOnOff(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_REFRESH_TOKENS: %w", err))
			}
			c.Tokens.IssueRefresh = b
		}
		ttls := []struct {
			name     string
			dst      *time.Duration
			required bool
		}{
			{"AUTHD_ACCESS_TOKEN_TTL", &c.Tokens.AccessTTL, true},
			{"AUTHD_REFRESH_TOKEN_TTL", &c.Tokens.RefreshTTL, false},
			{"AUTHD_NON_REFRESHABLE_TOKEN_TTL", &c.Tokens.NonRefreshableTTL, false},
		}
		for _, ttl := range ttls {
			v, ok := get(ttl.name)
			if !ok {
				continue
			}
			d, err := parseTTL(v, ttl.required)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ttl.name, err))
			}
			*ttl.dst = d
		}
		if v, ok := get("AUTHD_PUBLIC_BASEURL"); ok && v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				errs = append(errs, fmt.Errorf("AUTHD_PUBLIC_BASEURL: %q is not an http(s) base URL such as https://matrix.example.org", v))
			}
			c.PublicBase = strings.TrimRight(v, "/")
		}
		if v, ok := get("AUTHD_SERVE_VERSIONS"); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_SERVE_VERSIONS: %q is not true or false", v))
			}
			c.Versions = b
		}
		if v, ok := get("AUTHD_LOG_FORMAT"); ok {
			if v != "auto" && v != "text" && v != "json" {
				errs = append(errs, fmt.Errorf("AUTHD_LOG_FORMAT: %q is not auto, text or json", v))
			}
			c.LogFormat = v
		}
		if v, ok := get("AUTHD_METRICS_LISTEN"); ok && v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil {
				errs = append(errs, fmt.Errorf("AUTHD_METRICS_LISTEN: %q is not host:port", v))
			} else if v == c.Listen && port != "0" {
				errs = append(errs, fmt.Errorf("AUTHD_METRICS_LISTEN: %q is AUTHD_LISTEN too; leave it empty to serve /metrics there", v))
			}
			c.MetricsListen = v
		}
		if v, ok := get("AUTHD_DB_TIMEOUT"); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > 30*time.Second {
				errs = append(errs, fmt.Errorf("AUTHD_DB_TIMEOUT: %q is not a duration from 100ms to 30s, such as 3s", v))
			}
			c.DBTimeout = d
		}
		if v, ok := get("AUTHD_TOKEN_CACHE_TTL"); ok {
			d, err := time.ParseDuration(v)
			if v == "0" || v == "off" {
				d, err = 0, nil
			}
			if err != nil || d < 0 || d > time.Minute {
				errs = append(errs, fmt.Errorf("AUTHD_TOKEN_CACHE_TTL: %q is not a duration from 0 to 1m, such as 5s", v))
			}
			c.TokenCacheTTL = d
		}
		if v, ok := get("AUTHD_SHUTDOWN_DELAY"); ok {
			d, err := time.ParseDuration(v)
			if v == "0" {
				d, err = 0, nil
			}
			if err != nil || d < 0 || d > time.Minute {
				errs = append(errs, fmt.Errorf("AUTHD_SHUTDOWN_DELAY: %q is not a duration from 0 to 1m, such as 5s", v))
			}
			c.ShutdownDelay = d
		}
		if v, ok := get("AUTHD_LOG_LEVEL"); ok {
			switch v {
			case "debug", "info", "warn", "error":
			default:
				errs = append(errs, fmt.Errorf("AUTHD_LOG_LEVEL: %q is not debug, info, warn or error", v))
			}
			c.LogLevel = v
		}
		return errors.Join(errs...)
	}
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

// flagName turns AUTHD_DATABASE_URL into database-url.
// secretValue is a string flag whose value --help shows redacted: a URL
// without its password, anything else as "(set)".
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

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "AUTHD_")), "_", "-")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
