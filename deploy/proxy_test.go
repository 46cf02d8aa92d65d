package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// nginxListenPort returns the port of deploy/nginx/authd.conf's listen
// lines, which must all agree.
func nginxListenPort(t *testing.T) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s*listen\s+(?:\S*:)?(\d+)\b`)
	var port string
	for _, m := range re.FindAllStringSubmatch(readFile(t, "deploy/nginx/authd.conf"), -1) {
		if port != "" && m[1] != port {
			t.Errorf("deploy/nginx/authd.conf listens on %s and %s", port, m[1])
		}
		port = m[1]
	}
	if port == "" {
		t.Fatal("deploy/nginx/authd.conf has no listen line")
	}
	return port
}

// nginxUpstreams returns the server of each upstream block of
// deploy/nginx/upstreams.conf.
func nginxUpstreams(t *testing.T) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`(?s)upstream\s+(\w+)\s*\{[^}]*?\bserver\s+(\S+?)[\s;]`)
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(readFile(t, "deploy/nginx/upstreams.conf"), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestCaddyfile has caddy validate deploy/caddy/Caddyfile, when caddy is
// installed (.ci/run installs Debian's).
func TestCaddyfile(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed")
	}
	cmd := exec.Command(caddy, "validate", "--adapter", "caddyfile", "--config", filepath.Join(root, "deploy/caddy/Caddyfile"))
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("caddy validate: %v\n%s", err, b)
	}
}

// nginx's second asks (after auth_request refused, to fetch authd's error
// for the client) are marked, so that authd never answers one with a 200
// the client would get in place of the homeserver's answer; the first ask,
// the auth_request subrequest, is not.
func TestNginx_SecondAsksMarked(t *testing.T) {
	conf := readFile(t, "deploy/nginx/authd.conf")
	blocks := regexp.MustCompile(`(?s)\n    location ([^{]*)\{(.*?)\n    \}`).FindAllStringSubmatch(conf, -1)
	marked := map[string]bool{}
	for _, b := range blocks {
		name := strings.TrimSpace(b[1])
		if !strings.Contains(b[2], "proxy_pass http://authd/_authd/verify") {
			continue
		}
		marked[name] = strings.Contains(b[2], "proxy_set_header X-Authd-Second-Ask 1;")
	}
	want := map[string]bool{"= /_authd/verify": false, "@authd_unauthorized": true, "@authd_error": true}
	if !reflect.DeepEqual(marked, want) {
		t.Fatalf("locations asking /_authd/verify, and whether each marks a second ask: %v, want %v", marked, want)
	}
}
