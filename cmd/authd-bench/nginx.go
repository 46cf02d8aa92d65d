package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authd/authd/internal/bench"
)

// nginxScenario is the Postgres-only scenario that runs the whoami load
// through nginx in front of two authd replicas on one database.
const nginxScenario = "whoami-nginx-2-replicas"

// nginxWorkers is nginx's worker_processes: one, so that nginx's share of
// the two CPUs stays a single process's, like each authd's.
const nginxWorkers = 1

// minReplicaShare is the least share of the whoami requests a replica must
// answer: below it, nginx's balancing is broken.
const minReplicaShare = 0.30

// proxyResult is what the row through nginx adds.
type proxyResult struct {
	NginxVersion    string `json:"nginx_version"`
	WorkerProcesses int    `json:"nginx_worker_processes"`
	// Replicas are the authd processes behind nginx, in its upstream's
	// order, each with the whoami requests it answered while the load
	// ran (warm-up included), from its authd_http_requests_total.
	Replicas []replicaResult `json:"replicas"`
	// DirectPerSecond is the whoami row's rate: the same load straight to
	// one authd (0 when that scenario did not run).
	DirectPerSecond float64 `json:"direct_whoami_per_second"`
}

type replicaResult struct {
	Addr           string  `json:"addr"`
	WhoamiRequests int64   `json:"whoami_requests"`
	Share          float64 `json:"share"`
}

// leastShare is the smallest replica's share (0 without replicas).
func (p *proxyResult) leastShare() float64 {
	if p == nil || len(p.Replicas) == 0 {
		return 0
	}
	least := math.Inf(1)
	for _, r := range p.Replicas {
		least = min(least, r.Share)
	}
	return least
}

// split prints the shares in percent, "50/50".
func (p *proxyResult) split() string {
	parts := make([]string, len(p.Replicas))
	for i, r := range p.Replicas {
		parts[i] = fmt.Sprintf("%.0f", 100*r.Share)
	}
	return strings.Join(parts, "/")
}

// shares are each replica's part of the requests counted between before
// and after; all zero when none were.
func shares(before, after []int64) (deltas []int64, share []float64) {
	deltas, share = make([]int64, len(after)), make([]float64, len(after))
	var total int64
	for i := range after {
		deltas[i] = max(0, after[i]-before[i])
		total += deltas[i]
	}
	if total == 0 {
		return deltas, share
	}
	for i, d := range deltas {
		share[i] = float64(d) / float64(total)
	}
	return deltas, share
}

// checkNginx makes sure the nginx binary runs and returns its version, for
// a run that needs it: with nginx missing, make bench fails at once with
// how to install it rather than after the other scenarios.
func checkNginx(bin string) (string, error) {
	how := "the postgres scenario " + nginxScenario + " needs nginx: apt-get install nginx (or -nginx PATH)"
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%s not found: %s", bin, how)
	}
	out, err := exec.Command(path, "-v").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s -v: %v: %s", path, err, how)
	}
	v := strings.TrimSpace(string(out))
	v = strings.TrimPrefix(v, "nginx version: ")
	return v, nil
}

// nginxConf renders the nginx.conf of the scenario: nginx in the
// foreground with everything it writes (pid, error log, temporary files)
// in dir, no access log, listening on listen and balancing round-robin
// over upstreams with keep-alive connections to them. Clients' and
// upstreams' keep-alive connections are not retired after nginx's default
// 1000 requests, so that the load makes no new connections while it runs
// (authd's own keeps them without limit too).
func nginxConf(dir, listen string, upstreams []string, workers int) (string, error) {
	if strings.ContainsAny(dir, "\"\\$;{}\n") {
		return "", fmt.Errorf("nginx: directory %q has a character nginx.conf would need to escape", dir)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Written by authd-bench: the %s scenario.", nginxScenario)
	p("daemon off;")
	p("worker_processes %d;", workers)
	p("pid \"%s/nginx.pid\";", dir)
	p("error_log \"%s/error.log\" warn;", dir)
	p("events { worker_connections 1024; }")
	p("http {")
	p("    access_log off;")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		p("    %s_temp_path \"%s/tmp/%s\";", t, dir, t)
	}
	p("    keepalive_requests 1000000;")
	p("    upstream authd {")
	for _, u := range upstreams {
		p("        server %s;", u)
	}
	p("        keepalive 64;")
	p("        keepalive_requests 1000000;")
	p("    }")
	p("    server {")
	p("        listen %s;", listen)
	p("        location / {")
	p("            proxy_pass http://authd;")
	p("            proxy_http_version 1.1;")
	p("            proxy_set_header Connection \"\";")
	p("        }")
	p("    }")
	p("}")
	return b.String(), nil
}

