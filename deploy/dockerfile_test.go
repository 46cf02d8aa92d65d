package deploy_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

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
