package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/bench"
	"github.com/authd/authd/internal/password"
)

// storeResult is everything measured on one store.
type storeResult struct {
	Store     string           `json:"store"`
	AuthdCPUs int              `json:"authd_cpus"`
	Bounds    bounds           `json:"bounds"`
	Scenarios []scenarioResult `json:"scenarios"`
	// Flood is the open-loop login flood that ran beside the
	// whoami-during-login-flood row.
	Flood      floodResult `json:"login_flood"`
	PeakRSSMiB float64     `json:"authd_peak_rss_mib"`
	// Revocation is the revocation-across-replicas scenario's, when it ran.
	Revocation *revocationResult `json:"revocation_across_replicas,omitempty"`
	Checks     []check           `json:"checks"`
}

type bounds struct {
	// BcryptMS is the median time of one bcrypt comparison at the cost,
	// measured in this process with golang.org/x/crypto/bcrypt while authd
	// was idle; HasherVerifyMS the same through internal/password (HMAC
	// prehash plus bcrypt), to show the prehash costs nothing measurable.
	BcryptMS       float64 `json:"bcrypt_compare_ms"`
	HasherVerifyMS float64 `json:"hasher_verify_ms"`
	// BcryptPerSecond is authd's CPUs / BcryptMS: no login path can beat it.
	BcryptPerSecond float64 `json:"bcrypt_bound_per_second"`
	// HTTPPerSecond is /healthz's rate: the HTTP stack, router and
	// middleware with nothing behind them, on the same connections.
	HTTPPerSecond float64 `json:"http_bound_per_second"`
}

type floodResult struct {
	OfferedRate  float64        `json:"offered_rate"`
	Conns        int            `json:"conns"`
	Sent         int            `json:"sent"`
	Missed       int            `json:"missed"`
	Statuses     map[string]int `json:"statuses"`
	OKPerSecond  float64        `json:"logins_per_second"`
	ShedMaxMS    float64        `json:"shed_max_ms"`
	ShedP50MS    float64        `json:"shed_p50_ms"`
	SuccessP99MS float64        `json:"success_p99_ms"`
}