// nginx is a running nginx in front of authd replicas.
type nginx struct {
	dir  string // its prefix: nginx.conf, pid, logs, temporary files
	addr string // host:port it listens on
	cmd  *exec.Cmd
	done chan error
}

// startNginx starts bin in the foreground in front of upstreams and waits
// (at most 10s) until it accepts connections and answers /readyz from
// them. Its directory is a temporary one of its own, readable by all:
// started by root, nginx's workers run as nobody.
func startNginx(ctx context.Context, bin string, upstreams []string) (n *nginx, err error) {
	dir, err := os.MkdirTemp("", "authd-bench-nginx-")
	if err != nil {
		return nil, err
	}
	n = &nginx{dir: dir}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return n, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return n, err
	}
	if n.addr, err = freePort(); err != nil {
		return n, err
	}
	conf, err := nginxConf(dir, n.addr, upstreams, nginxWorkers)
	if err != nil {
		return n, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return n, err
	}
	out, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		return n, err
	}
	defer out.Close() // the child has its own descriptor
	// -e: the error log from the start, before nginx.conf is read (else
	// nginx tries its compiled-in /var/log/nginx/error.log).
	n.cmd = exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = out, out
	n.cmd.SysProcAttr = childAttr()
	if err := n.cmd.Start(); err != nil {
		n.cmd = nil
		return n, fmt.Errorf("nginx: %w", err)
	}
	n.done = make(chan error, 1)
	go func() { n.done <- n.cmd.Wait() }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-n.done:
			n.done <- err // for stop
			return n, fmt.Errorf("nginx exited: %v\n%s", err, n.logTail())
		case <-ctx.Done():
			return n, ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", n.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("nginx not accepting connections on %s after 10s: %v\n%s", n.addr, err, n.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + n.addr + "/readyz")
	if err != nil {
		return n, fmt.Errorf("nginx: GET /readyz: %w\n%s", err, n.logTail())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("nginx: GET /readyz: %s\n%s", resp.Status, n.logTail())
	}
	return n, nil
}

// pids are nginx's master and workers.
func (n *nginx) pids() []int {
	master := n.cmd.Process.Pid
	workers, _ := bench.Children(master)
	return append([]int{master}, workers...)
}

// stop stops nginx (SIGTERM, its fast shutdown; SIGKILL after 10s) and
// removes its directory.
func (n *nginx) stop() error {
	defer os.RemoveAll(n.dir)
	if n.cmd == nil {
		return nil
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("nginx: %w\n%s", err, n.logTail())
		}
		return err
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
		return errors.New("nginx did not stop within 10s of SIGTERM")
	}
}

