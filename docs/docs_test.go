package docs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository, relative to this package's directory.
const root = ".."

// maxReadmeLines keeps README.md an entry point a newcomer reads in two
// minutes; the rest belongs in docs/.
const maxReadmeLines = 150

// pages are the Markdown files a reader follows links through.
func pages(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "CONTRIBUTING.md"}
	inDocs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inDocs) == 0 {
		t.Fatal("no docs/*.md")
	}
	for _, p := range inDocs {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	fenceRE      = regexp.MustCompile("(?ms)^```.*?^```[^\n]*$")
	inlineCodeRE = regexp.MustCompile("`[^`\n]*`")
	linkRE       = regexp.MustCompile(`\[[^\]\n]*\]\(([^)\s]+)\)`)
	headingRE    = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
)

// prose is a page without its code blocks and code spans, where a bracket
// or a hash is not Markdown.
func prose(page string) string {
	page = fenceRE.ReplaceAllString(page, "")
	return inlineCodeRE.ReplaceAllString(page, "")
}

// anchors are the fragment IDs GitHub gives a page's headings: lower case,
// punctuation dropped, spaces turned into hyphens, and a -1, -2 ... suffix
// for a repeated heading.
func anchors(page string) map[string]bool {
	got := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(page, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			got[slug+"-"+strconv.Itoa(n)] = true
		} else {
			got[slug] = true
		}
		seen[slug]++
	}
	return got
}

// TestLinks checks that every relative link of the Markdown pages names a
// file of the repository, and every #anchor a heading of its page.
func TestLinks(t *testing.T) {
	for _, rel := range pages(t) {
		for _, m := range linkRE.FindAllStringSubmatch(prose(read(t, rel)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := rel
			if path != "" {
				dest = filepath.Clean(filepath.Join(filepath.Dir(rel), path))
				if dest == ".." || strings.HasPrefix(dest, "../") || filepath.IsAbs(path) {
					t.Errorf("%s: link %q leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link %q: no such file %s", rel, target, dest)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q: an anchor into a file that is not Markdown", rel, target)
				continue
			}
			if !anchors(read(t, dest))[anchor] {
				t.Errorf("%s: link %q: %s has no heading #%s", rel, target, dest, anchor)
			}
		}
	}
}

// TestReadmeLength keeps README.md short.
func TestReadmeLength(t *testing.T) {
	if n := strings.Count(read(t, "README.md"), "\n"); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, at most %d: move the detail to docs/", n, maxReadmeLines)
	}
}

// outsideRefs are references to documents that are not in the repository,
// which a reader who clones it cannot follow. Written as patterns so that
// this file does not match itself.
var outsideRefs = []*regexp.Regexp{
	regexp.MustCompile(`DESIGN\.md`),
	regexp.MustCompile(`\.\./shared\b`),
	regexp.MustCompile(`\bresearch/`),
	regexp.MustCompile(`\bresearch [A-Z]{1,2}-[0-9]`),
	regexp.MustCompile(`(?i)aesthetics[ -]review`),
	regexp.MustCompile(`(?i)\b(the|security|an) audit\b|\baudit's`),
	regexp.MustCompile(`(?i)\bthe design notes\b`),
}

// skipDirs (by name) and skipPaths (from the root) hold no file of the
// project's own words: version control, installed packages, build output,
// and the spec's definitions, vendored unchanged.
var (
	skipDirs  = []string{".git", "node_modules"}
	skipPaths = []string{"bin", filepath.Join("internal", "api", "testdata", "matrix-spec")}
)

// TestNoOutsideReferences checks that no file of the repository (docs,
// code, comments, tests, deployment files) cites a document that is not in
// it.
func TestNoOutsideReferences(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if slices.Contains(skipDirs, d.Name()) || slices.Contains(skipPaths, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > 1<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			for _, re := range outsideRefs {
				if loc := re.FindString(line); loc != "" {
					t.Errorf("%s:%d names %q, which is not in the repository", rel, i+1, loc)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: is %s the repository?", checked, root)
	}
}

var (
	itemRE    = regexp.MustCompile(`^[0-9]+\. `)
	goFileRE  = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.go)`")
	identRE   = regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*)`")
	loginWalk = "## The path of POST /login"
)

// TestLoginWalk checks CONTRIBUTING.md's walk through POST /login: every
// step names a Go file that exists, and every function it names in
// backticks is defined in one of the files the same step names.
func TestLoginWalk(t *testing.T) {
	page := read(t, "CONTRIBUTING.md")
	_, section, ok := strings.Cut(page, loginWalk+"\n")
	if !ok {
		t.Fatalf("CONTRIBUTING.md has no %q section", loginWalk)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var steps []string
	for _, line := range strings.Split(section, "\n") {
		switch {
		case itemRE.MatchString(line):
			steps = append(steps, line)
		case len(steps) > 0 && strings.HasPrefix(line, "   ") && strings.TrimSpace(line) != "":
			steps[len(steps)-1] += " " + strings.TrimSpace(line)
		}
	}
	if len(steps) < 10 {
		t.Fatalf("the walk has %d steps; want the whole path, file by file", len(steps))
	}
	for _, step := range steps {
		num, _, _ := strings.Cut(step, " ")
		files := goFileRE.FindAllStringSubmatch(step, -1)
		if len(files) == 0 {
			t.Errorf("step %s names no file", num)
			continue
		}
		var sources []string
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(root, f[1]))
			if err != nil {
				t.Errorf("step %s: %v", num, err)
				continue
			}
			sources = append(sources, string(b))
		}
		funcs := identRE.FindAllStringSubmatch(step, -1)
		if len(funcs) == 0 {
			t.Errorf("step %s names no function", num)
		}
		for _, f := range funcs {
			def := regexp.MustCompile(`(?m)^func (\([^)]*\) )?` + f[1] + `[\[(]`)
			if !slices.ContainsFunc(sources, def.MatchString) {
				t.Errorf("step %s: no func %s in %s", num, f[1], joinFiles(files))
			}
		}
	}
}

func joinFiles(files [][]string) string {
	var names []string
	for _, f := range files {
		names = append(names, f[1])
	}
	return strings.Join(names, ", ")
}