func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runStore sets up a fresh database, starts authd on it, and runs every
// scenario.
func runStore(ctx context.Context, o options, kind, dir string, logw io.Writer) (sr storeResult, err error) {
	sr.Store = kind
	db, err := newDatabase(ctx, kind, o.adminURL, dir)
	if err != nil {
		return sr, err
	}
	defer func() {
		if derr := db.drop(); derr != nil && err == nil {
			err = fmt.Errorf("drop database: %w", derr)
		}
	}()
	a, err := newAuthd(o.authd, db.url, dir, o)
	if err != nil {
		return sr, err
	}
	// Before authd runs, its CPUs are taken to be this process's: both
	// inherit the same affinity. The bound uses authd's own count.
	loginConns := o.loginConns
	if loginConns <= 0 {
		loginConns = 2 * runtime.NumCPU()
	}
	users := max(loginConns, 4)
	// Each logout spends a token: mint enough for the warm-up and the
	// window at the rate this store reaches (about 8000/s on Postgres and
	// 2000/s on SQLite here), with a margin. A row that runs out says so.
	logoutTokens := o.logoutTokens
	if logoutTokens <= 0 {
		logoutTokens = map[string]int{"postgres": 100000, "sqlite": 30000}[kind]
	}
	progress(logw, "%s: migrating, creating %d users with the CLI, minting %d sessions", kind, users, 2*o.conns+logoutTokens)
	if err := a.run(ctx, "", "migrate", "up"); err != nil {
		return sr, err
	}
	if err := createUsers(ctx, a, users); err != nil {
		return sr, err
	}
	m, err := mint(ctx, db, users, o.conns, logoutTokens, o.conns)
	if err != nil {
		return sr, err
	}
	if err := a.start(ctx); err != nil {
		return sr, err
	}
	defer func() {
		if serr := a.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if sr.AuthdCPUs, err = bench.CPUs(a.pid()); err != nil {
		return sr, err
	}

	// Nothing should run but what is measured: say so when something does.
	if busy := machineBusy(time.Second); busy > 0.1 {
		progress(logw, "%s: WARNING: the machine was %.0f%% busy before the run, with authd idle: other work will lower every figure", kind, 100*busy)
	}
	progress(logw, "%s: timing bcrypt at cost %d with authd idle", kind, o.cost)
	n := 15
	if o.smoke {
		n = 3
	}
	bc, hv, err := timeBcrypt(o.cost, n)
	if err != nil {
		return sr, err
	}
	sr.Bounds.BcryptMS, sr.Bounds.HasherVerifyMS = ms(bc), ms(hv)
	sr.Bounds.BcryptPerSecond = float64(sr.AuthdCPUs) / bc.Seconds()

	host := a.addr
	add := func(s scenarioResult, err error) error {
		if err != nil {
			return err
		}
		sr.Scenarios = append(sr.Scenarios, s)
		progress(logw, "%s: %-26s %9.1f/s  p50 %7.2fms  p99 %7.2fms  errors %d", kind, s.Name, s.PerSecond, s.P50, s.P99, s.Errors)
		return ctx.Err()
	}
	fixed := func(r bench.Request) func(int) bench.Worker {
		return func(int) bench.Worker { return bench.Fixed(r) }
	}
	perConn := func(toks []string, req func(tok string) bench.Request) func(int) bench.Worker {
		return func(i int) bench.Worker { return bench.Fixed(req(toks[i%len(toks)])) }
	}
	whoami := func(tok string) bench.Request { return bench.NewRequest("GET", host, whoamiPath, "", bearer(tok)) }
	verify := func(tok string) bench.Request {
		// As nginx's auth_request sends it.
		return bench.NewRequest("GET", host, "/_authd/verify", "", bearer(tok), "X-Original-URI: /_matrix/client/v3/sync?timeout=30000", "X-Original-Method: GET")
	}
	login := func(user, pw string) func(int) bench.Worker {
		return func(i int) bench.Worker {
			return bench.Fixed(bench.NewRequest("POST", host, loginPath, loginBody(user+fmt.Sprint(i%users), pw)))
		}
	}

	steps := []struct {
		name string
		run  func() error
	}{
		{"healthz", func() error {
			return add(closedLoad(a, o, "healthz", o.conns, is(200), fixed(bench.NewRequest("GET", host, "/healthz", ""))))
		}},
		{"whoami", func() error { return add(closedLoad(a, o, "whoami", o.conns, is(200), perConn(m.access, whoami))) }},
		{"verify", func() error { return add(closedLoad(a, o, "verify", o.conns, is(200), perConn(m.access, verify))) }},
		{"logout", func() error {
			return add(closedLoad(a, o, "logout", o.conns, is(200), func(i int) bench.Worker {
				var reqs []bench.Request
				for j := i; j < len(m.logout); j += o.conns {
					reqs = append(reqs, bench.NewRequest("POST", host, "/_matrix/client/v3/logout", "", bearer(m.logout[j])))
				}
				return bench.NewQueue(reqs)
			}))
		}},
		{"refresh", func() error {
			return add(closedLoad(a, o, "refresh", o.conns, is(200), func(i int) bench.Worker {
				return &refreshChain{host: host, rt: m.refresh[i]}
			}))
		}},
		{"login", func() error {
			return add(closedLoad(a, o, "login", loginConns, is(200), login("bench", benchPassword)))
		}},
		{"login-wrong-password", func() error {
			return add(closedLoad(a, o, "login-wrong-password", loginConns, is(403), login("bench", "wrong "+benchPassword)))
		}},
		{"login-unknown-user", func() error {
			return add(closedLoad(a, o, "login-unknown-user", loginConns, is(403), login("nobody", benchPassword)))
		}},
		{"whoami-during-login-flood", func() error {
			s, f, err := isolation(a, o, sr.Bounds.BcryptPerSecond, m.access)
			sr.Flood = f
			return add(s, err)
		}},
		// Last, so that a second replica (and nginx) runs beside no other
		// scenario.
		{nginxScenario, func() error {
			if kind != "postgres" {
				return nil
			}
			return add(throughNginx(ctx, a, o, dir, m.access, row(sr, "whoami").PerSecond, logw))
		}},
		{revocationScenario, func() error {
			r, err := acrossReplicas(ctx, a, kind, dir, o.revocationRounds, logw)
			if err != nil {
				return err
			}
			sr.Revocation = &r
			progress(logw, "%s: %-26s %d rounds  p50 %7.2fms  p99 %7.2fms  max %7.2fms", kind, revocationScenario, r.Rounds, r.P50MS, r.P99MS, r.MaxMS)
			return ctx.Err()
		}},
	}
	for _, step := range steps {
		if len(o.scenarios) > 0 && !slices.Contains(o.scenarios, step.name) {
			continue
		}
		if err := step.run(); err != nil {
			return sr, err
		}
	}
	peak, err := bench.PeakRSS(a.pid())
	if err != nil {
		return sr, err
	}
	sr.PeakRSSMiB = float64(peak) / (1 << 20)
	sr.Bounds.HTTPPerSecond = row(sr, "healthz").PerSecond
	sr.Checks = checks(sr, o)
	return sr, nil
}

// isolation runs whoami as in its own scenario while a login flood is
// offered at o.flood times the bcrypt bound, open-loop: far more than
// authd can hash, so most logins wait out the queue timeout and are shed.
func isolation(a *authd, o options, bound float64, tokens []string) (scenarioResult, floodResult, error) {
	rate := o.flood * bound
	// Enough connections for every login in flight: each waits at most
	// the queue timeout, plus a hash and some slack.
	floodConns := int(math.Ceil(rate*(o.queueTimeout.Seconds()+0.5))) + 8
	host := a.addr
	var fl bench.OpenResult
	var ferr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		fl, ferr = bench.Open{
			Addr: host, Conns: floodConns, Rate: rate, Warmup: o.warmup, Duration: o.duration,
			Request: bench.NewRequest("POST", host, loginPath, loginBody(userName(0), benchPassword)),
		}.Run()
	}()
	s, err := closedLoad(a, o, "whoami-during-login-flood", o.conns, is(200), func(i int) bench.Worker {
		return bench.Fixed(bench.NewRequest("GET", host, whoamiPath, "", bearer(tokens[i%len(tokens)])))
	})
	<-done
	if err == nil {
		err = ferr
	}
	f := floodResult{
		OfferedRate: rate, Conns: floodConns, Sent: fl.Sent, Missed: fl.Missed, Statuses: map[string]int{},
		OKPerSecond: float64(fl.Statuses[http.StatusOK]) / o.duration.Seconds(),
		ShedMaxMS:   ms(fl.Max(http.StatusTooManyRequests)),
	}
	for st, n := range fl.Statuses {
		f.Statuses[statusName(st)] = n
	}
	if shed := fl.Latencies[http.StatusTooManyRequests]; len(shed) > 0 {
		f.ShedP50MS = ms(shed[len(shed)/2])
	}
	if okl := fl.Latencies[http.StatusOK]; len(okl) > 0 {
		f.SuccessP99MS = ms(okl[min(len(okl)-1, int(0.99*float64(len(okl))))])
	}
	s.Note = fmt.Sprintf("beside %.0f logins/s offered on %d connections", rate, floodConns)
	return s, f, err
}

