package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNginxConf(t *testing.T) {
	dir := t.TempDir()
	conf, err := nginxConf(dir, "127.0.0.1:18080", []string{"127.0.0.1:18001", "127.0.0.1:18002"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"daemon off;",
		"worker_processes 1;",
		`pid "` + dir + `/nginx.pid";`,
		`error_log "` + dir + `/error.log" warn;`,
		"access_log off;",
		`proxy_temp_path "` + dir + `/tmp/proxy";`,
		"upstream authd {\n        server 127.0.0.1:18001;\n        server 127.0.0.1:18002;\n        keepalive 64;",
		"listen 127.0.0.1:18080;",
		"proxy_pass http://authd;",
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	if n := strings.Count(conf, "{"); n != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}
	if _, err := nginxConf(`/tmp/a"b`, "127.0.0.1:1", []string{"127.0.0.1:2"}, 1); err == nil {
		t.Error("a directory with a quote was accepted")
	}

	// nginx itself accepts it, where it is installed.
	bin, err := exec.LookPath("/usr/sbin/nginx")
	if err != nil {
		t.Log("no /usr/sbin/nginx: nginx -t skipped")
		return
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", dir+"/", "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v: %s", err, out)
	}
}

func TestShares(t *testing.T) {
	tests := []struct {
		name          string
		before, after []int64
		deltas        []int64
		share         []float64
	}{
		{"Even", []int64{100, 0}, []int64{600, 500}, []int64{500, 500}, []float64{0.5, 0.5}},
		{"Skewed", []int64{0, 0}, []int64{750, 250}, []int64{750, 250}, []float64{0.75, 0.25}},
		{"OneIdle", []int64{10, 10}, []int64{410, 10}, []int64{400, 0}, []float64{1, 0}},
		{"None", []int64{5, 5}, []int64{5, 5}, []int64{0, 0}, []float64{0, 0}},
		// A counter that went down (a restarted replica) counts nothing.
		{"Reset", []int64{900, 0}, []int64{100, 100}, []int64{0, 100}, []float64{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deltas, share := shares(tt.before, tt.after)
			if !slices.Equal(deltas, tt.deltas) || !slices.Equal(share, tt.share) {
				t.Fatalf("shares = %v %v, want %v %v", deltas, share, tt.deltas, tt.share)
			}
		})
	}
}

func TestProxyResult(t *testing.T) {
	p := &proxyResult{Replicas: []replicaResult{{Share: 0.496}, {Share: 0.504}}}
	if got := p.split(); got != "50/50" {
		t.Errorf("split = %q, want 50/50", got)
	}
	if got := p.leastShare(); got != 0.496 {
		t.Errorf("leastShare = %v, want 0.496", got)
	}
	if got := (*proxyResult)(nil).leastShare(); got != 0 {
		t.Errorf("nil leastShare = %v, want 0", got)
	}
}

func TestCounterSum(t *testing.T) {
	const exposition = `# HELP authd_http_requests_total HTTP requests answered, by route pattern, method and status.
# TYPE authd_http_requests_total counter
authd_http_requests_total{method="GET",route="/_matrix/client/v3/account/whoami",status="200"} 1.234567e+06
authd_http_requests_total{method="GET",route="/_matrix/client/v3/account/whoami",status="401"} 3
authd_http_requests_total{method="GET",route="/healthz",status="200"} 40
authd_http_requests_totals{route="/_matrix/client/v3/account/whoami"} 1000
authd_login_attempts_total{outcome="success"} 9
`
	tests := []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"Route", map[string]string{"route": whoamiPath}, 1234570},
		{"RouteAndStatus", map[string]string{"route": whoamiPath, "status": "401"}, 3},
		{"All", nil, 1234570 + 40},
		{"NoSeries", map[string]string{"route": "/nowhere"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := counterSum(strings.NewReader(exposition), "authd_http_requests_total", tt.match)
			if err != nil || got != tt.want {
				t.Fatalf("counterSum = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := counterSum(strings.NewReader(`authd_http_requests_total{route="/x"} many`), "authd_http_requests_total", nil); err == nil {
		t.Error("a malformed exposition: no error")
	}
}
