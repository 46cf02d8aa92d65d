package deploy_test

import (
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
		IPAM     struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image     string `yaml:"image"`
	Build     any    `yaml:"build"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Networks    []string          `yaml:"networks"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	ContainerName string   `yaml:"container_name"`
	Command       []string `yaml:"command"`
	Deploy        struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
}

// envExample reads .env.example's NAME=value lines.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for i, line := range strings.Split(readFile(t, ".env.example"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env.example:%d: %q is not NAME=value", i+1, line)
		}
		vars[k] = v
	}
	return vars
}

// replicasFile is the compose file layered on docker-compose.yml for
// several replicas.
const replicasFile = "deploy/compose.replicas.yml"

// loadCompose parses docker-compose.yml with its variables substituted
// from vars.
func loadCompose(t *testing.T, vars map[string]string) composeFile {
	t.Helper()
	return loadComposeFile(t, "docker-compose.yml", vars)
}

func loadComposeFile(t *testing.T, name string, vars map[string]string) composeFile {
	t.Helper()
	text, err := interpolate(readFile(t, name), vars)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func TestCompose_EnvExample(t *testing.T) {
	example := envExample(t)
	used := map[string]bool{}
	for _, file := range []string{"docker-compose.yml", replicasFile} {
		for _, m := range composeVar.FindAllStringSubmatch(readFile(t, file), -1) {
			name := m[1] + m[4]
			if name == "" {
				continue // $$
			}
			used[name] = true
			if _, ok := example[name]; !ok {
				t.Errorf("%s uses ${%s}, which .env.example does not set", file, name)
			}
		}
	}
	for name := range example {
		if !used[name] {
			t.Errorf(".env.example sets %s, which no compose file uses", name)
		}
	}
}

// TestCompose_Replicas checks the scale-out layer: several authd replicas
// sharing rate limits through a Redis that only the backend reaches, with a
// password that authd's URL carries, and nothing in the main file that
// stops a service from running more than once.
func TestCompose_Replicas(t *testing.T) {
	vars := envExample(t)
	base := loadCompose(t, vars)
	over := loadComposeFile(t, replicasFile, vars)
	redis, ok := over.Services["redis"]
	if !ok {
		t.Fatalf("%s has no redis service", replicasFile)
	}
	authd := over.Services["authd"]
	if authd.Deploy.Replicas < 2 {
		t.Errorf("authd replicas = %d, want several", authd.Deploy.Replicas)
	}
	if b := base.Services["authd"]; b.ContainerName != "" || len(b.Ports) > 0 {
		t.Errorf("authd in docker-compose.yml has container_name %q or ports %v: replicas would collide", b.ContainerName, b.Ports)
	}
	if !regexp.MustCompile(`^redis:7(\.|-|$)`).MatchString(redis.Image) {
		t.Errorf("redis image %q, want redis:7", redis.Image)
	}
	if !slices.Equal(redis.Networks, []string{"backend"}) {
		t.Errorf("redis is on networks %v, want only backend", redis.Networks)
	}
	if len(redis.Ports) > 0 {
		t.Errorf("redis publishes ports %v", redis.Ports)
	}
	if redis.Healthcheck == nil || !strings.Contains(strings.Join(redis.Healthcheck.Test, " "), "redis-cli ping") {
		t.Error("redis has no redis-cli ping health check")
	}
	if cond := authd.DependsOn["redis"].Condition; cond != "service_healthy" {
		t.Errorf("authd depends on redis with condition %q, want service_healthy", cond)
	}
	i := slices.Index(redis.Command, "--requirepass")
	if i < 0 || i+1 >= len(redis.Command) || redis.Command[i+1] != vars["REDIS_PASSWORD"] {
		t.Errorf("redis command %q does not require REDIS_PASSWORD", redis.Command)
	}
	env := authd.Environment
	if env["AUTHD_RATELIMIT_BACKEND"] != "redis" {
		t.Errorf("AUTHD_RATELIMIT_BACKEND=%q, want redis", env["AUTHD_RATELIMIT_BACKEND"])
	}
	u, err := url.Parse(env["AUTHD_REDIS_URL"])
	if err != nil {
		t.Fatalf("AUTHD_REDIS_URL: %v", err)
	}
	pass, _ := u.User.Password()
	if u.Scheme != "redis" || u.Hostname() != "redis" || (u.Port() != "" && u.Port() != "6379") || pass != vars["REDIS_PASSWORD"] {
		t.Errorf("AUTHD_REDIS_URL is not the redis service with REDIS_PASSWORD: %s", u.Redacted())
	}
	// nginx finds every replica: its upstream asks Docker's DNS again.
	up := readFile(t, "deploy/nginx/upstreams.conf")
	if !regexp.MustCompile(`(?m)^\s*server\s+authd:8008\s+resolve;`).MatchString(up) {
		t.Error("deploy/nginx/upstreams.conf does not resolve the authd service name at run time")
	}
}

func TestCompose(t *testing.T) {
	facts := imageFacts(t)
	example := envExample(t)
	// As .env.example gives it, and with only the required variables set
	// (everything else at the compose file's defaults).
	required := map[string]string{}
	for _, name := range []string{"POSTGRES_PASSWORD", "AUTHD_SERVER_NAME"} {
		required[name] = example[name]
	}
	for name, vars := range map[string]map[string]string{".env.example": example, "defaults": required} {
		t.Run(name, func(t *testing.T) {
			checkCompose(t, loadCompose(t, vars), vars, facts)
		})
	}
}

func checkCompose(t *testing.T, c composeFile, vars map[string]string, facts dockerfileFacts) {
	for _, name := range []string{"postgres", "authd", "homeserver", "nginx"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	pg, authd, nginx := c.Services["postgres"], c.Services["authd"], c.Services["nginx"]

	// Postgres: a supported image, a health check, a named volume.
	if !regexp.MustCompile(`^postgres:1[5-7](\.|-|$)`).MatchString(pg.Image) {
		t.Errorf("postgres image %q, want postgres:15, 16 or 17", pg.Image)
	}
	if pg.Healthcheck == nil || !strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") {
		t.Error("postgres has no pg_isready health check")
	}
	if !namedVolumeAt(c, pg, "/var/lib/postgresql/data") {
		t.Error("postgres's data directory is not on a named volume")
	}

	// authd: built here, started once Postgres is healthy, migrating.
	if b, ok := authd.Build.(string); !ok || path.Clean(b) != "." {
		t.Errorf("authd build: %v, want .", authd.Build)
	}
	if cond := authd.DependsOn["postgres"].Condition; cond != "service_healthy" {
		t.Errorf("authd depends on postgres with condition %q, want service_healthy", cond)
	}
	env := authd.Environment
	if env["AUTHD_MIGRATE"] != "true" {
		t.Errorf("authd AUTHD_MIGRATE=%q, want true", env["AUTHD_MIGRATE"])
	}
	if env["AUTHD_SERVER_NAME"] == "" {
		t.Error("authd has no AUTHD_SERVER_NAME")
	}
	if authd.Healthcheck == nil || !slices.Equal(authd.Healthcheck.Test, append([]string{"CMD"}, append(slices.Clone(facts.entrypoint), "healthcheck")...)) {
		t.Errorf("authd health check %v, want [CMD /authd healthcheck]", authd.Healthcheck)
	}
	if _, port, _ := strings.Cut(env["AUTHD_LISTEN"], ":"); env["AUTHD_LISTEN"] != "" && port != facts.port {
		t.Errorf("authd AUTHD_LISTEN=%q, but the image exposes %s", env["AUTHD_LISTEN"], facts.port)
	}

	// The database URL names the postgres service and its credentials.
	u, err := url.Parse(env["AUTHD_DATABASE_URL"])
	if err != nil {
		t.Fatalf("authd AUTHD_DATABASE_URL: %v", err)
	}
	pgEnv := pg.Environment
	pass, _ := u.User.Password()
	switch {
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		t.Errorf("AUTHD_DATABASE_URL scheme %q, want postgres", u.Scheme)
	case u.Hostname() != "postgres":
		t.Errorf("AUTHD_DATABASE_URL host %q is not the postgres service", u.Hostname())
	case u.Port() != "" && u.Port() != "5432":
		t.Errorf("AUTHD_DATABASE_URL port %q, Postgres listens on 5432", u.Port())
	case u.User.Username() != pgEnv["POSTGRES_USER"] || pass != pgEnv["POSTGRES_PASSWORD"]:
		t.Errorf("AUTHD_DATABASE_URL user %q does not match postgres's POSTGRES_USER %q and POSTGRES_PASSWORD", u.User.Username(), pgEnv["POSTGRES_USER"])
	case strings.TrimPrefix(u.Path, "/") != pgEnv["POSTGRES_DB"]:
		t.Errorf("AUTHD_DATABASE_URL database %q, postgres creates %q", u.Path, pgEnv["POSTGRES_DB"])
	}
	if pass == "" {
		t.Error("AUTHD_DATABASE_URL has no password")
	}

	// Networks: authd and Postgres only on the backend, whose subnet is
	// exactly what authd trusts; nginx on the backend and on another
	// network, where clients reach it.
	backend := c.Networks["backend"]
	if backend == nil || len(backend.IPAM.Config) != 1 {
		t.Fatal("docker-compose.yml has no backend network with one fixed subnet")
	}
	subnet, err := netip.ParsePrefix(backend.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("backend subnet: %v", err)
	}
	var trusted []netip.Prefix
	for _, s := range strings.Split(env["AUTHD_TRUSTED_PROXIES"], ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("authd AUTHD_TRUSTED_PROXIES=%q: %v", env["AUTHD_TRUSTED_PROXIES"], err)
		}
		trusted = append(trusted, p)
	}
	if len(trusted) != 1 || trusted[0] != subnet {
		t.Errorf("authd trusts %v, want exactly the backend subnet %v", trusted, subnet)
	}
	if !backend.Internal {
		t.Error("the backend network is not internal")
	}
	for _, name := range []string{"postgres", "authd"} {
		if nets := c.Services[name].Networks; !slices.Equal(nets, []string{"backend"}) {
			t.Errorf("%s is on networks %v, want only backend", name, nets)
		}
	}
	if !slices.Contains(nginx.Networks, "backend") || len(nginx.Networks) != 2 {
		t.Errorf("nginx is on networks %v, want backend and one network for clients", nginx.Networks)
	}
	for _, n := range nginx.Networks {
		if n != "backend" && (c.Networks[n] == nil || c.Networks[n].Internal) {
			t.Errorf("nginx's client network %q is not a declared, routed network", n)
		}
	}
	for name, s := range c.Services {
		for _, n := range s.Networks {
			if _, ok := c.Networks[n]; !ok {
				t.Errorf("%s is on undeclared network %q", name, n)
			}
		}
		if name != "nginx" && len(s.Ports) > 0 {
			t.Errorf("%s publishes ports %v: only nginx should", name, s.Ports)
		}
	}

	// nginx: the shipped config, mounted where the image includes it,
	// published on the port it listens on, after authd is healthy.
	if !regexp.MustCompile(`^nginx:1\.(2[89]|[3-9]\d)`).MatchString(nginx.Image) {
		// deploy/nginx/upstreams.conf's `resolve` needs nginx 1.27.3.
		t.Errorf("nginx image %q, want nginx 1.28 or later", nginx.Image)
	}
	mounted := map[string]string{}
	for _, v := range nginx.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("nginx volume %q is not SOURCE:TARGET", v)
			continue
		}
		mounted[path.Clean(parts[0])] = parts[1]
		if len(parts) < 3 || parts[2] != "ro" {
			t.Errorf("nginx volume %q is not read-only", v)
		}
	}
	for _, f := range []string{"deploy/nginx/authd.conf", "deploy/nginx/upstreams.conf"} {
		target, ok := mounted[f]
		if !ok {
			t.Errorf("nginx does not mount ./%s", f)
			continue
		}
		if !strings.HasPrefix(target, "/etc/nginx/conf.d/") || !strings.HasSuffix(target, ".conf") {
			t.Errorf("nginx mounts ./%s at %s, which the image's nginx.conf does not include", f, target)
		}
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	if mounted["deploy/nginx/authd.conf"] != "/etc/nginx/conf.d/default.conf" {
		t.Error("deploy/nginx/authd.conf does not replace the image's default server (conf.d/default.conf)")
	}
	if cond := nginx.DependsOn["authd"].Condition; cond != "service_healthy" {
		t.Errorf("nginx depends on authd with condition %q, want service_healthy", cond)
	}
	listen := nginxListenPort(t)
	if len(nginx.Ports) != 1 {
		t.Fatalf("nginx publishes %v, want one port", nginx.Ports)
	}
	parts := strings.Split(nginx.Ports[0], ":")
	if parts[len(parts)-1] != listen {
		t.Errorf("nginx publishes %q, but deploy/nginx/authd.conf listens on %s", nginx.Ports[0], listen)
	}
	if host, err := strconv.Atoi(parts[0]); len(parts) != 2 || err != nil || host < 1 || host > 65535 {
		t.Errorf("nginx publishes %q, want HOSTPORT:%s", nginx.Ports[0], listen)
	}
	if nginx.Healthcheck == nil || len(nginx.Healthcheck.Test) == 0 {
		t.Error("nginx has no health check")
	}

	// deploy/nginx/upstreams.conf points at the compose services, and at
	// authd's port.
	ups := nginxUpstreams(t)
	for _, name := range []string{"authd", "homeserver"} {
		host, _, ok := strings.Cut(ups[name], ":")
		if !ok {
			t.Errorf("upstreams.conf: upstream %s is %q, want SERVICE:PORT", name, ups[name])
			continue
		}
		if _, ok := c.Services[host]; !ok {
			t.Errorf("upstreams.conf: upstream %s points at %q, not a compose service", name, host)
		}
	}
	if ups["authd"] != "authd:"+facts.port {
		t.Errorf("upstreams.conf: upstream authd is %q, want authd:%s", ups["authd"], facts.port)
	}
}

// namedVolumeAt reports whether s mounts a declared named volume at target.
func namedVolumeAt(c composeFile, s composeService, target string) bool {
	for _, v := range s.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if _, declared := c.Volumes[src]; declared && dst == target {
			return true
		}
	}
	return false
}
