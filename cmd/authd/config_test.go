package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

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
			if err != nil || c.Tokens.AccessTTL != tt.wantTTL || !c.Tokens.Refresh || c.Tokens.RefreshTTL != 0 || c.Tokens.NonRefreshableTTL != 0 {
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
