// The hand-written parsers the checks read the deployment files with: a
// Dockerfile's instructions and shell words, .dockerignore's globs and
// compose's variable interpolation. No Docker engine is needed.

package deploy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

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
