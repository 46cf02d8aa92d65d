// Command skips reads `go test -json` on stdin and prints what plain
// `go test` would (each package's ok or FAIL line, the output of every failed
// test), then how many tests skipped, grouped by the reason they gave. Plain
// `go test ./...` shows a package whose tests skipped as "ok", like one whose
// tests all ran; `make test-quick` pipes through this so that a skipped group
// is in sight. It exits 1 if any test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	output := map[string][]string{}        // each running test's output lines, by package and name
	skipped := map[string]map[string]int{} // how many tests skipped, by reason and package
	failed := false
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil {
			fmt.Print(in.Text() + "\n") // the build failed: go printed text, not JSON
			failed = true
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Print(e.Output)
			}
		case e.Action == "build-output":
			fmt.Print(e.Output)
		case e.Action == "build-fail" || e.Test == "" && e.Action == "fail":
			failed = true
		case e.Action == "output":
			output[key] = append(output[key], e.Output)
		case e.Action == "fail":
			failed = true
			fmt.Print(strings.Join(output[key], ""))
			delete(output, key)
		case e.Test == "" && e.Action == "skip":
			// A package with no tests: its "?" line said so.
		case e.Action == "skip":
			r := reason(output[key])
			if skipped[r] == nil {
				skipped[r] = map[string]int{}
			}
			skipped[r][e.Package]++
			delete(output, key)
		case e.Action == "pass":
			delete(output, key)
		}
	}
	reasons := make([]string, 0, len(skipped))
	for r := range skipped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		pkgs := make([]string, 0, len(skipped[r]))
		total := 0
		for pkg, n := range skipped[r] {
			pkgs = append(pkgs, fmt.Sprintf("%s (%d)", pkg, n))
			total += n
		}
		slices.Sort(pkgs)
		fmt.Printf("\nskipped %d tests: %s\n  %s\n", total, r, strings.Join(pkgs, "\n  "))
	}
	if failed {
		os.Exit(1)
	}
}

// reason is the message a skipped test logged last: the line after the
// file:line prefix, without the "=== RUN" and "--- SKIP" lines.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:len(l)-len(msg)], ".go:") {
			return msg
		}
		return l
	}
	return "(no reason given)"
}
