// Package deploy_test checks the deployment files against each other and
// against authd: the Dockerfile's stages and the binary its build line
// makes, what .dockerignore lets into the build, docker-compose.yml's
// service wiring and .env.example, the Kubernetes manifests' probes, and
// the Caddyfile (with caddy, when it is installed). No Docker engine or
// cluster is needed; e2e/run.sh tests deploy/nginx with real nginx.
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository, seen from this package's directory.
const root = ".."

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// --- Dockerfile ---

// instruction is one Dockerfile instruction with its continuation lines
// joined and its comment lines dropped.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// stage is a FROM and the instructions up to the next FROM.
type stage struct {
	image, name string
	instrs      []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(tb testing.TB, cmd string) instruction {
	tb.Helper()
	all := s.all(cmd)
	if len(all) == 0 {
		tb.Fatalf("Dockerfile stage %q has no %s", s.image, cmd)
	}
	return all[len(all)-1]
}

func parseDockerfile(tb testing.TB) []stage {
	tb.Helper()
	var (
		stages  []stage
		cur     strings.Builder
		start   int
		pending bool
	)
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		pending = false
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			var st stage
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					st.name = fields[i+1]
					i++
				default:
					st.image = fields[i]
				}
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				tb.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			return
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	sc := bufio.NewScanner(strings.NewReader(readFile(tb, "Dockerfile")))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		// Comment lines are dropped, inside a continuation too (as Docker does).
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && !pending) {
			continue
		}
		if !pending {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			pending = true
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if pending {
		tb.Fatal("Dockerfile ends inside a continuation line")
	}
	if len(stages) < 2 {
		tb.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// execForm reads a JSON (exec form) argument list such as ["/authd", "serve"].
func execForm(tb testing.TB, in instruction, s string) []string {
	tb.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		tb.Fatalf("Dockerfile:%d: %s %s is not in exec form (a JSON array): %v", in.line, in.cmd, s, err)
	}
	return out
}

// keyValues reads the KEY=VALUE pairs of an ENV or LABEL instruction.
func keyValues(tb testing.TB, in instruction) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, w := range shellWords(tb, in.args) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			tb.Fatalf("Dockerfile:%d: %s %q is not KEY=VALUE", in.line, in.cmd, w)
		}
		out[k] = v
	}
	return out
}

