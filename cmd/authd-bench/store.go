package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/bench"
	"github.com/authd/authd/internal/password"
)

// storeResult is everything measured on one store.
type storeResult struct {
	Store string `json:"store"`
	// Durability is how the database commits (fsync and friends on
	// Postgres, the journal mode and synchronous level on SQLite); Durable
	// says an acknowledged commit survives a crash.
	Durability string           `json:"durability"`
	Durable    bool             `json:"durable"`
	AuthdCPUs  int              `json:"authd_cpus"`
	Bounds     bounds           `json:"bounds"`
	Scenarios  []scenarioResult `json:"scenarios"`
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
	a.store = kind
	if sr.Durability, sr.Durable, err = durability(ctx, db, dir); err != nil {
		return sr, fmt.Errorf("read the database's durability: %w", err)
	}
	// One user per login connection, so that no account is a hot row.
	users := slices.Max(loginLevels)
	// Each logout spends a token: mint enough for the warm-up and the
	// window of both logout rows at the rate this store reaches (about
	// 3000/s on durable Postgres and 1500/s on SQLite here), with a margin.
	// A row that runs out says so.
	logoutTokens := o.logoutTokens
	if logoutTokens <= 0 {
		logoutTokens = map[string]int{"postgres": 120000, "sqlite": 60000}[kind]
	}
	progress(logw, "%s (%s): migrating, creating %d users with the CLI, minting %d sessions", kind, sr.Durability, users, 2*o.conns+logoutTokens)
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
	sr.Bounds.BcryptPerSecond = bcryptPerSecond(sr) // until the bound rows refine it

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
		return bench.NewRequest("GET", host, "/_authd/verify", "", bearer(tok), verifyHeaders[0], verifyHeaders[1])
	}
	login := func(user, pw string) func(int) bench.Worker {
		return func(i int) bench.Worker {
			return bench.Fixed(bench.NewRequest("POST", host, loginPath, loginBody(user+fmt.Sprint(i%users), pw)))
		}
	}
	// The logout tokens, half for each logout row.
	logoutHalves := [][]string{m.logout[:len(m.logout)/2], m.logout[len(m.logout)/2:]}
	logout := func(conns int, toks []string) func(int) bench.Worker {
		return func(i int) bench.Worker {
			var reqs []bench.Request
			for j := i; j < len(toks); j += conns {
				reqs = append(reqs, bench.NewRequest("POST", host, "/_matrix/client/v3/logout", "", bearer(toks[j])))
			}
			return bench.NewQueue(reqs)
		}
	}
	bcryptRow := func(name string, workers int) error {
		return add(bcryptBound(o, name, workers), nil)
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
		{"whoami-wrk", func() error {
			return add(wrkLoad(ctx, direct(a), o, dir, "whoami-wrk", o.conns, "GET", whoamiPath, "", bearer(m.access[0])))
		}},
		{"whoami-c8", func() error { return add(closedLoad(a, o, "whoami-c8", 8, is(200), perConn(m.access, whoami))) }},
		{"whoami-c8-wrk", func() error {
			return add(wrkLoad(ctx, direct(a), o, dir, "whoami-c8-wrk", 8, "GET", whoamiPath, "", bearer(m.access[0])))
		}},
		// Each logout row right after the database's own bound at its
		// concurrency, so that both see the same machine.
		{"commit-bound-c8", func() error { return add(commitBound(ctx, db, dir, 8, o)) }},
		{"logout-c8", func() error { return add(closedLoad(a, o, "logout-c8", 8, is(200), logout(8, logoutHalves[0]))) }},
		{"commit-bound-c64", func() error { return add(commitBound(ctx, db, dir, 64, o)) }},
		{"logout-c64", func() error {
			return add(closedLoad(a, o, "logout-c64", 64, is(200), logout(64, logoutHalves[1])))
		}},
		{"refresh", func() error {
			return add(closedLoad(a, o, "refresh", o.conns, is(200), func(i int) bench.Worker {
				return &refreshChain{host: host, rt: m.refresh[i]}
			}))
		}},
		{"settle", func() error {
			progress(logw, "%s: vacuuming after the logouts", kind)
			return settle(ctx, db)
		}},
		// Each login row is rated against the bcrypt bound measured right
		// before and right after it (this VM's speed drifts by several
		// per cent within minutes), in this process with authd idle.
		{"bcrypt-one-core", func() error { return bcryptRow("bcrypt-one-core", 1) }},
		{"login-c1", func() error { return add(closedLoad(a, o, "login-c1", 1, is(200), login("bench", benchPassword))) }},
		{"bcrypt-one-core-after", func() error { return bcryptRow("bcrypt-one-core-after", 1) }},
		{"bcrypt-bound", func() error { return bcryptRow("bcrypt-bound", sr.AuthdCPUs) }},
		{"login-c8", func() error { return add(closedLoad(a, o, "login-c8", 8, is(200), login("bench", benchPassword))) }},
		{"bcrypt-bound-mid", func() error { return bcryptRow("bcrypt-bound-mid", sr.AuthdCPUs) }},
		{"login-c64", func() error {
			return add(closedLoad(a, o, "login-c64", 64, is(200), login("bench", benchPassword)))
		}},
		{"bcrypt-bound-after", func() error { return bcryptRow("bcrypt-bound-after", sr.AuthdCPUs) }},
		{"login-c8-wrk", func() error {
			return add(wrkLoad(ctx, direct(a), o, dir, "login-c8-wrk", 8, "POST", loginPath, loginBody(userName(0), benchPassword)))
		}},
		{"login-wrong-password", func() error {
			return add(closedLoad(a, o, "login-wrong-password", 8, is(403), login("bench", "wrong "+benchPassword)))
		}},
		{"login-unknown-user", func() error {
			return add(closedLoad(a, o, "login-unknown-user", 8, is(403), login("nobody", benchPassword)))
		}},
		{"whoami-during-login-flood", func() error {
			s, f, err := isolation(a, o, sr.Bounds.BcryptPerSecond, "whoami-during-login-flood", perConn(m.access, whoami))
			sr.Flood = f
			return add(s, err)
		}},
		{"verify-during-login-flood", func() error {
			s, _, err := isolation(a, o, sr.Bounds.BcryptPerSecond, "verify-during-login-flood", perConn(m.access, verify))
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
		if strings.HasPrefix(step.name, "bcrypt-bound") {
			sr.Bounds.BcryptPerSecond = bcryptPerSecond(sr)
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

// loginLevels are the concurrencies logins are measured at: one client,
// a few, and a burst (with o.cost 10 on 2 CPUs, a c64 burst queues about
// 2 s for hashing slots, within the default bound).
var loginLevels = []int{1, 8, 64}

// verifyHeaders are what nginx's auth_request adds to /_authd/verify.
var verifyHeaders = [2]string{"X-Original-URI: /_matrix/client/v3/sync?timeout=30000", "X-Original-Method: GET"}

// isolation runs a cheap request (whoami, verify) as in its own scenario
// while a login flood is offered at o.flood times the bcrypt bound,
// open-loop: far more than authd can hash, so that the queue for hashing
// slots fills to its bound and the rest is shed.
func isolation(a *authd, o options, bound float64, name string, newWorker func(int) bench.Worker) (scenarioResult, floodResult, error) {
	rate := o.flood * bound
	// Enough connections for every login in flight: the admitted ones
	// (at most the bound's worth of hashing) wait up to the bound, plus
	// a hash; the shed ones are answered at once.
	floodConns := int(math.Ceil(bound*(o.queueTimeout.Seconds()+1)+rate*0.5)) + 16
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
	s, err := closedLoad(a, o, name, o.conns, is(200), newWorker)
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

// bcryptBound measures bcrypt comparisons at the run's cost in this
// process, from workers goroutines, authd idle: with one worker the
// one-core bound of a lone client's logins, with authd's CPUs the bound of
// every login path.
func bcryptBound(o options, name string, workers int) scenarioResult {
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), o.cost)
	if err != nil {
		panic(err) // only an invalid cost fails, and the run checked it
	}
	r := bench.Calls{Workers: workers, Warmup: o.warmup / 4, Duration: o.duration / 2, Call: func(int) error {
		return bcrypt.CompareHashAndPassword(hash, []byte(benchPassword))
	}}.Run()
	s := fromClosed(name, workers, r)
	s.Note = fmt.Sprintf("bcrypt comparisons at cost %d on %d goroutines in this process, authd idle", o.cost, workers)
	return s
}

// bcryptPerSecond is the bcrypt bound of every login path: the mean of
// the bound rows, or, without them, authd's CPUs over one comparison's
// median time.
func bcryptPerSecond(sr storeResult) float64 {
	if b := meanRate(sr, "bcrypt-bound", "bcrypt-bound-mid", "bcrypt-bound-after"); b > 0 {
		return b
	}
	if sr.Bounds.BcryptMS <= 0 {
		return 0
	}
	return float64(sr.AuthdCPUs) / (sr.Bounds.BcryptMS / 1e3)
}

// meanRate is the mean rate of the named rows that ran.
func meanRate(sr storeResult, names ...string) float64 {
	var sum float64
	var n int
	for _, name := range names {
		if r := row(sr, name); r.PerSecond > 0 {
			sum += r.PerSecond
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
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
