package main

import (
	"strings"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	base := func() storeResult {
		return storeResult{
			Bounds: bounds{BcryptPerSecond: 28},
			Scenarios: []scenarioResult{
				{Name: "healthz", PerSecond: 50000},
				{Name: "whoami", PerSecond: 30000, P99: 4},
				{Name: "verify", PerSecond: 30000},
				{Name: "login", PerSecond: 26},
				{Name: "whoami-during-login-flood", P99: 12},
			},
			Flood:      floodResult{Sent: 600, Statuses: map[string]int{"200": 100, "429": 500}, ShedMaxMS: 1030},
			PeakRSSMiB: 40,
		}
	}
	o := options{queueTimeout: time.Second}
	tests := []struct {
		name   string
		mutate func(*storeResult)
		failed string // the check that must fail; "" for none
	}{
		{"AllMet", func(*storeResult) {}, ""},
		{"SlowLogin", func(s *storeResult) { s.Scenarios[3].PerSecond = 25 }, "login efficiency"},
		{"SlowWhoami", func(s *storeResult) { s.Scenarios[1].PerSecond = 24000 }, "validation efficiency (whoami)"},
		{"SlowVerify", func(s *storeResult) { s.Scenarios[2].PerSecond = 24000 }, "validation efficiency (verify)"},
		{"FloodHurts", func(s *storeResult) { s.Scenarios[4].P99 = 21 }, "isolation (whoami p99)"},
		{"ShedLate", func(s *storeResult) { s.Flood.ShedMaxMS = 1051 }, "isolation (shed logins)"},
		{"NothingShed", func(s *storeResult) { s.Flood.Statuses = map[string]int{"200": 600}; s.Flood.ShedMaxMS = 0 }, "isolation (shed logins)"},
		{"FloodNotOffered", func(s *storeResult) { s.Flood.Missed = 100 }, "isolation (shed logins)"},
		{"Fat", func(s *storeResult) { s.PeakRSSMiB = 101 }, "peak RSS (MiB)"},
		{"NginxBalanced", func(s *storeResult) { s.Scenarios = append(s.Scenarios, throughNginxRow(0.45, 0.55)) }, ""},
		{"NginxUnbalanced", func(s *storeResult) { s.Scenarios = append(s.Scenarios, throughNginxRow(0.71, 0.29)) }, "nginx balance (least share)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr := base()
			tt.mutate(&sr)
			for _, c := range checks(sr, o) {
				if want := c.Name != tt.failed; c.Pass != want {
					t.Errorf("%s: pass = %v, want %v (%s)", c.Name, c.Pass, want, c.Detail)
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