// shellWords splits s as sh would, for what a Dockerfile RUN line holds:
// blanks separate words, quotes group them, a backslash escapes.
// Variables are left as they are.
func shellWords(tb testing.TB, s string) []string {
	tb.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == 0 && (r == ' ' || r == '\t' || r == '\n'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case quote == 0 && (r == '"' || r == '\''):
			quote, in = r, true
		case quote != 0 && r == quote:
			quote = 0
		case r == '\\' && quote != '\'' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		tb.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// dockerfileFacts is what the compose and Kubernetes checks compare with.
type dockerfileFacts struct {
	port       string // EXPOSE
	uid, gid   int    // USER
	entrypoint []string
}

// imageFacts reads from the Dockerfile's runtime stage what the compose
// and Kubernetes files must agree with; TestDockerfile checks the values.
func imageFacts(tb testing.TB) dockerfileFacts {
	tb.Helper()
	stages := parseDockerfile(tb)
	final := stages[len(stages)-1]
	var facts dockerfileFacts
	user := final.last(tb, "USER")
	u, g, _ := strings.Cut(user.args, ":")
	facts.uid, _ = strconv.Atoi(u)
	facts.gid, _ = strconv.Atoi(g)
	entry := final.last(tb, "ENTRYPOINT")
	facts.entrypoint = execForm(tb, entry, entry.args)
	facts.port = strings.TrimSuffix(final.last(tb, "EXPOSE").args, "/tcp")
	return facts
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]
	facts := imageFacts(t)

	if build.image != "golang:1.26" || build.name == "" {
		t.Errorf("first stage is FROM %s AS %q, want golang:1.26 AS a name", build.image, build.name)
	}
	if final.image != "gcr.io/distroless/static-debian12:nonroot" && final.image != "scratch" {
		t.Errorf("runtime stage is FROM %s, want distroless static (nonroot) or scratch", final.image)
	}

	// The binary comes from the build stage, by name.
	copied := false
	for _, in := range final.all("COPY") {
		if strings.Contains(in.args, "--from="+build.name) && strings.HasSuffix(in.args, " /authd") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from=%s ... /authd", build.name)
	}

	// A numeric, unprivileged user, so that Kubernetes' runAsNonRoot can
	// verify it without reading /etc/passwd.
	if user := final.last(t, "USER"); facts.uid <= 0 || facts.gid <= 0 || user.args != fmt.Sprintf("%d:%d", facts.uid, facts.gid) {
		t.Errorf("Dockerfile:%d: USER %s: want numeric non-root UID:GID", user.line, user.args)
	}

	if !slices.Equal(facts.entrypoint, []string{"/authd"}) {
		t.Errorf("ENTRYPOINT %v, want [/authd]", facts.entrypoint)
	}
	if cmd := final.last(t, "CMD"); !slices.Equal(execForm(t, cmd, cmd.args), []string{"serve"}) {
		t.Errorf("CMD %s, want [\"serve\"]", cmd.args)
	}

	hc := final.last(t, "HEALTHCHECK")
	i := strings.Index(hc.args, "CMD ")
	if i < 0 {
		t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", hc.line)
	}
	if got := execForm(t, hc, strings.TrimSpace(hc.args[i+len("CMD "):])); !slices.Equal(got, append(slices.Clone(facts.entrypoint), "healthcheck")) {
		t.Errorf("HEALTHCHECK CMD %v, want [/authd healthcheck]", got)
	}

	env := map[string]string{}
	for _, in := range final.all("ENV") {
		for k, v := range keyValues(t, in) {
			env[k] = v
		}
	}
	if facts.port != "8008" {
		t.Errorf("EXPOSE %s, want 8008", facts.port)
	}
	if _, port, _ := strings.Cut(env["AUTHD_LISTEN"], ":"); port != facts.port {
		t.Errorf("ENV AUTHD_LISTEN=%q does not listen on the EXPOSEd port %s", env["AUTHD_LISTEN"], facts.port)
	}

	// The SQLite default lives on a volume the runtime user owns.
	if env["AUTHD_DATABASE_URL"] != "sqlite:/data/authd.db" {
		t.Errorf("ENV AUTHD_DATABASE_URL=%q, want sqlite:/data/authd.db", env["AUTHD_DATABASE_URL"])
	}
	if v := final.last(t, "VOLUME"); v.args != "/data" && v.args != `["/data"]` {
		t.Errorf("VOLUME %s, want /data", v.args)
	}
	owned := false
	for _, in := range final.all("COPY") {
		if strings.Contains(in.args, fmt.Sprintf("--chown=%d:%d", facts.uid, facts.gid)) && strings.HasSuffix(in.args, " /data") {
			owned = true
		}
	}
	if !owned {
		t.Errorf("/data is not copied into the runtime stage with --chown=%d:%d", facts.uid, facts.gid)
	}

	labels := map[string]string{}
	for _, in := range final.all("LABEL") {
		for k, v := range keyValues(t, in) {
			labels[k] = v
		}
	}
	for _, k := range []string{"title", "description", "source", "version", "revision"} {
		if labels["org.opencontainers.image."+k] == "" {
			t.Errorf("no LABEL org.opencontainers.image.%s", k)
		}
	}

	// Module downloads are cached between builds.
	cached := false
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "--mount=type=cache,target=/go/pkg/mod") && strings.Contains(in.args, "go mod download") {
			cached = true
		}
	}
	if !cached {
		t.Error("the build stage does not run `go mod download` with a module cache mount")
	}
}

// goBuildLine returns the environment assignments and the `go build`
// arguments of the build stage's RUN line that builds authd.
func goBuildLine(t *testing.T) (env map[string]string, args []string) {
	t.Helper()
	build := parseDockerfile(t)[0]
	for _, in := range build.all("RUN") {
		words := shellWords(t, in.args)
		i := slices.Index(words, "go")
		if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
			continue
		}
		env = map[string]string{}
		for _, w := range words[:i] {
			if strings.HasPrefix(w, "--mount=") {
				continue
			}
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("Dockerfile:%d: %q before `go build` is not an assignment", in.line, w)
			}
			env[k] = v
		}
		return env, words[i+2:]
	}
	t.Fatal("the build stage has no RUN ... go build")
	return nil, nil
}

