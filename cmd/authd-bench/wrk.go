package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The outside load generator: Debian's wrk, which the figures are
// cross-checked with, so that they do not rest on authd-bench's own client.
const wrkScript = `wrk.method = %q
wrk.body = %s
%s
done = function(summary, latency, requests)
  io.write(string.format('\nWRK-RESULT {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d,"status_errors":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0), latency.max,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`

type wrkResult struct {
	Requests     int64 `json:"requests"`
	DurationUS   int64 `json:"duration_us"`
	P50US        int64 `json:"p50_us"`
	P99US        int64 `json:"p99_us"`
	MaxUS        int64 `json:"max_us"`
	StatusErrors int64 `json:"status_errors"` // answers that are not 2xx or 3xx
	SocketErrors int64 `json:"socket_errors"`
}

// isWrkScenario says whether a scenario runs wrk.
func isWrkScenario(name string) bool { return strings.HasSuffix(name, "-wrk") }

// checkWrk returns wrk's path, or an error saying how to install it.
func checkWrk(path string) (string, error) {
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%s not found: install Debian's wrk (apt-get install wrk), or name it with -wrk", path)
	}
	return p, nil
}

// wrkLoad runs wrk against t with conns connections, one thread per CPU
// (at most conns): a warm-up run, then the measured one, whose row it
// returns. Every answer must be 2xx.
func wrkLoad(ctx context.Context, t target, o options, dir, name string, conns int, method, path, body string, headers ...string) (scenarioResult, error) {
	var hs strings.Builder
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		fmt.Fprintf(&hs, "wrk.headers[%q] = %q\n", k, v)
	}
	if body != "" {
		hs.WriteString(`wrk.headers["Content-Type"] = "application/json"` + "\n")
	}
	luaBody := "nil"
	if body != "" {
		luaBody = fmt.Sprintf("%q", body)
	}
	script := filepath.Join(dir, name+".lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, method, luaBody, hs.String()), 0o600); err != nil {
		return scenarioResult{}, err
	}
	threads := max(1, min(conns, runtime.NumCPU()))
	run := func(d time.Duration) (wrkResult, error) {
		secs := max(1, int(d.Round(time.Second).Seconds()))
		cmd := exec.CommandContext(ctx, o.wrk, "-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", fmt.Sprintf("%ds", secs),
			"--timeout", "10s", "-s", script, "http://"+t.addr+path)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, out.String())
		}
		_, line, ok := strings.Cut(out.String(), "WRK-RESULT ")
		var r wrkResult
		if !ok || json.Unmarshal([]byte(strings.TrimSpace(line)), &r) != nil {
			return wrkResult{}, fmt.Errorf("wrk: no result in its output: %s", out.String())
		}
		return r, nil
	}
	if _, err := run(o.warmup); err != nil {
		return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
	}
	m := meterWindow(t, 0, o.duration)
	r, err := run(o.duration)
	if err != nil {
		return scenarioResult{}, fmt.Errorf("%s: %w", name, err)
	}
	wall := time.Duration(r.DurationUS) * time.Microsecond
	s := scenarioResult{
		Name: name, Conns: conns, Requests: int(r.Requests), Errors: int(r.StatusErrors + r.SocketErrors),
		PerSecond: float64(r.Requests) / wall.Seconds(), WindowS: wall.Seconds(),
		P50: float64(r.P50US) / 1e3, P99: float64(r.P99US) / 1e3, Max: float64(r.MaxUS) / 1e3,
		Statuses: map[string]int{"not_2xx": int(r.StatusErrors), "conn_error": int(r.SocketErrors)},
		Note:     fmt.Sprintf("wrk %d threads, %d connections (the outside generator)", threads, conns),
	}
	m.fill(&s) // wrk's CPU is in "other CPU": it is not this process
	return s, nil
}
