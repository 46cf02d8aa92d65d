package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/authd/authd/internal/bench"
)

// scenarioResult is one row of the table.
type scenarioResult struct {
	Name  string `json:"name"`
	Conns int    `json:"conns"`
	// Rate is the offered rate of an open-loop load (the flood); 0 for a
	// closed loop.
	Rate       float64        `json:"offered_rate,omitempty"`
	PerSecond  float64        `json:"requests_per_second"`
	P50        float64        `json:"p50_ms"`
	P99        float64        `json:"p99_ms"`
	Max        float64        `json:"max_ms"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"`
	Statuses   map[string]int `json:"statuses"`
	WindowS    float64        `json:"window_s"`
	AuthdCores float64        `json:"authd_cpu_cores"`
	BenchCores float64        `json:"generator_cpu_cores"`
	AuthdCPUUS float64        `json:"authd_cpu_us_per_request"`
	// MachineBusy is the share of the machine's CPU time that was busy
	// (any process, the kernel included).
	MachineBusy float64 `json:"machine_busy"`
	// OtherCores is the busy CPU time that was neither authd's nor the
	// generator's: the kernel's network processing, Postgres, and anything
	// else running on the machine.
	OtherCores float64 `json:"other_cpu_cores"`
	// ProxyCores is the part of OtherCores that nginx used (its master and
	// workers), on a row through nginx.
	ProxyCores  float64 `json:"proxy_cpu_cores,omitempty"`
	RSSAfterMiB float64 `json:"authd_rss_after_mib"`
	Note        string  `json:"note,omitempty"`
	// Proxy is set on the row through nginx.
	Proxy *proxyResult `json:"proxy,omitempty"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// fromClosed fills a row from a closed-loop result.
func fromClosed(name string, conns int, r bench.Result) scenarioResult {
	s := scenarioResult{
		Name: name, Conns: conns, PerSecond: r.PerSecond(),
		P50: ms(r.Percentile(0.50)), P99: ms(r.Percentile(0.99)), Max: ms(r.Percentile(1)),
		Requests: r.Requests, Errors: r.Errors, Statuses: map[string]int{}, WindowS: r.Elapsed.Seconds(),
	}
	for st, n := range r.Statuses {
		s.Statuses[statusName(st)] = n
	}
	if r.Exhausted {
		s.Note = "ran out of pre-minted tokens: rate over the shortened window"
	}
	if r.Redials > 0 {
		s.Note += fmt.Sprintf(" %d reconnections", r.Redials)
	}
	return s
}

func statusName(st int) string {
	if st == 0 {
		return "conn_error"
	}
	return fmt.Sprint(st)
}

// cpuMeter reads authd's and the generator's CPU time at the start and end
// of a load's measured window, so that the row shows who used the CPUs.
type cpuMeter struct {
	authd, proxy           []int // authd's processes (one per replica); nginx's
	authd0, authd1, b0, b1 time.Duration
	proxy0, proxy1         time.Duration
	busy0, busy1, all0     time.Duration
	all1                   time.Duration
	t0, t1                 time.Time
	done                   chan struct{}
}

// cpuTimes adds up the CPU time of the processes (one that cannot be read
// counts nothing).
func cpuTimes(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		d, _ := bench.CPUTime(pid)
		sum += d
	}
	return sum
}

// meterWindow starts reading at now+warmup and now+warmup+duration.
func meterWindow(t target, warmup, duration time.Duration) *cpuMeter {
	m := &cpuMeter{authd: t.authd, proxy: t.proxy, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		time.Sleep(warmup)
		m.t0, m.b0 = time.Now(), bench.SelfCPUTime()
		m.authd0, m.proxy0 = cpuTimes(m.authd), cpuTimes(m.proxy)
		m.busy0, m.all0, _ = bench.MachineCPU()
		time.Sleep(duration)
		m.t1, m.b1 = time.Now(), bench.SelfCPUTime()
		m.authd1, m.proxy1 = cpuTimes(m.authd), cpuTimes(m.proxy)
		m.busy1, m.all1, _ = bench.MachineCPU()
	}()
	return m
}

// fill waits for the second reading and puts the figures in s.
func (m *cpuMeter) fill(s *scenarioResult) {
	<-m.done
	wall := m.t1.Sub(m.t0).Seconds()
	if wall <= 0 {
		return
	}
	s.AuthdCores = (m.authd1 - m.authd0).Seconds() / wall
	s.BenchCores = (m.b1 - m.b0).Seconds() / wall
	s.ProxyCores = (m.proxy1 - m.proxy0).Seconds() / wall
	if all := m.all1 - m.all0; all > 0 {
		s.MachineBusy = float64(m.busy1-m.busy0) / float64(all)
		s.OtherCores = max(0, (m.busy1-m.busy0).Seconds()/wall-s.AuthdCores-s.BenchCores)
	}
	if s.PerSecond > 0 {
		s.AuthdCPUUS = s.AuthdCores / s.PerSecond * 1e6
	}
	// With replicas, the largest: a figure per process, as on the other rows.
	for _, pid := range m.authd {
		if rss, err := bench.RSS(pid); err == nil {
			s.RSSAfterMiB = max(s.RSSAfterMiB, float64(rss)/(1<<20))
		}
	}
}

// target is what a load is sent to and whose CPU time its row shows.
type target struct {
	addr  string // host:port the connections are made to
	authd []int  // authd's processes: their CPU time is the row's authd CPU
	proxy []int  // nginx's processes in front of them, if any
	pprof string // authd's profiler (host:port), or empty
	store string // the store's name, for the profile's file name
}

// direct is authd itself, without a proxy.
func direct(a *authd) target {
	return target{addr: a.addr, authd: []int{a.pid()}, pprof: a.pprof, store: a.store}
}

// closedLoad runs a closed-loop scenario on authd and returns its row.
func closedLoad(a *authd, o options, name string, conns int, ok func(int) bool, newWorker func(i int) bench.Worker) (scenarioResult, error) {
	return closedLoadOn(direct(a), o, name, conns, ok, newWorker)
}

// closedLoadOn runs a closed-loop scenario on t and returns its row.
func closedLoadOn(t target, o options, name string, conns int, ok func(int) bool, newWorker func(i int) bench.Worker) (scenarioResult, error) {
	m := meterWindow(t, o.warmup, o.duration)
	profiled := profileWindow(t, o, name)
	defer profiled()
	r, err := bench.Closed{
		Addr: t.addr, Conns: conns, Warmup: o.warmup, Duration: o.duration,
		NewWorker: newWorker, OK: ok,
	}.Run()
	if err != nil {
		return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
	}
	s := fromClosed(name, conns, r)
	m.fill(&s)
	return s, nil
}

func is(status int) func(int) bool { return func(s int) bool { return s == status } }

// The requests of the scenarios.
const (
	whoamiPath = "/_matrix/client/v3/account/whoami"
	loginPath  = "/_matrix/client/v3/login"
)

func bearer(tok string) string { return "Authorization: Bearer " + tok }

func loginBody(user, pw string) string {
	return fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":%q},"password":%q}`, user, pw)
}

// refreshChain refreshes, then refreshes with the token it got, and so on:
// a client whose access tokens keep expiring.
type refreshChain struct {
	host, rt string
}

func (c *refreshChain) Next() (bench.Request, bool) {
	return bench.NewRequest("POST", c.host, "/_matrix/client/v3/refresh", `{"refresh_token":"`+c.rt+`"}`), true
}

func (c *refreshChain) Done(status int, body []byte) {
	if status != http.StatusOK {
		return
	}
	var r struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &r) == nil && r.RefreshToken != "" {
		c.rt = r.RefreshToken
	}
}