// TestDockerfile_BuildLine builds authd with the Dockerfile's own `go
// build` line (for this machine's platform) and checks that the result is
// what the distroless/scratch runtime stage needs: a static, stripped
// binary without build paths, that runs.
func TestDockerfile_BuildLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds authd")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	env, args := goBuildLine(t)
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("the build line sets CGO_ENABLED=%q, want 0 (a static binary for distroless/static)", env["CGO_ENABLED"])
	}
	for _, want := range []string{"-trimpath", "-ldflags=-s -w", "./cmd/authd"} {
		if !slices.Contains(args, want) {
			t.Errorf("the build line %q lacks %q", args, want)
		}
	}
	o := slices.Index(args, "-o")
	if o < 0 || o+1 >= len(args) {
		t.Fatalf("the build line %q has no -o", args)
	}
	out := filepath.Join(t.TempDir(), "authd")
	args = slices.Clone(args)
	args[o+1] = out

	cmd := exec.Command(goCmd, append([]string{"build"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+env["CGO_ENABLED"])
	for k, v := range env {
		// GOOS=$TARGETOS and the like are BuildKit's; build for this machine.
		if k != "CGO_ENABLED" && !strings.HasPrefix(v, "$") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	if runtime.GOOS == "linux" {
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has an ELF interpreter: it is not static")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("the binary needs shared libraries %v", libs)
		}
		for _, s := range f.Sections {
			if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
				t.Errorf("the binary has section %s: -ldflags=-s -w did not strip it", s.Name)
			}
		}
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if abs, err := filepath.Abs(root); err == nil && bytes.Contains(bin, []byte(abs+string(filepath.Separator))) {
		t.Errorf("the binary holds the build path %s: -trimpath did not apply", abs)
	}

	if b, err := exec.Command(out, "help").CombinedOutput(); err != nil {
		t.Errorf("authd help: %v\n%s", err, b)
	}
	// The HEALTHCHECK's command fails when nothing is ready.
	hc := exec.Command(out, "healthcheck", "--listen", "127.0.0.1:1")
	if b, err := hc.CombinedOutput(); err == nil {
		t.Errorf("authd healthcheck with nothing listening succeeded: %s", b)
	}
}

// TestDockerignore checks that every file `go build ./cmd/authd` reads
// (the main module's Go files and embedded files, go.mod, go.sum) is in the
// build context .dockerignore leaves.
func TestDockerignore(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	type rule struct {
		re     *regexp.Regexp
		negate bool
	}
	var rules []rule
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{}
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		}
		r.re = regexp.MustCompile("^" + globRegexp(path.Clean(strings.TrimPrefix(line, "/"))) + "$")
		rules = append(rules, r)
	}
	// As Docker: the last rule that matches the path or a parent wins.
	excluded := func(rel string) bool {
		out := false
		for _, r := range rules {
			for p := rel; p != "."; p = path.Dir(p) {
				if r.re.MatchString(p) {
					out = !r.negate
					break
				}
			}
		}
		return out
	}
	// Sanity: the rules do exclude something.
	if !excluded("e2e/node_modules/x") || !excluded("bin/authd") {
		t.Error(".dockerignore lets e2e/node_modules or bin into the build context")
	}

	cmd := exec.Command(goCmd, "list", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/authd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(&stdout)
	for {
		var p struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Module              *struct{ Main bool }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		dir, err := filepath.Rel(abs, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	if len(files) < 10 {
		t.Fatalf("go list found only %v", files)
	}
	for _, f := range files {
		if excluded(f) {
			t.Errorf(".dockerignore leaves %s out of the build context; go build ./cmd/authd needs it", f)
		}
	}
}

// globRegexp turns a .dockerignore pattern into a regular expression.
func globRegexp(glob string) string {
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; {
		case strings.HasPrefix(glob[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// --- docker-compose.yml ---

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

// composeVar matches compose's interpolation: $$, ${NAME...} and $NAME.
var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate substitutes variables as docker compose does, from vars.
func interpolate(s string, vars map[string]string) (string, error) {
	var errs []error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := composeVar.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		v, set := vars[name]
		switch {
		case strings.HasPrefix(op, ":-"):
			if v == "" {
				return arg
			}
		case strings.HasPrefix(op, "-"):
			if !set {
				return arg
			}
		case strings.HasPrefix(op, ":?"):
			if v == "" {
				errs = append(errs, fmt.Errorf("%s: %s", name, arg))
			}
		case strings.HasPrefix(op, "?"):
			if !set {
				errs = append(errs, fmt.Errorf("%s: %s", name, arg))
			}
		}
		return v
	})
	return out, errors.Join(errs...)
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

// --- Kubernetes ---

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec      yaml.Node         `yaml:"spec"`
	Resources []string          `yaml:"resources"`  // Kustomization
	Data      map[string]string `yaml:"stringData"` // Secret
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	SecurityContext *struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type k8sDeploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    int   `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			InitContainers []k8sContainer `yaml:"initContainers"`
			Containers     []k8sContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

// loadKubernetes parses every document of deploy/kubernetes/*.yaml, by kind.
func loadKubernetes(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy/kubernetes/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/kubernetes/*.yaml: %v", err)
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				t.Errorf("%s: a document without kind", f)
			}
			out[o.Kind] = append(out[o.Kind], o)
		}
	}
	return out
}

func one(t *testing.T, objs map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("deploy/kubernetes has %d %s, want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

// spec decodes the spec of the one object of kind into v.
func spec(t *testing.T, objs map[string][]k8sObject, kind string, v any) {
	t.Helper()
	o := one(t, objs, kind)
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", kind, o.Metadata.Name, err)
	}
}

func TestKubernetes(t *testing.T) {
	facts := imageFacts(t)
	objs := loadKubernetes(t)

	var dep k8sDeploymentSpec
	spec(t, objs, "Deployment", &dep)
	pod := dep.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	portNames := map[string]int{}
	for _, p := range c.Ports {
		portNames[p.Name] = p.ContainerPort
	}
	if want, _ := strconv.Atoi(facts.port); len(c.Ports) != 1 || c.Ports[0].ContainerPort != want {
		t.Errorf("container ports %v, want the image's %s", c.Ports, facts.port)
	}
	resolve := func(port any) int {
		switch p := port.(type) {
		case int:
			return p
		case string:
			if n, ok := portNames[p]; ok {
				return n
			}
		}
		return -1
	}
	for _, probe := range []struct {
		name string
		p    *k8sProbe
		path string
	}{
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
	} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("the container has no HTTP %s", probe.name)
			continue
		}
		if probe.p.HTTPGet.Path != probe.path {
			t.Errorf("%s path %q, want %s", probe.name, probe.p.HTTPGet.Path, probe.path)
		}
		if got := resolve(probe.p.HTTPGet.Port); got != c.Ports[0].ContainerPort {
			t.Errorf("%s port %v is not the container port %d", probe.name, probe.p.HTTPGet.Port, c.Ports[0].ContainerPort)
		}
	}

	secrets := map[string]k8sObject{}
	for _, o := range objs["Secret"] {
		secrets[o.Metadata.Name] = o
	}
	for _, ct := range append(slices.Clone(pod.InitContainers), c) {
		env := map[string]string{}
		fromSecret := map[string]bool{}
		for _, e := range ct.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if secrets[ref.Name].Data[ref.Key] == "" {
					t.Errorf("%s: %s from secret %s key %s, which secret.example.yaml does not define", ct.Name, e.Name, ref.Name, ref.Key)
				}
				fromSecret[e.Name] = true
			}
		}
		if !fromSecret["AUTHD_DATABASE_URL"] {
			t.Errorf("%s: AUTHD_DATABASE_URL does not come from a Secret", ct.Name)
		}
		// Several replicas share one budget of guesses only through Redis.
		if ct.Name == c.Name && dep.Replicas > 1 && (env["AUTHD_RATELIMIT_BACKEND"] != "redis" || !fromSecret["AUTHD_REDIS_URL"]) {
			t.Errorf("%s: %d replicas with AUTHD_RATELIMIT_BACKEND=%q and AUTHD_REDIS_URL not from a Secret: each replica would allow the whole burst",
				ct.Name, dep.Replicas, env["AUTHD_RATELIMIT_BACKEND"])
		}
		if _, port, _ := strings.Cut(env["AUTHD_LISTEN"], ":"); env["AUTHD_LISTEN"] != "" && port != facts.port {
			t.Errorf("%s: AUTHD_LISTEN=%q is not the container port", ct.Name, env["AUTHD_LISTEN"])
		}
		sc := ct.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: securityContext must set readOnlyRootFilesystem, no privilege escalation and drop ALL capabilities", ct.Name)
		}
		if ct.Resources.Requests["cpu"] == "" || ct.Resources.Requests["memory"] == "" || ct.Resources.Limits["memory"] == "" {
			t.Errorf("%s: resources want cpu and memory requests and a memory limit, got %+v", ct.Name, ct.Resources)
		}
		if ct.Image != c.Image {
			t.Errorf("%s runs image %s, authd %s", ct.Name, ct.Image, c.Image)
		}
	}
	if len(pod.InitContainers) > 0 && !slices.Equal(pod.InitContainers[0].Args, []string{"migrate", "up"}) {
		t.Errorf("init container args %v, want [migrate up]", pod.InitContainers[0].Args)
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("container args %v, want [serve]", c.Args)
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser != facts.uid {
		t.Errorf("pod securityContext: want runAsNonRoot and runAsUser %d (the image's USER)", facts.uid)
	}

	podLabels := dep.Template.Metadata.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(dep.Selector.MatchLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", dep.Selector.MatchLabels, podLabels)
	}

	var svc struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	spec(t, objs, "Service", &svc)
	if !selects(svc.Selector) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Selector, podLabels)
	}
	if len(svc.Ports) != 1 || resolve(svc.Ports[0].TargetPort) != c.Ports[0].ContainerPort {
		t.Errorf("the Service's ports %+v do not target the container port", svc.Ports)
	}

	var pdb struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	spec(t, objs, "PodDisruptionBudget", &pdb)
	if !selects(pdb.Selector.MatchLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v", pdb.Selector.MatchLabels, podLabels)
	}
	if pdb.MinAvailable < 1 || pdb.MinAvailable >= dep.Replicas {
		t.Errorf("minAvailable %d with %d replicas: want at least 1 and fewer than the replicas, or no node can be drained", pdb.MinAvailable, dep.Replicas)
	}

	// Trusted proxies: the ingress controller's own addresses, never a
	// range as wide as a pod network, in which any pod could set
	// X-Forwarded-For.
	var trusted string
	for _, e := range c.Env {
		if e.Name == "AUTHD_TRUSTED_PROXIES" {
			trusted = e.Value
		}
	}
	if trusted == "" {
		t.Error("the container does not set AUTHD_TRUSTED_PROXIES (the ingress controller's addresses)")
	}
	for _, f := range strings.Split(trusted, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			t.Errorf("AUTHD_TRUSTED_PROXIES %q: %v", f, err)
			continue
		}
		if p.Addr().Is4() && p.Bits() < 24 || !p.Addr().Is4() && p.Bits() < 120 {
			t.Errorf("AUTHD_TRUSTED_PROXIES %s is as wide as a pod network: list the ingress controller's addresses", p)
		}
	}

	// A NetworkPolicy admits only the ingress controller (and Prometheus)
	// to authd's pods, on its port.
	var np struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"namespaceSelector"`
				PodSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				IPBlock any `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port any `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	}
	spec(t, objs, "NetworkPolicy", &np)
	if !selects(np.PodSelector.MatchLabels) {
		t.Errorf("the NetworkPolicy's podSelector %v does not select the pods %v", np.PodSelector.MatchLabels, podLabels)
	}
	if !slices.Contains(np.PolicyTypes, "Ingress") {
		t.Errorf("the NetworkPolicy's policyTypes %v do not restrict Ingress", np.PolicyTypes)
	}
	if len(np.Ingress) == 0 {
		t.Error("the NetworkPolicy admits nothing: the ingress controller must reach authd")
	}
	for i, rule := range np.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("NetworkPolicy ingress rule %d admits every source", i)
		}
		for _, from := range rule.From {
			if from.IPBlock != nil || from.PodSelector == nil || len(from.PodSelector.MatchLabels) == 0 ||
				from.NamespaceSelector == nil || len(from.NamespaceSelector.MatchLabels) == 0 {
				t.Errorf("NetworkPolicy ingress rule %d: each source wants a namespaceSelector and a podSelector with labels, got %+v", i, from)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy ingress rule %d admits every port", i)
		}
		for _, p := range rule.Ports {
			if resolve(p.Port) != c.Ports[0].ContainerPort {
				t.Errorf("NetworkPolicy ingress rule %d port %v is not authd's port", i, p.Port)
			}
		}
	}

	// kubectl apply -k applies everything but the example Secret.
	k := one(t, objs, "Kustomization")
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(root, "deploy/kubernetes", r)); err != nil {
			t.Error(err)
		}
	}
	for _, want := range []string{"deployment.yaml", "service.yaml", "pdb.yaml", "networkpolicy.yaml"} {
		if !slices.Contains(k.Resources, want) {
			t.Errorf("kustomization.yaml does not list %s", want)
		}
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("kustomization.yaml applies the example Secret")
	}
}

// --- Caddy ---

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