// logTail is the end of nginx's error log and output, for an error message.
func (n *nginx) logTail() string {
	var b []byte
	for _, f := range []string{"error.log", "nginx.out"} {
		t, _ := os.ReadFile(filepath.Join(n.dir, f))
		b = append(b, t...)
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// counterSum adds up the samples of the counter name, in the Prometheus
// text format, whose labels include every one of match (0 when none do:
// a series appears with its first event).
func counterSum(r io.Reader, name string, match map[string]string) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	var sum float64
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, want := range match {
			matches = matches && labels[k] == want
		}
		if matches {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

// whoamiCount reads how many whoami requests the authd at addr (its
// /metrics address) has answered, by its authd_http_requests_total.
func whoamiCount(addr string) (int64, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	n, err := counterSum(resp.Body, "authd_http_requests_total", map[string]string{"route": whoamiPath})
	return int64(n), err
}

// whoamiCounts reads whoamiCount of every replica.
func whoamiCounts(replicas []*authd) ([]int64, error) {
	counts := make([]int64, len(replicas))
	for i, a := range replicas {
		var err error
		if counts[i], err = whoamiCount(a.metrics); err != nil {
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
	}
	return counts, nil
}

// throughNginx runs the whoami load, as its own scenario does, through
// nginx in front of a and a second replica of it on the same database,
// and reports how nginx split the requests. The second replica and nginx
// are stopped before it returns, whatever happens.
func throughNginx(ctx context.Context, a *authd, o options, dir string, tokens []string, directPerSecond float64, logw io.Writer) (s scenarioResult, err error) {
	wrap := func(what string, err error) error { return fmt.Errorf("%s: %s: %w", nginxScenario, what, err) }
	b, err := a.replica(filepath.Join(dir, "authd-2.log"))
	if err != nil {
		return s, wrap("second replica", err)
	}
	progress(logw, "postgres: %s: starting a second authd on the same database, and nginx (worker_processes %d) in front of both", nginxScenario, nginxWorkers)
	if err := b.start(ctx); err != nil {
		return s, wrap("second replica", err)
	}
	defer func() {
		if serr := b.stop(); serr != nil && err == nil {
			err = wrap("second replica", serr)
		}
	}()
	replicas := []*authd{a, b}
	ng, err := startNginx(ctx, o.nginx, []string{a.addr, b.addr})
	if err != nil {
		return s, wrap("nginx", err)
	}
	defer func() {
		if serr := ng.stop(); serr != nil && err == nil {
			err = wrap("nginx", serr)
		}
	}()
	before, err := whoamiCounts(replicas)
	if err != nil {
		return s, wrap("metrics", err)
	}
	host := ng.addr
	t := target{addr: ng.addr, authd: []int{a.pid(), b.pid()}, proxy: ng.pids()}
	s, err = closedLoadOn(t, o, nginxScenario, o.conns, is(200), func(i int) bench.Worker {
		return bench.Fixed(bench.NewRequest("GET", host, whoamiPath, "", bearer(tokens[i%len(tokens)])))
	})
	if err != nil {
		return s, err
	}
	after, err := whoamiCounts(replicas)
	if err != nil {
		return s, wrap("metrics", err)
	}
	deltas, share := shares(before, after)
	p := &proxyResult{NginxVersion: o.nginxVersion, WorkerProcesses: nginxWorkers, DirectPerSecond: directPerSecond}
	for i, r := range replicas {
		p.Replicas = append(p.Replicas, replicaResult{Addr: r.addr, WhoamiRequests: deltas[i], Share: share[i]})
	}
	s.Proxy = p
	vs := "the direct whoami scenario did not run"
	if directPerSecond > 0 {
		vs = fmt.Sprintf("direct to one authd %.0f/s (%.2fx)", directPerSecond, s.PerSecond/directPerSecond)
	}
	counts := make([]string, len(deltas))
	for i, d := range deltas {
		counts[i] = fmt.Sprint(d)
	}
	s.Note = strings.TrimSpace(fmt.Sprintf("through %s (worker_processes %d, %.2f CPU) to 2 replicas: %.0f/s, %s; split %s (%s whoami, warm-up included); "+
		"nginx, both authd and the generator share %d CPUs, so it is below direct; no throughput target. %s",
		p.NginxVersion, nginxWorkers, s.ProxyCores, s.PerSecond, vs, p.split(), strings.Join(counts, " / "), runtime.NumCPU(), s.Note))
	return s, nil
}
