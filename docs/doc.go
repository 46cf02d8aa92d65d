// Package docs holds authd's documentation pages. Its only code is a test
// that keeps them honest: links resolve, README.md stays short, nothing
// cites a document outside the repository, and CONTRIBUTING.md's walk
// through POST /login names real files and functions.
package docs