// timeBcrypt returns the median of n bcrypt comparisons at cost, and of n
// internal/password verifications, run one at a time in this process.
func timeBcrypt(cost, n int) (compare, verify time.Duration, err error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), cost)
	if err != nil {
		return 0, 0, err
	}
	h, err := password.NewHasher(cost, nil)
	if err != nil {
		return 0, 0, err
	}
	stored, err := h.Hash(benchPassword)
	if err != nil {
		return 0, 0, err
	}
	median := func(fn func()) time.Duration {
		fn() // warm
		d := make([]time.Duration, n)
		for i := range d {
			t := time.Now()
			fn()
			d[i] = time.Since(t)
		}
		slices.Sort(d)
		return d[n/2]
	}
	compare = median(func() { bcrypt.CompareHashAndPassword(hash, []byte(benchPassword)) })
	verify = median(func() { h.Verify(stored, benchPassword) })
	return compare, verify, nil
}

func row(sr storeResult, name string) scenarioResult {
	for _, s := range sr.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return scenarioResult{}
}

// machineBusy is the share of the machine's CPU time busy over d.
func machineBusy(d time.Duration) float64 {
	b0, t0, err := bench.MachineCPU()
	if err != nil {
		return 0
	}
	time.Sleep(d)
	b1, t1, err := bench.MachineCPU()
	if err != nil || t1 == t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}
