package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	// ok is a closed-loop row of n expected answers over one second.
	ok := func(name string, n int, p99 float64) scenarioResult {
		return scenarioResult{Name: name, PerSecond: float64(n), Requests: n, WindowS: 1, P99: p99}
	}
	base := func() storeResult {
		return storeResult{
			Durable: true,
			Bounds:  bounds{BcryptPerSecond: 32},
			Scenarios: []scenarioResult{
				ok("healthz", 50000, 4),
				ok("whoami", 30000, 4),
				ok("verify", 30000, 4),
				ok("whoami-c8", 20000, 3),
				ok("whoami-wrk", 29000, 5),
				ok("whoami-c8-wrk", 21000, 4.5),
				ok("commit-bound-c8", 8000, 4),
				ok("logout-c8", 6500, 4),
				ok("commit-bound-c64", 7000, 30),
				ok("logout-c64", 5700, 30),
				ok("bcrypt-one-core", 16, 62),
				ok("bcrypt-bound", 32, 62),
				ok("bcrypt-bound-mid", 32, 62),
				ok("bcrypt-bound-after", 32, 62),
				ok("login-c1", 15, 70),
				ok("login-c8", 31, 300),
				ok("login-c8-wrk", 30, 300),
				ok("login-c64", 31, 2500),
				ok("whoami-during-login-flood", 20000, 11),
				ok("verify-during-login-flood", 20000, 11),
			},
			Flood:      floodResult{Sent: 600, Statuses: map[string]int{"200": 100, "429": 500}, ShedMaxMS: 40},
			PeakRSSMiB: 40,
		}
	}
	set := func(name string, f func(*scenarioResult)) func(*storeResult) {
		return func(s *storeResult) {
			for i := range s.Scenarios {
				if s.Scenarios[i].Name == name {
					f(&s.Scenarios[i])
				}
			}
		}
	}
	o := options{queueTimeout: 5 * time.Second}
	tests := []struct {
		name   string
		mutate func(*storeResult)
		failed string // the check that must fail; "" for none
	}{
		{"AllMet", func(*storeResult) {}, ""},
		{"NotDurable", func(s *storeResult) { s.Durable = false }, "durable commits"},
		{"SlowLoneLogin", set("login-c1", func(r *scenarioResult) { r.Requests = 14 }), "login efficiency (c1)"},
		{"SlowLogin", set("login-c8", func(r *scenarioResult) { r.Requests = 30 }), "login efficiency (c8)"},
		// A shed login is not a login: 429s do not count as logins.
		{"BurstShed", set("login-c64", func(r *scenarioResult) { r.Requests, r.Errors = 60, 40 }), "login efficiency (c64)|login burst (c64) refused"},
		{"SlowLogout", set("logout-c8", func(r *scenarioResult) { r.Requests = 6300 }), "logout / commit bound (c8)"},
		{"SlowLogoutBurst", set("logout-c64", func(r *scenarioResult) { r.Requests = 5500 }), "logout / commit bound (c64)"},
		{"SlowWhoami", set("whoami", func(r *scenarioResult) { r.PerSecond = 24000 }), "validation efficiency (whoami)|wrk agrees (whoami)"},
		{"SlowVerify", set("verify", func(r *scenarioResult) { r.PerSecond = 24000 }), "validation efficiency (verify)"},
		{"WhoamiTail", set("whoami-c8-wrk", func(r *scenarioResult) { r.P99 = 4.9 }), "whoami p99 at c8, wrk (ms)"},
		{"FloodHurtsWhoami", set("whoami-during-login-flood", func(r *scenarioResult) { r.P99 = 12.1 }), "isolation (whoami p99)"},
		{"FloodHurtsVerify", set("verify-during-login-flood", func(r *scenarioResult) { r.P99 = 12.1 }), "isolation (verify p99)"},
		{"ShedLate", func(s *storeResult) { s.Flood.ShedMaxMS = 101 }, "flood shed at once (slowest, ms)"},
		{"NothingShed", func(s *storeResult) { s.Flood.Statuses = map[string]int{"200": 600}; s.Flood.ShedMaxMS = 0 }, "flood shed at once (slowest, ms)"},
		{"FloodNotOffered", func(s *storeResult) { s.Flood.Missed = 100 }, "flood shed at once (slowest, ms)"},
		{"WrkDisagrees", set("whoami-wrk", func(r *scenarioResult) { r.PerSecond = 33100 }), "wrk agrees (whoami)"},
		{"WrkDisagreesLow", set("login-c8-wrk", func(r *scenarioResult) { r.PerSecond = 27.8 }), "wrk agrees (login-c8)"},
		{"Fat", func(s *storeResult) { s.PeakRSSMiB = 101 }, "peak RSS (MiB)"},
		{"NginxBalanced", func(s *storeResult) { s.Scenarios = append(s.Scenarios, throughNginxRow(0.45, 0.55)) }, ""},
		{"NginxUnbalanced", func(s *storeResult) { s.Scenarios = append(s.Scenarios, throughNginxRow(0.71, 0.29)) }, "nginx balance (least share)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr := base()
			tt.mutate(&sr)
			for _, c := range checks(sr, o) {
				failing := slices.Contains(strings.Split(tt.failed, "|"), c.Name)
				if c.Pass == failing {
					t.Errorf("%s: pass = %v, want %v (%s)", c.Name, c.Pass, !failing, c.Detail)
				}
				// Only the balance is asserted in smoke runs too.
				if want := strings.HasPrefix(c.Name, "nginx balance"); c.Required != want {
					t.Errorf("%s: required = %v, want %v", c.Name, c.Required, want)
				}
			}
		})
	}
}

// throughNginxRow is the nginx scenario's row with the replicas' shares.
func throughNginxRow(shares ...float64) scenarioResult {
	p := &proxyResult{}
	for _, s := range shares {
		p.Replicas = append(p.Replicas, replicaResult{Share: s})
	}
	return scenarioResult{Name: nginxScenario, PerSecond: 9000, Proxy: p}
}
