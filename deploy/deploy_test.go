// Package deploy_test checks the deployment files against each other and
// against authd: the Dockerfile's stages and the binary its build line
// makes, what .dockerignore lets into the build, docker-compose.yml's
// service wiring and .env.example, the Kubernetes manifests' probes, and
// the Caddyfile (with caddy, when it is installed). No Docker engine or
// cluster is needed; e2e/run.sh tests deploy/nginx with real nginx.
package deploy_test

import (
	"os"
	"path/filepath"
	"testing"
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
