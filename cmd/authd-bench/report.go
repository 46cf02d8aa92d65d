package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// results is the JSON file.
type results struct {
	Started            time.Time     `json:"started"`
	Smoke              bool          `json:"smoke"`
	GOOS               string        `json:"goos"`
	GOARCH             string        `json:"goarch"`
	CPUs               int           `json:"cpus"`
	CPUModel           string        `json:"cpu_model"`
	BcryptCost         int           `json:"bcrypt_cost"`
	HashQueueTimeoutMS int64         `json:"hash_queue_timeout_ms"`
	WarmupS            float64       `json:"warmup_s"`
	DurationS          float64       `json:"duration_s"`
	AuthdEnv           []string      `json:"authd_env,omitempty"`
	Stores             []storeResult `json:"stores"`
	Pass               bool          `json:"pass"`
}

// check is one target: Value Op Target.
type check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"detail"`
	// Required checks are asserted in every run, smoke runs included: one
	// that fails says a scenario is broken, not slow.
	Required bool `json:"required,omitempty"`
}

func newCheck(name string, value float64, op string, target float64, detail string) check {
	pass := value >= target
	if op == "<=" {
		pass = value <= target
	}
	return check{Name: name, Value: value, Op: op, Target: target, Pass: pass, Detail: detail}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// checks computes the four targets of one store.
func checks(sr storeResult, o options) []check {
	healthz, whoami, verify := row(sr, "healthz"), row(sr, "whoami"), row(sr, "verify")
	login, flood := row(sr, "login"), row(sr, "whoami-during-login-flood")
	cs := []check{
		newCheck("login efficiency", ratio(login.PerSecond, sr.Bounds.BcryptPerSecond), ">=", 0.90,
			fmt.Sprintf("%.1f logins/s / bcrypt bound %.1f/s", login.PerSecond, sr.Bounds.BcryptPerSecond)),
		newCheck("validation efficiency (whoami)", ratio(whoami.PerSecond, healthz.PerSecond), ">=", 0.50,
			fmt.Sprintf("%.0f/s / healthz %.0f/s", whoami.PerSecond, healthz.PerSecond)),
		newCheck("validation efficiency (verify)", ratio(verify.PerSecond, healthz.PerSecond), ">=", 0.50,
			fmt.Sprintf("%.0f/s / healthz %.0f/s", verify.PerSecond, healthz.PerSecond)),
		newCheck("isolation (whoami p99)", ratio(flood.P99, whoami.P99), "<=", 5,
			fmt.Sprintf("p99 %.2fms during the flood / %.2fms alone", flood.P99, whoami.P99)),
	}
	// Every shed login answered within the queue timeout and 50 ms; and
	// the flood must really have overrun the hashing, or there is nothing
	// to check.
	limit := float64(o.queueTimeout.Milliseconds() + 50)
	shed := sr.Flood.Statuses["429"]
	c := newCheck("isolation (shed logins)", sr.Flood.ShedMaxMS, "<=", limit,
		fmt.Sprintf("%d of %d flood logins shed with 429, slowest in %.1fms; %d not sent (no free connection)",
			shed, sr.Flood.Sent, sr.Flood.ShedMaxMS, sr.Flood.Missed))
	if shed == 0 || sr.Flood.Missed > sr.Flood.Sent/100 {
		c.Pass = false
		c.Detail += ": the flood did not overrun the hashing as offered"
	}
	cs = append(cs, c)
	cs = append(cs, newCheck("peak RSS (MiB)", sr.PeakRSSMiB, "<=", 100, "authd's VmHWM over the whole run"))
	if p := row(sr, nginxScenario).Proxy; p != nil {
		c := newCheck("nginx balance (least share)", p.leastShare(), ">=", minReplicaShare,
			fmt.Sprintf("whoami split %s across the 2 replicas; below %.0f%% on one, the balancing is broken", p.split(), 100*minReplicaShare))
		c.Required = true
		cs = append(cs, c)
	}
	return cs
}

// printStore prints one store's table, bounds and ratios.
func printStore(w io.Writer, sr storeResult, o options) {
	fmt.Fprintf(w, "\n== %s: authd on %d CPUs, bcrypt cost %d, rate limits off, %s warm-up + %s measured per scenario (generator: %s/%s, GOMAXPROCS %d) ==\n",
		sr.Store, sr.AuthdCPUs, o.cost, o.warmup, o.duration, runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconns\treq/s\tp50 ms\tp99 ms\terrors\tauthd CPU\tgen CPU\tother CPU\tauthd µs/req\t")
	for _, s := range sr.Scenarios {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t\n",
			s.Name, s.Conns, s.PerSecond, s.P50, s.P99, s.Errors, s.AuthdCores, s.BenchCores, s.OtherCores, s.AuthdCPUUS)
	}
	tw.Flush()
	for _, s := range sr.Scenarios {
		if s.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", s.Name, strings.TrimSpace(s.Note))
		}
	}
	f := sr.Flood
	fmt.Fprintf(w, "login flood: %.0f/s offered on %d connections, %d sent, %d not sent; answers %v; %.1f logins/s succeeded (p99 %.0fms); shed p50 %.0fms, max %.0fms\n",
		f.OfferedRate, f.Conns, f.Sent, f.Missed, f.Statuses, f.OKPerSecond, f.SuccessP99MS, f.ShedP50MS, f.ShedMaxMS)
	b := sr.Bounds
	fmt.Fprintf(w, "bounds: bcrypt %.1f logins/s (%d CPUs / %.2fms per comparison; internal/password Verify %.2fms); HTTP %.0f req/s (/healthz)\n",
		b.BcryptPerSecond, sr.AuthdCPUs, b.BcryptMS, b.HasherVerifyMS, b.HTTPPerSecond)
	if r := sr.Revocation; r != nil {
		// No target: the figure is the notice's path (NOTIFY, or SQLite's
		// 50 ms poll) on a loaded machine, and the token cache's lifetime
		// (AUTHD_TOKEN_CACHE_TTL, 5 s) bounds it whatever happens.
		fmt.Fprintf(w, "revocation across replicas: logout on one authd, token refused by the other (which had it cached) after p50 %.2fms, p99 %.2fms, max %.2fms over %d rounds (%d whoami honoured meanwhile); no target\n",
			r.P50MS, r.P99MS, r.MaxMS, r.Rounds, r.Polls)
	}
	fmt.Fprintf(w, "authd peak RSS: %.1f MiB\n", sr.PeakRSSMiB)
	for _, c := range sr.Checks {
		verdict := "ok"
		if !c.Pass {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-32s %8.2f %s %-6g %-6s  %s\n", c.Name, c.Value, c.Op, c.Target, verdict, c.Detail)
	}
}
